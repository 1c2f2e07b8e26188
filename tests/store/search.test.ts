import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  FieldTest,
  ResourceIndex,
  ResourceStore,
  SearchCriterion,
  SearchCursor,
  SearchHit,
  SearchQuery,
  SortSpec,
} from '../../src/store/port.js';
import { atTime, codeIs, entry, indexOf, indexWith, render, token } from './fixtures.js';
import { describeEachStore } from './stores.js';

const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';
const T = 1_700_000_000_000;

const refs = (hits: SearchHit[]) => hits.map((hit) => `${hit.version.resourceType}/${hit.version.id}`);
const ids = (hits: SearchHit[]) => hits.map((hit) => hit.version.id);
const matches = (param: string, ...anyOf: FieldTest[][]): SearchCriterion => ({ kind: 'entry', param, anyOf });
const test = (field: FieldTest['field'], op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge', value: string | number, slot: 0 | 1 | 2 = 0): FieldTest => ({
  slot,
  field,
  op,
  value,
});

describeEachStore('ResourceStore search', (open) => {
  let store: ResourceStore;
  beforeEach(async () => {
    store = await open();
  });
  afterEach(async () => {
    await store.close();
  });

  const put = (resourceType: string, id: string, index: ResourceIndex) =>
    store.write({ resourceType, id, renderBody: render(`${resourceType}/${id}`), index });

  const search = (query: Partial<SearchQuery> & Pick<SearchQuery, 'where'>) =>
    store.search({ resourceTypes: ['Observation'], sort: [], limit: 100, ...query });
  const find = (...where: SearchCriterion[]) => search({ where }).then(ids);

  /** Every page in order, following `after` cursors; the cursors must keep it whole. */
  async function pageForward(query: Omit<SearchQuery, 'limit' | 'after' | 'before'>, limit: number) {
    const seen: SearchHit[] = [];
    let after: SearchCursor | undefined;
    for (let pages = 0; pages < 100; pages++) {
      const page = await store.search({ ...query, limit, ...(after && { after }) });
      seen.push(...page);
      if (page.length < limit) return seen;
      after = page[page.length - 1]!.cursor;
    }
    throw new Error('paging did not end');
  }

  /** Every page before the last row, following `before` cursors back to the start. */
  async function pageBackward(query: Omit<SearchQuery, 'limit' | 'after' | 'before'>, last: SearchHit, limit: number) {
    const seen: SearchHit[] = [];
    let before = last.cursor;
    for (let pages = 0; pages < 100; pages++) {
      const page = await store.search({ ...query, limit, before });
      seen.unshift(...page);
      if (page.length < limit) return seen;
      before = page[0]!.cursor;
    }
    throw new Error('paging did not end');
  }

  describe('criteria', () => {
    beforeEach(async () => {
      const subject = (id: string) => entry('subject', { system: 'Patient', value: id });
      await atTime(T + 1, () =>
        put('Observation', 'o1', indexOf(
          token('code', LOINC, '1234'),
          token('code', null, 'abc'),
          subject('p1'),
          entry('date', { low: 100, high: 199 }),
          entry('value-string', { value: 'hello world', text: 'Hello World' }),
          entry('code-value', { system: LOINC, value: '1234' }, { low: 5, high: 5 }),
        )),
      );
      await atTime(T + 2, () =>
        put('Observation', 'o2', indexOf(
          token('code', SNOMED, '1234'),
          subject('p2'),
          entry('date', { low: 150, high: 150 }),
          entry('code-value', { system: LOINC, value: '9999' }, { low: 7, high: 7 }),
        )),
      );
      await atTime(T + 3, () =>
        put('Observation', 'o3', indexOf(
          token('code', LOINC, '9999'),
          token('category', 'http://cat', 'vital'),
          subject('p1'),
          entry('code-value', { system: LOINC, value: '1234' }, { low: 9, high: 9 }),
        )),
      );
      await atTime(T + 4, () => put('Observation', 'o4', indexOf()));
      await put('Observation', 'gone', indexOf(token('code', LOINC, '1234'), subject('p1')));
      await store.write({ resourceType: 'Observation', id: 'gone' });
      await put('Patient', 'p1', indexOf(token('gender', null, 'female')));
      await put('Patient', 'p2', indexOf(token('gender', null, 'male')));
      await put('Condition', 'c1', indexOf(token('code', LOINC, '1234'), subject('p2')));
    });

    it('matches a value whatever the system, or system and value together', async () => {
      expect(await find(codeIs('code', '1234'))).toEqual(['o1', 'o2']);
      expect(await find(matches('code', [test('system', 'eq', LOINC), test('value', 'eq', '1234')]))).toEqual(['o1']);
      expect(await find(matches('code', [test('system', 'eq', LOINC)]))).toEqual(['o1', 'o3']);
    });

    it('tells an absent system from any system', async () => {
      const noSystem = (value: string) => matches('code', [{ slot: 0, field: 'system', op: 'isNull' }, test('value', 'eq', value)]);
      expect(await find(noSystem('abc'))).toEqual(['o1']);
      expect(await find(noSystem('1234'))).toEqual([]);
      expect(await find(matches('value-string', [{ slot: 0, field: 'text', op: 'notNull' }]))).toEqual(['o1']);
    });

    it('requires every test of an alternative to hold in the same entry', async () => {
      // o1 has LOINC (with 1234) and abc (without a system), but no LOINC abc.
      expect(await find(matches('code', [test('system', 'eq', LOINC), test('value', 'eq', 'abc')]))).toEqual([]);
      // Composite components: o1 pairs 1234 with 5, o3 pairs 1234 with 9, o2 pairs 9999 with 7.
      const pair = (value: string, atLeast: number) => matches('code-value', [test('value', 'eq', value), test('low', 'ge', atLeast, 1)]);
      expect(await find(pair('1234', 6))).toEqual(['o3']);
      expect(await find(pair('1234', 5))).toEqual(['o1', 'o3']);
      expect(await find(pair('9999', 8))).toEqual([]);
    });

    it('compares numbers: a date range overlapping a period', async () => {
      const overlapping = (from: number, to: number) => matches('date', [test('low', 'le', to), test('high', 'ge', from)]);
      expect(await find(overlapping(120, 160))).toEqual(['o1', 'o2']);
      expect(await find(overlapping(160, 170))).toEqual(['o1']);
      expect(await find(matches('date', [test('low', 'lt', 150)]))).toEqual(['o1']);
      expect(await find(matches('date', [test('high', 'gt', 150)]))).toEqual(['o1']);
      expect(await find(matches('date', [test('low', 'eq', 150)]))).toEqual(['o2']);
    });

    it('ne, like any comparison, is false where the entry has no such value', async () => {
      expect(await find(matches('date', [test('low', 'ne', 100)]))).toEqual(['o2']);
      expect(await find(matches('code', [test('system', 'ne', LOINC)]))).toEqual(['o2']);
    });

    it('matches strings by prefix, by substring (taken literally) and by list', async () => {
      const on = (op: 'startsWith' | 'contains', value: string) => matches('value-string', [{ slot: 0, field: 'value', op, value }]);
      expect(await find(on('startsWith', 'hel'))).toEqual(['o1']);
      expect(await find(on('startsWith', 'world'))).toEqual([]);
      expect(await find(on('contains', 'o w'))).toEqual(['o1']);
      expect(await find(on('contains', 'l.o'))).toEqual([]);
      expect(await find(on('contains', ''))).toEqual(['o1']);
      const among = (value: string[]) => matches('code', [{ slot: 0, field: 'value', op: 'in', value }]);
      expect(await find(among(['abc', '9999']))).toEqual(['o1', 'o3']);
      expect(await find(among([]))).toEqual([]);
    });

    it('ORs alternatives, ANDs criteria, and an empty alternative list matches nothing', async () => {
      const either = matches('code', [test('system', 'eq', LOINC), test('value', 'eq', '9999')], [test('system', 'eq', SNOMED)]);
      expect(await find(either)).toEqual(['o2', 'o3']);
      expect(await find(matches('code', [test('system', 'eq', LOINC)]), codeIs('category', 'vital'))).toEqual(['o3']);
      expect(await find(matches('code'))).toEqual([]);
    });

    it('an alternative without tests matches any entry of the parameter', async () => {
      expect(await find(matches('code', []))).toEqual(['o1', 'o2', 'o3']);
    });

    it('counts each matching resource once, whatever number of its entries match, and never a deleted one', async () => {
      const count = (...where: SearchCriterion[]) => store.count({ resourceTypes: ['Observation'], where });
      // o1 has two code entries; 'gone' had a LOINC code.
      expect(await count(matches('code', []))).toBe(3);
      expect(await count(matches('code', [test('system', 'eq', LOINC)]))).toBe(2);
      expect(await count(codeIs('code', '1234'))).toBe(2);
      expect(await count({ kind: 'references', param: 'subject', targetType: 'Patient', where: [codeIs('gender', 'female')] })).toBe(2);
      await store.write({ resourceType: 'Observation', id: 'o1' });
      expect(await count(matches('code', []))).toBe(2);
      expect(await count({ kind: 'references', param: 'subject', targetType: 'Patient', where: [codeIs('gender', 'female')] })).toBe(1);
      expect(await store.count({ resourceTypes: ['Patient'], where: [codeIs('gender', 'male')] })).toBe(1);
    });

    it('counts what it finds, whatever the mix of criteria', async () => {
      const subjectIs = (id: string): SearchCriterion => matches('subject', [test('system', 'eq', 'Patient'), test('value', 'eq', id)]);
      const anyCode = matches('code', []);
      const mixes: SearchCriterion[][] = [
        [anyCode, subjectIs('p1')],
        [anyCode, { kind: 'not', criterion: codeIs('category', 'vital') }],
        [anyCode, { kind: 'entry', param: 'category', anyOf: [[test('value', 'eq', 'vital')]], filter: true }],
        [anyCode, { kind: 'or', anyOf: [[subjectIs('p2')], [codeIs('category', 'vital')]] }],
        [{ kind: 'or', anyOf: [[subjectIs('p2')], [codeIs('category', 'vital')]] }],
        [anyCode, { kind: 'missing', param: 'date', missing: true }],
        [anyCode, { kind: 'id', ids: ['o1', 'o2'] }],
        [anyCode, { kind: 'lastUpdated', tests: [{ op: 'ge', value: T + 2 }] }],
        [{ kind: 'not', criterion: { kind: 'lastUpdated', tests: [{ op: 'ge', value: T + 2 }] } }, anyCode],
        [anyCode, matches('date', [test('high', 'ge', 150)])],
      ];
      for (const where of mixes) {
        const found = await find(...where);
        expect(await store.count({ resourceTypes: ['Observation'], where }), JSON.stringify(where)).toBe(found.length);
      }
      expect(await find(anyCode, { kind: 'lastUpdated', tests: [{ op: 'ge', value: T + 2 }] })).toEqual(['o2', 'o3']);
    });

    it('missing, not and or', async () => {
      expect(await find({ kind: 'missing', param: 'date', missing: true })).toEqual(['o3', 'o4']);
      expect(await find({ kind: 'missing', param: 'date', missing: false })).toEqual(['o1', 'o2']);
      expect(await find({ kind: 'not', criterion: codeIs('code', '1234') })).toEqual(['o3', 'o4']);
      expect(await find({ kind: 'or', anyOf: [[codeIs('code', '9999')], [codeIs('code', 'abc'), codeIs('code', '1234')]] })).toEqual(['o1', 'o3']);
      expect(await find({ kind: 'or', anyOf: [] })).toEqual([]);
      expect(await find({ kind: 'or', anyOf: [[]] })).toEqual(['o1', 'o2', 'o3', 'o4']);
    });

    it('by id and by lastUpdated', async () => {
      expect(await find({ kind: 'id', ids: ['o3', 'gone', 'zz', 'o1'] })).toEqual(['o1', 'o3']);
      expect(await find({ kind: 'id', ids: [] })).toEqual([]);
      const updated = (...tests: { op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge'; value: number }[]): SearchCriterion => ({ kind: 'lastUpdated', tests });
      expect(await find(updated({ op: 'ge', value: T + 2 }, { op: 'lt', value: T + 4 }))).toEqual(['o2', 'o3']);
      expect(await find(updated({ op: 'ne', value: T + 1 }, { op: 'le', value: T + 4 }))).toEqual(['o2', 'o3', 'o4']);
      expect(await find(updated({ op: 'eq', value: T + 4 }))).toEqual(['o4']);
      expect(await find(updated())).toEqual(['o1', 'o2', 'o3', 'o4']);
    });

    it('never finds deleted resources, and follows an update to its new entries', async () => {
      expect(await find(codeIs('code', '1234'))).not.toContain('gone');
      await put('Observation', 'o1', indexOf(token('code', LOINC, 'new')));
      expect(await find(codeIs('code', '1234'))).toEqual(['o2']);
      expect(await find(codeIs('code', 'new'))).toEqual(['o1']);
      expect(await find({ kind: 'missing', param: 'date', missing: true })).toEqual(['o1', 'o3', 'o4']);
    });

    it('chains through references to current resources matching the inner criteria', async () => {
      const subjectIs = (gender: string): SearchCriterion => ({ kind: 'references', param: 'subject', targetType: 'Patient', where: [codeIs('gender', gender)] });
      expect(await find(subjectIs('female'))).toEqual(['o1', 'o3']);
      expect(await find(subjectIs('male'))).toEqual(['o2']);
      await store.write({ resourceType: 'Patient', id: 'p2' });
      expect(await find(subjectIs('male'))).toEqual([]);
    });

    it('finds what current resources matching the inner criteria refer to (_has)', async () => {
      const referredBy = (sourceType: string, code: string): SearchCriterion => ({ kind: 'referencedBy', sourceType, param: 'subject', where: [codeIs('code', code)] });
      const patients = (where: SearchCriterion) => store.search({ resourceTypes: ['Patient'], where: [where], sort: [], limit: 10 }).then(ids);
      expect(await patients(referredBy('Observation', '9999'))).toEqual(['p1']);
      expect(await patients(referredBy('Observation', '1234'))).toEqual(['p1', 'p2']);
      expect(await patients(referredBy('Condition', '1234'))).toEqual(['p2']);
      // A deleted source no longer refers to anything: 'gone' referred to p1.
      await store.write({ resourceType: 'Observation', id: 'o1' });
      expect(await patients(referredBy('Observation', '1234'))).toEqual(['p2']);
    });

    it('searches several types at once, ordered by type then id', async () => {
      const hits = await search({ resourceTypes: ['Observation', 'Condition', 'Encounter'], where: [codeIs('code', '1234')] });
      expect(refs(hits)).toEqual(['Condition/c1', 'Observation/o1', 'Observation/o2']);
      expect(await store.count({ resourceTypes: ['Observation', 'Condition'], where: [codeIs('code', '1234')] })).toBe(3);
    });

    it('returns the current version with its body, and counts without limit', async () => {
      const updated = await put('Observation', 'o2', indexOf(token('code', SNOMED, '1234')));
      const hits = await search({ where: [codeIs('code', '1234')], limit: 1 });
      expect(hits.map((hit) => hit.version)).toEqual([await store.readCurrent('Observation', 'o1')]);
      expect((await search({ where: [{ kind: 'id', ids: ['o2'] }] }))[0]?.version).toEqual(updated);
      expect(await store.count({ resourceTypes: ['Observation'], where: [codeIs('code', '1234')] })).toBe(2);
      expect(await store.count({ resourceTypes: ['Observation'], where: [] })).toBe(4);
      expect(await store.count({ resourceTypes: [], where: [] })).toBe(0);
      expect(await search({ where: [], limit: 0 })).toEqual([]);
      expect(await search({ resourceTypes: [], where: [] })).toEqual([]);
    });
  });

  describe('order and paging', () => {
    /**
     * Sort keys with ties, absent values, and numbers and strings: `rank` (number), `name`
     * (string, some absent) and a period whose min and max differ.
     */
    const rows: [string, string, Record<string, { min: string | number; max: string | number }>][] = [
      ['Observation', 'a', { rank: { min: 2, max: 2 }, name: { min: 'delta', max: 'delta' }, period: { min: 10, max: 90 } }],
      ['Observation', 'b', { rank: { min: 1, max: 1 }, period: { min: 20, max: 30 } }],
      ['Observation', 'c', { rank: { min: 2, max: 2 }, name: { min: 'alpha', max: 'alpha' } }],
      ['Observation', 'd', { name: { min: 'Zulu', max: 'Zulu' }, period: { min: 50, max: 60 } }],
      ['Observation', 'e', { rank: { min: 1, max: 1 }, name: { min: 'alpha', max: 'alpha' }, period: { min: 10, max: 40 } }],
      ['Observation', 'f', {}],
      ['Condition', 'a', { rank: { min: 2, max: 2 } }],
      ['Condition', 'g', { name: { min: 'alpha', max: 'beta' } }],
      ['Observation', 'h', { rank: { min: 3, max: 3 } }],
    ];

    beforeEach(async () => {
      for (const [resourceType, id, sortKeys] of rows) {
        await atTime(T + id.charCodeAt(0), () => put(resourceType, id, indexWith(sortKeys, token('kind', null, 'row'))));
      }
    });

    const both = ['Observation', 'Condition'];
    const order = (...sort: SortSpec[]) => store.search({ resourceTypes: both, where: [], sort, limit: 100 }).then(refs);
    const asc = (param: string): SortSpec => ({ param, descending: false });
    const desc = (param: string): SortSpec => ({ param, descending: true });

    it('sorts by one key, absent values last in either direction, ties by type then id', async () => {
      expect(await order(asc('rank'))).toEqual([
        'Observation/b', 'Observation/e', 'Condition/a', 'Observation/a', 'Observation/c', 'Observation/h',
        'Condition/g', 'Observation/d', 'Observation/f',
      ]);
      expect(await order(desc('rank'))).toEqual([
        'Observation/h', 'Condition/a', 'Observation/a', 'Observation/c', 'Observation/b', 'Observation/e',
        'Condition/g', 'Observation/d', 'Observation/f',
      ]);
    });

    it('sorts strings by code point, ascending on the lowest value and descending on the highest', async () => {
      expect(await order(asc('name'))).toEqual([
        'Observation/d', 'Condition/g', 'Observation/c', 'Observation/e', 'Observation/a',
        'Condition/a', 'Observation/b', 'Observation/f', 'Observation/h',
      ]);
      expect(await order(desc('name'))).toEqual([
        'Observation/a', 'Condition/g', 'Observation/c', 'Observation/e', 'Observation/d',
        'Condition/a', 'Observation/b', 'Observation/f', 'Observation/h',
      ]);
      expect(await order(asc('period'))).toEqual([
        'Observation/a', 'Observation/e', 'Observation/b', 'Observation/d',
        'Condition/a', 'Condition/g', 'Observation/c', 'Observation/f', 'Observation/h',
      ]);
      expect(await order(desc('period'))).toEqual([
        'Observation/a', 'Observation/d', 'Observation/e', 'Observation/b',
        'Condition/a', 'Condition/g', 'Observation/c', 'Observation/f', 'Observation/h',
      ]);
    });

    it('breaks ties with later keys, absent values last at every level', async () => {
      expect(await order(asc('rank'), desc('name'))).toEqual([
        'Observation/e', 'Observation/b', 'Observation/a', 'Observation/c', 'Condition/a', 'Observation/h',
        'Condition/g', 'Observation/d', 'Observation/f',
      ]);
      expect(await order(desc('name'), asc('rank'), desc('period'))).toEqual([
        'Observation/a', 'Condition/g', 'Observation/e', 'Observation/c', 'Observation/d',
        'Observation/b', 'Condition/a', 'Observation/h', 'Observation/f',
      ]);
    });

    it('sorts by id and by lastUpdated', async () => {
      expect((await order(desc('_id'))).slice(0, 4)).toEqual(['Observation/h', 'Condition/g', 'Observation/f', 'Observation/e']);
      expect((await order(asc('_lastUpdated'))).slice(0, 3)).toEqual(['Condition/a', 'Observation/a', 'Observation/b']);
    });

    it('returns each row\'s sort values, null where absent, as its cursor', async () => {
      const hits = await store.search({ resourceTypes: both, where: [], sort: [asc('rank'), desc('name'), asc('_id')], limit: 100 });
      const byRef = new Map(hits.map((hit) => [`${hit.version.resourceType}/${hit.version.id}`, hit.cursor]));
      expect(byRef.get('Observation/a')).toEqual({ resourceType: 'Observation', id: 'a', keys: [2, 'delta', 'a'] });
      expect(byRef.get('Observation/b')).toEqual({ resourceType: 'Observation', id: 'b', keys: [1, null, 'b'] });
      expect(byRef.get('Observation/f')).toEqual({ resourceType: 'Observation', id: 'f', keys: [null, null, 'f'] });
    });

    const orders: SortSpec[][] = [
      [],
      [asc('rank')],
      [desc('rank')],
      [asc('name')],
      [desc('period')],
      [asc('rank'), desc('name')],
      [desc('name'), asc('rank'), desc('period')],
      [desc('_lastUpdated')],
    ];

    it('pages forward with after-cursors without skipping or repeating, in every order', async () => {
      for (const sort of orders) {
        const all = refs(await store.search({ resourceTypes: both, where: [], sort, limit: 100 }));
        for (const limit of [1, 2, 4]) {
          expect(refs(await pageForward({ resourceTypes: both, where: [], sort }, limit))).toEqual(all);
        }
      }
    });

    it('pages backward with before-cursors, each page in the query order', async () => {
      for (const sort of orders) {
        const all = await store.search({ resourceTypes: both, where: [], sort, limit: 100 });
        for (const limit of [1, 2, 4]) {
          const backward = await pageBackward({ resourceTypes: both, where: [], sort }, all[all.length - 1]!, limit);
          expect(refs(backward)).toEqual(refs(all).slice(0, -1));
        }
        const page = await store.search({ resourceTypes: both, where: [], sort, limit: 3, before: all[5]!.cursor });
        expect(refs(page)).toEqual(refs(all).slice(2, 5));
      }
    });

    it('pages within criteria; a row written ahead of the cursor stays off later pages', async () => {
      const query = { resourceTypes: both, where: [codeIs('kind', 'row')], sort: [asc('rank')] };
      const first = await store.search({ ...query, limit: 3 });
      await put('Observation', 'i', indexWith({ rank: { min: 0, max: 0 } }, token('kind', null, 'row')));
      const rest = await pageForward(query, 2).then((all) => all.filter((hit) => hit.version.id !== 'i'));
      const next = await store.search({ ...query, limit: 100, after: first[2]!.cursor });
      expect(refs(next)).toEqual(refs(rest).slice(3));
    });
  });

  describe('reindex', () => {
    it('replaces the entries and sort keys of the current version only', async () => {
      const written = await put('Observation', 'o1', indexWith({ rank: { min: 5, max: 5 } }, token('code', null, 'old')));
      await put('Observation', 'o2', indexWith({ rank: { min: 3, max: 3 } }, token('code', null, 'other')));
      await store.reindex('Observation', 'o1', written.versionId, indexWith({ rank: { min: 1, max: 1 } }, token('code', null, 'new')));
      expect(await find(codeIs('code', 'old'))).toEqual([]);
      expect(await find(codeIs('code', 'new'))).toEqual(['o1']);
      const byRank = await search({ where: [], sort: [{ param: 'rank', descending: false }] });
      expect(ids(byRank)).toEqual(['o1', 'o2']);
      expect(byRank[0]?.cursor.keys).toEqual([1]);
      expect((await store.readCurrent('Observation', 'o1'))?.versionId).toBe(written.versionId);
    });

    it('does nothing for a version that is no longer current, or deleted', async () => {
      const first = await put('Observation', 'o1', indexOf(token('code', null, 'first')));
      await put('Observation', 'o1', indexOf(token('code', null, 'second')));
      await store.reindex('Observation', 'o1', first.versionId, indexOf(token('code', null, 'stale')));
      expect(await find(codeIs('code', 'stale'))).toEqual([]);
      expect(await find(codeIs('code', 'second'))).toEqual(['o1']);
      const tombstone = await store.write({ resourceType: 'Observation', id: 'o1' });
      await store.reindex('Observation', 'o1', tombstone.versionId, indexOf(token('code', null, 'dead')));
      expect(await find(codeIs('code', 'dead'))).toEqual([]);
      await store.reindex('Observation', 'nobody', 1, indexOf(token('code', null, 'ghost')));
      expect(await find(codeIs('code', 'ghost'))).toEqual([]);
    });
  });
});
