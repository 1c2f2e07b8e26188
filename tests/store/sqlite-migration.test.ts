import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { OwnershipRule, SearchCriterion } from '../../src/store/port.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { codeIs, entry, indexOf, render, token } from './fixtures.js';

/** A rule of the shape the FHIR layer's: Patients are their own, Observations belong to the Patients of subject and performer. */
const OWNERSHIP: OwnershipRule = { ownerType: 'Patient', params: (type) => (type === 'Observation' ? ['subject', 'performer'] : type === 'Encounter' ? ['subject'] : []) };

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
    const store = new SqliteStore({ path, ownership: OWNERSHIP });
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
    expect(db.pragma('user_version', { simple: true })).toBe(8);
    const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'search_index' ORDER BY name").pluck().all();
    expect(indexes).toEqual(['search_index_multi', 'search_index_range', 'search_index_rest', 'search_index_value']);
    const rows = db
      .prepare("SELECT c.id, e.wc, e.m FROM search_index e JOIN resource_current c USING (doc) JOIN search_param p USING (code) WHERE p.param = 'date' ORDER BY c.id, e.seq")
      .all();
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
    expect(() => new SqliteStore({ path, ownership: OWNERSHIP })).toThrow(/schema version 4/);
  });

  it('is not migrated without the ownership rule, and left as it was', () => {
    const path = v5File();
    expect(() => new SqliteStore({ path })).toThrow(/schema version 5/);
    const db = new Database(path, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(5);
    db.close();
  });
});

/** Schema version 6 as released (before patients were kept). */
const V6 = `${readFileSync(new URL('./schema-6.sql', import.meta.url), 'utf8')}
PRAGMA user_version = 6;`;

interface Row {
  type: string;
  id: string;
  deleted?: boolean;
  entries?: [param: string, system: string | null, value: string][];
}

function v6File(rows: Row[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'fhir-migrate-'));
  dirs.push(dir);
  const path = join(dir, 'store.db');
  const db = new Database(path);
  db.exec(V6);
  db.transaction(() => {
    for (const { type, id, deleted = false, entries = [] } of rows) {
      db.prepare('INSERT INTO resource_version VALUES (?, ?, 1, 1, ?, ?)').run(type, id, deleted ? 1 : 0, deleted ? null : `{"id":"${id}"}`);
      db.prepare('INSERT INTO resource_current VALUES (?, ?, 1, ?, 1, NULL)').run(type, id, deleted ? 1 : 0);
      entries.forEach(([param, system, value], seq) =>
        db.prepare('INSERT INTO search_index (resource_type, id, seq, param, s0, v0) VALUES (?, ?, ?, ?, ?, ?)').run(type, id, seq, param, system, value));
    }
  })();
  db.close();
  return path;
}

