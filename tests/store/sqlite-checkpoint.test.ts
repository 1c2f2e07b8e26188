import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openSharedStore } from '../../src/store/open-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The versions in the database file itself, leaving out what is still only in its WAL. */
function versionsInFile(path: string, dir: string): number {
  const copy = join(dir, 'copy.db');
  rmSync(`${copy}-wal`, { force: true });
  rmSync(`${copy}-shm`, { force: true });
  copyFileSync(path, copy);
  const db = new Database(copy);
  try {
    // Not even the tables are in the file before the first checkpoint.
    if (!db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'resource_version'").get()) return 0;
    return (db.prepare('SELECT COUNT(*) AS n FROM resource_version').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('SqliteStore checkpoints', () => {
  it('copies committed writes into the database file soon, long before the WAL is full', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fhir-checkpoint-'));
    dirs.push(dir);
    const path = join(dir, 'store.db');
    const store = new SqliteStore({ path });
    try {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.write({ resourceType: 'Patient', id: `p${i}`, renderBody: () => `{"id":"p${i}"}`, index: { entries: [], sortKeys: {}, patients: [`p${i}`] } }),
        ),
      );
      await store.write({ resourceType: 'Patient', id: 'last', renderBody: () => '{"id":"last"}', index: { entries: [], sortKeys: {}, patients: ['last'] } });
      let inFile = 0;
      for (let attempt = 0; attempt < 100 && inFile < 21; attempt++) {
        await sleep(50);
        inFile = versionsInFile(path, dir);
      }
      expect(inFile).toBe(21);
      // The writer keeps working while and after the checkpoints run.
      await store.write({ resourceType: 'Patient', id: 'p0' });
      expect((await store.readCurrent('Patient', 'p0'))?.deleted).toBe(true);
    } finally {
      await store.close();
    }
    // Closed: the worker's connection is gone too, so the file opens again at once.
    const again = new SqliteStore({ path });
    expect((await again.readCurrent('Patient', 'p5'))?.versionId).toBe(1);
    await again.close();
  });

  it('copies the commits of a store sharing the file from another thread too (that store runs no checkpointer of its own)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fhir-checkpoint-'));
    dirs.push(dir);
    const path = join(dir, 'store.db');
    const store = new SqliteStore({ path });
    const shared = openSharedStore(store.share!);
    try {
      // Everything a checkpoint could copy so far, so what follows is only the shared store's.
      await store.write({ resourceType: 'Patient', id: 'first', renderBody: () => '{"id":"first"}', index: { entries: [], sortKeys: {}, patients: ['first'] } });
      for (let attempt = 0; attempt < 100 && versionsInFile(path, dir) < 1; attempt++) await sleep(50);
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => shared.write({ resourceType: 'AuditEvent', id: `a${i}`, renderBody: () => `{"id":"a${i}"}`, index: { entries: [], sortKeys: {}, patients: [] } })),
      );
      let inFile = 0;
      for (let attempt = 0; attempt < 100 && inFile < 11; attempt++) {
        await sleep(50);
        inFile = versionsInFile(path, dir);
      }
      expect(inFile).toBe(11);
    } finally {
      await shared.close();
      await store.close();
    }
  });
});
