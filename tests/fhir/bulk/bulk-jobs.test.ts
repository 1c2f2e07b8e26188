import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BulkJobs, type JobRunner } from '../../../src/fhir/bulk/bulk-jobs.js';
import { exportFileName, runExport } from '../../../src/fhir/bulk/export-runner.js';
import { JobFiles, type JobPlan } from '../../../src/fhir/bulk/job-files.js';
import { plainJsonCodec } from '../../../src/store/codec.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';

/** The job queue and the export runner on their own: statuses, cancel, resume, expiry. */

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'bulk-jobs-test-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const plan = (owner = 'client/a'): JobPlan => ({ kind: 'export', owner, request: 'http://x/fhir/$export', transactionTime: Date.now(), steps: [{ type: 'Patient', where: [] }] });

/** A runner that waits until released, so tests see jobs queued and running. */
function gatedRunner() {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const started: string[] = [];
  const runner: JobRunner = async (id, _plan, _state, control) => {
    started.push(id);
    while (!control.stopped) {
      if (await Promise.race([gate.then(() => true), new Promise((r) => setTimeout(() => r(false), 5))])) return;
    }
  };
  return { runner, started, release: () => release() };
}

const settle = (ms = 20) => new Promise((r) => setTimeout(r, ms));

describe('bulk job queue', () => {
  it('runs one job at a time: the second waits queued; only the owner finds them', async () => {
    const { runner, release } = gatedRunner();
    const jobs = new BulkJobs(new JobFiles(tempDir()), { runners: { export: runner }, retentionMs: 60_000 });
    jobs.open();
    const first = jobs.submit(plan());
    const second = jobs.submit(plan());
    await settle();
    expect(jobs.find(first, 'client/a')!.state.status).toBe('running');
    expect(jobs.find(second, 'client/a')!.state.status).toBe('queued');
    expect(jobs.find(first, 'client/b')).toBeUndefined();
    release();
    await settle(50);
    expect(jobs.find(first, 'client/a')!.state.status).toBe('done');
    expect(jobs.find(second, 'client/a')!.state.status).toBe('done');
    expect(jobs.find(first, 'client/a')!.state.expiresAt).toBeGreaterThan(Date.now());
    await jobs.close();
  });

  it('cancels a running job at its next page and removes its folder; another owner cannot', async () => {
    const { runner } = gatedRunner();
    const files = new JobFiles(tempDir());
    const jobs = new BulkJobs(files, { runners: { export: runner }, retentionMs: 60_000 });
    jobs.open();
    const id = jobs.submit(plan());
    await settle();
    expect(await jobs.cancel(id, 'client/b')).toBe(false);
    expect(await jobs.cancel(id, 'client/a')).toBe(true);
    expect(existsSync(files.folder(id))).toBe(false);
    expect(jobs.find(id, 'client/a')).toBeUndefined();
    await jobs.close();
  });

  it('resumes a job left running by a stopped server, and removes expired ones', async () => {
    const dir = tempDir();
    const gated = gatedRunner();
    const before = new BulkJobs(new JobFiles(dir), { runners: { export: gated.runner }, retentionMs: 60_000 });
    before.open();
    const id = before.submit(plan());
    await settle();
    await before.close();
    expect(new JobFiles(dir).state(id)!.status).toBe('running');

    const resumed: string[] = [];
    const after = new BulkJobs(new JobFiles(dir), { runners: { export: async (jobId, _p, state) => void resumed.push(`${jobId}:${state.status}`) }, retentionMs: 30 });
    after.open();
    await settle();
    expect(resumed).toEqual([`${id}:running`]);
    expect(after.find(id, 'client/a')!.state.status).toBe('done');
    await settle(60);
    expect(after.find(id, 'client/a')).toBeUndefined();
    expect(existsSync(join(dir, id))).toBe(false);
    await after.close();
  });
});

describe('export runner', () => {
  it('writes NDJSON per page and, stopped midway, continues from its checkpoint without repeating a line', async () => {
    const dir = tempDir();
    const store = new SqliteStore({ path: join(dir, 'store.db') });
    const total = 2_500;
    await store.writeMany(Array.from({ length: total }, (_, i) => ({
      resourceType: 'Patient',
      id: `p${String(i).padStart(5, '0')}`,
      renderBody: (versionId: number, lastUpdated: number) => JSON.stringify({ resourceType: 'Patient', id: `p${String(i).padStart(5, '0')}`, meta: { versionId: String(versionId), lastUpdated: new Date(lastUpdated).toISOString() } }),
      index: { entries: [], sortKeys: {}, patients: [] },
    })));
    const files = new JobFiles(join(dir, 'bulk'));
    const id = '00000000-0000-4000-8000-000000000001';
    const jobPlan = plan();
    const state = { status: 'running' as const, step: 0, bytes: 0, count: 0, outputs: [], errors: [] };
    files.create(id, jobPlan, state);
    // Stop after the first page, as a kill would between checkpoints.
    const control = { stopped: false, onPage: () => void (control.stopped = true) };
    await runExport(id, jobPlan, state, files, store, plainJsonCodec, control);
    const saved = files.state(id)!;
    expect(saved.count).toBe(1000);
    const resumedState = { ...saved, status: 'running' as const };
    await runExport(id, jobPlan, resumedState, files, store, plainJsonCodec, { stopped: false });
    expect(resumedState.outputs).toEqual([{ type: 'Patient', file: exportFileName(0, 'Patient'), count: total }]);
    const lines = readFileSync(files.file(id, exportFileName(0, 'Patient'))!, 'utf8').split('\n').filter(Boolean);
    const ids = lines.map((l) => (JSON.parse(l) as { id: string }).id);
    expect(ids.length).toBe(total);
    expect(new Set(ids).size).toBe(total);
    await store.close();
  });
});
