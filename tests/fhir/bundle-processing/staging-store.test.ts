import { afterAll, beforeAll, expect, it } from 'vitest';
import { StagingStore } from '../../../src/fhir/bundle-processing/staging-store.js';
import { plainJsonCodec } from '../../../src/store/codec.js';
import { VersionConflictError, type ResourceStore, type WriteRequest } from '../../../src/store/port.js';
import { describeEachStore } from '../../store/stores.js';

/** A transaction's staging overlay: buffered writes, visible to its own reads, stored all at once. */

const body = (id: string, extra: Record<string, unknown> = {}) => (versionId: number, lastUpdated: number) =>
  JSON.stringify({ resourceType: 'Patient', id, meta: { versionId: String(versionId), lastUpdated: new Date(lastUpdated).toISOString() }, ...extra });
const write = (id: string, expectedVersion?: number | null, extra: Record<string, unknown> = {}): WriteRequest => ({
  resourceType: 'Patient',
  id,
  renderBody: body(id, extra),
  index: { entries: [{ param: 'gender', values: [{ system: null, value: String(extra.gender ?? 'unknown') }] }], sortKeys: {}, patients: [] },
  ...(expectedVersion !== undefined && { expectedVersion }),
});

describeEachStore('staging overlay of a transaction', (open) => {
  let store: ResourceStore;
  beforeAll(async () => {
    store = await open();
  });
  afterAll(async () => store.close());

  it('its reads see its writes; the store sees nothing until the commit, then every write with the commit time in the body', async () => {
    await store.write(write('stage-a'));
    const staging = new StagingStore(store, plainJsonCodec);
    const staged = await staging.write(write('stage-a', 1, { gender: 'female' }));
    await staging.write(write('stage-b', null));
    expect(staged.versionId).toBe(2);
    expect((await staging.readCurrent('Patient', 'stage-a'))!.versionId).toBe(2);
    expect((await staging.readVersion('Patient', 'stage-a', 1))!.versionId).toBe(1);
    expect((await store.readCurrent('Patient', 'stage-a'))!.versionId).toBe(1);
    expect(await store.readCurrent('Patient', 'stage-b')).toBeUndefined();
    await expect(staging.write(write('stage-b', null))).rejects.toBeInstanceOf(VersionConflictError);

    await new Promise((r) => setTimeout(r, 5));
    const committed = await staging.commit();
    expect(committed.map((v) => `${v.id}/${v.versionId}`)).toEqual(['stage-a/2', 'stage-b/1']);
    for (const version of committed) {
      const stored = (await store.readCurrent('Patient', version.id))!;
      expect(JSON.parse(stored.body!).meta).toEqual({ versionId: String(version.versionId), lastUpdated: new Date(stored.lastUpdated).toISOString() });
    }
    expect(JSON.parse((await store.readCurrent('Patient', 'stage-a'))!.body!).gender).toBe('female');
    const found = await store.search({ resourceTypes: ['Patient'], where: [{ kind: 'entry', param: 'gender', anyOf: [[{ slot: 0, field: 'value', op: 'eq', value: 'female' }]] }], sort: [], limit: 10 });
    expect(found.map((h) => h.version.id)).toEqual(['stage-a']);
  });

  it('a create of an id the store already holds fails the commit whole (creates are not looked up before it)', async ({ skip }) => {
    if (!store.atomicWriteMany) skip();
    await store.write(write('taken', undefined, { gender: 'male' }));
    const staging = new StagingStore(store, plainJsonCodec);
    await staging.write(write('fresh-1', null));
    expect((await staging.write(write('taken', null, { gender: 'female' }))).versionId).toBe(1);
    await expect(staging.commit()).rejects.toBeInstanceOf(VersionConflictError);
    expect(await store.readCurrent('Patient', 'fresh-1')).toBeUndefined();
    const kept = (await store.readCurrent('Patient', 'taken'))!;
    expect([kept.versionId, JSON.parse(kept.body!).gender]).toEqual([1, 'male']);
  });

  it('a write by someone else between staging and commit fails the commit, and nothing of it is stored', async ({ skip }) => {
    if (!store.atomicWriteMany) skip();
    await store.write(write('race-a'));
    const staging = new StagingStore(store, plainJsonCodec);
    await staging.write(write('race-new', null));
    await staging.write(write('race-a', undefined, { gender: 'male' }));
    await store.write(write('race-a', undefined, { gender: 'other' }));
    await expect(staging.commit()).rejects.toBeInstanceOf(VersionConflictError);
    expect(await store.readCurrent('Patient', 'race-new')).toBeUndefined();
    expect((await store.readCurrent('Patient', 'race-a'))!.versionId).toBe(2);
  });

  it('a large transaction stores the index of every write, early and late ones alike', async () => {
    // Past the first thousand writes the overlay keeps each index as text until the commit.
    const staging = new StagingStore(store, plainJsonCodec);
    const total = 1200;
    for (let i = 0; i < total; i++) await staging.write(write(`bulk-${i}`, null, { gender: i % 2 === 0 ? 'female' : 'male' }));
    await staging.commit();
    const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `bulk-${from + i}`);
    const count = (gender: string, from: number, to: number) =>
      store.count({ resourceTypes: ['Patient'], where: [{ kind: 'id', ids: ids(from, to) }, { kind: 'entry', param: 'gender', anyOf: [[{ slot: 0, field: 'value', op: 'eq', value: gender }]] }] });
    expect([await count('female', 0, 1000), await count('male', 0, 1000)]).toEqual([500, 500]);
    expect([await count('female', 1000, total), await count('male', 1000, total)]).toEqual([100, 100]);
  });
});
