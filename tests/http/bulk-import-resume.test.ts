import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../src/server.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { bearer, SUPER_CLIENT, tokenFor } from '../auth-fixture.js';
import { ASYNC, NDJSON } from './bulk-client.js';
import { serverOptions } from './harness.js';

/** An import stopped with its server (at a checkpoint) is taken up by the next server on the same data and finishes without duplicates. */

const dir = mkdtempSync(join(tmpdir(), 'bulk-import-resume-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const TOTAL = 1500;

describe('bulk import across a server restart', () => {
  it('resumes from its checkpoint: every line stored once, at version 1', { timeout: 120_000 }, async () => {
    const store = new SqliteStore({ path: join(dir, 'store.db') });
    const options = await serverOptions(store, { bulk: { dir: join(dir, 'bulk') } });
    const auth = bearer(await tokenFor(SUPER_CLIENT));
    const body = Array.from({ length: TOTAL }, (_, i) => JSON.stringify({ resourceType: 'Patient', id: `rs-${i}`, gender: 'female' })).join('\n');
    let app: FastifyInstance = await buildServer(options);
    const kick = await app.inject({ method: 'POST', url: '/fhir/$import', headers: { ...ASYNC, ...NDJSON, ...auth }, payload: body });
    expect(kick.statusCode, kick.body).toBe(202);
    const status = new URL(kick.headers['content-location'] as string).pathname;
    let progress = '';
    while (!/line [1-9]/.test(progress)) {
      const poll = await app.inject({ method: 'GET', url: status, headers: auth });
      expect(poll.statusCode, 'the import finished before the server stopped').toBe(202);
      progress = String(poll.headers['x-progress']);
      await new Promise((r) => setTimeout(r, 5));
    }
    await app.close();

    app = await buildServer(options);
    try {
      let manifest: { output: { type: string; count: number }[]; error: unknown[] } | undefined;
      while (!manifest) {
        const poll = await app.inject({ method: 'GET', url: status, headers: auth });
        if (poll.statusCode === 200) manifest = poll.json();
        else await new Promise((r) => setTimeout(r, 20));
      }
      expect(manifest.error).toEqual([]);
      const count = await app.inject({ method: 'GET', url: '/fhir/Patient?_summary=count', headers: auth });
      expect(count.json().total).toBe(TOTAL);
      const history = await app.inject({ method: 'GET', url: '/fhir/Patient/_history?_summary=count', headers: auth });
      expect(history.json().total).toBe(TOTAL);
    } finally {
      await app.close();
      await store.close();
    }
  });
});
