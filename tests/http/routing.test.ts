import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, outcomeOf, useServer } from './harness.js';

/** How paths and methods a client may send in other spellings are answered. */
describeEachStore('routing', (open) => {
  const server = useServer(open);

  it('OPTIONS on a FHIR path gives 405 with the methods it takes in Allow; an unknown type stays 404', async () => {
    const type = await server.request({ method: 'OPTIONS', url: '/fhir/Patient' });
    expect(type.statusCode).toBe(405);
    expect(type.headers.allow).toBe('POST, PUT, DELETE, GET');
    expect(outcomeOf(type).codes).toEqual(['not-supported']);
    expect((await server.request({ method: 'OPTIONS', url: '/fhir/Patient/123' })).headers.allow).toBe('GET, PUT, PATCH, DELETE');
    expect((await server.request({ method: 'OPTIONS', url: '/fhir' })).headers.allow).toBe('GET, POST');
    // Not even authentication is asked: the answer says nothing about any record.
    expect((await server.request({ method: 'OPTIONS', url: '/fhir/metadata', headers: { authorization: '' } })).statusCode).toBe(405);
    expect((await server.request({ method: 'OPTIONS', url: '/fhir/Spaceship' })).statusCode).toBe(404);
  });

  it('a trailing slash on the base or a type is the same endpoint as without it', async () => {
    const patient = await server.create({ resourceType: 'Patient', name: [{ family: 'Slash' }] });
    const ids = (res: { json(): any }) => (res.json().entry ?? []).map((e: any) => e.resource.id);
    const system = await server.request({ method: 'GET', url: '/fhir/?_type=Patient&family=Slash' });
    expect(system.statusCode, system.body).toBe(200);
    expect(ids(system)).toEqual([patient.id]);
    expect(ids(await server.request({ method: 'GET', url: '/fhir/Patient/?family=Slash' }))).toEqual([patient.id]);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/` })).json().id).toBe(patient.id);
    const bundle = await server.request({ method: 'POST', url: '/fhir/', headers: FHIR_JSON, payload: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Patient/${patient.id}` } }] } });
    expect(bundle.json().entry[0].response.status).toMatch(/^200/);
    expect((await server.request({ method: 'GET', url: '/fhir/metadata/' })).json().resourceType).toBe('CapabilityStatement');
  });
});
