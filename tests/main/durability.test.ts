import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { killHard, ServerProcess } from './server-process.js';

/**
 * A write the server answered 2xx survives `kill -9` of the server process: the real
 * entry point is started, killed without warning right after the answer, and restarted. So does
 * the audit record of every answered request (on the embedded store the answer waits only for
 * the audit journal, and the record is stored a moment later).
 */

const servers = new ServerProcess('durability');
const tempDir = servers.tempDir;
const startServer = (env: Record<string, string>) => servers.start(env);
const bearer = () => servers.bearer('durability-test');

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

const READS = 40;

describe.each(variants)('durability ($name)', ({ env, cleanup }) => {
  afterAll(cleanup);

  it('keeps every answered write across kill -9 and restart', { timeout: 180_000 }, async () => {
    const first = await startServer(env());
    const auth = await bearer();
    // The audit trail is read by auditors only.
    const auditor = await servers.auditor('durability-test');
    const headers = { ...auth, 'content-type': 'application/fhir+json' };
    const created: { id: string; version: string }[] = [];
    let audited = 0;
    const auditedReads = async (base: string, auth: Record<string, string>) => {
      const res = await fetch(`${base}/AuditEvent?entity=Patient/${created[0]!.id}&subtype=read&_summary=count`, { headers: auth });
      expect(res.status).toBe(200);
      return ((await res.json()) as { total: number }).total;
    };
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
      audited = await auditedReads(first.base, auditor);
      // Killed right after the last of these reads is answered.
      for (let i = 0; i < READS; i++) expect((await fetch(`${first.base}/Patient/${created[0]!.id}`, { headers: auth })).status).toBe(200);
    } finally {
      await killHard(first.child);
    }

    const second = await startServer(env());
    try {
      // Exactly once each: none lost, none stored twice.
      expect(await auditedReads(second.base, auditor)).toBe(audited + READS);
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
