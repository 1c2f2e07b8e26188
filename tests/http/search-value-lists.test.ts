import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, outcomeOf, useServer, type TestServer } from './harness.js';

/**
 * Long value lists a conformance probe sent: a ValueSet of thousands of codes for :in, a
 * thousand comma-separated values. Each answers what the data written here says.
 */

const examplesDir = dirname(createRequire(import.meta.url).resolve('hl7.fhir.r4.examples/package.json'));
const example = (file: string) => JSON.parse(readFileSync(join(examplesDir, file), 'utf8')) as Record<string, unknown>;

const LOINC = 'http://loinc.org';
/** The R4 example ValueSet of LOINC document types: 6,401 codes, 11488-4 and 34117-2 among them, 8867-4 not. */
const DOC_TYPES = 'http://hl7.org/fhir/ValueSet/c80-doc-typecodes';

const ids = (bundle: any) => (bundle.entry ?? []).filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id).sort();
const filler = (n: number, make: (i: number) => string) => Array.from({ length: n }, (_, i) => make(i));
const days = (n: number, prefix = '') => filler(n, (i) => `${prefix}${1900 + Math.floor(i / 12)}-${String((i % 12) + 1).padStart(2, '0')}`);

/** POST _search with a form body, however long: `Type?query`. */
const post = (server: TestServer, query: string) =>
  server.request({ method: 'POST', url: `/fhir/${query.slice(0, query.indexOf('?'))}/_search`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: query.slice(query.indexOf('?') + 1) });

/** The ids a GET search (`Type?query`) matches; it must answer 200. */
async function matchedIds(server: TestServer, query: string): Promise<string[]> {
  const res = await server.request({ method: 'GET', url: `/fhir/${query}` });
  expect(res.statusCode, res.body.slice(0, 500)).toBe(200);
  return ids(res.json());
}

/** The answer is a 400 too-costly naming `parameter`. */
async function refusedAsTooCostly(server: TestServer, query: string, parameter: string): Promise<string> {
  const res = await post(server, query);
  expect(res.statusCode, res.body.slice(0, 500)).toBe(400);
  const outcome = outcomeOf(res);
  expect(outcome.codes).toEqual(['too-costly']);
  expect(outcome.expressions).toEqual([parameter]);
  return outcome.text;
}

describeEachStore('search value lists', (open) => {
  const server = useServer(open);
  const documents: Record<string, string> = {};

  const search = async (query: string) => {
    const res = await post(server, query);
    expect(res.statusCode, res.body.slice(0, 500)).toBe(200);
    const bundle = res.json();
    expect(bundle.total).toBe(ids(bundle).length);
    return ids(bundle);
  };

  it('loads document references of document types and others, and the document types ValueSet', async () => {
    const document = async (name: string, system: string, code: string) => {
      const created = await server.create({ resourceType: 'DocumentReference', status: 'current', type: { coding: [{ system, code }] }, content: [{ attachment: { url: `http://docs.example/${name}` } }] });
      documents[name] = created.id;
    };
    await document('summary', LOINC, '11488-4');
    await document('pathology', LOINC, '34117-2');
    await document('heartRate', LOINC, '8867-4');
    await document('elsewhere', 'http://codes.example/other', '11488-4');
    const valueSet = example('ValueSet-c80-doc-typecodes.json');
    const put = await server.request({ method: 'PUT', url: `/fhir/ValueSet/${String(valueSet.id)}`, headers: FHIR_JSON, payload: valueSet });
    expect(put.statusCode).toBe(201);
  });

  const named = (...names: string[]) => names.map((n) => documents[n]).sort();

  it('999 comma-separated codes, with and without a system, find the ones that are there', async () => {
    expect(await search(`DocumentReference?type=${[...filler(998, (i) => `x-${i}`), '11488-4'].join(',')}`)).toEqual(named('summary', 'elsewhere'));
    expect(await search(`DocumentReference?type=${[...filler(998, (i) => `${LOINC}|x-${i}`), `${LOINC}|34117-2`].join(',')}`)).toEqual(named('pathology'));
    expect(await search(`DocumentReference?type:not=${[...filler(998, (i) => `x-${i}`), '11488-4'].join(',')}`)).toEqual(named('pathology', 'heartRate'));
  });

  it(':in and :not-in a ValueSet of 6,401 codes', async () => {
    expect(await search(`DocumentReference?type:in=${DOC_TYPES}`)).toEqual(named('summary', 'pathology'));
    expect(await search(`DocumentReference?type:not-in=${DOC_TYPES}`)).toEqual(named('heartRate', 'elsewhere'));
  });

  it('5,000 comma-separated codes are one list; 999 dates, compared one by one, are too costly', async () => {
    expect(await search(`DocumentReference?type=${[...filler(4999, (i) => `x-${i}`), '34117-2'].join(',')}`)).toEqual(named('pathology'));
    const text = await refusedAsTooCostly(server, `DocumentReference?date=${days(999).join(',')}`, 'date');
    expect(text).toContain('at most 500 values one by one');
  });

  it('more than 100 parameters, a thousand repeated ones among them, are too costly', async () => {
    const text = await refusedAsTooCostly(server, `DocumentReference?${filler(100, () => 'type=11488-4').join('&')}&type:not=x`, 'type:not');
    expect(text).toContain('at most 100 parameters');
    await refusedAsTooCostly(server, `DocumentReference?${filler(1000, (i) => `type=x-${i},11488-4`).join('&')}`, 'type');
  });
});

