import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, outcomeOf, useServer } from './harness.js';

/** Conditional read: If-None-Match and If-Modified-Since, on the read routes and in bundle GET entries. */

const HOUR = 3_600_000;
const httpDate = (ms: number) => new Date(ms).toUTCString();

describeEachStore('conditional read', (open) => {
  const server = useServer(open);
  let id: string;
  const read = (headers: Record<string, string>, path = `/fhir/Patient/${id}`) => server.request({ method: 'GET', url: path, headers });

  it('loads a patient and updates it once', async () => {
    id = (await server.create({ resourceType: 'Patient', name: [{ family: 'Chan' }] })).id;
    const updated = await server.request({ method: 'PUT', url: `/fhir/Patient/${id}`, headers: FHIR_JSON, payload: { resourceType: 'Patient', id, name: [{ family: 'Chan', given: ['Tai Man'] }] } });
    expect(updated.statusCode).toBe(200);
  });

  it('If-None-Match naming the current version (weak, strong, in a list, or *) is a 304 with the version headers and no body', async () => {
    for (const tag of ['W/"2"', '"2"', 'W/"7", W/"2"', '*']) {
      const res = await read({ 'if-none-match': tag });
      expect(res.statusCode, tag).toBe(304);
      expect(res.headers.etag).toBe('W/"2"');
      expect(res.headers['last-modified']).toBeDefined();
      expect(res.body).toBe('');
    }
  });

  it('If-None-Match naming another version gives the resource', async () => {
    const res = await read({ 'if-none-match': 'W/"1"' });
    expect(res.statusCode).toBe(200);
    expect(res.json().name[0].given).toEqual(['Tai Man']);
    expect((await read({ 'if-none-match': 'W/"1"' }, `/fhir/Patient/${id}/_history/1`)).statusCode).toBe(304);
    expect((await read({ 'if-none-match': 'W/"2"' }, `/fhir/Patient/${id}/_history/1`)).statusCode).toBe(200);
  });

  it('If-Modified-Since is a 304 unless the resource changed after it; a date that is no date is ignored', async () => {
    expect((await read({ 'if-modified-since': httpDate(Date.now() + HOUR) })).statusCode).toBe(304);
    expect((await read({ 'if-modified-since': httpDate(Date.now() - HOUR) })).statusCode).toBe(200);
    expect((await read({ 'if-modified-since': 'yesterday' })).statusCode).toBe(200);
    // If-None-Match decides when both are sent.
    expect((await read({ 'if-none-match': 'W/"1"', 'if-modified-since': httpDate(Date.now() + HOUR) })).statusCode).toBe(200);
  });

  it('a record that is not there is a 404 whatever the conditions', async () => {
    const res = await read({ 'if-none-match': '*' }, '/fhir/Patient/not-here');
    expect(res.statusCode).toBe(404);
    expect(outcomeOf(res).codes).toEqual(['not-found']);
  });

  it('bundle GET entries take ifNoneMatch and ifModifiedSince; a write entry with them is refused', async () => {
    const res = await server.request({
      method: 'POST',
      url: '/fhir',
      headers: FHIR_JSON,
      payload: {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { request: { method: 'GET', url: `Patient/${id}`, ifNoneMatch: 'W/"2"' } },
          { request: { method: 'GET', url: `Patient/${id}`, ifNoneMatch: 'W/"1"' } },
          { request: { method: 'GET', url: `Patient/${id}`, ifModifiedSince: new Date(Date.now() + HOUR).toISOString() } },
          { request: { method: 'GET', url: `Patient/${id}`, ifModifiedSince: '2001-01-01T00:00:00Z' } },
          { request: { method: 'PUT', url: `Patient/${id}`, ifNoneMatch: '*' }, resource: { resourceType: 'Patient', id } },
        ],
      },
    });
    expect(res.statusCode, res.body).toBe(200);
    const entries = res.json().entry as { response: { status: string; etag?: string }; resource?: { resourceType: string } }[];
    expect(entries.map((e) => e.response.status)).toEqual(['304 Not Modified', '200 OK', '304 Not Modified', '200 OK', '400 Bad Request']);
    expect(entries[0]!.response.etag).toBe('W/"2"');
    expect(entries[0]!.resource).toBeUndefined();
    expect(entries[1]!.resource?.resourceType).toBe('Patient');
    expect((await read({})).json().meta.versionId).toBe('2');
  });

  it('the CapabilityStatement says conditional reads are supported', async () => {
    const statement = (await server.request({ method: 'GET', url: '/fhir/metadata' })).json();
    expect(statement.rest[0].resource.find((r: { type: string }) => r.type === 'Patient').conditionalRead).toBe('full-support');
  });
});
