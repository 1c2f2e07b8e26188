import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, useServer } from './harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeEachStore('history', (open) => {
  const server = useServer(open, { defaultPageSize: 3 });

  it('instance history lists every version newest first, deletions included', async () => {
    const created = await server.create({ resourceType: 'Patient', gender: 'male' });
    await server.request({ method: 'PUT', url: `/fhir/Patient/${created.id}`, headers: FHIR_JSON, payload: { ...created, gender: 'female' } });
    await server.request({ method: 'DELETE', url: `/fhir/Patient/${created.id}` });
    const res = await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}/_history` });
    expect(res.statusCode).toBe(200);
    const bundle = res.json();
    expect(bundle.resourceType).toBe('Bundle');
    expect(bundle.type).toBe('history');
    expect(bundle.total).toBe(3);
    expect(bundle.entry.map((e: any) => e.request.method)).toEqual(['DELETE', 'PUT', 'POST']);
    expect(bundle.entry.map((e: any) => e.response.etag)).toEqual(['W/"3"', 'W/"2"', 'W/"1"']);
    expect(bundle.entry[0].resource).toBeUndefined();
    expect(bundle.entry[1].resource.gender).toBe('female');
    expect(bundle.entry[2].resource.gender).toBe('male');
    expect(bundle.entry[2].fullUrl).toBe(`http://fhir.test/fhir/Patient/${created.id}`);
  });

  it('history of an id that never existed is an empty bundle; of an unknown type a 404', async () => {
    const empty = await server.request({ method: 'GET', url: '/fhir/Patient/nobody-here/_history' });
    expect(empty.statusCode).toBe(200);
    expect(empty.json().total).toBe(0);
    expect((await server.request({ method: 'GET', url: '/fhir/Starship/_history' })).statusCode).toBe(404);
  });

  it('type history pages with _count and next links, and writes between pages skip or repeat nothing', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await server.create({ resourceType: 'Practitioner', active: i % 2 === 0 })).id);
    const seen: string[] = [];
    let url: string | undefined = '/fhir/Practitioner/_history?_count=3';
    let pages = 0;
    while (url) {
      const res = await server.request({ method: 'GET', url });
      expect(res.statusCode).toBe(200);
      const bundle = res.json();
      expect(bundle.total).toBe(7);
      seen.push(...bundle.entry.map((e: any) => e.resource.id));
      pages++;
      // Someone else writes while we page: the listing stays the one we started.
      await server.create({ resourceType: 'Practitioner', active: true });
      const next = bundle.link.find((l: any) => l.relation === 'next');
      url = next ? next.url.replace('http://fhir.test', '') : undefined;
    }
    expect(pages).toBe(3);
    expect(seen).toHaveLength(7);
    expect(new Set(seen)).toEqual(new Set(ids));
    expect(seen).toEqual([...ids].reverse());
  });

  it('_count uses the configured default and may be 0', async () => {
    for (let i = 0; i < 4; i++) await server.create({ resourceType: 'Device' });
    const res = await server.request({ method: 'GET', url: '/fhir/Device/_history' });
    expect(res.json().entry).toHaveLength(3);
    const zero = await server.request({ method: 'GET', url: '/fhir/Device/_history?_count=0' });
    expect(zero.json().total).toBe(4);
    // FHIR JSON has no empty arrays: no entries means no entry element.
    expect(zero.json()).not.toHaveProperty('entry');
  });

  it('_since keeps versions at or after the instant; a bad _since is a 400', async () => {
    await server.create({ resourceType: 'Location', name: 'before' });
    await sleep(15);
    const since = new Date().toISOString();
    await sleep(5);
    await server.create({ resourceType: 'Location', name: 'after' });
    const res = await server.request({ method: 'GET', url: `/fhir/Location/_history?_since=${encodeURIComponent(since)}` });
    expect(res.json().entry.map((e: any) => e.resource.name)).toEqual(['after']);
    const bad = await server.request({ method: 'GET', url: '/fhir/Location/_history?_since=yesterday' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().issue[0].expression).toEqual(['_since']);
  });

  it('system history spans types', async () => {
    const since = new Date().toISOString();
    const a = await server.create({ resourceType: 'Organization', name: 'Hospital Authority' });
    const b = await server.create({ resourceType: 'Endpoint', status: 'active', connectionType: { code: 'hl7-fhir-rest' }, payloadType: [{ text: 'any' }], address: 'https://example.org/fhir' });
    const res = await server.request({ method: 'GET', url: `/fhir/_history?_count=100&_since=${encodeURIComponent(since)}` });
    expect(res.statusCode).toBe(200);
    // Requests also leave AuditEvents in the trail, which a backend client's system history leaves out: auditors read it.
    const entries = res.json().entry.map((e: any) => e.resource);
    expect(entries.slice(0, 2).map((r: any) => r.id)).toEqual([b.id, a.id]);
    expect(entries.filter((r: any) => r.resourceType === 'AuditEvent')).toEqual([]);
  });

  it('a page token cannot be forged or replayed against another query', async () => {
    for (let i = 0; i < 4; i++) await server.create({ resourceType: 'Group', type: 'person', actual: true });
    const first = (await server.request({ method: 'GET', url: '/fhir/Group/_history?_count=2' })).json();
    const next = new URL(first.link.find((l: any) => l.relation === 'next').url);
    const token = next.searchParams.get('_page')!;
    const replayed = await server.request({ method: 'GET', url: `/fhir/Patient/_history?_count=2&_page=${encodeURIComponent(token)}` });
    expect(replayed.statusCode).toBe(400);
    const otherCount = await server.request({ method: 'GET', url: `/fhir/Group/_history?_count=3&_page=${encodeURIComponent(token)}` });
    expect(otherCount.statusCode).toBe(400);
    const tampered = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
    expect((await server.request({ method: 'GET', url: `/fhir/Group/_history?_count=2&_page=${encodeURIComponent(tampered)}` })).statusCode).toBe(400);
    expect((await server.request({ method: 'GET', url: `/fhir/Group/_history?_count=2&_page=${encodeURIComponent(token)}` })).statusCode).toBe(200);
  });
});
