import { afterEach, beforeEach, expect, it } from 'vitest';
import type { FieldTest, IndexEntry, ResourceStore, SearchCriterion } from '../../src/store/port.js';
import { entry, indexOf, render, token } from './fixtures.js';
import { describeEachStore } from './stores.js';

/**
 * Range criteria (dates, numbers) against a brute-force model: every prefix shape the FHIR
 * layer produces, ANDed on one parameter, over entries of every width (points, seconds, days,
 * years, open periods, inverted ranges) and resources with several entries of a parameter,
 * where each criterion may be met by a different entry.
 */

type Range = { low: number; high: number };
const DAY = 86_400_000;
const BASE = 1_600_000_000_000;

/** A small deterministic generator (mulberry32). */
function random(seed: number) {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const t = (field: 'low' | 'high', op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge', value: number): FieldTest => ({ slot: 0, field, op, value });

/** The alternatives values.ts builds for a date prefix against the search range [sl, sh]. */
function prefixAlternatives(prefix: string, sl: number, sh: number): FieldTest[][] {
  const within = [t('low', 'ge', sl), t('high', 'le', sh)];
  switch (prefix) {
    case 'eq': return [within];
    case 'ne': return [[t('low', 'lt', sl)], [t('high', 'gt', sh)]];
    case 'gt': return [[t('high', 'gt', sh)]];
    case 'lt': return [[t('low', 'lt', sl)]];
    case 'ge': return [[t('high', 'ge', sl), t('high', 'gt', sh)], [t('high', 'ge', sl), ...within]];
    case 'le': return [[t('low', 'le', sh), t('low', 'lt', sl)], [t('low', 'le', sh), ...within]];
    case 'sa': return [[t('low', 'gt', sh)]];
    case 'eb': return [[t('high', 'lt', sl)]];
    default: return [[t('low', 'le', sh + DAY), t('high', 'ge', sl - DAY)]];
  }
}

const compare = (a: number, op: string, b: number) =>
  op === 'eq' ? a === b : op === 'ne' ? a !== b : op === 'lt' ? a < b : op === 'le' ? a <= b : op === 'gt' ? a > b : a >= b;

function entryMeets(r: Range, anyOf: FieldTest[][]): boolean {
  return anyOf.some((alt) => alt.every((x) => 'value' in x && compare(x.field === 'low' ? r.low : r.high, x.op, x.value as number)));
}

describeEachStore('ResourceStore range search', (open) => {
  let store: ResourceStore;
  beforeEach(async () => {
    store = await open();
  });
  afterEach(async () => {
    await store.close();
  });

  it('matches a brute-force model for every prefix, alone and ANDed, over ranges of every width', { timeout: 120_000 }, async () => {
    const next = random(42);
    const widths = [0, 999, 59_999, DAY - 1, 31 * DAY - 1, 365 * DAY - 1, 5_000 * DAY];
    const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)]!;
    const someRange = (): Range => {
      const low = BASE + Math.floor(next() * 60) * DAY + Math.floor(next() * DAY);
      const roll = next();
      if (roll < 0.05) return { low: -8.64e15, high: low }; // open start
      if (roll < 0.1) return { low, high: 8.64e15 }; // open end
      if (roll < 0.13) return { low, high: low - 5 * DAY }; // inverted (bad data)
      return { low, high: low + pick(widths) };
    };
    // FerretDB is slow: fewer rounds there.
    const rounds = store.kind === 'sqlite' ? 150 : 25;
    const data = new Map<string, Range[]>();
    const writes: Parameters<ResourceStore['writeMany']>[0] = [];
    for (let i = 0; i < 300; i++) {
      const id = `r${String(i).padStart(3, '0')}`;
      const ranges = Array.from({ length: next() < 0.25 ? 2 + Math.floor(next() * 2) : next() < 0.1 ? 0 : 1 }, someRange);
      data.set(id, ranges);
      const entries: IndexEntry[] = [token('code', null, 'x'), ...ranges.map((r) => entry('date', r)), entry('other', { low: 0, high: 1 })];
      writes.push({ resourceType: 'Observation', id, renderBody: render(id), index: indexOf(...entries) });
    }
    await store.writeMany(writes);
    // A different type with the same parameter must not leak in.
    await store.write({ resourceType: 'Encounter', id: 'e1', renderBody: render('e1'), index: indexOf(entry('date', { low: BASE, high: BASE + 90 * DAY })) });

    const prefixes = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];
    const precisions = [0, 999, DAY - 1, 31 * DAY - 1];
    const someSearch = () => {
      const sl = BASE + Math.floor(next() * 62) * DAY - DAY + (next() < 0.5 ? 0 : Math.floor(next() * DAY));
      return prefixAlternatives(pick(prefixes), sl, sl + pick(precisions));
    };
    let nonEmpty = 0;
    for (let q = 0; q < rounds; q++) {
      const criteria = Array.from({ length: 1 + Math.floor(next() * 3) }, someSearch);
      if (q % 3 === 0) {
        // The common window: ge a day, lt a later day.
        const from = BASE + Math.floor(next() * 60) * DAY;
        criteria.splice(0, criteria.length, prefixAlternatives('ge', from, from + DAY - 1), prefixAlternatives('lt', from + DAY * (1 + Math.floor(next() * 3)), from + DAY * 4 - 1));
      }
      const where: SearchCriterion[] = criteria.map((anyOf) => ({ kind: 'entry', param: 'date', anyOf }));
      const expected = [...data].filter(([, ranges]) => criteria.every((anyOf) => ranges.some((r) => entryMeets(r, anyOf)))).map(([id]) => id);
      const hits = await store.search({ resourceTypes: ['Observation'], where, sort: [], limit: 1000 });
      expect(hits.map((h) => h.version.id), JSON.stringify(criteria)).toEqual(expected);
      expect(await store.count({ resourceTypes: ['Observation'], where })).toBe(expected.length);
      // Negated, and over two types at once.
      const negated = await store.count({ resourceTypes: ['Observation'], where: [{ kind: 'not', criterion: where[0]! }] });
      expect(negated).toBe([...data].filter(([, ranges]) => !ranges.some((r) => entryMeets(r, criteria[0]!))).length);
      const both = await store.count({ resourceTypes: ['Observation', 'Encounter'], where });
      const encounter = criteria.every((anyOf) => entryMeets({ low: BASE, high: BASE + 90 * DAY }, anyOf)) ? 1 : 0;
      expect(both).toBe(expected.length + encounter);
      if (expected.length > 0) nonEmpty++;
    }
    expect(nonEmpty).toBeGreaterThan(rounds / 3);
  });

  it('finds a resource whose entries meet ANDed criteria only together, and follows updates', async () => {
    const day = (n: number) => BASE + n * DAY;
    const window = (from: number, to: number): SearchCriterion[] => [
      { kind: 'entry', param: 'date', anyOf: prefixAlternatives('ge', day(from), day(from + 1) - 1) },
      { kind: 'entry', param: 'date', anyOf: prefixAlternatives('lt', day(to), day(to + 1) - 1) },
    ];
    const put = (id: string, ...ranges: Range[]) =>
      store.write({ resourceType: 'Observation', id, renderBody: render(id), index: indexOf(...ranges.map((r) => entry('date', r))) });
    // Neither entry lies in [day 10, day 12), but one is after day 10 and the other before day 12.
    await put('split', { low: day(1), high: day(1) }, { low: day(20), high: day(20) });
    await put('inside', { low: day(11), high: day(11) + 999 });
    await put('outside', { low: day(20), high: day(20) });
    const find = async (where: SearchCriterion[]) =>
      (await store.search({ resourceTypes: ['Observation'], where, sort: [], limit: 10 })).map((h) => h.version.id);
    expect(await find(window(10, 12))).toEqual(['inside', 'split']);
    await put('split', { low: day(1), high: day(1) });
    expect(await find(window(10, 12))).toEqual(['inside']);
    await put('outside', { low: day(11), high: day(11) }, { low: day(30), high: day(30) });
    expect(await find(window(10, 12))).toEqual(['inside', 'outside']);
  });
});

