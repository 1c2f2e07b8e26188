import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, useServer } from './harness.js';

describeEachStore('concurrency', (open) => {
  const server = useServer(open);

  it('parallel updates with the same If-Match: exactly one wins, the rest get 412', async () => {
    const created = await server.create({ resourceType: 'Patient', active: true });
    const attempts = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        server.request({
          method: 'PUT',
          url: `/fhir/Patient/${created.id}`,
          headers: { ...FHIR_JSON, 'if-match': 'W/"1"' },
          payload: { ...created, gender: i % 2 ? 'male' : 'female', birthDate: `19${10 + i}` },
        }),
      ),
    );
    const statuses = attempts.map((r) => r.statusCode).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 412)).toHaveLength(11);
    const winner = attempts.find((r) => r.statusCode === 200)!.json();
    const read = (await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}` })).json();
    expect(read.meta.versionId).toBe('2');
    expect(read.birthDate).toBe(winner.birthDate);
  });

  it('parallel updates without If-Match all land, as consecutive versions', async () => {
    const created = await server.create({ resourceType: 'Patient' });
    const attempts = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        server.request({ method: 'PUT', url: `/fhir/Patient/${created.id}`, headers: FHIR_JSON, payload: { ...created, birthDate: `19${50 + i}` } }),
      ),
    );
    expect(attempts.every((r) => r.statusCode === 200)).toBe(true);
    const versions = attempts.map((r) => Number(r.json().meta.versionId)).sort((a, b) => a - b);
    expect(versions).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const history = (await server.request({ method: 'GET', url: `/fhir/Patient/${created.id}/_history?_count=50` })).json();
    expect(history.total).toBe(11);
  });

  it('parallel creates each get their own id', async () => {
    const results = await Promise.all(
      Array.from({ length: 25 }, (_, i) => server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: { resourceType: 'Patient', birthDate: `20${String(i).padStart(2, '0')}` } })),
    );
    expect(results.every((r) => r.statusCode === 201)).toBe(true);
    expect(new Set(results.map((r) => r.json().id)).size).toBe(25);
  });

  it('parallel update-as-create of one new id: one creates, the others update after it', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, () => server.request({ method: 'PUT', url: '/fhir/Patient/race-1', headers: FHIR_JSON, payload: { resourceType: 'Patient', id: 'race-1' } })),
    );
    expect(results.every((r) => r.statusCode === 200 || r.statusCode === 201)).toBe(true);
    expect(results.map((r) => Number(r.json().meta.versionId)).sort()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('parallel conditional creates with the same criteria create one resource', async () => {
    const criteria = `identifier=${encodeURIComponent('urn:ehr|0000-0000-0001')}`;
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        server.request({
          method: 'POST',
          url: '/fhir/Patient',
          headers: { ...FHIR_JSON, 'if-none-exist': criteria },
          payload: { resourceType: 'Patient', identifier: [{ system: 'urn:ehr', value: '0000-0000-0001' }] },
        }),
      ),
    );
    expect(results.filter((r) => r.statusCode === 201)).toHaveLength(1);
    expect(new Set(results.map((r) => r.json().id)).size).toBe(1);
  });
});