describeEachStore('search value lists within configured limits', (open) => {
  const server = useServer(open, { searchCost: { maxParameters: 3, maxComparisons: 8, maxListValues: 10 } });
  let id = '';

  it('loads a document reference', async () => {
    id = (await server.create({ resourceType: 'DocumentReference', status: 'current', date: '1900-03-05T10:00:00Z', type: { coding: [{ system: LOINC, code: '11488-4' }] }, content: [{ attachment: { url: 'http://docs.example/a' } }] })).id;
  });

  const search = async (query: string) => {
    const res = await post(server, query);
    expect(res.statusCode, res.body.slice(0, 500)).toBe(200);
    return ids(res.json());
  };

  it('answers up to each limit and refuses beyond it, naming the parameter', async () => {
    expect(await search('DocumentReference?status=current&type=11488-4&date=1900')).toEqual([id]);
    await refusedAsTooCostly(server, 'DocumentReference?status=current&type=11488-4&date=1900&_id=x', '_id');
    // A date (eq) is two comparisons, and the type one more.
    expect(await search(`DocumentReference?type=11488-4&date=${days(3).join(',')}`)).toEqual([id]);
    await refusedAsTooCostly(server, `DocumentReference?type=11488-4&date=${days(4).join(',')}`, 'date');
    expect(await search(`DocumentReference?type=${[...filler(9, (i) => `x-${i}`), '11488-4'].join(',')}`)).toEqual([id]);
    await refusedAsTooCostly(server, `DocumentReference?type=${[...filler(10, (i) => `x-${i}`), '11488-4'].join(',')}`, 'type');
  });
});

describeEachStore('search value lists beyond what the store can take', (open) => {
  const server = useServer(open, { searchCost: { maxComparisons: 100_000 } });

  it('a search the embedded store cannot prepare is a 400 too-costly, not a 500', async (context) => {
    if (server.store.kind !== 'sqlite') context.skip();
    // 17,000 dates, two bounds each: more variables than SQLite binds.
    const res = await post(server, `DocumentReference?date=${days(17_000).join(',')}`);
    expect(res.statusCode).toBe(400);
    expect(outcomeOf(res).codes).toEqual(['too-costly']);
  });
});

describeEachStore('search :in on elements indexed without a system', (open) => {
  const server = useServer(open);
  const made: Record<string, string> = {};
  const named = (...names: string[]) => names.map((n) => made[n]).sort();
  const search = (query: string) => matchedIds(server, query);
  const valueSet = async (id: string, include: Record<string, unknown>[]) => {
    const res = await server.request({ method: 'PUT', url: `/fhir/ValueSet/${id}`, headers: FHIR_JSON, payload: { resourceType: 'ValueSet', id, url: `http://terms.example/ValueSet/${id}`, status: 'active', compose: { include } } });
    expect(res.statusCode).toBe(201);
  };

  it('loads patients of each gender, observations of each status, and ValueSets of some', async () => {
    for (const [name, gender] of [['female', 'female'], ['male', 'male'], ['other', 'other'], ['none', undefined]] as const) {
      made[name] = (await server.create({ resourceType: 'Patient', ...(gender && { gender }) })).id;
    }
    const observation = async (name: string, status: string, coding: Record<string, string>) => {
      made[name] = (await server.create({ resourceType: 'Observation', status, code: { coding: [coding] } })).id;
    };
    await observation('final', 'final', { system: LOINC, code: '8867-4' });
    await observation('preliminary', 'preliminary', { code: '8867-4' });
    await observation('amended', 'amended', { system: 'http://codes.example/other', code: '8867-4' });
    await valueSet('female-other', [{ system: 'http://hl7.org/fhir/administrative-gender', concept: [{ code: 'female' }, { code: 'other' }] }]);
    await valueSet('final-amended', [{ system: 'http://hl7.org/fhir/observation-status', concept: [{ code: 'final' }, { code: 'amended' }] }]);
    await valueSet('heart-rate', [{ system: LOINC, concept: [{ code: '8867-4' }] }]);
  });

  it('a code element (gender, status) matches the ValueSet codes by code', async () => {
    expect(await search('Patient?gender:in=http://terms.example/ValueSet/female-other')).toEqual(named('female', 'other'));
    expect(await search('Patient?gender:not-in=http://terms.example/ValueSet/female-other')).toEqual(named('male', 'none'));
    expect(await search('Observation?status:in=http://terms.example/ValueSet/final-amended')).toEqual(named('final', 'amended'));
    expect(await search('Observation?status:not-in=http://terms.example/ValueSet/final-amended')).toEqual(named('preliminary'));
  });

  it('a Coding naming no system matches by code; one naming another system does not', async () => {
    expect(await search('Observation?code:in=http://terms.example/ValueSet/heart-rate')).toEqual(named('final', 'preliminary'));
    expect(await search('Observation?code:not-in=http://terms.example/ValueSet/heart-rate')).toEqual(named('amended'));
  });
});