describe('SqliteStore on a schema version 6 file', () => {
  const world: Row[] = [
    { type: 'Patient', id: 'p1', entries: [['family', null, 'chan']] },
    { type: 'Patient', id: 'p2', entries: [['family', null, 'wong']] },
    { type: 'Patient', id: 'gone', deleted: true },
    { type: 'Observation', id: 'o1', entries: [['code', 'L', 'x'], ['subject', 'Patient', 'p1']] },
    // Two patients: as subject and as performer.
    { type: 'Observation', id: 'o2', entries: [['code', 'L', 'x'], ['subject', 'Patient', 'p2'], ['performer', 'Patient', 'p1']] },
    // The same patient twice is one patient.
    { type: 'Observation', id: 'o3', entries: [['code', 'L', 'x'], ['subject', 'Patient', 'p2'], ['performer', 'Patient', 'p2']] },
    // No patient: a group, a practitioner performer, a patient named through a parameter outside the rule.
    { type: 'Observation', id: 'o4', entries: [['code', 'L', 'x'], ['subject', 'Group', 'p1'], ['performer', 'Practitioner', 'p2'], ['focus', 'Patient', 'p1']] },
    { type: 'Encounter', id: 'e1', entries: [['subject', 'Patient', 'p1'], ['status', null, 'finished']] },
    { type: 'Organization', id: 'org', entries: [['name', null, 'clinic']] },
  ];

  it('derives every resource\'s patients from its entries, by the rule', async () => {
    const path = v6File(world);
    const store = new SqliteStore({ path, ownership: OWNERSHIP });
    await store.close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(8);
    const owners = db
      .prepare('SELECT c.resource_type, c.id, o.patient FROM resource_patient o JOIN resource_current c USING (doc) ORDER BY c.resource_type, c.id, o.patient')
      .raw()
      .all();
    // Only resources of several patients have rows; the others' entries carry their patient.
    expect(owners).toEqual([
      ['Observation', 'o2', 'p1'],
      ['Observation', 'o2', 'p2'],
    ]);
    // Each entry carries its resource's one patient; none where it has none or several, or is the patient.
    const entries = db
      .prepare('SELECT c.resource_type, c.id, e.seq, e.patient FROM search_index e JOIN resource_current c USING (doc) ORDER BY c.resource_type, c.id, e.seq')
      .raw()
      .all();
    const patientOf: Record<string, string | null> = { e1: 'p1', o1: 'p1', o2: null, o3: 'p2', o4: null, org: null, p1: null, p2: null };
    expect(entries.length).toBe(world.reduce((n, r) => n + (r.entries?.length ?? 0), 0));
    for (const [, id, , patient] of entries as [string, string, number, string | null][]) expect([id, patient]).toEqual([id, patientOf[id]]);
    // One value index, now with the patient (the old one is replaced, not doubled).
    const indexes = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'search_index' ORDER BY name").raw().all() as [string, string][];
    expect(indexes.map(([name]) => name)).toEqual(['search_index_multi', 'search_index_range', 'search_index_rest', 'search_index_value']);
    expect(String(indexes[3]![1])).toMatch(/\(code, v0, patient, s0\)/);
    db.close();
  });

  it('then searches, counts and writes by patient as a new file does', async () => {
    const store = new SqliteStore({ path: v6File(world), ownership: OWNERSHIP });
    const ofPatients = (...ids: string[]): SearchCriterion => ({ kind: 'patient', ids });
    const find = async (type: string, ...where: SearchCriterion[]) =>
      (await store.search({ resourceTypes: [type], where, sort: [], limit: 10 })).map((h) => h.version.id);
    expect(await find('Observation', ofPatients('p1'), codeIs('code', 'x'))).toEqual(['o1', 'o2']);
    expect(await find('Observation', ofPatients('p2'), codeIs('code', 'x'))).toEqual(['o2', 'o3']);
    expect(await find('Observation', ofPatients('p1'))).toEqual(['o1', 'o2']);
    expect(await store.count({ resourceTypes: ['Observation'], where: [ofPatients('p1', 'p2'), codeIs('code', 'x')] })).toBe(3);
    expect(await find('Patient', ofPatients('p2', 'gone'))).toEqual(['p2']);
    expect(await find('Encounter', ofPatients('p1'), codeIs('status', 'finished'))).toEqual(['e1']);
    // A new version of o1 belongs to p2 only: it leaves p1's records.
    await store.write({ resourceType: 'Observation', id: 'o1', renderBody: render('o1'), index: { ...indexOf(token('code', 'L', 'x'), entry('subject', { system: 'Patient', value: 'p2' })), patients: ['p2'] } });
    expect(await find('Observation', ofPatients('p1'), codeIs('code', 'x'))).toEqual(['o2']);
    expect(await find('Observation', ofPatients('p2'), codeIs('code', 'x'))).toEqual(['o1', 'o2', 'o3']);
    await store.close();
  });
});

/** Schema version 7 as released (text keys and parameter names in search_index). */
const V7 = `${readFileSync(new URL('./schema-7.sql', import.meta.url), 'utf8')}
PRAGMA user_version = 7;`;

interface Row7 {
  type: string;
  id: string;
  deleted?: boolean;
  patients?: string[];
  entries?: [param: string, system: string | null, value: string | null, low?: number, high?: number][];
}

