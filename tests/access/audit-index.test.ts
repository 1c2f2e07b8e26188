import { afterEach, beforeEach, expect, it } from 'vitest';
import { AuditLog, verifyAuditChain } from '../../src/access/audit.js';
import { AuditIndexer, seeingRecordedAudits } from '../../src/access/audit-index.js';
import { auditIdOf } from '../../src/access/audit-chain.js';
import { plainJsonCodec } from '../../src/store/codec.js';
import type { ResourceStore } from '../../src/store/port.js';
import { describeEachStore } from '../store/stores.js';
import { BASE, accessEvent, searchIds, wrapStore } from './audit-fixtures.js';

/** The audit trail's search index written behind it: invisible to searches, recovered after a crash. */

/** An indexer that only indexes when asked (or at 10,000 waiting events). */
const idleIndexer = (store: ResourceStore) => new AuditIndexer(store, plainJsonCodec, { localBase: BASE, delayMs: 60_000, maxPending: 10_000 });

describeEachStore('audit index written behind the trail', (open) => {
  let store: ResourceStore;
  beforeEach(async () => {
    store = await open();
  });
  afterEach(async () => {
    await store.close();
  });

  it('stores each event with the request, and indexes it only afterwards', async () => {
    const indexer = idleIndexer(store);
    const log = new AuditLog(store, plainJsonCodec, { baseUrl: BASE, indexer });
    await Promise.all([1, 2, 3].map((n) => log.record(accessEvent({ patients: [`p${n}`] }))));

    // The records are there and chained...
    expect((await store.readCurrent('AuditEvent', auditIdOf(3)))?.versionId).toBe(1);
    expect(await verifyAuditChain(store, plainJsonCodec)).toMatchObject({ ok: true, checked: 3 });
    // ...but not yet findable through the store's own index.
    expect(await searchIds(store, 'AuditEvent', 'patient=p2')).toEqual([]);

    await indexer.catchUp();
    expect(await searchIds(store, 'AuditEvent', 'patient=p2')).toEqual([auditIdOf(2)]);
    expect(await searchIds(store, 'AuditEvent', 'date=ge2020')).toHaveLength(3);
  });

  it('a search or count that can reach AuditEvents sees every event recorded before it', async () => {
    const indexer = idleIndexer(store);
    const log = new AuditLog(store, plainJsonCodec, { baseUrl: BASE, indexer });
    const seen = seeingRecordedAudits(store, indexer);
    for (let n = 0; n < 25; n++) await log.record(accessEvent({ patients: [`p${n % 5}`] }));

    expect(await searchIds(seen, 'AuditEvent', 'patient=p3')).toEqual([4, 9, 14, 19, 24].map(auditIdOf));
    await log.record(accessEvent({ patients: ['p3'] }));
    expect(await seen.count({ resourceTypes: ['AuditEvent'], where: [{ kind: 'entry', param: 'patient', anyOf: [[{ slot: 0, field: 'value', op: 'eq', value: 'p3' }]] }] })).toBe(6);

    // Through AuditEvents from another type: Patient?_has:AuditEvent:patient:outcome=0.
    await store.write({ resourceType: 'Patient', id: 'p1', renderBody: () => JSON.stringify({ resourceType: 'Patient', id: 'p1' }), index: { entries: [], sortKeys: {}, patients: ['p1'] } });
    await log.record(accessEvent({ patients: ['p1'] }));
    const viaAudits = await seen.search({
      resourceTypes: ['Patient'],
      where: [{ kind: 'referencedBy', sourceType: 'AuditEvent', param: 'patient', where: [{ kind: 'entry', param: 'outcome', anyOf: [[{ slot: 0, field: 'value', op: 'eq', value: '0' }]] }] }],
      sort: [],
      limit: 10,
    });
    expect(viaAudits.map((hit) => hit.version.id)).toEqual(['p1']);
  });

  it('indexes by itself shortly after recording', async () => {
    const indexer = new AuditIndexer(store, plainJsonCodec, { localBase: BASE, delayMs: 20 });
    const log = new AuditLog(store, plainJsonCodec, { baseUrl: BASE, indexer });
    await log.record(accessEvent({ patients: ['late'] }));
    const deadline = Date.now() + 5_000;
    while ((await searchIds(store, 'AuditEvent', 'patient=late')).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await searchIds(store, 'AuditEvent', 'patient=late')).toEqual([auditIdOf(1)]);
  });

  it('after a crash, the next start indexes what was recorded but not indexed', async () => {
    const crashed = new AuditLog(store, plainJsonCodec, { baseUrl: BASE, indexer: idleIndexer(store) });
    for (let n = 0; n < 12; n++) await crashed.record(accessEvent({ patients: [`p${n}`] }));
    expect(await searchIds(store, 'AuditEvent', 'date=ge2020')).toEqual([]);

    const indexer = idleIndexer(store);
    const restarted = new AuditLog(store, plainJsonCodec, { baseUrl: BASE, indexer });
    await restarted.open();
    expect(await searchIds(store, 'AuditEvent', 'date=ge2020')).toHaveLength(12);
    expect(await searchIds(store, 'AuditEvent', 'patient=p11')).toEqual([auditIdOf(12)]);
    // Nothing left to do at the next start; the chain goes on where it ended.
    expect(await idleIndexer(store).recover()).toBe(0);
    await restarted.record(accessEvent());
    expect(await verifyAuditChain(store, plainJsonCodec)).toMatchObject({ ok: true, checked: 13 });
  });

  it('keeps events whose indexing failed, and indexes them on the next try', async () => {
    let failures = 1;
    const flaky = wrapStore(store, {
      reindex: (...args: Parameters<ResourceStore['reindex']>) => (failures-- > 0 ? Promise.reject(new Error('disk full')) : store.reindex(...args)),
    });
    const indexer = idleIndexer(flaky);
    const log = new AuditLog(store, plainJsonCodec, { baseUrl: BASE, indexer });
    await log.record(accessEvent({ patients: ['p1'] }));
    await expect(indexer.catchUp()).rejects.toThrow('disk full');
    await log.record(accessEvent({ patients: ['p1'] }));
    await indexer.catchUp();
    expect(await searchIds(store, 'AuditEvent', 'patient=p1')).toEqual([auditIdOf(1), auditIdOf(2)]);
  });
});
