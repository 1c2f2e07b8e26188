import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, outcomeOf, useServer } from './harness.js';

/**
 * Search mechanics through HTTP: where searches come from, paging, totals, shaping and errors.
 * The semantics of each parameter type are judged by the corpus (search-corpus.test.ts).
 */

const ids = (bundle: any, mode = 'match') => bundle.entry.filter((e: any) => e.search.mode === mode).map((e: any) => `${e.resource.resourceType}/${e.resource.id}`);
const link = (bundle: any, relation: string) => bundle.link.find((l: any) => l.relation === relation)?.url?.replace('http://fhir.test', '');

describeEachStore('search', (open) => {
  const server = useServer(open, { defaultPageSize: 5, maxPageSize: 50 });
  const patients: string[] = [];

  it('loads a small population', async () => {
    for (let i = 0; i < 12; i++) {
      const p = await server.create({
        resourceType: 'Patient',
        name: [{ family: i % 3 === 0 ? 'Chan' : i % 3 === 1 ? 'Chén' : 'Wong', given: [`Person${String(i).padStart(2, '0')}`] }],
        gender: i % 2 ? 'male' : 'female',
        birthDate: `19${String(50 + i)}-0${(i % 9) + 1}-15`,
        identifier: [{ system: 'urn:hkid', value: `A${100000 + i}` }],
      });
      patients.push(p.id);
      await server.create({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] }, subject: { reference: `Patient/${p.id}` }, valueQuantity: { value: 60 + i, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' } });
    }
  });

  it('GET, POST _search with a form, and system search give the same results', async () => {
    const get = (await server.request({ method: 'GET', url: '/fhir/Patient?name=chan&_count=50' })).json();
    const post = await server.request({ method: 'POST', url: '/fhir/Patient/_search', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'name=chan&_count=50' });
    expect(post.statusCode).toBe(200);
    expect(ids(post.json())).toEqual(ids(get));
    // Accent-insensitive: Chén matches chen, not chan.
    expect(get.total).toBe(4);
    const chen = (await server.request({ method: 'GET', url: '/fhir/Patient?name=chen&_count=50' })).json();
    expect(chen.total).toBe(4);
    const system = (await server.request({ method: 'GET', url: '/fhir?_type=Patient&_id=' + patients.slice(0, 3).join(',') })).json();
    expect(ids(system).sort()).toEqual(patients.slice(0, 3).map((id) => `Patient/${id}`).sort());
  });

  it('pages with next and previous links; writes between pages neither skip nor repeat', async () => {
    const seen: string[] = [];
    let url: string | undefined = '/fhir/Patient?gender=female&_count=2';
    const pages: any[] = [];
    while (url) {
      const bundle = (await server.request({ method: 'GET', url })).json();
      pages.push(bundle);
      seen.push(...ids(bundle));
      // Another client adds a matching patient between our pages.
      await server.create({ resourceType: 'Patient', gender: 'female', name: [{ family: 'Later' }] });
      url = link(bundle, 'next');
    }
    const originals = patients.filter((_, i) => i % 2 === 0).map((id) => `Patient/${id}`);
    for (const id of originals) expect(seen.filter((s) => s === id)).toHaveLength(1);
    expect(new Set(seen).size).toBe(seen.length);

    expect(link(pages[0], 'previous')).toBeUndefined();
    expect(link(pages[0], 'first')).toContain('gender=female');
  });

  it('previous links walk back page by page', async () => {
    const forward: any[] = [];
    let url: string | undefined = '/fhir/Patient?gender=male&_count=2';
    while (url) {
      const bundle = (await server.request({ method: 'GET', url })).json();
      forward.push(bundle);
      url = link(bundle, 'next');
    }
    expect(forward).toHaveLength(3);
    let back = forward[2];
    for (const expected of [forward[1], forward[0]]) {
      back = (await server.request({ method: 'GET', url: link(back, 'previous') })).json();
      expect(ids(back)).toEqual(ids(expected));
    }
    expect(link(back, 'previous')).toBeUndefined();
    expect(link(back, 'next')).toBeDefined();
  });

  it('a page token is bound to its query', async () => {
    const first = (await server.request({ method: 'GET', url: '/fhir/Patient?gender=male&_count=2' })).json();
    const token = new URL(first.link.find((l: any) => l.relation === 'next').url).searchParams.get('_page')!;
    const replay = await server.request({ method: 'GET', url: `/fhir/Patient?gender=female&_count=2&_page=${encodeURIComponent(token)}` });
    expect(replay.statusCode).toBe(400);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient?gender=male&_count=2&_page=${encodeURIComponent(token)}` })).statusCode).toBe(200);
  });

  it('_sort orders by one or several keys, missing values last', async () => {
    const asc = (await server.request({ method: 'GET', url: '/fhir/Patient?identifier=urn:hkid|&_sort=birthdate&_count=50' })).json();
    const dates = asc.entry.map((e: any) => e.resource.birthDate);
    expect(dates).toEqual([...dates].sort());
    const desc = (await server.request({ method: 'GET', url: '/fhir/Patient?identifier=urn:hkid|&_sort=-birthdate&_count=50' })).json();
    expect(desc.entry.map((e: any) => e.resource.birthDate)).toEqual([...dates].reverse());
    const multi = (await server.request({ method: 'GET', url: '/fhir/Patient?identifier=urn:hkid|&_sort=gender,-birthdate&_count=50' })).json();
    const keys = multi.entry.map((e: any) => `${e.resource.gender}|${e.resource.birthDate}`);
    expect(keys.filter((k: string) => k.startsWith('female'))).toHaveLength(6);
    expect(keys.slice(0, 6).every((k: string) => k.startsWith('female'))).toBe(true);
    const female = keys.slice(0, 6).map((k: string) => k.split('|')[1]);
    expect(female).toEqual([...female].sort().reverse());
    // Paging through a sorted result keeps the order across pages.
    const paged: string[] = [];
    let url: string | undefined = '/fhir/Patient?identifier=urn:hkid|&_sort=-birthdate&_count=5';
    while (url) {
      const b = (await server.request({ method: 'GET', url })).json();
      paged.push(...b.entry.map((e: any) => e.resource.birthDate));
      url = link(b, 'next');
    }
    expect(paged).toEqual([...dates].reverse());
    expect((await server.request({ method: 'GET', url: '/fhir/Patient?_sort=nonsense' })).statusCode).toBe(400);
  });

  it('_total, _summary=count and _elements', async () => {
    const none = (await server.request({ method: 'GET', url: '/fhir/Observation?code=8867-4&_total=none' })).json();
    expect(none.total).toBeUndefined();
    const count = (await server.request({ method: 'GET', url: '/fhir/Observation?code=8867-4&_summary=count' })).json();
    expect(count.total).toBe(12);
    expect(count).not.toHaveProperty('entry');
    const elements = (await server.request({ method: 'GET', url: '/fhir/Patient?name=wong&_elements=gender' })).json();
    expect(Object.keys(elements.entry[0].resource).sort()).toEqual(['gender', 'id', 'meta', 'resourceType']);
    expect(elements.entry[0].resource.meta.tag).toContainEqual(expect.objectContaining({ code: 'SUBSETTED' }));
  });

  it('_include and _revinclude mark included resources; compartment search stays in the compartment', async () => {
    const included = (await server.request({ method: 'GET', url: `/fhir/Observation?subject=Patient/${patients[0]}&_include=Observation:subject` })).json();
    expect(ids(included)).toHaveLength(1);
    expect(ids(included, 'include')).toEqual([`Patient/${patients[0]}`]);
    const rev = (await server.request({ method: 'GET', url: `/fhir/Patient?_id=${patients[1]}&_revinclude=Observation:subject` })).json();
    expect(ids(rev, 'include')).toHaveLength(1);
    const compartment = (await server.request({ method: 'GET', url: `/fhir/Patient/${patients[2]}/Observation` })).json();
    expect(compartment.total).toBe(1);
    expect(compartment.entry[0].resource.subject.reference).toBe(`Patient/${patients[2]}`);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${patients[2]}/Practitioner` })).statusCode).toBe(404);
  });

  it('chains and _has', async () => {
    const chained = (await server.request({ method: 'GET', url: '/fhir/Observation?subject:Patient.name=wong&_count=50' })).json();
    expect(chained.total).toBe(4);
    const has = (await server.request({ method: 'GET', url: '/fhir/Patient?_has:Observation:subject:value-quantity=gt70&_count=50' })).json();
    expect(has.total).toBe(1);
    expect(ids(has)).toEqual([`Patient/${patients[11]}`]);
  });

  it('unknown parameters are reported, or refused with Prefer: handling=strict', async () => {
    const lenient = (await server.request({ method: 'GET', url: '/fhir/Patient?nickname=x&gender=male' })).json();
    const outcome = lenient.entry.find((e: any) => e.search.mode === 'outcome');
    expect(outcome.resource.issue[0].expression).toEqual(['nickname']);
    expect(lenient.total).toBe(6);
    const strict = await server.request({ method: 'GET', url: '/fhir/Patient?nickname=x&gender=male', headers: { prefer: 'handling=strict' } });
    expect(strict.statusCode).toBe(400);
    expect(outcomeOf(strict).expressions).toEqual(['nickname']);
  });

  it('malformed values give 400 naming the parameter', async () => {
    for (const [query, param] of [
      ['birthdate=19-01-01', 'birthdate'],
      ['birthdate=xx2020', 'birthdate'],
      ['identifier=a|b|c', 'identifier'],
      ['name:fuzzy=chan', 'name:fuzzy'],
      ['_count=-1', '_count'],
      ['general-practitioner.nonsense=1', 'general-practitioner.nonsense'],
    ] as const) {
      const res = await server.request({ method: 'GET', url: `/fhir/Patient?${query}` });
      expect(res.statusCode, query).toBe(400);
      expect(outcomeOf(res).expressions, query).toContain(param);
    }
    const quantity = await server.request({ method: 'GET', url: '/fhir/Observation?value-quantity=abc' });
    expect(quantity.statusCode).toBe(400);
    expect((await server.request({ method: 'GET', url: '/fhir/Observation?_type=Nope' })).statusCode).toBe(200);
    expect((await server.request({ method: 'GET', url: '/fhir?_type=Nope' })).statusCode).toBe(400);
  });

  it('deleted and updated resources are searched as they are now', async () => {
    const p = await server.create({ resourceType: 'Patient', name: [{ family: 'Ephemeral' }] });
    expect((await server.request({ method: 'GET', url: '/fhir/Patient?name=ephemeral' })).json().total).toBe(1);
    await server.request({ method: 'PUT', url: `/fhir/Patient/${p.id}`, headers: FHIR_JSON, payload: { ...p, name: [{ family: 'Permanent' }] } });
    expect((await server.request({ method: 'GET', url: '/fhir/Patient?name=ephemeral' })).json().total).toBe(0);
    expect((await server.request({ method: 'GET', url: '/fhir/Patient?name=permanent' })).json().total).toBe(1);
    await server.request({ method: 'DELETE', url: `/fhir/Patient/${p.id}` });
    expect((await server.request({ method: 'GET', url: '/fhir/Patient?name=permanent' })).json().total).toBe(0);
  });
});
