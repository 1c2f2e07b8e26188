import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { SignJWT, type JWK } from 'jose';
import { expect, it } from 'vitest';
import { CLIENT_ASSERTION_TYPE } from '../../src/auth/backend-services.js';
import { useServer } from '../http/harness.js';
import { describeEachStore } from '../store/stores.js';

/** SMART Backend Services: client_credentials with a private_key_jwt assertion at POST /auth/token. */

function clientKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicJwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid: randomUUID(), alg: 'ES256' } };
}
const ha = clientKey();
const operatorTool = clientKey();
const stranger = clientKey();
const TOKEN_URL = 'http://fhir.test/auth/token';

function assertion(options: { key?: typeof ha; iss?: string; aud?: string; jti?: string; exp?: number } = {}): Promise<string> {
  const key = options.key ?? ha;
  const iss = options.iss ?? 'ha-bulk';
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: key.publicJwk.kid! })
    .setIssuer(iss)
    .setSubject(iss)
    .setAudience(options.aud ?? TOKEN_URL)
    .setJti(options.jti ?? randomUUID())
    .setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 240)
    .sign(key.privateKey);
}

describeEachStore('SMART Backend Services', (open) => {
  const server = useServer(open, {}, {
    clients: [
      { clientId: 'ha-bulk', name: 'Hospital Authority bulk exchange', jwks: [ha.publicJwk], scopes: ['system/*.read', 'system/Observation.write'] },
      { clientId: 'data-migration', name: "The operator's data migration tool", jwks: [operatorTool.publicJwk], scopes: ['system/*.read'], seesNonParticipating: true },
    ],
  });
  const tokenRequest = (fields: Record<string, string>) =>
    server.request({ method: 'POST', url: '/auth/token', headers: { authorization: '', 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams(fields).toString() });
  const grant = async (extra: Record<string, string> = {}, jwt?: string) =>
    tokenRequest({ grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: jwt ?? (await assertion()), scope: 'system/*.read', ...extra });

  it('issues a short-lived token that the FHIR API accepts, limited to the scopes granted', async () => {
    const res = await grant({ scope: 'system/*.read system/Observation.write' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json();
    expect(body).toMatchObject({ token_type: 'bearer', expires_in: 300, scope: 'system/*.read system/Observation.write' });
    const headers = { authorization: `Bearer ${body.access_token}` };
    expect((await server.request({ method: 'GET', url: '/fhir/Observation', headers })).statusCode).toBe(200);
    const write = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...headers, 'content-type': 'application/fhir+json' }, payload: { resourceType: 'Patient' } });
    expect(write.statusCode).toBe(403);
  });

  it('refuses a replayed assertion (same jti)', async () => {
    const jwt = await assertion({ jti: 'once-only' });
    expect((await grant({}, jwt)).statusCode).toBe(200);
    const replay = await grant({}, jwt);
    expect(replay.statusCode).toBe(401);
    expect(replay.json()).toMatchObject({ error: 'invalid_client' });
    expect(replay.json().error_description).toMatch(/jti/);
  });

  it('refuses unknown clients, foreign keys, wrong audiences, long-lived assertions and scopes beyond the registration', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect((await grant({}, await assertion({ iss: 'nobody' }))).json().error).toBe('invalid_client');
    expect((await grant({}, await assertion({ key: { ...stranger, publicJwk: { ...stranger.publicJwk, kid: ha.publicJwk.kid! } } }))).statusCode).toBe(401);
    expect((await grant({}, await assertion({ aud: 'http://elsewhere/token' }))).statusCode).toBe(401);
    expect((await grant({}, await assertion({ exp: now + 3600 }))).statusCode).toBe(401);
    expect((await grant({}, await assertion({ exp: now - 120 }))).statusCode).toBe(401);
    const scope = await grant({ scope: 'system/*.write' });
    expect(scope.statusCode).toBe(400);
    expect(scope.json().error).toBe('invalid_scope');
    expect((await grant({ grant_type: 'password' })).json().error).toBe('unsupported_grant_type');
    expect((await grant({ client_assertion_type: 'other' })).json().error).toBe('invalid_request');
  });

  it("an HCP's system does not see a patient who takes no part; a tool the operator registered to see them does", async () => {
    const withdrawn = await server.create({ resourceType: 'Patient', active: false, name: [{ family: 'Chan' }] });
    const record = await server.create({ resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: `Patient/${withdrawn.id as string}` } });
    const tokenOf = async (key: typeof ha, clientId: string) => {
      const res = await grant({}, await assertion({ key, iss: clientId }));
      expect(res.statusCode, res.body).toBe(200);
      return { authorization: `Bearer ${res.json().access_token as string}` };
    };
    const hcpSystem = await tokenOf(ha, 'ha-bulk');
    const operator = await tokenOf(operatorTool, 'data-migration');
    for (const url of [`/fhir/Patient/${withdrawn.id as string}`, `/fhir/Observation/${record.id as string}`]) {
      expect((await server.request({ method: 'GET', url, headers: hcpSystem })).statusCode, url).toBe(404);
      expect((await server.request({ method: 'GET', url, headers: operator })).statusCode, url).toBe(200);
    }
    expect((await server.request({ method: 'GET', url: `/fhir/Observation?subject=Patient/${withdrawn.id as string}`, headers: hcpSystem })).json().total).toBe(0);
  });

  it('grants no scope on the audit trail, and a wildcard token reads neither the trail nor the notification queue', async () => {
    const audit = await grant({ scope: 'system/AuditEvent.read' });
    expect(audit.statusCode).toBe(400);
    expect(audit.json().error).toBe('invalid_scope');
    expect(audit.json().error_description).toMatch(/auditors/);
    const headers = { authorization: `Bearer ${(await grant()).json().access_token as string}` };
    for (const url of ['/fhir/AuditEvent', '/fhir/Communication']) expect((await server.request({ method: 'GET', url, headers })).statusCode, url).toBe(403);
  });
});
