import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { useServer } from './harness.js';

/** CORS for browser apps of configured origins; none by default. */

const APP = 'https://portal.example.org';
const preflight = (origin: string, method = 'GET', headers = 'authorization') => ({
  method: 'OPTIONS' as const,
  url: '/fhir/Patient',
  headers: { authorization: '', origin, 'access-control-request-method': method, 'access-control-request-headers': headers },
});

describeEachStore('CORS with allowed origins', (open) => {
  const server = useServer(open, { corsAllowedOrigins: [APP, 'http://localhost:3000'] });

  it('answers a preflight from an allowed origin before authentication, naming the methods and headers FHIR clients use', async () => {
    const res = await server.request(preflight(APP, 'PUT', 'authorization,content-type,if-match'));
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe(APP);
    expect(String(res.headers['access-control-allow-methods'])).toContain('PUT');
    expect(String(res.headers['access-control-allow-headers'])).toMatch(/Authorization.*If-Match/);
    expect(res.headers['access-control-max-age']).toBe('600');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('lets the app read the version and location headers of an answer', async () => {
    const res = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { origin: APP, 'content-type': 'application/fhir+json' }, payload: { resourceType: 'Patient' } });
    expect(res.statusCode).toBe(201);
    expect(res.headers['access-control-allow-origin']).toBe(APP);
    expect(String(res.headers['access-control-expose-headers'])).toMatch(/ETag.*Location/);
  });

  it('gives another origin no CORS headers, and still asks every real request for its token', async () => {
    const res = await server.request(preflight('https://evil.example.com'));
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const unauthenticated = await server.request({ method: 'GET', url: '/fhir/Patient', headers: { authorization: '', origin: APP } });
    expect(unauthenticated.statusCode).toBe(401);
    expect(unauthenticated.headers['access-control-allow-origin']).toBe(APP);
  });

  it('says so in the CapabilityStatement', async () => {
    expect((await server.request({ method: 'GET', url: '/fhir/metadata' })).json().rest[0].security.cors).toBe(true);
  });
});

describeEachStore('CORS by default', (open) => {
  const server = useServer(open);

  it('is off: no CORS headers, OPTIONS is a 405 with an OperationOutcome, and the CapabilityStatement says cors false', async () => {
    const res = await server.request(preflight(APP));
    expect(res.statusCode).toBe(405);
    expect(res.json().resourceType).toBe('OperationOutcome');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect((await server.request({ method: 'GET', url: '/fhir/metadata' })).json().rest[0].security.cors).toBe(false);
  });
});