function v7File(rows: Row7[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'fhir-migrate-'));
  dirs.push(dir);
  const path = join(dir, 'store.db');
  const db = new Database(path);
  db.exec(V7);
  db.transaction(() => {
    for (const { type, id, deleted = false, patients = [], entries = [] } of rows) {
      db.prepare('INSERT INTO resource_version VALUES (?, ?, 1, 1, ?, ?)').run(type, id, deleted ? 1 : 0, deleted ? null : `{"id":"${id}"}`);
      db.prepare('INSERT INTO resource_current VALUES (?, ?, 1, ?, 1, ?)').run(type, id, deleted ? 1 : 0, deleted ? null : `{"code":["${id}","${id}"]}`);
      const owner = patients.length === 1 && type !== 'Patient' ? patients[0]! : null;
      if (patients.length > 1) for (const patient of patients) db.prepare('INSERT INTO resource_patient VALUES (?, ?, ?)').run(type, id, patient);
      entries.forEach(([param, system, value, low, high], seq) =>
        db
          .prepare('INSERT INTO search_index (resource_type, id, seq, param, s0, v0, l0, h0, wc, patient) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
          .run(type, id, seq, param, system, value, low ?? null, high ?? null, low === undefined ? null : high === low ? 0 : 1024, owner));
    }
  })();
  db.close();
  return path;
}

