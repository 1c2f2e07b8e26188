import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreateDevKey } from '../../src/auth/keys.js';
import { issueToken } from '../../src/auth/tokens.js';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from '../../src/config.js';

/**
 * A write the server answered 2xx survives `kill -9` of the server process: the real
 * entry point is started, killed without warning right after the answer, and restarted.
 */

const root = new URL('../..', import.meta.url).pathname;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const tempDir = mkdtempSync(join(tmpdir(), 'fhir-durability-'));
/** The development key the server trusts (made by the server on its first start). */
const devKeyFile = join(tempDir, 'dev-signing-key.json');

/** The caller's environment without settings of the server's authentication (they would change whom it trusts). */
function inheritedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AUTH_') && !k.startsWith('EHEALTH_')));
}

async function startServer(env: Record<string, string>): Promise<{ child: ChildProcess; base: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: { ...inheritedEnv(), ...env, AUTH_DEV_KEY_FILE: devKeyFile, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}/fhir`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${base}/metadata`)).ok) return { child, base };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill('SIGKILL');
  throw new Error('server did not start within 60 s');
}

async function killHard(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/** A token of a backend client allowed everything, signed with the key the server trusts. */
async function bearer(): Promise<Record<string, string>> {
  const key = await loadOrCreateDevKey(devKeyFile);
  const token = await issueToken({ kind: 'system', clientId: 'durability-test', scopes: ['system/*.*'] }, { key, issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, lifetimeSeconds: 600 });
  return { authorization: `Bearer ${token}` };
}

const variants: { name: string; env: () => Record<string, string>; cleanup: () => Promise<void> }[] = [];
variants.push({ name: 'sqlite', env: () => ({ SQLITE_PATH: join(tempDir, 'fhir.sqlite') }), cleanup: async () => rmSync(tempDir, { recursive: true, force: true }) });
const mongoUri = process.env.MONGODB_URI;
if (mongoUri) {
  const dbName = `fhir_durability_${randomUUID().replaceAll('-', '')}`;
  variants.push({
    name: 'mongo',
    env: () => ({ MONGODB_URI: mongoUri, MONGODB_DATABASE: dbName }),
    cleanup: async () => {
      const client = await MongoClient.connect(mongoUri);
      await client.db(dbName).dropDatabase();
      await client.close();
    },
  });
}

describe.each(variants)('durability ($name)', ({ env, cleanup }) => {
  afterAll(cleanup);

  it('keeps every answered write across kill -9 and restart', { timeout: 180_000 }, async () => {
    const first = await startServer(env());
    const auth = await bearer();
    const headers = { ...auth, 'content-type': 'application/fhir+json' };
    const created: { id: string; version: string }[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${first.base}/Patient`, { method: 'POST', headers, body: JSON.stringify({ resourceType: 'Patient', birthDate: `19${50 + i}-01-01` }) });
        expect(res.status).toBe(201);
        const body = (await res.json()) as { id: string; meta: { versionId: string } };
        created.push({ id: body.id, version: body.meta.versionId });
      }
      const last = created[created.length - 1]!;
      const update = await fetch(`${first.base}/Patient/${last.id}`, { method: 'PUT', headers, body: JSON.stringify({ resourceType: 'Patient', id: last.id, gender: 'female' }) });
      expect(update.status).toBe(200);
    } finally {
      await killHard(first.child);
    }

    const second = await startServer(env());
    try {
      for (const { id } of created) {
        const res = await fetch(`${second.base}/Patient/${id}`, { headers: auth });
        expect(res.status, id).toBe(200);
      }
      const last = (await (await fetch(`${second.base}/Patient/${created[created.length - 1]!.id}`, { headers: auth })).json()) as { gender: string; meta: { versionId: string } };
      expect(last.gender).toBe('female');
      expect(last.meta.versionId).toBe('2');
    } finally {
      await killHard(second.child);
    }
  });
});
