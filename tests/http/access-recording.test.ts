import { expect, it } from 'vitest';
import type { AccessEvent, AccessRecorder } from '../../src/access/events.js';
import { patientOf, hcpWithAccounts } from '../access/territory.js';
import { sampleRecords } from '../access/samples.js';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, useServer } from './harness.js';

/** Every authenticated request is recorded before its answer leaves; one that cannot be recorded fails. */

class Capture implements AccessRecorder {
  events: AccessEvent[] = [];
  failing = false;
  async record(event: AccessEvent): Promise<void> {
    if (this.failing) throw new Error('disk full');
    this.events.push(event);
  }
  last(): AccessEvent {
    return this.events[this.events.length - 1]!;
  }
}

describeEachStore('access recording', (open) => {
  const capture = new Capture();
  const server = useServer(open, { publicProviders: true, recorders: [capture] });

  it('names the principal, interaction, patients, data types, outcome and client for reads, searches and refusals', async () => {
    const hcp = await hcpWithAccounts(server);
    const doctor = hcp.accounts['medical-practitioner']!;
    const patient = await patientOf(server, hcp.id);
    const obs = await server.create(sampleRecords(patient.id)['lab-radiology']);

    await server.request({ method: 'GET', url: `/fhir/Observation/${obs.id}`, headers: doctor.headers });
    let event = capture.last();
    expect(event).toMatchObject({ interaction: 'read', method: 'GET', resourceType: 'Observation', id: obs.id, status: 200, patients: [patient.id], dataTypes: ['lab-radiology'] });
    expect(event.principal).toMatchObject({ kind: 'account', accountId: doctor.roleId, organizationId: hcp.id, group: 'medical-practitioner' });
    expect(event.clientAddress).toBe('127.0.0.1');

    await server.request({ method: 'GET', url: `/fhir/Observation?subject=Patient/${patient.id}&_count=5`, headers: doctor.headers });
    event = capture.last();
    expect(event).toMatchObject({ interaction: 'search-type', status: 200, patients: [patient.id] });
    expect(event.url).toContain(`subject=Patient/${patient.id}`);

    await server.request({ method: 'GET', url: `/fhir/Observation/${obs.id}`, headers: { authorization: '' } });
    event = capture.last();
    expect(event.status).toBe(401);
    expect(event.principal).toBeUndefined();
    expect(event.refusal).toMatch(/bearer token/);

    const stranger = (await hcpWithAccounts(server)).accounts['medical-practitioner']!;
    await server.request({ method: 'GET', url: `/fhir/Observation/${obs.id}`, headers: stranger.headers });
    expect(capture.last()).toMatchObject({ interaction: 'read', status: 404, patients: [] });

    // A conditional read is recorded as the read it is; to anyone who may not see the record it is a 404 all the same.
    const cached = await server.request({ method: 'GET', url: `/fhir/Observation/${obs.id}`, headers: { ...doctor.headers, 'if-none-match': 'W/"1"' } });
    expect(cached.statusCode).toBe(304);
    expect(capture.last()).toMatchObject({ interaction: 'read', status: 304, patients: [patient.id], dataTypes: ['lab-radiology'] });
    expect((await server.request({ method: 'GET', url: `/fhir/Observation/${obs.id}`, headers: { ...stranger.headers, 'if-none-match': '*' } })).statusCode).toBe(404);
  });

  it('answers 500 with an OperationOutcome, and no version headers, when the access cannot be recorded', async () => {
    const hcp = await hcpWithAccounts(server);
    const patient = await patientOf(server, hcp.id);
    const obs = await server.create(sampleRecords(patient.id)['lab-radiology']);
    capture.failing = true;
    try {
      const res = await server.request({ method: 'GET', url: `/fhir/Observation/${obs.id}`, headers: hcp.accounts['medical-practitioner']!.headers });
      expect(res.statusCode).toBe(500);
      expect(res.json().resourceType).toBe('OperationOutcome');
      expect(res.body).not.toContain('disk full');
      expect(res.headers.etag).toBeUndefined();
      const created = await server.request({ method: 'POST', url: '/fhir/Observation', headers: FHIR_JSON, payload: sampleRecords(patient.id)['lab-radiology'] });
      expect(created.statusCode).toBe(500);
      expect(created.headers.location).toBeUndefined();
    } finally {
      capture.failing = false;
    }
  });
});
