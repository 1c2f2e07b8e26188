import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, verifyAuditChain } from '../../src/access/audit.js';
import { AuditIndexer, seeingRecordedAudits } from '../../src/access/audit-index.js';
import { auditIdOf } from '../../src/access/audit-chain.js';
import { AuditWorker } from '../../src/access/audit-worker.js';
import { plainJsonCodec } from '../../src/store/codec.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { patientWrite } from '../store/sharing-fixtures.js';
import { BASE, accessEvent, recordWhileWriting, searchIds } from './audit-fixtures.js';

/**
 * The audit trail written on its own thread, over the request thread's database file: the
 * same chain, indexed in the commit that stores each event or a moment behind it, alongside the
 * request thread's writes.
 */

describe('the audit trail on its own thread', () => {
  let dir: string;
  let store: SqliteStore;
  let trail: AuditWorker | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'audit-worker-'));
    store = new SqliteStore({ path: join(dir, 'store.db') });
  });
  afterEach(async () => {
    await trail?.close();
    trail = undefined;
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const openTrail = async (indexBehind = false) => {
    trail = new AuditWorker(store.share!, { baseUrl: BASE, indexBehind });
    await trail.open();
    return trail;
  };

  it('stores every event before answering, chained and already searchable, while this thread writes too', async () => {
    const log = await openTrail();
    const recorded: Promise<void>[] = [];
    const written: Promise<unknown>[] = [];
    for (let n = 0; n < 300; n++) {
      recorded.push(log.record(accessEvent({ patients: [`p${n % 7}`] })));
      written.push(store.write(patientWrite(`pt${n}`)));
      if (n % 25 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all([...recorded, ...written]);

    expect(await verifyAuditChain(store, plainJsonCodec)).toMatchObject({ ok: true, checked: 300, head: { sequence: 300 } });
    // Found through the index at once: nothing to wait for.
    expect(await searchIds(store, 'AuditEvent', 'patient=p3')).toHaveLength(43);
    expect(await searchIds(store, 'AuditEvent', 'date=ge2020')).toHaveLength(300);
    expect((await store.readCurrent('Patient', 'pt299'))?.versionId).toBe(1);

    await log.record(accessEvent({ patients: ['late'] }));
    expect(await searchIds(store, 'AuditEvent', 'patient=late')).toEqual([auditIdOf(301)]);
  });

  it('continues the chain this thread began, and indexes what a crash left unindexed behind it', async () => {
    // An earlier server wrote the trail itself, its index behind it, and stopped before indexing.
    const idle = new AuditIndexer(store, plainJsonCodec, { localBase: BASE, delayMs: 60_000, maxPending: 10_000 });
    const before = new AuditLog(store, plainJsonCodec, { baseUrl: BASE, indexer: idle });
    await before.open();
    for (let n = 0; n < 5; n++) await before.record(accessEvent({ patients: ['earlier'] }));
    expect(await searchIds(store, 'AuditEvent', 'patient=earlier')).toEqual([]);

    const log = await openTrail();
    expect(await searchIds(store, 'AuditEvent', 'patient=earlier')).toHaveLength(5);
    await Promise.all([1, 2, 3].map(() => log.record(accessEvent({ patients: ['later'] }))));
    expect(await verifyAuditChain(store, plainJsonCodec)).toMatchObject({ ok: true, checked: 8 });
    expect(await searchIds(store, 'AuditEvent', 'patient=later')).toEqual([6, 7, 8].map(auditIdOf));
  });

  it('resumes after a restart, and closing waits for what was handed over', async () => {
    const first = await openTrail();
    const pending = Array.from({ length: 40 }, () => first.record(accessEvent()));
    await first.close();
    await Promise.all(pending);
    await expect(first.record(accessEvent())).rejects.toThrow(/could not be written/);

    const second = await openTrail();
    await second.record(accessEvent());
    expect(await verifyAuditChain(store, plainJsonCodec)).toMatchObject({ ok: true, checked: 41 });
  });

  it('indexing behind the trail: a search through seeingRecordedAudits waits for every event answered so far', async () => {
    const log = await openTrail(true);
    const seen = seeingRecordedAudits(store, log);
    for (let round = 1; round <= 3; round++) {
      // More than one index chunk (64) per round, while this thread writes too.
      await recordWhileWriting(log, store, round, 150);
      expect(await searchIds(seen, 'AuditEvent', `patient=r${round}p2`)).toHaveLength(30);
      expect(await searchIds(seen, 'AuditEvent', 'date=ge2020')).toHaveLength(150 * round);
    }
    // Nothing new recorded: answered without asking the thread.
    await log.catchUp();
    expect(await verifyAuditChain(store, plainJsonCodec)).toMatchObject({ ok: true, checked: 450 });
  });

  it('indexing behind the trail: closing indexes what was still waiting', async () => {
    const log = await openTrail(true);
    await Promise.all(Array.from({ length: 30 }, () => log.record(accessEvent({ patients: ['closing'] }))));
    await log.close();
    expect(await searchIds(store, 'AuditEvent', 'patient=closing')).toHaveLength(30);
  });

  it('fails the events it cannot write (here: a store it cannot open), so their requests fail', async () => {
    const broken = new AuditWorker({ kind: 'sqlite', settings: { ...(store.share!.settings as object), path: dir } }, { baseUrl: BASE });
    await expect(broken.open()).rejects.toThrow(/the audit trail could not be written/);
    await expect(broken.record(accessEvent())).rejects.toThrow(/the audit trail could not be written/);
    await broken.close();
  });
});
