import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WriteRequest } from '../../src/store/port.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { indexOf, render, token } from './fixtures.js';

/**
 * Another connection holding the database's write lock (another process, or a thread of this
 * one writing outside the write gate, as the writer thread did when it opened the file) makes a
 * write wait for it, within the busy timeout, rather than fail at once.
 */
describe('the SQLite store and a write lock held elsewhere', () => {
  let dir: string;
  let path: string;
  let store: SqliteStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'write-lock-'));
    path = join(dir, 'store.db');
    store = new SqliteStore({ path });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Another process takes the write lock, says so, and lets go after `holdMs`. */
  function holdWriteLock(holdMs: number): Promise<{ done: Promise<number | null> }> {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const script = `
      const db = new (require(${JSON.stringify(driver)}))(${JSON.stringify(path)});
      db.exec('BEGIN IMMEDIATE');
      process.stdout.write('locked\\n');
      setTimeout(() => { db.exec('COMMIT'); db.close(); }, ${holdMs});`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return new Promise((resolve, reject) => {
      child.stdout.on('data', (data: Buffer) => {
        if (data.toString().includes('locked')) resolve({ done });
      });
      child.on('error', reject);
    });
  }

  const observation = (id: string): WriteRequest => ({ resourceType: 'Observation', id, expectedVersion: null, renderBody: render(id), index: indexOf(token('code', 'http://loinc.org', '1')) });

  it('an update (which reads the current version first) and a group of creates wait for the lock and succeed', async () => {
    await store.write(observation('o1'));
    const holder = await holdWriteLock(300);
    const started = Date.now();
    const update: WriteRequest = { resourceType: 'Observation', id: 'o1', expectedVersion: 1, renderBody: render('o1'), index: indexOf(token('code', 'http://loinc.org', '2')) };
    const written = await Promise.all([store.write(update), store.write(observation('o2')), store.write(observation('o3'))]);
    expect(written.map((v) => [v.id, v.versionId])).toEqual([['o1', 2], ['o2', 1], ['o3', 1]]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(await holder.done).toBe(0);
    const many = await holdWriteLock(200);
    expect((await store.writeMany([observation('o4'), observation('o5')])).map((v) => v.versionId)).toEqual([1, 1]);
    expect(await many.done).toBe(0);
  });
});
