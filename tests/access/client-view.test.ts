import { expect, it } from 'vitest';
import { exportAll } from '../http/bulk-client.js';
import { FHIR_JSON, useServer, type TestServer } from '../http/harness.js';
import { as, operation, registrationOffice, type Headers } from '../participation/fixtures.js';
import { describeEachStore } from '../store/stores.js';
import { sampleRecords } from './samples.js';
import { hcpWithAccounts, joinedPatient, patientOf } from './territory.js';

/**
 * What a backend client sees: health records its scopes name, never the audit trail or the
 * patient-notification queue through a wildcard, and (an HCP's system) nothing of patients whose
 * records are not shared (pending activation, withdrawn), in bulk exports or any other way.
 */

type Json = Record<string, any>;

const typesIn = (bundle: Json) => new Set(((bundle.entry ?? []) as { resource: { resourceType: string } }[]).map((e) => e.resource.resourceType));
const idsOf = (resources: Map<string, Json[]>, type: string) => (resources.get(type) ?? []).map((r) => r.id as string);

async function withdraw(server: TestServer, patientId: string): Promise<void> {
  const res = await operation(server, `/fhir/Patient/${patientId}/$withdraw`, [], await registrationOffice());
  expect(res.statusCode, res.body).toBe(200);
}

describeEachStore('what a backend client sees', (open) => {
  // The server's own audit trail and notification outbox, so there is something to hide.
  const server = useServer(open, { publicProviders: true, recorders: undefined, dispatchNotifications: false });

  it('a wildcard scope covers neither the audit trail nor the notification queue, directly or through other types', async () => {
    const hcp = await hcpWithAccounts(server);
    const doctor = hcp.accounts['medical-practitioner']!;
    const patient = await patientOf(server, hcp.id);
    const obs = await server.create(sampleRecords(patient.id)['lab-radiology']);
    // An HCProf's read: an AuditEvent naming the patient, and a notification (Communication) to them.
    expect((await server.request({ method: 'GET', url: `/fhir/Observation/${obs.id}`, headers: doctor.headers })).statusCode).toBe(200);
    const auditor = await as({ kind: 'auditor', staffId: 'privacy-officer' });
    const trail = await server.request({ method: 'GET', url: `/fhir/AuditEvent?patient=Patient/${patient.id}`, headers: auditor });
    expect(trail.json().total).toBeGreaterThan(0);
    const gateway = await as({ kind: 'system', clientId: 'sms-gateway', scopes: ['system/Communication.read'] });
    expect((await server.request({ method: 'GET', url: `/fhir/Communication?patient=Patient/${patient.id}`, headers: gateway })).json().total).toBe(1);

    for (const scopes of [['system/*.read'], ['system/*.*'], ['system/*.rs', 'system/AuditEvent.rs']]) {
      const client: Headers = await as({ kind: 'system', clientId: 'ha-bulk', scopes });
      for (const url of ['/fhir/AuditEvent', `/fhir/AuditEvent/${trail.json().entry[0].resource.id as string}`, '/fhir/Communication', `/fhir/Patient/${patient.id}/Communication`, '/fhir?_type=AuditEvent']) {
        expect((await server.request({ method: 'GET', url, headers: client })).statusCode, `${scopes.join(' ')} ${url}`).toBe(403);
      }
    }
    // What reaches into several types leaves them out. ($everything is slow on FerretDB: once.)
    const client: Headers = await as({ kind: 'system', clientId: 'ha-bulk', scopes: ['system/*.read'] });
    const get = (url: string) => server.request({ method: 'GET', url, headers: client });
    const reached: [string, Json][] = [];
    for (const url of [`/fhir/Patient?_id=${patient.id}&_revinclude=AuditEvent:patient&_revinclude=Communication:subject`, `/fhir/Patient/${patient.id}/$everything`, `/fhir?_lastUpdated=ge${new Date(Date.now() - 600_000).toISOString()}&_count=1000`, '/fhir/_history?_count=1000']) {
      const res = await get(url);
      expect(res.statusCode, res.body).toBe(200);
      reached.push([url, res.json()]);
    }
    const batch = { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: '_history?_count=1000' } }] };
    reached.push(['a batch GET _history', (await server.request({ method: 'POST', url: '/fhir', headers: { ...FHIR_JSON, ...client }, payload: batch })).json().entry[0].resource]);
    for (const [what, bundle] of reached) expect([...typesIn(bundle)].filter((t) => t === 'AuditEvent' || t === 'Communication'), what).toEqual([]);
    expect(typesIn(reached[0]![1])).toContain('Patient');
    expect(typesIn(reached[1]![1])).toContain('Observation');
    expect((await get(`/fhir/Patient?_has:AuditEvent:patient:outcome=0&_id=${patient.id}`)).json().total).toBe(0);
    // An export of every type of the patient's compartment holds the health records, not the queue.
    const { resources } = await exportAll(server, `/fhir/Patient/$export?patient=Patient/${patient.id}`, client);
    expect(idsOf(resources, 'Observation')).toEqual([obs.id]);
    expect(resources.has('Communication')).toBe(false);
  });

  it("a backend client's export leaves out patients pending activation or withdrawn, and their records, at every level", async () => {
    const active = await joinedPatient(server);
    const pending = await joinedPatient(server, { activate: false });
    const withdrawn = await joinedPatient(server);
    await withdraw(server, withdrawn.id);
    const observations = new Map<string, string>();
    for (const p of [active, pending, withdrawn]) observations.set(p.id, (await server.create(sampleRecords(p.id)['lab-radiology'])).id as string);
    const group = await server.create({ resourceType: 'Group', type: 'person', actual: true, member: [active, pending, withdrawn].map((p) => ({ entity: { reference: `Patient/${p.id}` } })) });
    const client = await as({ kind: 'system', clientId: 'ha-bulk', scopes: ['system/*.read'] });
    const ours = [active.id, pending.id, withdrawn.id];

    for (const url of ['/fhir/$export?_type=Patient,Observation', '/fhir/Patient/$export?_type=Patient,Observation', `/fhir/Group/${group.id as string}/$export?_type=Patient,Observation`]) {
      const { resources } = await exportAll(server, url, client);
      expect(idsOf(resources, 'Patient').filter((id) => ours.includes(id)), url).toEqual([active.id]);
      expect(idsOf(resources, 'Observation').filter((id) => [...observations.values()].includes(id)), url).toEqual([observations.get(active.id)]);
    }
    // Withdrawal loses no data: the records are kept, for the patient's return (an operator's tool sees them).
    const kept = await server.request({ method: 'GET', url: `/fhir/Observation/${observations.get(withdrawn.id)!}`, headers: { ...FHIR_JSON } });
    expect(kept.statusCode).toBe(200);
  });

  it("an HCP's system reads, searches and reaches nothing of patients pending activation or withdrawn; their notifications still go out; an operator's tool sees them", async () => {
    const hcp = await hcpWithAccounts(server);
    const doctor = hcp.accounts['medical-practitioner']!;
    const active = await joinedPatient(server);
    const pending = await joinedPatient(server, { activate: false });
    const leaving = await patientOf(server, hcp.id);
    const observation = new Map<string, string>();
    for (const p of [active, pending, leaving]) observation.set(p.id, (await server.create(sampleRecords(p.id)['lab-radiology'])).id as string);
    // A doctor's read while the patient still takes part queues a notification to them.
    expect((await server.request({ method: 'GET', url: `/fhir/Observation/${observation.get(leaving.id)!}`, headers: doctor.headers })).statusCode).toBe(200);
    await withdraw(server, leaving.id);

    const ha = await as({ kind: 'system', clientId: 'ha-bulk', scopes: ['system/*.read'] });
    const get = (url: string, headers: Headers = ha) => server.request({ method: 'GET', url, headers });
    const ours = [active.id, pending.id, leaving.id];
    const idsIn = (bundle: Json, type: string) => ((bundle.entry ?? []) as { resource: Json }[]).map((e) => e.resource).filter((r) => r.resourceType === type).map((r) => r.id as string);

    // Searches: pages and totals hold only the patients who take part, whatever reaches them.
    const patients = (await get(`/fhir/Patient?_id=${ours.join(',')}`)).json();
    expect(idsIn(patients, 'Patient')).toEqual([active.id]);
    expect(patients.total).toBe(1);
    const records = (await get(`/fhir/Observation?subject=${ours.map((id) => `Patient/${id}`).join(',')}&_include=Observation:subject`)).json();
    expect(records.total).toBe(1);
    expect(idsIn(records, 'Observation')).toEqual([observation.get(active.id)]);
    expect(idsIn(records, 'Patient')).toEqual([active.id]);
    const reverse = (await get(`/fhir/Patient?_id=${ours.join(',')}&_revinclude=Observation:subject`)).json();
    expect(idsIn(reverse, 'Observation')).toEqual([observation.get(active.id)]);
    expect((await get(`/fhir/Observation?subject:Patient.identifier=${leaving.hkic}`)).json().total).toBe(0);
    expect((await get(`/fhir/Patient?_has:Observation:subject:_id=${observation.get(pending.id)!}`)).json().total).toBe(0);
    const system = (await get(`/fhir?_type=Patient,Observation&_id=${[...ours, ...observation.values()].join(',')}`)).json();
    expect(system.total).toBe(2);

    // Reads, versions, history and $everything answer as for a record that does not exist.
    for (const id of [pending.id, leaving.id]) {
      for (const url of [`/fhir/Patient/${id}`, `/fhir/Observation/${observation.get(id)!}`, `/fhir/Observation/${observation.get(id)!}/_history/1`, `/fhir/Observation/${observation.get(id)!}/_history`, `/fhir/Patient/${id}/$everything`]) {
        expect((await get(url)).statusCode, url).toBe(404);
      }
    }
    expect((await get(`/fhir/Observation/${observation.get(active.id)!}`)).statusCode).toBe(200);
    const history = (await get('/fhir/Observation/_history?_count=1000')).json();
    expect(idsIn(history, 'Observation').filter((id) => [...observation.values()].includes(id))).toEqual([observation.get(active.id)]);
    const batch = { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Observation/${observation.get(leaving.id)!}` } }, { request: { method: 'GET', url: `Observation?subject=Patient/${leaving.id}` } }] };
    const answered = (await server.request({ method: 'POST', url: '/fhir', headers: { ...FHIR_JSON, ...ha }, payload: batch })).json();
    expect(answered.entry[0].response.status).toMatch(/^404/);
    expect(answered.entry[1].resource.total).toBe(0);

    // Its records cannot be changed or deleted either; a new one may still be uploaded, and is not shown.
    const writer = await as({ kind: 'system', clientId: 'ha-bulk', scopes: ['system/*.*'] });
    const hidden = observation.get(leaving.id)!;
    const changed = { ...sampleRecords(leaving.id)['lab-radiology'], id: hidden, status: 'entered-in-error' };
    const put = await server.request({ method: 'PUT', url: `/fhir/Observation/${hidden}`, headers: { ...FHIR_JSON, ...writer }, payload: changed });
    expect(put.statusCode, put.body).toBe(404);
    expect((await server.request({ method: 'DELETE', url: `/fhir/Observation/${hidden}`, headers: writer })).statusCode).toBe(404);
    const inBatch = { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'PUT', url: `Observation/${hidden}` }, resource: changed }, { request: { method: 'DELETE', url: `Observation/${hidden}` } }] };
    const batchAnswer = (await server.request({ method: 'POST', url: '/fhir', headers: { ...FHIR_JSON, ...writer }, payload: inBatch })).json();
    expect(batchAnswer.entry.map((e: Json) => e.response.status as string)).toEqual([expect.stringMatching(/^404/), expect.stringMatching(/^404/)]);
    const upload = await server.request({ method: 'POST', url: '/fhir/Observation', headers: { ...FHIR_JSON, ...writer }, payload: sampleRecords(leaving.id)['lab-radiology'] });
    expect(upload.statusCode, upload.body).toBe(201);
    expect((await get(`/fhir/Observation/${upload.json().id as string}`)).statusCode).toBe(404);

    // The notification queued before the withdrawal is still there for the gateway to send.
    const gateway = await as({ kind: 'system', clientId: 'sms-gateway', scopes: ['system/Communication.read'] });
    expect((await get(`/fhir/Communication?patient=Patient/${leaving.id}`, gateway)).json().total).toBe(1);

    // An operator's tool, registered to see them, does; and a patient who takes part again is shown again.
    const operator = await as({ kind: 'system', clientId: 'migration-tool', scopes: ['system/*.read'], seesNonParticipating: true });
    expect((await get(`/fhir/Patient?_id=${ours.join(',')}`, operator)).json().total).toBe(3);
    const kept = await get(`/fhir/Observation/${observation.get(leaving.id)!}`, operator);
    expect(kept.statusCode).toBe(200);
    expect(kept.json().meta.versionId).toBe('1');
    const activated = await operation(server, `/fhir/Patient/${pending.id}/$activate`, [{ name: 'identityDocument', valueString: pending.hkic }], await registrationOffice());
    expect(activated.statusCode, activated.body).toBe(200);
    expect((await get(`/fhir/Observation/${observation.get(pending.id)!}`)).statusCode).toBe(200);
    expect((await get(`/fhir/Patient?_id=${ours.join(',')}`)).json().total).toBe(2);
    // A withdrawal takes effect at the next request, and other patients' writes change nothing.
    await server.create({ resourceType: 'Patient', active: true, name: [{ family: 'Lee' }] });
    expect((await get(`/fhir/Observation/${observation.get(active.id)!}`)).statusCode).toBe(200);
    await withdraw(server, active.id);
    expect((await get(`/fhir/Observation/${observation.get(active.id)!}`)).statusCode).toBe(404);
    expect((await get(`/fhir/Patient?_id=${ours.join(',')}`)).json().total).toBe(1);
  });
});