describeEachStore('search :in expands ValueSets', (open) => {
  const server = useServer(open);
  const LAB = 'http://codes.example/lab';
  const WHOLE = 'http://codes.example/whole';
  const VS = 'http://terms.example/ValueSet';
  const made: Record<string, string> = {};
  const named = (...names: string[]) => names.map((n) => made[n]).sort();
  const search = (query: string) => matchedIds(server, query);
  const refused = async (query: string, status: number, code: string) => {
    const res = await server.request({ method: 'GET', url: `/fhir/${query}` });
    expect(res.statusCode, res.body.slice(0, 500)).toBe(status);
    const outcome = outcomeOf(res);
    expect(outcome.codes).toEqual([code]);
    return outcome;
  };
  const valueSet = async (id: string, body: Record<string, unknown>) => {
    const res = await server.request({ method: 'PUT', url: `/fhir/ValueSet/${id}`, headers: FHIR_JSON, payload: { resourceType: 'ValueSet', id, url: `${VS}/${id}`, status: 'active', ...body } });
    expect(res.statusCode, res.body.slice(0, 500)).toBe(201);
  };
  const lab = (...codes: string[]) => ({ system: LAB, concept: codes.map((code) => ({ code })) });

  it('loads observations of lab codes a to d and of other systems, patients, and ValueSets', async () => {
    const observation = async (name: string, system: string, code: string) => {
      made[name] = (await server.create({ resourceType: 'Observation', status: 'final', code: { coding: [{ system, code }] } })).id;
    };
    for (const code of ['a', 'b', 'c', 'd']) await observation(code, LAB, code);
    await observation('otherA', 'http://codes.example/other', 'a');
    await observation('whole', WHOLE, 'w1');
    for (const [name, gender] of [['female', 'female'], ['male', 'male'], ['none', undefined]] as const) {
      made[name] = (await server.create({ resourceType: 'Patient', ...(gender && { gender }) })).id;
    }
    await valueSet('abc-less-b', { version: '1.0', compose: { include: [lab('a', 'b', 'c')], exclude: [lab('b')] } });
    await valueSet('abd', { compose: { include: [lab('a', 'b', 'd')] } });
    await valueSet('nested', { compose: { include: [{ valueSet: [`${VS}/abc-less-b`] }, lab('d')] } });
    await valueSet('both', { compose: { include: [{ valueSet: [`${VS}/abc-less-b`, `${VS}/abd`] }] } });
    await valueSet('cycle-1', { compose: { include: [{ valueSet: [`${VS}/cycle-2`] }] } });
    await valueSet('cycle-2', { compose: { include: [lab('a'), { valueSet: [`${VS}/cycle-1`] }] } });
    await valueSet('nowhere', { compose: { include: [{ valueSet: [`${VS}/not-stored`] }] } });
    const isA = { ...lab(), concept: undefined, filter: [{ property: 'concept', op: 'is-a', value: 'a' }] };
    await valueSet('filtered', { compose: { include: [isA] } });
    const expansion = (codes: string[], extra: Record<string, unknown> = {}) => ({ timestamp: '2024-01-01T00:00:00Z', ...extra, contains: codes.map((code) => ({ system: LAB, code })) });
    await valueSet('filtered-expanded', { compose: { include: [isA] }, expansion: expansion(['b', 'd']) });
    await valueSet('expanded', { compose: { include: [lab('a')] }, expansion: expansion(['c']) });
    await valueSet('page-of-expansion', { compose: { include: [lab('a', 'b')] }, expansion: expansion(['a'], { total: 2 }) });
    await valueSet('whole', { compose: { include: [{ system: WHOLE }] } });
    await valueSet('whole-less-w1', { compose: { include: [{ system: WHOLE }], exclude: [{ system: WHOLE, concept: [{ code: 'w1' }] }] } });
    await valueSet('gender-less-male', { compose: { include: [{ system: 'http://hl7.org/fhir/administrative-gender' }], exclude: [{ system: 'http://hl7.org/fhir/administrative-gender', concept: [{ code: 'male' }] }] } });
    for (const file of ['ValueSet-administrative-gender.json', 'CodeSystem-administrative-gender.json']) {
      const resource = example(file);
      const res = await server.request({ method: 'PUT', url: `/fhir/${String(resource.resourceType)}/${String(resource.id)}`, headers: FHIR_JSON, payload: resource });
      expect(res.statusCode).toBe(201);
    }
  });

  it('leaves out what compose.exclude excludes', async () => {
    expect(await search(`Observation?code:in=${VS}/abc-less-b`)).toEqual(named('a', 'c'));
    expect(await search(`Observation?code:not-in=${VS}/abc-less-b`)).toEqual(named('b', 'd', 'otherA', 'whole'));
  });

  it('includes the codes of the ValueSets an include names, all of them within one include', async () => {
    expect(await search(`Observation?code:in=${VS}/nested`)).toEqual(named('a', 'c', 'd'));
    expect(await search(`Observation?code:in=${VS}/both`)).toEqual(named('a'));
  });

  it('refuses a ValueSet that includes itself, or one not stored, naming the parameter', async () => {
    const cycle = await refused(`Observation?code:in=${VS}/cycle-1`, 400, 'invalid');
    expect(cycle.text).toContain('cycle-1');
    expect(cycle.expressions).toEqual(['code:in']);
    const missing = await refused(`Observation?code:in=${VS}/nowhere`, 400, 'not-found');
    expect(missing.text).toContain(`${VS}/not-stored`);
    expect(missing.expressions).toEqual(['code:in']);
  });

  it('a filter it cannot evaluate is a 400 naming the ValueSet, unless the ValueSet holds its expansion', async () => {
    const filtered = await refused(`Observation?code:in=${VS}/filtered`, 400, 'not-supported');
    expect(filtered.text).toContain(`${VS}/filtered`);
    expect(await search(`Observation?code:in=${VS}/filtered-expanded`)).toEqual(named('b', 'd'));
  });

  it('prefers a whole expansion to the compose, and a page of one is not taken for the whole', async () => {
    expect(await search(`Observation?code:in=${VS}/expanded`)).toEqual(named('c'));
    expect(await search(`Observation?code:in=${VS}/page-of-expansion`)).toEqual(named('a', 'b'));
  });

  it('takes a ValueSet by ValueSet/{id}, by its URL on this server, and by canonical with a version', async () => {
    expect(await search('Observation?code:in=ValueSet/abc-less-b')).toEqual(named('a', 'c'));
    expect(await search('Observation?code:in=http://fhir.test/fhir/ValueSet/abc-less-b')).toEqual(named('a', 'c'));
    expect(await search(`Observation?code:in=${VS}/abc-less-b|1.0`)).toEqual(named('a', 'c'));
    await refused(`Observation?code:in=${VS}/abc-less-b|2.0`, 400, 'not-found');
    await refused('Observation?code:in=ValueSet/not-stored', 400, 'not-found');
  });

  it('a system included whole: its codes from its stored CodeSystem, or any code of it', async () => {
    expect(await search('Patient?gender:in=http://hl7.org/fhir/ValueSet/administrative-gender')).toEqual(named('female', 'male'));
    expect(await search('Patient?gender:not-in=http://hl7.org/fhir/ValueSet/administrative-gender')).toEqual(named('none'));
    expect(await search(`Patient?gender:in=${VS}/gender-less-male`)).toEqual(named('female'));
    expect(await search(`Observation?code:in=${VS}/whole`)).toEqual(named('whole'));
    const unlisted = await refused(`Observation?code:in=${VS}/whole-less-w1`, 400, 'not-supported');
    expect(unlisted.text).toContain(WHOLE);
  });
});
