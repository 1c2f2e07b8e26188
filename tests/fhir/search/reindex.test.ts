import { expect, it } from 'vitest';
import { reindexAll } from '../../../src/fhir/search/reindex.js';
import { plainJsonCodec } from '../../../src/store/codec.js';
import type { ResourceStore } from '../../../src/store/port.js';
import { describeEachStore } from '../../store/stores.js';
import { useServer } from '../../http/harness.js';

describeEachStore('reindex', (open) => {
  const server = useServer(open);

  async function total(store: ResourceStore, family: string): Promise<number> {
    return store.count({ resourceTypes: ['Patient'], where: [{ kind: 'entry', param: 'family', anyOf: [[{ slot: 0, field: 'value', op: 'eq', value: family }]] }] });
  }

  it('rebuilds the index of every current resource from its body', async () => {
    const created = [];
    for (let i = 0; i < 7; i++) created.push(await server.create({ resourceType: 'Patient', name: [{ family: 'Lau' }] }));
    // Simulate an index written under older definitions: empty for every resource.
    for (const p of created) await server.store.reindex('Patient', p.id, 1, { entries: [], sortKeys: {}, patients: [p.id] });
    expect(await total(server.store, 'lau')).toBe(0);
    const done = await reindexAll(server.store, plainJsonCodec);
    expect(done).toBeGreaterThanOrEqual(7);
    expect(await total(server.store, 'lau')).toBe(7);
  });

  it('leaves a resource alone when the version it read is no longer current', async () => {
    const p = await server.create({ resourceType: 'Patient', name: [{ family: 'Ho' }] });
    await server.request({ method: 'PUT', url: `/fhir/Patient/${p.id}`, headers: { 'content-type': 'application/fhir+json' }, payload: { ...p, name: [{ family: 'Ko' }] } });
    await server.store.reindex('Patient', p.id, 1, { entries: [{ param: 'family', values: [{ value: 'ho' }] }], sortKeys: {}, patients: [p.id] });
    expect(await total(server.store, 'ho')).toBe(0);
    expect(await total(server.store, 'ko')).toBe(1);
  });
});