describe('SqliteStore on a schema version 7 file', () => {
  const world: Row7[] = [
    { type: 'Patient', id: 'p1', entries: [['family', null, 'chan']] },
    { type: 'Patient', id: 'p2', entries: [['family', null, 'wong']] },
    { type: 'Patient', id: 'gone', deleted: true },
    { type: 'Observation', id: 'o1', patients: ['p1'], entries: [['code', 'L', 'x'], ['subject', 'Patient', 'p1'], ['date', null, null, 100, 100]] },
    { type: 'Observation', id: 'o2', patients: ['p1', 'p2'], entries: [['code', 'L', 'x'], ['subject', 'Patient', 'p2'], ['performer', 'Patient', 'p1'], ['date', null, null, 0, 1000]] },
    { type: 'Observation', id: 'o3', patients: ['p2'], entries: [['code', 'L', 'y'], ['subject', 'Patient', 'p2']] },
    { type: 'Encounter', id: 'e1', patients: ['p1'], entries: [['subject', 'Patient', 'p1'], ['status', null, 'finished']] },
  ];

  it('migrates it in place: docs, codes, entries and patients under them, the new indexes', async () => {
    const path = v7File(world);
    // A file of schema 7 already has its patients: no rule needed.
    const store = new SqliteStore({ path });
    await store.close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(8);
    // Docs in type and id order; every resource keeps its row, the deleted one too.
    expect(db.prepare('SELECT doc, resource_type, id FROM resource_current ORDER BY doc').raw().all()).toEqual([
      [1, 'Encounter', 'e1'],
      [2, 'Observation', 'o1'],
      [3, 'Observation', 'o2'],
      [4, 'Observation', 'o3'],
      [5, 'Patient', 'gone'],
      [6, 'Patient', 'p1'],
      [7, 'Patient', 'p2'],
    ]);
    const params = db.prepare('SELECT resource_type, param FROM search_param ORDER BY code').raw().all();
    expect(params).toEqual([
      ['Encounter', 'status'],
      ['Encounter', 'subject'],
      ['Observation', 'code'],
      ['Observation', 'date'],
      ['Observation', 'performer'],
      ['Observation', 'subject'],
      ['Patient', 'family'],
    ]);
    const entries = db
      .prepare(
        `SELECT c.id, e.seq, p.param, e.s0, e.v0, e.l0, e.wc, e.patient FROM search_index e
         JOIN resource_current c USING (doc) JOIN search_param p USING (code) ORDER BY c.resource_type, c.id, e.seq`,
      )
      .raw()
      .all();
    // In the order of the file's rows (type, then id, then seq).
    const byKey = (r: Row7) => `${r.type}/${r.id}`;
    expect(entries).toEqual(
      [...world].sort((a, b) => (byKey(a) < byKey(b) ? -1 : 1)).flatMap(({ id, patients = [], type, entries: rows = [] }) =>
        rows.map(([param, system, value, low], seq) => [
          id,
          seq,
          param,
          system,
          value,
          low ?? null,
          low === undefined ? null : id === 'o1' ? 0 : 1024,
          patients.length === 1 && type !== 'Patient' ? patients[0] : null,
        ]),
      ),
    );
    expect(db.prepare('SELECT c.id, o.resource_type, o.patient FROM resource_patient o JOIN resource_current c USING (doc) ORDER BY c.id, o.patient').raw().all()).toEqual([
      ['o2', 'Observation', 'p1'],
      ['o2', 'Observation', 'p2'],
    ]);
    const indexes = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'search_index' ORDER BY name").raw().all() as [string, string][];
    expect(indexes.map(([name]) => name)).toEqual(['search_index_multi', 'search_index_range', 'search_index_rest', 'search_index_value']);
    expect(String(indexes[3]![1])).toMatch(/\(code, v0, patient, s0\)/);
    // No table of the old layout is left.
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all()).toEqual([
      'resource_current',
      'resource_patient',
      'resource_version',
      'search_index',
      'search_param',
    ]);
    db.close();
  });

  it('then searches, counts, sorts and writes as a new file does', async () => {
    const store = new SqliteStore({ path: v7File(world), ownership: OWNERSHIP });
    const ofPatients = (...ids: string[]): SearchCriterion => ({ kind: 'patient', ids });
    const find = async (type: string | string[], ...where: SearchCriterion[]) =>
      (await store.search({ resourceTypes: Array.isArray(type) ? type : [type], where, sort: [], limit: 10 })).map((h) => h.version.id);
    const dated = (op: 'ge' | 'lt', value: number): SearchCriterion => ({ kind: 'entry', param: 'date', anyOf: [[{ slot: 0, field: op === 'ge' ? 'high' : 'low', op, value }]] });
    expect(await find('Observation', codeIs('code', 'x'))).toEqual(['o1', 'o2']);
    expect(await find('Observation', ofPatients('p1'), codeIs('code', 'x'))).toEqual(['o1', 'o2']);
    expect(await find('Observation', ofPatients('p2'))).toEqual(['o2', 'o3']);
    expect(await find(['Encounter', 'Observation'], ofPatients('p1'))).toEqual(['e1', 'o1', 'o2']);
    expect(await find('Patient', ofPatients('p2', 'gone'))).toEqual(['p2']);
    expect(await find('Observation', dated('ge', 500))).toEqual(['o2']);
    expect(await find('Observation', dated('ge', 50), dated('lt', 150))).toEqual(['o1', 'o2']);
    expect(await find('Observation', { kind: 'missing', param: 'date', missing: true })).toEqual(['o3']);
    expect(await find('Observation', { kind: 'references', param: 'subject', targetType: 'Patient', where: [codeIs('family', 'wong')] })).toEqual(['o2', 'o3']);
    expect(await find('Patient', { kind: 'referencedBy', sourceType: 'Observation', param: 'subject', where: [codeIs('code', 'y')] })).toEqual(['p2']);
    expect(await store.count({ resourceTypes: ['Observation'], where: [ofPatients('p1', 'p2'), codeIs('code', 'x')] })).toBe(2);
    expect(await store.count({ resourceTypes: ['Observation'], where: [codeIs('code', 'x'), { kind: 'id', ids: ['o2', 'o3'] }] })).toBe(1);
    const sorted = await store.search({ resourceTypes: ['Observation'], where: [], sort: [{ param: 'code', descending: true }], limit: 10 });
    expect(sorted.map((h) => h.version.id)).toEqual(['o3', 'o2', 'o1']);
    // A new resource gets the next doc; an unknown parameter of a known type gets a code.
    await store.write({ resourceType: 'Observation', id: 'o4', renderBody: render('o4'), index: { ...indexOf(token('code', 'L', 'x'), token('status', null, 'final'), entry('subject', { system: 'Patient', value: 'p1' })), patients: ['p1'] } });
    expect(await find('Observation', ofPatients('p1'), codeIs('code', 'x'))).toEqual(['o1', 'o2', 'o4']);
    expect(await find('Observation', codeIs('status', 'final'))).toEqual(['o4']);
    // A new version of o1 belongs to p2 only: it leaves p1's records.
    await store.write({ resourceType: 'Observation', id: 'o1', renderBody: render('o1'), index: { ...indexOf(token('code', 'L', 'x'), entry('subject', { system: 'Patient', value: 'p2' })), patients: ['p2'] } });
    expect(await find('Observation', ofPatients('p1'), codeIs('code', 'x'))).toEqual(['o2', 'o4']);
    expect(await find('Observation', ofPatients('p2'), codeIs('code', 'x'))).toEqual(['o1', 'o2']);
    await store.close();
    const db = new Database(store.share ? (store.share.settings as { path: string }).path : '', { readonly: true });
    expect(db.prepare("SELECT doc FROM resource_current WHERE id = 'o4'").pluck().get()).toBe(8);
    db.close();
  });
});
