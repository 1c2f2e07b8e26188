import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { SearchCriterion } from '../../src/store/port.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

/** Schema version 5 as released: no width classes, separate low and high range indexes. */
const V5 = `
CREATE TABLE resource_version (resource_type TEXT NOT NULL, id TEXT NOT NULL, version_id INTEGER NOT NULL,
  last_updated INTEGER NOT NULL, deleted INTEGER NOT NULL, body TEXT, UNIQUE (resource_type, id, version_id));
CREATE TABLE resource_current (resource_type TEXT NOT NULL, id TEXT NOT NULL, version_id INTEGER NOT NULL,
  deleted INTEGER NOT NULL, last_updated INTEGER NOT NULL, sort_keys TEXT, PRIMARY KEY (resource_type, id)) WITHOUT ROWID;
CREATE TABLE search_index (resource_type TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, param TEXT NOT NULL,
  s0 TEXT, v0 TEXT, t0 TEXT, l0 REAL, h0 REAL, s1 TEXT, v1 TEXT, t1 TEXT, l1 REAL, h1 REAL,
  s2 TEXT, v2 TEXT, t2 TEXT, l2 REAL, h2 REAL, PRIMARY KEY (resource_type, id, seq)) WITHOUT ROWID;
CREATE INDEX search_index_value ON search_index (resource_type, param, v0, s0) WHERE v0 IS NOT NULL;
CREATE INDEX search_index_low ON search_index (resource_type, param, l0, h0) WHERE l0 IS NOT NULL;
CREATE INDEX search_index_high ON search_index (resource_type, param, h0, l0) WHERE h0 IS NOT NULL;
PRAGMA user_version = 5;
`;

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function v5File(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fhir-migrate-'));
  dirs.push(dir);
  const path = join(dir, 'store.db');
  const db = new Database(path);
  db.exec(V5);
  const put = db.transaction((id: string, ranges: [number, number][]) => {
    db.prepare('INSERT INTO resource_version VALUES (?, ?, 1, 1, 0, ?)').run('Observation', id, `{"id":"${id}"}`);
    db.prepare('INSERT INTO resource_current VALUES (?, ?, 1, 0, 1, NULL)').run('Observation', id);
    db.prepare("INSERT INTO search_index (resource_type, id, seq, param, s0, v0) VALUES ('Observation', ?, 0, 'code', NULL, 'x')").run(id);
    ranges.forEach(([low, high], i) =>
      db.prepare("INSERT INTO search_index (resource_type, id, seq, param, l0, h0) VALUES ('Observation', ?, ?, 'date', ?, ?)").run(id, i + 1, low, high));
  });
  put('point', [[150, 150]]);
  put('wide', [[0, 1000]]);
  put('split', [[10, 10], [900, 900]]);
  put('none', []);
  db.close();
  return path;
}

describe('SqliteStore on a schema version 5 file', () => {
  it('migrates it in place: width classes, the multi-entry flag, the new indexes', async () => {
    const path = v5File();
    const store = new SqliteStore({ path });
    const range = (param: string, field: 'low' | 'high', op: 'ge' | 'lt', value: number): SearchCriterion => ({
      kind: 'entry',
      param,
      anyOf: [[{ slot: 0, field, op, value }]],
    });
    const find = async (...where: SearchCriterion[]) =>
      (await store.search({ resourceTypes: ['Observation'], where, sort: [], limit: 10 })).map((h) => h.version.id);
    expect(await find(range('date', 'high', 'ge', 100), range('date', 'low', 'lt', 200))).toEqual(['point', 'split', 'wide']);
    expect(await find(range('date', 'high', 'ge', 1001))).toEqual([]);
    expect(await find(range('date', 'low', 'lt', 5))).toEqual(['wide']);
    await store.close();

    const db = new Database(path, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(6);
    const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'search_index' ORDER BY name").pluck().all();
    expect(indexes).toEqual(['search_index_multi', 'search_index_range', 'search_index_value']);
    const rows = db.prepare("SELECT id, wc, m FROM search_index WHERE param = 'date' ORDER BY id, seq").all();
    expect(rows).toEqual([
      { id: 'point', wc: 0, m: null },
      { id: 'split', wc: 0, m: 1 },
      { id: 'split', wc: 0, m: 1 },
      { id: 'wide', wc: 1024, m: null },
    ]);
    db.close();
  });

  it('still refuses a file of another version', () => {
    const path = v5File();
    const db = new Database(path);
    db.pragma('user_version = 4');
    db.close();
    expect(() => new SqliteStore({ path })).toThrow(/schema version 4/);
  });
});
