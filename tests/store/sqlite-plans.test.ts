import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, expect, it } from 'vitest';
import { PATIENT_OWNERSHIP } from '../../src/fhir/search/compartments.js';
import type { SearchCriterion } from '../../src/store/port.js';
import { compileCount, compileSearch } from '../../src/store/sqlite/search-sql.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { entry, indexOf, render, token } from './fixtures.js';

/**
 * The embedded store never reads every index entry to answer a search on one parameter: each
 * shape's plan, on a file with entries of several types, finds entries from their code.
 */

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const shapes: Record<string, SearchCriterion> = {
  'a system alone (category=system|)': { kind: 'entry', param: 'category', anyOf: [[{ slot: 0, field: 'system', op: 'eq', value: 'S' }]] },
  'a code': { kind: 'entry', param: 'category', anyOf: [[{ slot: 0, field: 'value', op: 'eq', value: 'vital' }]] },
  ':contains': { kind: 'entry', param: 'name', anyOf: [[{ slot: 0, field: 'value', op: 'contains', value: 'an' }]] },
  ':text': { kind: 'entry', param: 'category', anyOf: [[{ slot: 0, field: 'text', op: 'contains', value: 'vital' }]] },
};

it('finds the entries of one parameter from its code, whatever the test, for a page and a count', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fhir-plans-'));
  dirs.push(dir);
  const path = join(dir, 'store.db');
  const store = new SqliteStore({ path, ownership: PATIENT_OWNERSHIP });
  for (let i = 0; i < 50; i++) {
    const index = indexOf(token('category', 'S', 'vital'), entry('name', { value: `chan ${i}` }), entry('category', { system: 'S' }));
    await store.write({ resourceType: i % 2 ? 'Observation' : 'Condition', id: `r${i}`, renderBody: render(`r${i}`), index });
  }
  await store.close();

  const db = new Database(path, { readonly: true });
  const codes = new Map((db.prepare('SELECT resource_type, param, code FROM search_param').all() as { resource_type: string; param: string; code: number }[]).map((r) => [`${r.resource_type}.${r.param}`, r.code]));
  const codeOf = (type: string, param: string) => codes.get(`${type}.${param}`) ?? -1;
  for (const [name, criterion] of Object.entries(shapes)) {
    const page = compileSearch({ resourceTypes: ['Observation'], where: [criterion], sort: [], limit: 20 }, PATIENT_OWNERSHIP, codeOf);
    const count = compileCount({ resourceTypes: ['Observation'], where: [criterion] }, PATIENT_OWNERSHIP, codeOf);
    for (const { sql, params } of [page, count]) {
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((row) => row.detail);
      expect(plan.filter((step) => /^SCAN e\d+$/.test(step)), `${name}: ${plan.join(' | ')}`).toEqual([]);
    }
  }
  db.close();
});
