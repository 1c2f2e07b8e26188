import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VersionConflictError, type IndexEntry, type WriteRequest } from '../../src/store/port.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { codeIs, indexOf, render, token } from './fixtures.js';

/**
 * Single writes started in one turn share a transaction on the embedded store, without a
 * savepoint each. A write that fails after it has changed something must still fail alone and
 * leave nothing behind, while the others of its group commit.
 */
describe('the SQLite group commit', () => {
  let dir: string;
  let store: SqliteStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'group-commit-'));
    store = new SqliteStore({ path: join(dir, 'store.db') });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const observation = (id: string, entries: IndexEntry[], expectedVersion: number | null = null): WriteRequest => ({
    resourceType: 'Observation',
    id,
    expectedVersion,
    renderBody: render(id),
    index: indexOf(...entries),
  });
  // An entry the database cannot take: its value is bound only after the write's version and
  // pointer rows are in, so the write fails halfway through.
  const unbindable: IndexEntry = { param: 'code', values: [{ system: 'http://loinc.org', value: { not: 'a string' } as unknown as string }] };

  it('a write failing halfway fails alone: the rest of its group is stored, and nothing of it', async () => {
    const results = await Promise.allSettled([
      store.write(observation('before', [token('code', 'http://loinc.org', '1-8')])),
      store.write(observation('broken', [token('status', null, 'final'), unbindable])),
      store.write(observation('after', [token('code', 'http://loinc.org', '1-8')])),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((await store.readCurrent('Observation', 'before'))?.versionId).toBe(1);
    expect((await store.readCurrent('Observation', 'after'))?.versionId).toBe(1);
    expect(await store.readCurrent('Observation', 'broken')).toBeUndefined();
    expect(await store.countHistory({ resourceType: 'Observation', id: 'broken' })).toBe(0);
    expect(await store.count({ resourceTypes: ['Observation'], where: [codeIs('status', 'final')] })).toBe(0);
    expect(await store.count({ resourceTypes: ['Observation'], where: [codeIs('code', '1-8')] })).toBe(2);
    // The id is free: nothing of the failed write holds it.
    expect((await store.write(observation('broken', [token('status', null, 'final')])))?.versionId).toBe(1);
  });

  it('version conflicts in a group fail alone, and the others commit', async () => {
    await store.write(observation('taken', [token('code', 'http://loinc.org', '1-8')]));
    const results = await Promise.allSettled([
      store.write(observation('new1', [token('code', 'http://loinc.org', '2-6')])),
      store.write(observation('taken', [token('code', 'http://loinc.org', '2-6')], null)),
      store.write(observation('taken', [token('code', 'http://loinc.org', '3-4')], 1)),
      store.write(observation('taken', [token('code', 'http://loinc.org', '5-1')], 1)),
      store.write(observation('new2', [token('code', 'http://loinc.org', '2-6')])),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    for (const i of [1, 3]) expect((results[i] as PromiseRejectedResult).reason).toBeInstanceOf(VersionConflictError);
    expect((await store.readCurrent('Observation', 'taken'))?.versionId).toBe(2);
    expect(await store.count({ resourceTypes: ['Observation'], where: [codeIs('code', '2-6')] })).toBe(2);
    expect(await store.count({ resourceTypes: ['Observation'], where: [codeIs('code', '3-4')] })).toBe(1);
    expect(await store.count({ resourceTypes: ['Observation'], where: [codeIs('code', '5-1')] })).toBe(0);
    expect(await store.count({ resourceTypes: ['Observation'], where: [codeIs('code', '1-8')] })).toBe(0);
  });
});
