import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killHard, ServerProcess } from './server-process.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

/**
 * A bulk export running when the server process is killed (`kill -9`) continues after the
 * next start, from its last checkpoint: the finished file holds every resource exactly once.
 */

const servers = new ServerProcess('bulk-resume');
const tempDir = servers.tempDir;
const sqlitePath = join(tempDir, 'fhir.sqlite');
const TOTAL = 100_000;
const startServer = () => servers.start({ SQLITE_PATH: sqlitePath, BULK_DATA_DIR: join(tempDir, 'bulk') });

/** Patients written straight into the store: an export reads bodies and needs no search index. */
async function preload(): Promise<void> {
  const store = new SqliteStore({ path: sqlitePath });
  for (let start = 0; start < TOTAL; start += 10_000) {
    await store.writeMany(Array.from({ length: 10_000 }, (_, i) => {
      const id = `r${String(start + i).padStart(6, '0')}`;
      return {
        resourceType: 'Patient',
        id,
        renderBody: (versionId: number, lastUpdated: number) => JSON.stringify({ resourceType: 'Patient', id, meta: { versionId: String(versionId), lastUpdated: new Date(lastUpdated).toISOString() }, gender: 'other' }),
        index: { entries: [], sortKeys: {}, patients: [] },
      };
    }));
  }
  await store.close();
}

describe('bulk export across a server restart (sqlite)', () => {
  afterAll(() => rmSync(tempDir, { recursive: true, force: true }));

  it('resumes a job killed midway and finishes it with every resource exactly once', { timeout: 240_000 }, async () => {
    await preload();
    const auth = await servers.bearer('resume-test', ['system/*.read']);

    const first = await startServer();
    let statusPath: string;
    let progressAtKill = '';
    try {
      const kick = await fetch(`${first.base}/$export?_type=Patient`, { headers: { ...auth, prefer: 'respond-async', accept: 'application/fhir+json' } });
      expect(kick.status).toBe(202);
      statusPath = new URL(kick.headers.get('content-location')!).pathname;
      for (let i = 0; i < 2000 && !progressAtKill; i++) {
        const poll = await fetch(`${first.base.replace(/\/fhir$/, '')}${statusPath}`, { headers: auth });
        expect(poll.status, 'the export finished before it could be interrupted').toBe(202);
        const progress = poll.headers.get('x-progress') ?? '';
        if (/, [1-9]\d* resources/.test(progress)) progressAtKill = progress;
      }
    } finally {
      await killHard(first.child);
    }
    expect(progressAtKill).toMatch(/resources/);

    const second = await startServer();
    try {
      const origin = second.base.replace(/\/fhir$/, '');
      let manifest: { output: { type: string; url: string; count: number }[] } | undefined;
      for (let i = 0; i < 600 && !manifest; i++) {
        const poll = await fetch(`${origin}${statusPath!}`, { headers: auth });
        if (poll.status === 200) manifest = (await poll.json()) as typeof manifest;
        else {
          expect(poll.status).toBe(202);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(manifest!.output).toHaveLength(1);
      expect(manifest!.output[0]!.count).toBe(TOTAL);
      const file = await fetch(`${origin}${new URL(manifest!.output[0]!.url).pathname}`, { headers: auth });
      const ids = (await file.text()).split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { id: string }).id);
      expect(ids.length).toBe(TOTAL);
      expect(new Set(ids).size).toBe(TOTAL);
      expect(ids[0]).toBe('r000000');
      expect(ids[TOTAL - 1]).toBe(`r${String(TOTAL - 1).padStart(6, '0')}`);
    } finally {
      await killHard(second.child);
    }
  });
});
