import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from 'fhir/r4.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, verifyAuditChain } from '../../src/access/audit.js';
import { AUDIT_HASH, auditIdOf, canonicalJson } from '../../src/access/audit-chain.js';
import { plainJsonCodec } from '../../src/store/codec.js';
import { openMongoStore } from '../../src/store/mongo/mongo-store.js';
import type { ResourceStore, WriteRequest } from '../../src/store/port.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { describeEachStore, dropDatabase, freshDatabaseName, mongoUri } from '../store/stores.js';
import { BASE, accessEvent, account, bodyOf, wrapStore } from './audit-fixtures.js';

/** The audit trail's hash chain: verification, tampering through the store port, resuming, concurrency. */

const verify = (store: ResourceStore) => verifyAuditChain(store, plainJsonCodec);

/** Rewrites a stored record through the store port (a new version), as someone bypassing HTTP would. */
const rewrite = (store: ResourceStore, id: string, change: (event: AuditEvent) => AuditEvent) =>
  store.readCurrent('AuditEvent', id).then((current) =>
    store.write({ resourceType: 'AuditEvent', id, renderBody: () => JSON.stringify(change(bodyOf<AuditEvent>(current))) }),
  );

describeEachStore('audit chain', (open) => {
  let store: ResourceStore;
  let log: AuditLog;
  beforeEach(async () => {
    store = await open();
    log = new AuditLog(store, plainJsonCodec, { baseUrl: BASE });
  });
  afterEach(async () => {
    await store.close();
  });

  async function recordMany(n: number, from = 0): Promise<void> {
    for (let i = from; i < from + n; i++) await log.record(accessEvent({ patients: [`p${i}`] }));
  }

  it('an empty trail verifies', async () => {
    expect(await verify(store)).toEqual({ ok: true, checked: 0, head: { sequence: 0, hash: '0'.repeat(64) } });
  });

  it('numbers records 1, 2, 3 (ids in chain order), links each to the previous hash, and verifies', async () => {
    await recordMany(12);
    const result = await verify(store);
    expect(result).toMatchObject({ ok: true, checked: 12, head: { sequence: 12 } });
    const first = bodyOf<AuditEvent>(await store.readCurrent('AuditEvent', auditIdOf(1)));
    const second = bodyOf<AuditEvent>(await store.readCurrent('AuditEvent', auditIdOf(2)));
    const ext = (e: AuditEvent, suffix: string) => e.extension!.find((x) => x.url.endsWith(suffix))?.valueString;
    expect(first.id).toBe('0000000000000001');
    expect(ext(first, 'audit-sequence')).toBe('1');
    expect(ext(first, 'audit-previous-hash')).toBe('0'.repeat(64));
    expect(ext(second, 'audit-previous-hash')).toBe(ext(first, 'audit-hash'));
    expect(ext(second, 'audit-hash')).toMatch(/^[0-9a-f]{64}$/);
    expect(result.head!.hash).toBe(ext(bodyOf<AuditEvent>(await store.readCurrent('AuditEvent', auditIdOf(12))), 'audit-hash'));
  });

  it('detects an edited record, even one whose hash the editor recomputed', async () => {
    await recordMany(6);
    await rewrite(store, auditIdOf(3), (e) => ({ ...e, outcome: '4' }));
    expect(await verify(store)).toMatchObject({ ok: false, checked: 2, firstBroken: { id: auditIdOf(3), reason: expect.stringMatching(/changed/) } });
  });

  it('detects an edited newest record', async () => {
    await recordMany(4);
    await rewrite(store, auditIdOf(4), (e) => ({ ...e, agent: [{ requestor: true, who: { display: 'someone else' } }] }));
    expect(await verify(store)).toMatchObject({ ok: false, firstBroken: { id: auditIdOf(4), reason: expect.stringMatching(/changed/) } });
  });

  it('detects a deleted record in the middle, and a deleted newest record', async () => {
    await recordMany(5);
    await store.write({ resourceType: 'AuditEvent', id: auditIdOf(5) });
    expect(await verify(store)).toMatchObject({ ok: false, checked: 4, firstBroken: { id: auditIdOf(5), reason: expect.stringMatching(/deleted/) } });
    await store.write({ resourceType: 'AuditEvent', id: auditIdOf(2) });
    expect(await verify(store)).toMatchObject({ ok: false, checked: 1, firstBroken: { id: auditIdOf(2), reason: expect.stringMatching(/sequence gap.*missing/) } });
  });

  it('detects inserted records: a foreign id, and a replayed record appended at the end', async () => {
    await recordMany(4);
    const copy = bodyOf<AuditEvent>(await store.readCurrent('AuditEvent', auditIdOf(2)));
    await store.write({ resourceType: 'AuditEvent', id: auditIdOf(5), renderBody: () => JSON.stringify({ ...copy, id: auditIdOf(5) }) });
    expect(await verify(store)).toMatchObject({ ok: false, checked: 4, firstBroken: { id: auditIdOf(5) } });

    const other = await open();
    try {
      const otherLog = new AuditLog(other, plainJsonCodec, { baseUrl: BASE });
      for (let i = 0; i < 3; i++) await otherLog.record(accessEvent());
      await other.write({ resourceType: 'AuditEvent', id: 'x-forged', renderBody: () => JSON.stringify({ ...copy, id: 'x-forged' }) });
      expect(await verify(other)).toMatchObject({ ok: false, checked: 3, firstBroken: { id: 'x-forged', reason: expect.stringMatching(/not a record of the chain/) } });
    } finally {
      await other.close();
    }
  });

  it('detects content changed beneath the store (a doctored copy of the trail, every record a first version)', async () => {
    await recordMany(5);
    const copy = await open();
    try {
      for (let seq = 1; seq <= 5; seq++) {
        const event = bodyOf<AuditEvent>(await store.readCurrent('AuditEvent', auditIdOf(seq)));
        const doctored = seq === 3 ? { ...event, entity: [] } : event;
        await copy.write({ resourceType: 'AuditEvent', id: auditIdOf(seq), renderBody: () => JSON.stringify(doctored) });
      }
      expect(await verify(copy)).toMatchObject({ ok: false, checked: 2, firstBroken: { id: auditIdOf(3), reason: expect.stringMatching(/hash does not match/) } });
    } finally {
      await copy.close();
    }
  });

  it('a new log on the same store (a restart) continues the chain after the last stored record, also after the newest was deleted', async () => {
    await recordMany(3);
    const restarted = new AuditLog(store, plainJsonCodec, { baseUrl: BASE });
    expect((await restarted.open()).sequence).toBe(3);
    await restarted.record(accessEvent());
    expect(await verify(store)).toMatchObject({ ok: true, checked: 4 });
    // A tombstone keeps its number: the next record never reuses it.
    await store.write({ resourceType: 'AuditEvent', id: auditIdOf(4) });
    const again = new AuditLog(store, plainJsonCodec, { baseUrl: BASE });
    await again.record(accessEvent());
    expect(await store.readCurrent('AuditEvent', auditIdOf(5))).toMatchObject({ versionId: 1, deleted: false });
    expect((await verify(store)).firstBroken?.id).toBe(auditIdOf(4));
  });

  it('200 concurrent records all resolve, are chained in order without gaps, and share a few store transactions', async () => {
    let transactions = 0;
    const counting = wrapStore(store, {
      writeMany: (requests: WriteRequest[]) => {
        transactions++;
        return store.writeMany(requests);
      },
    });
    const concurrent = new AuditLog(counting, plainJsonCodec, { baseUrl: BASE });
    await Promise.all(Array.from({ length: 200 }, (_, i) => concurrent.record(accessEvent({ patients: [`p${i}`], principal: account(i % 7) }))));
    expect(await verify(store)).toMatchObject({ ok: true, checked: 200, head: { sequence: 200 } });
    expect(transactions).toBeLessThan(10);
    // Every caller's event is in the trail exactly once.
    const patients = new Set<string>();
    for (let seq = 1; seq <= 200; seq++) {
      const event = bodyOf<AuditEvent>(await store.readCurrent('AuditEvent', auditIdOf(seq)));
      patients.add(event.entity![0]!.what!.reference!);
    }
    expect(patients.size).toBe(200);
  });

  it('verifies a live trail: records appended while the walk runs are checked, not reported as a mismatch', async () => {
    await recordMany(5);
    let appends = 0;
    // A running server appends between the walk's last page and its count of versions.
    const live = wrapStore(store, {
      countHistory: async (query: Parameters<ResourceStore['countHistory']>[0]) => {
        if (appends++ < 2) await recordMany(3, 100 + 3 * appends);
        return store.countHistory(query);
      },
    });
    expect(await verify(live)).toMatchObject({ ok: true, checked: 11, head: { sequence: 11 } });
    // An edit is still found when records are appended meanwhile.
    await rewrite(store, auditIdOf(2), (e) => ({ ...e, outcome: '8' }));
    appends = 0;
    expect(await verify(live)).toMatchObject({ ok: false, firstBroken: { id: auditIdOf(2), reason: expect.stringMatching(/changed/) } });
  });

  it('two logs on one store (two server processes) interleave into one valid chain', async () => {
    const a = new AuditLog(store, plainJsonCodec, { baseUrl: BASE, maxBatch: 7 });
    const b = new AuditLog(store, plainJsonCodec, { baseUrl: BASE, maxBatch: 5 });
    await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).record(accessEvent({ patients: [`p${i}`] }))));
    expect(await verify(store)).toMatchObject({ ok: true, checked: 60 });
  });
});

