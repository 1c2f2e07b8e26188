import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bearer, tokenFor } from '../auth-fixture.js';
import { describeEachStore } from '../store/stores.js';
import { ASYNC, importNdjson, NDJSON, pathOf, waitForManifest, type Manifest } from './bulk-client.js';
import { FHIR_JSON, outcomeOf, useServer } from './harness.js';

/** Bulk import ($import): uploads and allowed URLs, per-line errors, re-import without duplicates. */

const lines = [
  { resourceType: 'Patient', id: 'im-p1', gender: 'female' },
  { resourceType: 'Observation', id: 'im-o1', status: 'final', code: { text: 'pulse' }, subject: { reference: 'Patient/im-p1' } },
  'this is not JSON',
  { resourceType: 'Patient', id: 'im-p2', birthDate: 'yesterday' },
  { resourceType: 'Patient', gender: 'male' },
  { resourceType: 'Patient', id: 'im-p3', gender: 'other' },
];
const ndjson = lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n');

const counts = (manifest: Manifest) => Object.fromEntries(manifest.output.map((o) => [o.type, o.count]));

describeEachStore('Bulk Data $import', (open) => {
  const allowed: string[] = [];
  let files: Server;
  beforeAll(async () => {
    files = createServer((req, res) => {
      if (req.url === '/drop/patients.ndjson') res.writeHead(200, NDJSON).end(ndjson);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    allowed.push(`http://127.0.0.1:${(files.address() as { port: number }).port}/drop/`);
  });
  afterAll(() => new Promise<void>((r) => files.close(() => r())));
  const server = useServer(open, { bulk: { importAllowedUrls: allowed } });

  it('loads an uploaded NDJSON file: valid lines stored with their ids, each bad line an OperationOutcome naming it', async () => {
    const manifest = await importNdjson(server, ndjson);
    expect(counts(manifest)).toEqual({ Patient: 2, Observation: 1 });
    expect(manifest.error).toHaveLength(1);
    const errors = await server.request({ method: 'GET', url: pathOf((manifest.error[0] as { url: string }).url) });
    const outcomes = errors.body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { resourceType: string; issue: { diagnostics: string }[] });
    expect(outcomes.map((o) => o.resourceType)).toEqual(['OperationOutcome', 'OperationOutcome', 'OperationOutcome']);
    expect(outcomes.map((o) => o.issue[0]!.diagnostics.split(':')[0])).toEqual(['Line 3 of input 1', 'Line 4 of input 1', 'Line 5 of input 1']);
    expect(outcomes[1]!.issue.map((i) => i.diagnostics).join(' ')).toMatch(/birthDate/);
    const read = await server.request({ method: 'GET', url: '/fhir/Observation/im-o1' });
    expect(read.json().meta.versionId).toBe('1');
  });

  it('importing the same file again stores nothing new: no duplicates, no new versions', async () => {
    const before = (await server.request({ method: 'GET', url: '/fhir/Patient?_count=100' })).json().total;
    const manifest = await importNdjson(server, ndjson);
    expect(counts(manifest)).toEqual({});
    expect((await server.request({ method: 'GET', url: '/fhir/Patient?_count=100' })).json().total).toBe(before);
    expect((await server.request({ method: 'GET', url: '/fhir/Patient/im-p1' })).json().meta.versionId).toBe('1');
    const changed = await importNdjson(server, JSON.stringify({ resourceType: 'Patient', id: 'im-p1', gender: 'unknown' }));
    expect(counts(changed)).toEqual({ Patient: 1 });
    expect((await server.request({ method: 'GET', url: '/fhir/Patient/im-p1' })).json().meta.versionId).toBe('2');
  });

  it('fetches manifest inputs from allowed locations only', async () => {
    const manifest = (url: string) => ({ resourceType: 'Parameters', parameter: [{ name: 'inputFormat', valueCode: 'application/fhir+ndjson' }, { name: 'input', part: [{ name: 'type', valueCode: 'Patient' }, { name: 'url', valueUri: url }] }] });
    const kick = await server.request({ method: 'POST', url: '/fhir/$import', headers: { ...ASYNC, ...FHIR_JSON }, payload: manifest(`${allowed[0]}patients.ndjson`) });
    expect(kick.statusCode, kick.body).toBe(202);
    const done = await waitForManifest(server, kick.headers['content-location'] as string);
    // The Observation line is not a Patient, as the manifest says the file holds.
    expect(done.error).toHaveLength(1);
    for (const url of ['http://169.254.169.254/latest/meta-data', `${allowed[0]!.replace('/drop/', '/')}../etc/passwd`, 'file:///etc/passwd', `http://user@${allowed[0]!.slice(7)}x.ndjson`]) {
      const refused = await server.request({ method: 'POST', url: '/fhir/$import', headers: { ...ASYNC, ...FHIR_JSON }, payload: manifest(url) });
      expect(refused.statusCode, url).toBe(400);
      expect(outcomeOf(refused).codes).toEqual(['security']);
    }
    expect((await server.request({ method: 'POST', url: '/fhir/$import', headers: NDJSON, payload: ndjson })).statusCode).toBe(400);
  });

  it("writes under the caller's rights: a type its scopes do not allow is a per-line error", async () => {
    const headers = bearer(await tokenFor({ kind: 'system', clientId: 'patients-writer', scopes: ['system/Patient.*'] }));
    const manifest = await importNdjson(server, ndjson, headers);
    expect(manifest.error).toHaveLength(1);
    const errors = await server.request({ method: 'GET', url: pathOf((manifest.error[0] as { url: string }).url), headers });
    expect(errors.body).toMatch(/Line 2 of input 1: This client's scopes do not allow writing Observation/);
    const office = bearer(await tokenFor({ kind: 'registration-office', staffId: 'ro-1' }));
    expect((await server.request({ method: 'POST', url: '/fhir/$import', headers: { ...ASYNC, ...NDJSON, ...office }, payload: ndjson })).statusCode).toBe(403);
  });
});
