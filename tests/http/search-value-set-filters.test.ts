import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, outcomeOf, useServer } from './harness.js';

/**
 * :in with ValueSets that select codes by filters, evaluated on a CodeSystem stored with all its
 * concepts: a hospital's local order codes, nested, with a `specimen` property and one concept
 * placed in the hierarchy by a `parent` property instead of nesting.
 */

const ORDERS = 'http://hospital.example/CodeSystem/orders';
const VS = 'http://hospital.example/ValueSet';

const concept = (code: string, specimen?: string, children: Record<string, unknown>[] = []) => ({
  code,
  display: code.toUpperCase(),
  ...(specimen && { property: [{ code: 'specimen', valueCode: specimen }] }),
  ...(children.length && { concept: children }),
});

const CODE_SYSTEM = {
  resourceType: 'CodeSystem',
  id: 'orders',
  url: ORDERS,
  status: 'active',
  content: 'complete',
  hierarchyMeaning: 'is-a',
  property: [
    { code: 'specimen', type: 'code' },
    { code: 'parent', type: 'code' },
  ],
  concept: [
    concept('root', undefined, [
      concept('lab', undefined, [concept('chem', 'serum', [concept('glucose', 'serum')]), concept('haem', undefined, [concept('hb', 'blood')])]),
      concept('imaging', undefined, [concept('xray')]),
    ]),
    { code: 'ct', display: 'CT', property: [{ code: 'parent', valueCode: 'imaging' }] },
  ],
};

const CODES = ['lab', 'chem', 'glucose', 'haem', 'hb', 'imaging', 'xray', 'ct'];

describeEachStore('search :in with ValueSet filters', (open) => {
  const server = useServer(open);
  const made: Record<string, string> = {};
  const named = (...codes: string[]) => codes.map((c) => made[c]!).sort();
  const search = async (query: string) => {
    const res = await server.request({ method: 'GET', url: `/fhir/${query}` });
    expect(res.statusCode, res.body.slice(0, 500)).toBe(200);
    return ((res.json().entry ?? []) as { search: { mode: string }; resource: { id: string } }[]).filter((e) => e.search.mode === 'match').map((e) => e.resource.id).sort();
  };
  const valueSet = async (id: string, compose: Record<string, unknown>) => {
    const res = await server.request({ method: 'PUT', url: `/fhir/ValueSet/${id}`, headers: FHIR_JSON, payload: { resourceType: 'ValueSet', id, url: `${VS}/${id}`, status: 'active', compose } });
    expect(res.statusCode, res.body.slice(0, 500)).toBe(201);
  };
  const filtered = (...filters: [string, string, string][]) => ({ include: [{ system: ORDERS, filter: filters.map(([property, op, value]) => ({ property, op, value })) }] });
  const inSet = (id: string) => search(`Observation?code:in=${VS}/${id}`);

  it('loads the code system, an observation per code, and the ValueSets', async () => {
    const res = await server.request({ method: 'PUT', url: '/fhir/CodeSystem/orders', headers: FHIR_JSON, payload: CODE_SYSTEM });
    expect(res.statusCode, res.body.slice(0, 500)).toBe(201);
    for (const code of CODES) made[code] = (await server.create({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: ORDERS, code }] } })).id;
    await valueSet('is-a-lab', filtered(['concept', 'is-a', 'lab']));
    await valueSet('under-lab', filtered(['concept', 'descendent-of', 'lab']));
    await valueSet('not-lab', filtered(['concept', 'is-not-a', 'lab']));
    await valueSet('above-glucose', filtered(['concept', 'generalizes', 'glucose']));
    await valueSet('is-a-imaging', filtered(['concept', 'is-a', 'imaging']));
    await valueSet('serum', filtered(['specimen', '=', 'serum']));
    await valueSet('serum-or-blood', filtered(['specimen', 'in', 'serum,blood']));
    await valueSet('not-serum', filtered(['specimen', 'not-in', 'serum']));
    await valueSet('no-specimen', filtered(['specimen', 'exists', 'false']));
    await valueSet('x-or-ct', filtered(['code', 'regex', 'x.*|ct']));
    await valueSet('lab-serum', filtered(['concept', 'is-a', 'lab'], ['specimen', '=', 'serum']));
    await valueSet('all-but-lab', { include: [{ system: ORDERS }], exclude: [{ system: ORDERS, filter: [{ property: 'concept', op: 'is-a', value: 'lab' }] }] });
    await valueSet('bad-regex', filtered(['code', 'regex', '(']));
    await valueSet('backtracking', filtered(['display', 'regex', '(A+)+B']));
    await valueSet('elsewhere', { include: [{ system: 'http://hospital.example/CodeSystem/not-stored', filter: [{ property: 'concept', op: 'is-a', value: 'x' }] }] });
  });

  it('follows the hierarchy: is-a, descendent-of, is-not-a, generalizes, nesting and parent properties alike', async () => {
    expect(await inSet('is-a-lab')).toEqual(named('lab', 'chem', 'glucose', 'haem', 'hb'));
    expect(await inSet('under-lab')).toEqual(named('chem', 'glucose', 'haem', 'hb'));
    expect(await inSet('not-lab')).toEqual(named('imaging', 'xray', 'ct'));
    expect(await inSet('above-glucose')).toEqual(named('glucose', 'chem', 'lab'));
    expect(await inSet('is-a-imaging')).toEqual(named('imaging', 'xray', 'ct'));
  });

  it('matches properties and codes: =, in, not-in, exists, regex; filters of one include all apply', async () => {
    expect(await inSet('serum')).toEqual(named('chem', 'glucose'));
    expect(await inSet('serum-or-blood')).toEqual(named('chem', 'glucose', 'hb'));
    expect(await inSet('not-serum')).toEqual(named('lab', 'haem', 'hb', 'imaging', 'xray', 'ct'));
    expect(await inSet('no-specimen')).toEqual(named('lab', 'haem', 'imaging', 'xray', 'ct'));
    expect(await inSet('x-or-ct')).toEqual(named('xray', 'ct'));
    expect(await inSet('lab-serum')).toEqual(named('chem', 'glucose'));
    expect(await search(`Observation?code:not-in=${VS}/lab-serum`)).toEqual(named('lab', 'haem', 'hb', 'imaging', 'xray', 'ct'));
  });

  it('applies filters in excludes too', async () => {
    expect(await inSet('all-but-lab')).toEqual(named('imaging', 'xray', 'ct'));
  });

  it('refuses what it cannot evaluate with a 400 naming the ValueSet (an unknown op is refused when the ValueSet is stored)', async () => {
    const op = await server.request({ method: 'PUT', url: '/fhir/ValueSet/unknown-op', headers: FHIR_JSON, payload: { resourceType: 'ValueSet', status: 'active', id: 'unknown-op', compose: filtered(['concept', 'child-of', 'lab']) } });
    expect(op.statusCode).toBe(400);
    for (const [id, code] of [['bad-regex', 'invalid'], ['backtracking', 'too-costly'], ['elsewhere', 'not-supported']] as const) {
      const res = await server.request({ method: 'GET', url: `/fhir/Observation?code:in=${VS}/${id}` });
      expect(res.statusCode, id).toBe(400);
      const outcome = outcomeOf(res);
      expect(outcome.codes, id).toEqual([code]);
      expect(outcome.text, id).toContain(`${VS}/${id}`);
      expect(outcome.expressions, id).toEqual(['code:in']);
    }
  });
});