describe('canonical JSON', () => {
  it('sorts keys at every level and keeps array order, so equal content hashes equally', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 'x', c: null }, 2], e: undefined })).toBe('{"a":[{"c":null,"d":"x"},2],"b":1}');
    expect(canonicalJson({ é: 1, Z: [undefined, 'q"'], a: { '10': true, '9': false, _: 1.5 } })).toBe('{"Z":[null,"q\\""],"a":{"10":true,"9":false,"_":1.5},"é":1}');
    expect(AUDIT_HASH).toBe('https://ehealth.example.hk/fhir/StructureDefinition/audit-hash');
  });

  it('gives the same text whatever order objects of one shape or another list their keys in', () => {
    const a = { z: 1, y: { b: [1, { d: 2, c: 3 }], a: 'x' } };
    const b = { y: { a: 'x', b: [1, { c: 3, d: 2 }] }, z: 1 };
    for (let i = 0; i < 3; i++) expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(b)).toBe('{"y":{"a":"x","b":[1,{"c":3,"d":2}]},"z":1}');
    // Keys that contain the separator of remembered shapes are not mistaken for other keys.
    expect(canonicalJson({ a: 1, b: 2 })).toBe('{"a":1,"b":2}');
    expect(canonicalJson({ 'a\u0000b': 1 })).toBe('{"a\\u0000b":1}');
    expect(canonicalJson({ 'a\u0000b': 3, c: 4 })).toBe('{"a\\u0000b":3,"c":4}');
    expect(canonicalJson({ a: 5, 'b\u0000c': 6 })).toBe('{"a":5,"b\\u0000c":6}');
  });
});

