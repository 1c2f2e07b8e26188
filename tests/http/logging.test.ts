import { Writable } from 'node:stream';
import { expect, it } from 'vitest';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, useServer } from './harness.js';

/** Request logs hold methods, paths, parameter names and statuses: never bodies, names or identifiers. */
describeEachStore('request logging', (open) => {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const server = useServer(open, { log: { level: 'info', stream } });

  it('logs one line per request without personal data', async () => {
    const secret = { family: 'Wongsecretname', hkid: 'Z987654(3)' };
    const patient = { resourceType: 'Patient', name: [{ family: secret.family }], identifier: [{ system: 'urn:hkid', value: secret.hkid }] };
    const created = await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: patient });
    expect(created.statusCode).toBe(201);
    await server.request({ method: 'PUT', url: `/fhir/Patient?identifier=urn:hkid|${encodeURIComponent(secret.hkid)}`, headers: FHIR_JSON, payload: patient });
    await server.request({ method: 'POST', url: '/fhir/Patient', headers: { ...FHIR_JSON, 'if-none-exist': `identifier=urn:hkid|${secret.hkid}` }, payload: patient });
    await server.request({ method: 'POST', url: '/fhir/Patient', headers: FHIR_JSON, payload: { ...patient, gender: secret.family } });

    const log = lines.join('');
    expect(log).not.toContain(secret.family);
    expect(log).not.toContain('Z987654');
    const entries = lines.map((l) => JSON.parse(l));
    const requests = entries.filter((e) => e.msg === 'request');
    expect(requests).toHaveLength(4);
    expect(requests[1].req).toEqual({ method: 'PUT', path: '/fhir/Patient', params: 'identifier', remoteAddress: '127.0.0.1' });
    expect(requests.map((r) => r.res.statusCode)).toEqual([201, 200, 200, 400]);
  });
});
