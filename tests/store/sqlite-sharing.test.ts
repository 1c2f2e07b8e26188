import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSharedStore, releaseSharedStore } from '../../src/store/open-store.js';
import { Worker } from 'node:worker_threads';
import type { ResourceStore } from '../../src/store/port.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { patientWrite as patient } from './sharing-fixtures.js';

/**
 * One database file opened by two stores, as the request thread and the audit thread do: they
 * take turns to write (through the shared write gate), so neither ever meets SQLITE_BUSY or
 * waits in SQLite's sleeping retry loop, whatever the other is writing.
 */

/** The writer of shared-writer.ts on a thread of its own (through tsx, as the sources are TypeScript). */
function writerThread(share: unknown, rounds: number): Promise<{ ok: boolean; message?: string }> {
  const script = new URL('./shared-writer.ts', import.meta.url).href;
  const worker = new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(script)}); })`, { eval: true, workerData: { share, rounds } });
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

describe('a SQLite file shared between two stores', () => {
  let dir: string;
  let main: SqliteStore;
  let other: ResourceStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sqlite-sharing-'));
    main = new SqliteStore({ path: join(dir, 'store.db') });
    other = openSharedStore(main.share!);
  });
  afterEach(async () => {
    await other.close();
    await main.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is offered for a file and not for an in-memory database', async () => {
    expect(main.share).toMatchObject({ kind: 'sqlite' });
    const memory = new SqliteStore({ path: ':memory:' });
    expect(memory.share).toBeUndefined();
    await memory.close();
  });

  it('lets both write at once, single writes and large transactions interleaved, and each sees the other', async () => {
    const work: Promise<unknown>[] = [];
    for (let round = 0; round < 20; round++) {
      work.push(main.write(patient(`m${round}`)));
      work.push(other.writeMany(Array.from({ length: 500 }, (_, i) => patient(`o${round}-${i}`, 'Wong'))));
      work.push(other.write(patient(`s${round}`)));
      work.push(main.writeMany([patient(`mm${round}-a`), patient(`mm${round}-b`)]));
    }
    await Promise.all(work);
    const count = (store: ResourceStore, family: string) =>
      store.count({ resourceTypes: ['Patient'], where: [{ kind: 'entry', param: 'family', anyOf: [[{ slot: 0, field: 'value', op: 'eq', value: family }]] }] });
    expect(await count(main, 'wong')).toBe(20 * 500);
    expect(await count(other, 'chan')).toBe(20 * 4);
    expect((await other.readCurrent('Patient', 'm19'))?.versionId).toBe(1);
    expect((await main.readCurrent('Patient', 'o19-499'))?.versionId).toBe(1);
  });

  it('lets a writer on another thread and this one write at the same time, neither failing', async () => {
    const rounds = 30;
    const elsewhere = writerThread(main.share, rounds);
    const here: Promise<unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      here.push(main.write(patient(`m${i}`)), main.write(patient('same')));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(here);
    expect(await elsewhere).toEqual({ ok: true });
    const count = (family: string) => main.count({ resourceTypes: ['Patient'], where: [{ kind: 'entry', param: 'family', anyOf: [[{ slot: 0, field: 'value', op: 'eq', value: family }]] }] });
    expect(await count('wong')).toBe(rounds * 200);
    expect(await count('chan')).toBe(300 + 1);
    expect((await main.readCurrent('Patient', 'same'))?.versionId).toBe(300 + rounds);
  });

  it('keeps version numbering exact when both write the same resource', async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? main : other).write(patient('same'))));
    expect((await main.readCurrent('Patient', 'same'))?.versionId).toBe(50);
  });

  it('goes on writing after the other side is released without leaving its turn (a thread that died)', async () => {
    // Nothing holds the turn here; releasing must not disturb a gate in use either.
    releaseSharedStore(main.share!);
    await Promise.all([main.write(patient('a')), other.write(patient('b'))]);
    expect((await main.readCurrent('Patient', 'b'))?.versionId).toBe(1);
  });
});
