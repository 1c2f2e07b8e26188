import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { outcomeOf, useServer } from './harness.js';

/** `_list`: the resources a stored List holds, in type, compartment and system searches. */

const ids = (bundle: any): string[] => bundle.entry?.filter((e: any) => e.search?.mode === 'match').map((e: any) => `${e.resource.resourceType}/${e.resource.id}`).sort() ?? [];

describeEachStore('_list', (open) => {
  const server = useServer(open);
  const made: Record<string, string> = {};
  const ref = (key: string) => made[key]!;
  const found = async (query: string) => {
    const response = await server.request({ method: 'GET', url: `/fhir/${query}` });
    expect(response.statusCode, `${query}: ${response.body}`).toBe(200);
    return ids(response.json());
  };
  const list = async (items: string[], extra: Record<string, unknown> = {}) =>
    (await server.create({ resourceType: 'List', status: 'current', mode: 'working', ...(items.length > 0 && { entry: items.map((item) => ({ item: { reference: item } })) }), ...extra })).id;

  it('loads three patients, an observation and two lists', async () => {
    for (const key of ['p1', 'p2', 'p3']) made[key] = `Patient/${(await server.create({ resourceType: 'Patient', name: [{ family: key }] })).id}`;
    made.o1 = `Observation/${(await server.create({ resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: ref('p1') } })).id}`;
    made.first = await list([ref('p1'), ref('p3'), ref('o1')], { subject: { reference: ref('p1') } });
    made.second = await list([ref('p2'), ref('p3')]);
    made.empty = await list([]);
  });

  it('finds the resources of the searched type that a List holds', async () => {
    expect(await found(`Patient?_list=${made.first}`)).toEqual([ref('p1'), ref('p3')].sort());
    expect(await found(`Observation?_list=${made.first}`)).toEqual([ref('o1')]);
    expect(await found(`Patient?_list=${made.empty}`)).toEqual([]);
    expect(await found('Patient?_list=no-such-list')).toEqual([]);
  });

  it('ORs values and ANDs repeats, and combines with other criteria, compartments and system search', async () => {
    expect(await found(`Patient?_list=${made.first},${made.second}`)).toEqual([ref('p1'), ref('p2'), ref('p3')].sort());
    expect(await found(`Patient?_list=${made.first}&_list=${made.second}`)).toEqual([ref('p3')]);
    expect(await found(`Patient?_list=${made.first}&name=p1`)).toEqual([ref('p1')]);
    expect(await found(`${ref('p1')}/Observation?_list=${made.first}`)).toEqual([ref('o1')]);
    expect(await found(`${ref('p2')}/Observation?_list=${made.first}`)).toEqual([]);
    expect(await found(`?_type=Patient,Observation&_list=${made.first}`)).toEqual([ref('p1'), ref('p3'), ref('o1')].sort());
  });

  it('is no longer reported as an unknown parameter, and is listed in the CapabilityStatement', async () => {
    const bundle = (await server.request({ method: 'GET', url: `/fhir/Patient?_list=${made.first}` })).json();
    expect(bundle.entry.some((e: any) => e.search?.mode === 'outcome')).toBe(false);
    const strict = await server.request({ method: 'GET', url: `/fhir/Patient?_list=${made.first}`, headers: { prefer: 'handling=strict' } });
    expect(strict.statusCode).toBe(200);
    const statement = (await server.request({ method: 'GET', url: '/fhir/metadata' })).json();
    expect(statement.rest[0].searchParam.map((p: { name: string }) => p.name)).toContain('_list');
  });

  it('refuses functional lists and modifiers with a 400 naming the parameter', async () => {
    const functional = await server.request({ method: 'GET', url: '/fhir/Condition?_list=$current-problems' });
    expect(functional.statusCode).toBe(400);
    expect(outcomeOf(functional).expressions).toEqual(['_list']);
    expect(outcomeOf(functional).text).toMatch(/Functional lists/);
    const modified = await server.request({ method: 'GET', url: `/fhir/Patient?_list:missing=${made.first}` });
    expect(modified.statusCode).toBe(400);
    expect(outcomeOf(modified).expressions).toEqual(['_list:missing']);
  });
});
