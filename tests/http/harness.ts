import { randomBytes } from 'node:crypto';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll } from 'vitest';
import { buildServer, type ServerOptions } from '../../src/server.js';
import { software } from '../../src/software.js';
import type { AuthSetup } from '../../src/auth/setup.js';
import type { ResourceStore } from '../../src/store/port.js';
import { SUPER_CLIENT, testAuth, tokenFor } from '../auth-fixture.js';

/** Builds the real app on a fresh store for one suite, and a terse way to call it. */

export interface TestServer {
  app: FastifyInstance;
  store: ResourceStore;
  /**
   * Calls the app as a backend client allowed everything, unless the request carries its own
   * Authorization header (an empty one sends none).
   */
  request(options: InjectOptions): Promise<LightMyRequestResponse>;
  create(resource: Record<string, unknown>): Promise<Record<string, any>>;
}

export const FHIR_JSON = { 'content-type': 'application/fhir+json' };

export async function serverOptions(store: ResourceStore, overrides: Partial<ServerOptions> = {}, auth: Partial<AuthSetup> = {}): Promise<ServerOptions> {
  return {
    store,
    auth: await testAuth(auth),
    software,
    bodyLimit: 16 * 1024 * 1024,
    defaultPageSize: 20,
    maxPageSize: 1000,
    pagingSecret: randomBytes(32),
    baseUrl: 'http://fhir.test/fhir',
    ...overrides,
  };
}

/** Registers beforeAll/afterAll hooks; the returned object is filled in before tests run. */
export function useServer(open: () => Promise<ResourceStore>, overrides: Partial<ServerOptions> = {}, auth: Partial<AuthSetup> = {}): TestServer {
  const server = {} as TestServer;
  beforeAll(async () => {
    server.store = await open();
    // FerretDB (CI's MongoDB-wire server) scans whole collections for index-entry lookups, so an
    // AuditEvent per request makes every later search of a suite slower; on it, only the suites
    // about recording itself write the audit trail: they pass their own recorders, or name
    // `recorders: undefined` to ask for the server's own on every store.
    const recording = server.store.kind === 'mongo' && !('recorders' in overrides) ? { recorders: [] } : {};
    server.app = await buildServer(await serverOptions(server.store, { ...recording, ...overrides }, auth));
    const authorization = `Bearer ${await tokenFor(SUPER_CLIENT, { lifetimeSeconds: 3600 })}`;
    server.request = (options) => {
      const headers = { ...(options.headers ?? {}) } as Record<string, string>;
      if (!('authorization' in headers)) headers.authorization = authorization;
      else if (headers.authorization === '') delete headers.authorization;
      return server.app.inject({ ...options, headers });
    };
    server.create = async (resource) => {
      const res = await server.request({ method: 'POST', url: `/fhir/${String(resource.resourceType)}`, headers: FHIR_JSON, payload: resource });
      if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`);
      return res.json();
    };
  });
  afterAll(async () => {
    await server.app?.close();
    await server.store?.close();
  });
  return server;
}

/** The parts of an OperationOutcome tests look at. */
export function outcomeOf(res: LightMyRequestResponse): { codes: string[]; text: string; expressions: string[] } {
  const body = res.json();
  if (body.resourceType !== 'OperationOutcome') throw new Error(`not an OperationOutcome: ${res.body}`);
  const issues = body.issue as { code: string; diagnostics?: string; expression?: string[] }[];
  return {
    codes: issues.map((i) => i.code),
    text: issues.map((i) => i.diagnostics ?? '').join(' | '),
    expressions: issues.flatMap((i) => i.expression ?? []),
  };
}
