import { afterEach, beforeEach, expect, it } from 'vitest';
import { PATIENT_OWNERSHIP } from '../../src/fhir/search/compartments.js';
import type { IndexEntry, ResourceStore, SearchCriterion, SearchCursor, SearchHit } from '../../src/store/port.js';
import { codeIs, entry, render, token } from './fixtures.js';
import { describeEachStore } from './stores.js';

/**
 * The patients stored with a resource (ResourceIndex.patients) and the criterion that keeps a
 * search to some patients' records, alone and beside the criteria stores join it to.
 */

const ids = (hits: SearchHit[]) => hits.map((hit) => hit.version.id);
const ofPatients = (...patients: string[]): SearchCriterion => ({ kind: 'patient', ids: patients });
const codeIn = (...codes: string[]): SearchCriterion => ({ kind: 'entry', param: 'code', anyOf: [[{ slot: 0, field: 'value', op: 'in', value: codes }]] });

describeEachStore('ResourceStore patients', (open) => {
  let store: ResourceStore;
  // As the indexer makes them: the patients of a record are those its compartment references name.
  const put = (resourceType: string, id: string, patients: string[], ...entries: IndexEntry[]) => {
    const through = PATIENT_OWNERSHIP.params(resourceType)[0]!;
    const references = resourceType === 'Patient' ? [] : patients.map((p) => entry(through, { system: 'Patient', value: p }));
    return store.write({ resourceType, id, renderBody: render(`${resourceType}/${id}`), index: { entries: [...entries, ...references], sortKeys: {}, patients } });
  };
  const find = async (...where: SearchCriterion[]) => ids(await store.search({ resourceTypes: ['Observation'], where, sort: [], limit: 100 }));
  const count = (...where: SearchCriterion[]) => store.count({ resourceTypes: ['Observation'], where });

  beforeEach(async () => {
    store = await open();
    for (const p of ['p1', 'p2', 'p3']) await put('Patient', p, [p], token('gender', null, 'other'));
    await put('Observation', 'o1', ['p1'], token('code', 'L', 'x'), token('category', 'C', 'vital'));
    // Two patients: the entries carry neither, the store still knows both.
    await put('Observation', 'o2', ['p1', 'p2'], token('code', 'L', 'x'));
    await put('Observation', 'o3', ['p2'], token('code', 'L', 'y'));
    // Nobody's: found by code, never by patient.
    await put('Observation', 'o4', [], token('code', 'L', 'x'));
    await put('Observation', 'o5', ['p3'], token('code', 'L', 'x'), token('category', 'C', 'vital'));
    await put('Condition', 'c1', ['p1'], token('code', 'L', 'x'));
    await put('Observation', 'gone', ['p1'], token('code', 'L', 'x'));
    await store.write({ resourceType: 'Observation', id: 'gone' });
  });
  afterEach(async () => {
    await store.close();
  });

  it('finds the records of some patients, alone or beside an entry criterion', async () => {
    expect(await find(ofPatients('p1'))).toEqual(['o1', 'o2']);
    expect(await find(ofPatients('p2'))).toEqual(['o2', 'o3']);
    expect(await find(ofPatients('p1', 'p2'))).toEqual(['o1', 'o2', 'o3']);
    expect(await find(ofPatients())).toEqual([]);
    expect(await find(ofPatients('p1'), codeIs('code', 'x'))).toEqual(['o1', 'o2']);
    expect(await find(codeIs('code', 'x'), ofPatients('p2'))).toEqual(['o2']);
    expect(await find(ofPatients('p1', 'p2'), codeIs('code', 'x'))).toEqual(['o1', 'o2']);
    expect(await find(ofPatients('p2'), codeIn('x', 'y'))).toEqual(['o2', 'o3']);
    expect(await find(ofPatients('p3'), codeIs('code', 'x'))).toEqual(['o5']);
    expect(await find(ofPatients('nobody'), codeIs('code', 'x'))).toEqual([]);
    expect(await find(codeIs('code', 'x'))).toEqual(['o1', 'o2', 'o4', 'o5']);
    expect(await store.count({ resourceTypes: ['Patient'], where: [ofPatients('p2', 'p3', 'nobody')] })).toBe(2);
    // Types outside any patient's record (no compartment parameter) belong to nobody.
    await put('Organization', 'org1', [], token('name', null, 'x'));
    expect(await store.count({ resourceTypes: ['Organization'], where: [ofPatients('p1')] })).toBe(0);
    expect(ids(await store.search({ resourceTypes: ['Organization'], where: [ofPatients('p1'), codeIs('name', 'x')], sort: [], limit: 10 }))).toEqual([]);
  });

  it('counts what it finds, each resource once, whatever the mix of criteria', async () => {
    const prefix: SearchCriterion = { kind: 'entry', param: 'code', anyOf: [[{ slot: 0, field: 'value', op: 'startsWith', value: 'x' }]] };
    const vital = { kind: 'entry', param: 'category', anyOf: [[{ slot: 0, field: 'value', op: 'eq', value: 'vital' }]] } satisfies SearchCriterion;
    const mixes: SearchCriterion[][] = [
      [ofPatients('p1', 'p2')],
      [ofPatients('p1', 'p2', 'p3'), codeIs('code', 'x')],
      [ofPatients('p1', 'p2', 'p3'), codeIs('code', 'x'), { kind: 'not', criterion: vital }],
      [ofPatients('p1', 'p2', 'p3'), codeIs('code', 'x'), { ...vital, filter: true }],
      [ofPatients('p1', 'p3'), vital, codeIs('code', 'x')],
      [ofPatients('p1', 'p2'), prefix],
      [ofPatients('p2'), { kind: 'or', anyOf: [[codeIs('code', 'y')], [ofPatients('p1')]] }],
      [codeIs('code', 'x'), { kind: 'or', anyOf: [[ofPatients('p3')], [vital]] }],
      [{ kind: 'not', criterion: ofPatients('p1') }],
      [ofPatients('p1', 'p2'), { kind: 'id', ids: ['o2', 'o3', 'o4'] }],
      // A patient list less some of its records (a doctor's search without restricted ones),
      // with the list written out and bound as one value (longer lists), and o2 of two patients.
      [ofPatients('p1', 'p2'), { kind: 'not', criterion: vital }],
      [ofPatients('p1', 'p2', 'p3', 'n1', 'n2', 'n3'), { kind: 'not', criterion: vital }],
      [ofPatients('p1', 'p2', 'p3', 'n1', 'n2', 'n3'), codeIs('code', 'x'), { kind: 'not', criterion: vital }],
      [ofPatients('p1', 'p2', 'p3', 'n1', 'n2', 'n3'), { kind: 'not', criterion: codeIs('code', 'y') }, { kind: 'not', criterion: vital }],
    ];
    for (const where of mixes) {
      const found = await find(...where);
      expect(await count(...where), JSON.stringify(where)).toBe(found.length);
    }
    expect(await find(ofPatients('p1', 'p2', 'p3'), codeIs('code', 'x'), { kind: 'not', criterion: vital })).toEqual(['o2']);
    expect(await find(ofPatients('p1', 'p3'), vital, codeIs('code', 'x'))).toEqual(['o1', 'o5']);
    expect(await find(codeIs('code', 'x'), { kind: 'or', anyOf: [[ofPatients('p3')], [vital]] })).toEqual(['o1', 'o5']);
    expect(await find({ kind: 'not', criterion: ofPatients('p1') })).toEqual(['o3', 'o4', 'o5']);
    expect(await find(ofPatients('p1', 'p2', 'p3', 'n1', 'n2', 'n3'), { kind: 'not', criterion: vital })).toEqual(['o2', 'o3']);
    expect(await find(ofPatients('p1', 'p2', 'p3', 'n1', 'n2', 'n3'), { kind: 'not', criterion: codeIs('code', 'y') }, { kind: 'not', criterion: vital })).toEqual(['o2']);
  });

  it('keeps each type of a search across types to the same patients', async () => {
    const hits = await store.search({ resourceTypes: ['Condition', 'Observation'], where: [ofPatients('p1'), codeIs('code', 'x')], sort: [], limit: 10 });
    expect(hits.map((h) => `${h.version.resourceType}/${h.version.id}`)).toEqual(['Condition/c1', 'Observation/o1', 'Observation/o2']);
    expect(await store.count({ resourceTypes: ['Condition', 'Observation'], where: [ofPatients('p1')] })).toBe(3);
  });

  it('pages through one patient list in full pages', async () => {
    const seen: string[] = [];
    let after: SearchCursor | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await store.search({ resourceTypes: ['Observation'], where: [ofPatients('p1', 'p2', 'p3'), codeIs('code', 'x')], sort: [], limit: 1, ...(after && { after }) });
      seen.push(...ids(page));
      if (page.length < 1) break;
      after = page[0]!.cursor;
    }
    expect(seen).toEqual(['o1', 'o2', 'o5']);
  });

  it('moves a record between patients when a new version names others, and forgets a deleted one', async () => {
    await put('Observation', 'o1', ['p2'], token('code', 'L', 'x'));
    expect(await find(ofPatients('p1'), codeIs('code', 'x'))).toEqual(['o2']);
    expect(await find(ofPatients('p2'), codeIs('code', 'x'))).toEqual(['o1', 'o2']);
    // From two patients to one, and from one to two.
    await put('Observation', 'o2', ['p3'], token('code', 'L', 'x'));
    await put('Observation', 'o3', ['p1', 'p3'], token('code', 'L', 'y'));
    expect(await find(ofPatients('p1'))).toEqual(['o3']);
    expect(await find(ofPatients('p2'))).toEqual(['o1']);
    expect(await find(ofPatients('p3'), codeIn('x', 'y'))).toEqual(['o2', 'o3', 'o5']);
    // To nobody.
    await put('Observation', 'o5', [], token('code', 'L', 'x'));
    expect(await find(ofPatients('p3'), codeIs('code', 'x'))).toEqual(['o2']);
    await store.write({ resourceType: 'Observation', id: 'o2' });
    expect(await find(ofPatients('p3'))).toEqual(['o3']);
    expect(await count(ofPatients('p3'), codeIs('code', 'x'))).toBe(0);
  });

  it('takes the patients of a reindex', async () => {
    const current = await store.readCurrent('Observation', 'o4');
    await store.reindex('Observation', 'o4', current!.versionId, { entries: [token('code', 'L', 'x'), entry('subject', { system: 'Patient', value: 'p2' })], sortKeys: {}, patients: ['p2'] });
    expect(await find(ofPatients('p2'), codeIs('code', 'x'))).toEqual(['o2', 'o4']);
    // A reindex of a version that is no longer current changes nothing.
    await put('Observation', 'o4', [], token('code', 'L', 'x'));
    await store.reindex('Observation', 'o4', current!.versionId, { entries: [token('code', 'L', 'x')], sortKeys: {}, patients: ['p3'] });
    expect(await find(ofPatients('p2', 'p3'), codeIs('code', 'x'))).toEqual(['o2', 'o5']);
  });

  it('applies inside chains: the patient list of the resources a reference points at', async () => {
    await put('Observation', 'o6', ['p2'], token('code', 'L', 'z'), entry('focus', { system: 'Patient', value: 'p3' }));
    const focusOf = (...patients: string[]): SearchCriterion => ({ kind: 'references', param: 'focus', targetType: 'Patient', where: [ofPatients(...patients)] });
    expect(await find(focusOf('p3'))).toEqual(['o6']);
    expect(await find(focusOf('p1'))).toEqual([]);
    expect(await count(focusOf('p3'), ofPatients('p2'))).toBe(1);
    expect(await count(focusOf('p3'), ofPatients('p3'))).toBe(0);
  });
});
