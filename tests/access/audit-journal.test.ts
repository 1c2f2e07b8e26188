import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../src/access/audit.js';
import { auditIdOf } from '../../src/access/audit-chain.js';
import { seeingRecordedAudits } from '../../src/access/audit-index.js';
import { JournalReader, JournalWriter } from '../../src/access/audit-journal.js';
import { AuditWorker } from '../../src/access/audit-worker.js';
import { plainJsonCodec } from '../../src/store/codec.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { BASE, accessEvent, recordWhileWriting, searchIds, settledState } from './audit-fixtures.js';

/**
 * The audit trail through its journal: an event is answered for once it is in the journal
 * file, the audit thread stores it behind, and nothing that can see AuditEvents sees the lag.
 * After a crash, the next thread stores what the journal holds and the store does not, once.
 */

describe('the audit journal', () => {
  let dir: string;
  let journalDir: string;
  let store: SqliteStore;
  let trail: AuditWorker | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'audit-journal-'));
    journalDir = join(dir, 'journal');
    store = new SqliteStore({ path: join(dir, 'store.db') });
  });
  afterEach(async () => {
    await trail?.close();
    trail = undefined;
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const openTrail = async () => {
    trail = new AuditWorker(store.share!, { baseUrl: BASE, journal: { dir: journalDir, sync: false } });
    await trail.open();
    return trail;
  };
  const ndjsonFiles = () => (existsSync(journalDir) ? readdirSync(journalDir).filter((name) => name.endsWith('.ndjson')) : []);
  const journal = (generation: number, count: number, patient: string) => {
    const writer = new JournalWriter(journalDir, generation, { sync: false, rotateBytes: Infinity });
    for (let n = 0; n < count; n++) writer.append([accessEvent({ patients: [patient] })], new Date('2025-03-04T05:06:08.000Z'));
    writer.close();
  };

  it('answers once journaled; searches, reads and histories through seeingRecordedAudits see every event answered', async () => {
    const log = await openTrail();
    const seen = seeingRecordedAudits(store, log);
    let total = 0;
    const recordOne = async () => {
      await log.record(accessEvent());
      return ++total;
    };
    for (let round = 1; round <= 3; round++) {
      // More than one commit's worth (128), while this thread writes too.
      await recordWhileWriting(log, store, round, 200);
      total += 200;
      expect(await searchIds(seen, 'AuditEvent', `patient=r${round}p2`)).toHaveLength(40);
      // Each right after recording one more event, which it must see.
      let newest = await recordOne();
      expect((await seen.readCurrent('AuditEvent', auditIdOf(newest)))?.versionId).toBe(1);
      newest = await recordOne();
      expect((await seen.readVersion('AuditEvent', auditIdOf(newest), 1))?.versionId).toBe(1);
      newest = await recordOne();
      expect(await seen.countHistory({ resourceType: 'AuditEvent' })).toBe(newest);
      newest = await recordOne();
      expect((await seen.history({ limit: 5000 })).filter((v) => v.resourceType === 'AuditEvent')).toHaveLength(newest);
      newest = await recordOne();
      expect(await seen.count({ resourceTypes: ['AuditEvent'], where: [] })).toBe(newest);
    }
    await log.close();
    expect(await verifyAuditChain(store, plainJsonCodec)).toMatchObject({ ok: true });
    // Everything stored: no journal file is left.
    expect(ndjsonFiles()).toEqual([]);
  });

  it('a new thread stores what earlier ones journaled and did not store, once, and removes their files', async () => {
    journal(1, 12, 'before-crash');
    journal(2, 5, 'later-crash');
    const log = await openTrail();
    expect(ndjsonFiles()).toEqual([]);
    expect(await searchIds(store, 'AuditEvent', 'patient=before-crash')).toEqual(Array.from({ length: 12 }, (_, i) => auditIdOf(i + 1)));
    expect(await searchIds(store, 'AuditEvent', 'patient=later-crash')).toHaveLength(5);
    await log.record(accessEvent({ patients: ['after'] }));
    await log.close();
    trail = undefined;

    await openTrail();
    expect(await verifyAuditChain(store, plainJsonCodec)).toMatchObject({ ok: true, checked: 18 });
  });

  it('a commit that happened after its state was written is not stored again; one that did not happen is', async () => {
    journal(1, 10, 'crash');
    copyFileSync(join(journalDir, '1.ndjson'), join(dir, 'copy.ndjson'));
    await openTrail();
    await trail!.close();
    trail = undefined;
    const state = new JournalReader(journalDir).readState();
    // The last commit wrote its state before storing, as a crash right after it would leave it.
    expect(state.storing).toMatchObject({ through: { generation: 1, line: 10 }, id: auditIdOf(10) });

    // As if the process had died just after that commit, its file still there.
    copyFileSync(join(dir, 'copy.ndjson'), join(journalDir, '1.ndjson'));
    await openTrail();
    await trail!.close();
    trail = undefined;
    expect(await verifyAuditChain(store, plainJsonCodec)).toMatchObject({ ok: true, checked: 10 });

    // As if it had died before the commit (the last event is not there as the state says): the commit's lines are stored.
    copyFileSync(join(dir, 'copy.ndjson'), join(journalDir, '1.ndjson'));
    writeFileSync(join(journalDir, 'state.json'), JSON.stringify({ ...(state.stored && { stored: state.stored }), storing: { ...state.storing!, hash: '0'.repeat(64) } }));
    await openTrail();
    const again = 10 - (state.stored?.line ?? 0);
    expect(again).toBeGreaterThan(0);
    expect(await searchIds(store, 'AuditEvent', 'patient=crash')).toHaveLength(10 + again);
  });

  it('a line cut short by a crash is passed over and told; the rest are stored', async () => {
    journal(1, 3, 'whole');
    writeFileSync(join(journalDir, '1.ndjson'), '{"recorded":1741064768000,"event":{"at":"2025-', { flag: 'a' });
    const errors: string[] = [];
    trail = new AuditWorker(store.share!, { baseUrl: BASE, journal: { dir: journalDir, sync: false }, onError: (message) => errors.push(message) });
    await trail.open();
    expect(await searchIds(store, 'AuditEvent', 'patient=whole')).toHaveLength(3);
    expect(errors).toEqual([expect.stringMatching(/audit journal 1 line 4 cannot be read/)]);
  });

  it('answers wait while the thread is too far behind, and go as soon as it has caught up', async () => {
    trail = new AuditWorker(store.share!, { baseUrl: BASE, journal: { dir: journalDir, sync: false }, maxUnstored: 10 });
    await trail.open();
    // Another process holds the database's write lock: the thread cannot store anything.
    const blocker = new Database(join(dir, 'store.db'));
    blocker.exec('BEGIN IMMEDIATE');
    try {
      await Promise.all(Array.from({ length: 10 }, () => trail!.record(accessEvent({ patients: ['within'] }))));
      const over = trail.record(accessEvent({ patients: ['over'] }));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await settledState(over)).toBe('pending');
      blocker.exec('ROLLBACK');
      await over;
    } finally {
      if (blocker.inTransaction) blocker.exec('ROLLBACK');
      blocker.close();
    }
    expect(await searchIds(seeingRecordedAudits(store, trail), 'AuditEvent', 'patient=within,over')).toHaveLength(11);
  });

  it('fails the events it cannot journal, so their requests fail', async () => {
    writeFileSync(journalDir, 'not a folder');
    trail = new AuditWorker(store.share!, { baseUrl: BASE, journal: { dir: journalDir, sync: false } });
    await expect(trail.record(accessEvent())).rejects.toThrow();
    expect(await verifyAuditChain(store, plainJsonCodec)).toMatchObject({ ok: true, checked: 0 });
  });
});
