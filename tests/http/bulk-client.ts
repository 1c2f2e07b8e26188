import { expect } from 'vitest';
import { FHIR_JSON, type TestServer } from './harness.js';

/** A Bulk Data client for the suites, written against the IG: kick-off, polling, manifest, downloads. */

type Headers = Record<string, string>;

export const ASYNC = { prefer: 'respond-async', accept: 'application/fhir+json' };

export interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count: number }[];
  error: unknown[];
}


/** The path of an absolute URL of the test server. */
export const pathOf = (url: string) => url.replace('http://fhir.test', '');

export async function waitForManifest(server: TestServer, statusUrl: string, headers: Headers = {}): Promise<Manifest> {
  // Jobs on FerretDB take a while; polls slow down as a client's would.
  const deadline = Date.now() + 300_000;
  for (let i = 0; Date.now() < deadline; i++) {
    const res = await server.request({ method: 'GET', url: pathOf(statusUrl), headers });
    if (res.statusCode === 200) return res.json() as Manifest;
    expect(res.statusCode, res.body).toBe(202);
    expect(res.headers['x-progress']).toBeTruthy();
    expect(res.headers['retry-after']).toBe('2');
    await new Promise((r) => setTimeout(r, Math.min(20 + i * 5, 500)));
  }
  throw new Error('the job did not finish');
}

export async function kickOff(server: TestServer, url: string, headers: Headers = {}, body?: unknown): Promise<string> {
  const res = await server.request({ method: body ? 'POST' : 'GET', url, headers: { ...ASYNC, ...(body ? FHIR_JSON : {}), ...headers }, ...(body ? { payload: body } : {}) });
  expect(res.statusCode, res.body).toBe(202);
  return res.headers['content-location'] as string;
}

/** The exported resources per type, read from the manifest's files. */
export async function download(server: TestServer, manifest: Manifest, headers: Headers = {}): Promise<Map<string, Record<string, any>[]>> {
  const byType = new Map<string, Record<string, any>[]>();
  for (const output of manifest.output) {
    const res = await server.request({ method: 'GET', url: pathOf(output.url), headers: { accept: 'application/fhir+ndjson', ...headers } });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toContain('application/fhir+ndjson');
    const lines = res.body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
    expect(lines.length).toBe(output.count);
    for (const r of lines) expect(r.resourceType).toBe(output.type);
    byType.set(output.type, [...(byType.get(output.type) ?? []), ...lines]);
  }
  return byType;
}

export async function exportAll(server: TestServer, url: string, headers: Headers = {}, body?: unknown): Promise<{ manifest: Manifest; resources: Map<string, Record<string, any>[]> }> {
  const status = await kickOff(server, url, headers, body);
  const manifest = await waitForManifest(server, status, headers);
  return { manifest, resources: await download(server, manifest, headers) };
}


export const NDJSON = { 'content-type': 'application/fhir+ndjson' };

/** Uploads NDJSON to $import and waits for its manifest. */
export async function importNdjson(server: TestServer, body: string | Buffer, headers: Record<string, string> = {}): Promise<Manifest> {
  const res = await server.request({ method: 'POST', url: '/fhir/$import', headers: { ...ASYNC, ...NDJSON, ...headers }, payload: body });
  expect(res.statusCode, res.body).toBe(202);
  return waitForManifest(server, res.headers['content-location'] as string, headers);
}
