import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, outcomeOf, useServer } from './harness.js';

/** Every failure is an OperationOutcome with the right status, and stores nothing. */
describeEachStore('errors', (open) => {
  const server = useServer(open, { bodyLimit: 64 * 1024 });

  async function patientCount(): Promise<number> {
    return (await server.request({ method: 'GET', url: '/fhir/Patient/_history' })).json().total;
  }

  it('malformed JSON gives 400', async () => {
    const res = await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: '{"resourceType": "Patient", ' });
    expect(res.statusCode).toBe(400);
    expect(outcomeOf(res).text).toBe('The request body is not valid JSON');
  });

  it('an empty body gives 400', async () => {
    const res = await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: '' });
    expect(res.statusCode).toBe(400);
    expect(res.json().resourceType).toBe('OperationOutcome');
  });

  it('prototype-poisoning keys are refused', async () => {
    const res = await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: '{"resourceType":"Patient","__proto__":{"admin":true}}' });
    expect(res.statusCode).toBe(400);
  });

  it('a body that is not a resource, or of the wrong type, gives 400 naming resourceType', async () => {
    expect((await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: '[1,2]' })).statusCode).toBe(400);
    const wrong = await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: { resourceType: 'Observation' } });
    expect(wrong.statusCode).toBe(400);
    expect(outcomeOf(wrong).expressions).toEqual(['Patient.resourceType']);
  });

  it('schema violations give 400 with one issue per offending element', async () => {
    const res = await server.request({
      method: 'POST',
      url: '/fhir/Patient',
      headers: FHIR_JSON,
      payload: { resourceType: 'Patient', gender: 'unknown-gender', birthDate: '1980-13-45', nickname: 'x', name: [{ family: ['not', 'a', 'string'] }], telecom: [] },
    });
    expect(res.statusCode).toBe(400);
    const { expressions, codes } = outcomeOf(res);
    expect(expressions).toEqual(expect.arrayContaining(['Patient.gender', 'Patient.birthDate', 'Patient.nickname', 'Patient.name[0].family', 'Patient.telecom']));
    expect(new Set(codes)).toEqual(new Set(['structure']));
  });

  it('contained resources are validated by their own type', async () => {
    const res = await server.request({
      method: 'POST',
      url: '/fhir/Observation',
      headers: FHIR_JSON,
      payload: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, contained: [{ resourceType: 'Patient', id: 'p', gender: 'sometimes' }] },
    });
    expect(res.statusCode).toBe(400);
    expect(outcomeOf(res).expressions).toEqual(['Observation.contained[0].gender']);
  });

  it('ids: invalid in the URL or body give 400; body id must match the URL id on update', async () => {
    const longId = 'a'.repeat(65);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${longId}` })).statusCode).toBe(400);
    expect((await server.request({ method: 'GET', url: '/fhir/Patient/bad_id' })).statusCode).toBe(400);
    const mismatch = await server.request({ method: 'PUT', url: '/fhir/Patient/abc', headers: FHIR_JSON, payload: { resourceType: 'Patient', id: 'xyz' } });
    expect(mismatch.statusCode).toBe(400);
    expect(outcomeOf(mismatch).expressions).toEqual(['Patient.id']);
    const noId = await server.request({ method: 'PUT', url: '/fhir/Patient/abc', headers: FHIR_JSON, payload: { resourceType: 'Patient' } });
    expect(noId.statusCode).toBe(400);
    const badUrlId = await server.request({ method: 'PUT', url: '/fhir/Patient/a$b', headers: FHIR_JSON, payload: { resourceType: 'Patient', id: 'a$b' } });
    expect(badUrlId.statusCode).toBe(400);
  });

  it('unknown resource types and unknown ids give 404', async () => {
    const type = await server.request({ method: 'GET', url: '/fhir/Spaceship/1' });
    expect(type.statusCode).toBe(404);
    expect(outcomeOf(type).codes).toEqual(['not-found']);
    expect((await server.request({ method: 'POST', url: '/fhir/Spaceship', headers: FHIR_JSON, payload: { resourceType: 'Spaceship' } })).statusCode).toBe(404);
    expect((await server.request({ method: 'GET', url: '/fhir/Spaceship' })).statusCode).toBe(404);
    const id = await server.request({ method: 'GET', url: '/fhir/Patient/does-not-exist' });
    expect(id.statusCode).toBe(404);
    expect((await server.request({ method: 'GET', url: '/nowhere' })).json().resourceType).toBe('OperationOutcome');
  });

  it('a method the endpoint does not support gives 405 with Allow', async () => {
    const res = await server.request({ method: 'POST', url: '/fhir/Patient/123', headers: FHIR_JSON, payload: { resourceType: 'Patient' } });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('GET, PUT, PATCH, DELETE');
    expect(outcomeOf(res).codes).toEqual(['not-supported']);
    expect((await server.request({ method: 'DELETE', url: '/fhir/metadata' })).statusCode).toBe(405);
    expect((await server.request({ method: 'PUT', url: '/fhir/Patient/1/_history' })).statusCode).toBe(405);
  });

  it('too large a body gives 413 and stores nothing', async () => {
    const before = await patientCount();
    const huge = { resourceType: 'Patient', name: [{ text: 'x'.repeat(100 * 1024) }] };
    const res = await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: huge });
    expect(res.statusCode).toBe(413);
    expect(outcomeOf(res).codes).toEqual(['too-long']);
    expect(await patientCount()).toBe(before);
  });

  it('an unsupported media type gives 415', async () => {
    for (const type of ['text/plain', 'application/xml', 'application/fhir+xml', 'application/x-www-form-urlencoded']) {
      const res = await server.request({ method: 'POST', url: '/fhir/Patient', headers: { 'content-type': type }, payload: '<Patient/>' });
      expect(res.statusCode, type).toBe(415);
      expect(res.json().resourceType).toBe('OperationOutcome');
    }
    const patch = await server.request({ method: 'PATCH', url: '/fhir/Patient/x', headers: { 'content-type': 'application/xml' }, payload: '<x/>' });
    expect(patch.statusCode).toBe(415);
  });

  it('answers never carry stack traces or storage text, and failed writes store nothing', async () => {
    const before = await patientCount();
    const attempts = [
      await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: '{"resourceType":' }),
      await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: { resourceType: 'Patient', active: 'yes' } }),
      await server.request({ method: 'PUT', url: "/fhir/Patient/x'--", headers: FHIR_JSON, payload: { resourceType: 'Patient', id: "x'--" } }),
      await server.request({ method: 'GET', url: '/fhir/Patient/_history?_count=abc' }),
      await server.request({ method: 'GET', url: '/fhir/Patient/_history?_page=forged' }),
    ];
    for (const res of attempts) {
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expect(res.statusCode).toBeLessThan(500);
      expect(res.body).not.toMatch(/at .+\.(ts|js):\d+|SQLITE|sqlite|Mongo|E11000|stack/i);
    }
    expect(await patientCount()).toBe(before);
  });
});
