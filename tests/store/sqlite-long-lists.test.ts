import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PATIENT_OWNERSHIP } from '../../src/fhir/search/compartments.js';
import { SearchTooLargeError, type FieldTest, type SearchCriterion } from '../../src/store/port.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { entry, indexOf, render, token } from './fixtures.js';

/**
 * Searches naming long lists stay within SQLite's limits (an expression 1,000 deep, 500 arms
 * in a compound SELECT, 32,766 variables), and one SQLite still cannot take is a
 * SearchTooLargeError, not a database error. Each answer is the one the data says.
 */

let dir = '';
let store: SqliteStore;
const DAY = 86_400_000;
const T = Date.UTC(2020, 0, 1);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fhir-long-lists-'));
  store = new SqliteStore({ path: join(dir, 'store.db'), ownership: PATIENT_OWNERSHIP });
  // o0..o9: code c{i}, a date on day i, and a restricted label on the odd ones.
  for (let i = 0; i < 10; i++) {
    const entries = [token('code', 'S', `c${i}`), entry('date', { low: T + i * DAY, high: T + (i + 1) * DAY - 1 })];
    if (i % 2) entries.push(token('_security', 'L', 'R'));
    await store.write({ resourceType: 'Observation', id: `o${i}`, renderBody: render(`o${i}`), index: indexOf(...entries) });
  }
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const codeEq = (value: string): FieldTest[] => [{ slot: 0, field: 'value', op: 'eq', value }];
const onDay = (day: number): FieldTest[] => [
  { slot: 0, field: 'low', op: 'ge', value: T + day * DAY },
  { slot: 0, field: 'high', op: 'le', value: T + (day + 1) * DAY - 1 },
];
const find = async (...where: SearchCriterion[]) => {
  const hits = await store.search({ resourceTypes: ['Observation'], where, sort: [], limit: 100 });
  return hits.map((h) => h.version.id).sort();
};
const count = (...where: SearchCriterion[]) => store.count({ resourceTypes: ['Observation'], where });
const filler = (n: number, make: (i: number) => FieldTest[]) => Array.from({ length: n }, (_, i) => make(i));

it('an OR of 2,000 alternatives (deeper than SQLite parses flat) finds what they name', async () => {
  const codes: SearchCriterion = { kind: 'entry', param: 'code', anyOf: [...filler(1998, (i) => codeEq(`x${i}`)), codeEq('c3'), codeEq('c7')] };
  expect(await find(codes)).toEqual(['o3', 'o7']);
  expect(await count(codes)).toBe(2);
  const days: SearchCriterion = { kind: 'entry', param: 'date', anyOf: [...filler(1200, (i) => onDay(1000 + i)), onDay(2), onDay(5)] };
  expect(await find(days)).toEqual(['o2', 'o5']);
  expect(await count(days)).toBe(2);
});

it('an `in` list of 40,000 values (more than SQLite binds one by one) finds what it names', async () => {
  const values = [...Array.from({ length: 40_000 }, (_, i) => `x${i}`), 'c4', 'c9'];
  const codes: SearchCriterion = { kind: 'entry', param: 'code', anyOf: [[{ slot: 0, field: 'system', op: 'eq', value: 'S' }, { slot: 0, field: 'value', op: 'in', value: values }]] };
  expect(await find(codes)).toEqual(['o4', 'o9']);
  expect(await count(codes)).toBe(2);
  expect(await find({ kind: 'id', ids: [...values.map((v) => `id-${v}`), 'o1', 'o8'] })).toEqual(['o1', 'o8']);
});

it('1,000 criteria ANDed, and 600 repeated range criteria (their INTERSECT over 500 arms), find what they name', async () => {
  const oneOf = (i: number, a: string, b: string): SearchCriterion => ({ kind: 'entry', param: 'code', anyOf: [codeEq(`x${i}`), codeEq(a), codeEq(b)] });
  const anyOfC2 = (i: number) => oneOf(i, 'c2', 'c6');
  const many = Array.from({ length: 1000 }, (_, i) => anyOfC2(i));
  expect(await find(...many)).toEqual(['o2', 'o6']);
  expect(await count(...many)).toBe(2);
  // Each: day 1 to day 6 (the same window 600 times, each its own criterion).
  const window = (): SearchCriterion => ({ kind: 'entry', param: 'date', anyOf: [[{ slot: 0, field: 'low', op: 'ge', value: T + DAY }, { slot: 0, field: 'high', op: 'le', value: T + 7 * DAY - 1 }]] });
  const windows = Array.from({ length: 600 }, window);
  expect(await find(...windows)).toEqual(['o1', 'o2', 'o3', 'o4', 'o5', 'o6']);
  expect(await count(...windows)).toBe(6);
  // Lists in and a list out, counted as one set expression: 300 of each.
  const notRestricted: SearchCriterion = { kind: 'not', criterion: { kind: 'entry', param: '_security', anyOf: [codeEq('R')] } };
  const inAndOut = [...Array.from({ length: 300 }, (_, i) => anyOfC2(i)), ...Array.from({ length: 300 }, () => notRestricted)];
  expect(await count(...inAndOut)).toBe(2);
  expect(await count(...many.slice(0, 300), { kind: 'entry', param: 'code', anyOf: [codeEq('c2')] }, notRestricted)).toBe(1);
});

it('an OR of 600 criteria selecting by their entries (a UNION ALL over 500 arms) finds what they name', async () => {
  const or: SearchCriterion = { kind: 'or', anyOf: [...Array.from({ length: 598 }, (_, i): SearchCriterion[] => [{ kind: 'entry', param: 'code', anyOf: [codeEq(`x${i}`)] }]), [{ kind: 'entry', param: 'code', anyOf: [codeEq('c1')] }], [{ kind: 'entry', param: 'code', anyOf: [codeEq('c8')] }]] };
  expect(await find(or)).toEqual(['o1', 'o8']);
  expect(await count(or)).toBe(2);
});

it('a search SQLite still cannot take (more variables than it allows) is a SearchTooLargeError', async () => {
  // 40,000 alternatives that cannot share one list: a value each, one variable each.
  const days: SearchCriterion = { kind: 'entry', param: 'date', anyOf: filler(40_000, (i) => [{ slot: 0, field: 'low', op: 'eq', value: T + i }]) };
  await expect(find(days)).rejects.toBeInstanceOf(SearchTooLargeError);
  await expect(count(days)).rejects.toBeInstanceOf(SearchTooLargeError);
});
