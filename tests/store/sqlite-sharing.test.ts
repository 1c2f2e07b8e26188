import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSharedStore, releaseSharedStore } from '../../src/store/open-store.js';
import { Worker } from 'node:worker_threads';
import type { ResourceStore } from '../../src/store/port.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { codeIs, indexOf, render, token } from './fixtures.js';
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

  it('gives a (type, parameter) pair one code for both, each finding what the other indexed under it', async () => {
    const obs = (id: string, param: string, code: string) => ({ resourceType: 'Observation', id, renderBody: render(id), index: indexOf(token(param, null, code)) });
    const find = async (store: ResourceStore, param: string, code: string) =>
      (await store.search({ resourceTypes: ['Observation'], where: [codeIs(param, code)], sort: [], limit: 10 })).map((h) => h.version.id);
    // Nothing has the pair yet: no rows.
    expect(await find(other, 'x-new', 'a')).toEqual([]);
    await main.write(obs('o1', 'x-new', 'a'));
    expect(await find(other, 'x-new', 'a')).toEqual(['o1']);
    await other.write(obs('o2', 'x-new', 'a'));
    expect(await find(main, 'x-new', 'a')).toEqual(['o1', 'o2']);
    expect(await other.count({ resourceTypes: ['Observation'], where: [codeIs('x-new', 'a')] })).toBe(2);
  });

  it('keeps the code of a pair whose first write was rolled back, and the pair searchable after', async () => {
    const obs = (id: string, param: string, expectedVersion?: number | null) => ({
      resourceType: 'Observation',
      id,
      renderBody: render(id),
      index: indexOf(token(param, null, 'v')),
      ...(expectedVersion !== undefined && { expectedVersion }),
    });
    const find = async (store: ResourceStore, param: string) =>
      (await store.search({ resourceTypes: ['Observation'], where: [codeIs(param, 'v')], sort: [], limit: 10 })).map((h) => h.version.id);
    // A version conflict in a group commit (its savepoint rolls back), and a whole transaction that fails.
    await main.write(obs('taken', 'other'));
    await expect(main.write(obs('taken', 'y-new', null))).rejects.toThrow(/version conflict/);
    await expect(other.writeMany([obs('t1', 'z-new'), obs('taken', 'z-new', null)])).rejects.toThrow(/version conflict/);
    expect(await find(main, 'y-new')).toEqual([]);
    expect(await find(other, 'z-new')).toEqual([]);
    await Promise.all([other.write(obs('y1', 'y-new')), main.write(obs('z1', 'z-new'))]);
    expect(await find(main, 'y-new')).toEqual(['y1']);
    expect(await find(other, 'z-new')).toEqual(['z1']);
    // Every entry's code is one search_param has.
    const db = new Database(join(dir, 'store.db'), { readonly: true });
    expect(db.prepare('SELECT COUNT(*) FROM search_index WHERE code NOT IN (SELECT code FROM search_param)').pluck().get()).toBe(0);
    db.close();
  });
});