/** Closing and reopening the same database, as a restarted server does. */
const reopenable: { name: string; make: () => { open: () => Promise<ResourceStore>; cleanup: () => Promise<void> } }[] = [
  {
    name: 'sqlite',
    make: () => {
      const dir = mkdtempSync(join(tmpdir(), 'audit-reopen-'));
      return { open: async () => new SqliteStore({ path: join(dir, 'store.db') }), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  ...(mongoUri
    ? [
        {
          name: 'mongo',
          make: () => {
            const dbName = freshDatabaseName();
            return { open: () => openMongoStore({ uri: mongoUri!, dbName }), cleanup: () => dropDatabase(mongoUri!, dbName) };
          },
        },
      ]
    : []),
];

describe.each(reopenable)('audit chain across a restart ($name)', ({ make }) => {
  it('resumes from the last stored record after the store is closed and reopened', async () => {
    const { open, cleanup } = make();
    try {
      let store = await open();
      const first = new AuditLog(store, plainJsonCodec, { baseUrl: BASE });
      await Promise.all(Array.from({ length: 10 }, () => first.record(accessEvent())));
      await store.close();

      store = await open();
      const resumed = new AuditLog(store, plainJsonCodec, { baseUrl: BASE });
      await Promise.all(Array.from({ length: 5 }, () => resumed.record(accessEvent())));
      expect(await verifyAuditChain(store, plainJsonCodec)).toMatchObject({ ok: true, checked: 15, head: { sequence: 15 } });
      await store.close();
    } finally {
      await cleanup();
    }
  });
});
