import { expect, it } from 'vitest';
import { exportAll } from '../http/bulk-client.js';
import { FHIR_JSON, useServer, type TestServer } from '../http/harness.js';
import { as, operation, registrationOffice, type Headers } from '../participation/fixtures.js';
import { describeEachStore } from '../store/stores.js';
import { sampleRecords } from './samples.js';
import { hcpWithAccounts, joinedPatient, patientOf } from './territory.js';

/**
 * What a backend client sees: health records its scopes name, never the audit trail or the
 * patient-notification queue through a wildcard, and in bulk exports nothing of patients whose
 * records are not shared (pending activation, withdrawn).
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
    // Withdrawal loses no data: the records are kept, for the patient's return.
    const kept = await server.request({ method: 'GET', url: `/fhir/Observation/${observations.get(withdrawn.id)!}`, headers: { ...FHIR_JSON } });
    expect(kept.statusCode).toBe(200);
  });
});
