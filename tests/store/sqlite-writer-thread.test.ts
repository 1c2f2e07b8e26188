import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VersionConflictError, type StoredVersion, type WriteRequest } from '../../src/store/port.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { patientWrite } from './sharing-fixtures.js';

/**
 * Large writeManys of plain-data bodies (bundles) go to the store's writer thread: the same
 * results, versions and index as written here, all or nothing.
 */

const STAGED_AT = Date.parse('2020-01-01T00:00:00.000Z');

/** A write as a transaction stages it: the body rendered for version `expected + 1` at STAGED_AT. */
function stagedWrite(id: string, family: string, expected: number | null = null): WriteRequest {
  const json = JSON.stringify({ resourceType: 'Patient', id, meta: { versionId: String((expected ?? 0) + 1), lastUpdated: new Date(STAGED_AT).toISOString() }, name: [{ family }] });
  return { ...patientWrite(id, family), expectedVersion: expected, rendered: { json, lastUpdated: STAGED_AT } };
}

describe('the SQLite writer thread', () => {
  let dir: string;
  let store: SqliteStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'writer-thread-'));
    store = new SqliteStore({ path: join(dir, 'store.db'), writerThread: true });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const families = async (family: string) =>
    (await store.search({ resourceTypes: ['Patient'], where: [{ kind: 'entry', param: 'family', anyOf: [[{ slot: 0, field: 'value', op: 'eq', value: family }]] }], sort: [{ param: '_id', descending: false }], limit: 1000 })).map((hit) => hit.version.id);

  it('writes a bundle-sized writeMany there: stamped at commit, readable and searchable here', async () => {
    const before = Date.now();
    const stored = await store.writeMany(Array.from({ length: 50 }, (_, i) => stagedWrite(`p${String(i).padStart(2, '0')}`, 'wong')));
    expect(stored).toHaveLength(50);
    for (const version of stored) {
      expect(version.versionId).toBe(1);
      expect(version.lastUpdated).toBeGreaterThanOrEqual(before);
      const body = JSON.parse(version.body!) as { meta: { lastUpdated: string } };
      expect(body.meta.lastUpdated).toBe(new Date(version.lastUpdated).toISOString());
      expect((await store.readCurrent('Patient', version.id))?.body).toBe(version.body);
    }
    expect(await families('wong')).toHaveLength(50);

    // Second versions, pinned to the first: the thread checks the pins as this thread would.
    const updated = await store.writeMany(Array.from({ length: 50 }, (_, i) => stagedWrite(`p${String(i).padStart(2, '0')}`, 'lee', 1)));
    expect(updated.map((v) => v.versionId)).toEqual(Array(50).fill(2));
    expect(await families('wong')).toEqual([]);
    expect(await families('lee')).toHaveLength(50);
  });

  it('stores all or nothing: a stale pin in the 25th write fails the whole writeMany with a VersionConflictError', async () => {
    await store.write(patientWrite('taken'));
    const writes = Array.from({ length: 30 }, (_, i) => (i === 24 ? stagedWrite('taken', 'ho', null) : stagedWrite(`q${i}`, 'ho')));
    const failure = await store.writeMany(writes).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(VersionConflictError);
    expect(failure).toMatchObject({ resourceType: 'Patient', id: 'taken', currentVersion: 1 });
    expect(await families('ho')).toEqual([]);
    expect(await store.readCurrent('Patient', 'q0')).toBeUndefined();
  });

  it('leaves this thread free meanwhile: it waits there for a write lock that only this thread can let go', async () => {
    // The thread is started by the first writeMany it takes.
    await store.writeMany(Array.from({ length: 20 }, (_, i) => stagedWrite(`w${i}`, 'warm')));
    // Another connection, on this thread, holds the database's write lock. Committed here, the
    // writeMany would block this thread in SQLite's busy wait, so the lock could not be let go
    // before the busy timeout, and the writeMany would fail; on the writer thread it waits for
    // the lock while this thread goes on, lets go, and sees the writeMany through.
    const holder = new Database(join(dir, 'store.db'));
    holder.exec('BEGIN IMMEDIATE');
    let settled = false;
    const writing = store.writeMany(Array.from({ length: 1000 }, (_, i) => stagedWrite(`t${i}`, 'yip')));
    void writing.then(() => (settled = true), () => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(settled).toBe(false);
    holder.exec('COMMIT');
    holder.close();
    expect(await writing).toHaveLength(1000);
    expect(await families('yip')).toHaveLength(1000);
  });

  it('writes single pinned writes there too while it is busy, each answered on its own', async () => {
    await store.write(patientWrite('exists'));
    const bundle = store.writeMany(Array.from({ length: 30 }, (_, i) => stagedWrite(`b${i}`, 'bundle')));
    const outcomes = await Promise.allSettled([stagedWrite('n1', 'kwok'), stagedWrite('exists', 'kwok'), stagedWrite('n2', 'kwok')].map((w) => store.write(w)));
    await bundle;
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(VersionConflictError);
    const first = (outcomes[0] as PromiseFulfilledResult<StoredVersion>).value;
    expect(JSON.parse(first.body!).meta.lastUpdated).toBe(new Date(first.lastUpdated).toISOString());
    expect((await store.readCurrent('Patient', 'n1'))?.body).toBe(first.body);
    expect(await families('kwok')).toEqual(['n1', 'n2']);
  });

  it('keeps small writeManys, and writes whose body is only a closure, on this thread', async () => {
    const small = await store.writeMany([patientWrite('a', 'chan'), patientWrite('b', 'chan')]);
    const closures = await store.writeMany(Array.from({ length: 30 }, (_, i) => patientWrite(`c${i}`, 'chan')));
    expect([...small, ...closures].every((v) => v.versionId === 1)).toBe(true);
    expect(await families('chan')).toHaveLength(32);
  });

  it('finishes what it was handed before the store closes', async () => {
    const pending = store.writeMany(Array.from({ length: 40 }, (_, i) => stagedWrite(`r${i}`, 'ng')));
    const writing = store.write(patientWrite('s1', 'ng'));
    await store.close();
    await expect(pending).resolves.toHaveLength(40);
    await expect(writing).resolves.toMatchObject({ versionId: 1 });
    store = new SqliteStore({ path: join(dir, 'store.db'), writerThread: true });
    expect(await families('ng')).toHaveLength(41);
  });

  // Linux shows a thread's own name (src/thread-name.ts); every Node.js thread is "node" otherwise.
  it.runIf(existsSync('/proc/thread-self/comm'))('names its threads for the operating system: fhir-writer, and fhir-checkpoint for the WAL copier', async () => {
    const threadNames = () => readdirSync('/proc/self/task').map((tid) => readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim());
    expect(threadNames()).not.toContain('fhir-writer');
    await store.writeMany(Array.from({ length: 30 }, (_, i) => stagedWrite(`n${i}`, 'chow')));
    expect(threadNames()).toContain('fhir-writer');
    expect(threadNames()).toContain('fhir-checkpoint');
  });
});
