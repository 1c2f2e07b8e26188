import type { AuditEvent } from 'fhir/r4.js';
import { expect, it } from 'vitest';
import { verifyAuditChain } from '../../src/access/audit.js';
import { plainJsonCodec } from '../../src/store/codec.js';
import { FHIR_JSON, useServer } from '../http/harness.js';
import { as } from '../participation/fixtures.js';
import { describeEachStore } from '../store/stores.js';
import { sampleRecords } from './samples.js';
import { accountsAt, hcpWithAccounts, patientOf, restrictedGrant } from './territory.js';

/** The audit trail and notifications of a running server, end to end. */

describeEachStore('audit trail and notifications', (open) => {
  // The server's own audit trail and outbox, on every store (see the harness). Its dispatcher
  // stays off: on MongoDB without transactions a count racing the dispatcher's rewrite of a
  // Communication can miss it (the adapter's known limit), and the queue is what is tested here.
  const server = useServer(open, { publicProviders: true, recorders: undefined, dispatchNotifications: false });

  it("every access is audited for auditors, shown in the patient's access log, and notified once per professional per day", async () => {
    const hcp = await hcpWithAccounts(server);
    const doctor = hcp.accounts['medical-practitioner']!;
    const patient = await patientOf(server, hcp.id);
    const obs = await server.create(sampleRecords(patient.id)['lab-radiology']);
    for (let i = 0; i < 3; i++) expect((await server.request({ method: 'GET', url: `/fhir/Observation/${obs.id}`, headers: doctor.headers })).statusCode).toBe(200);
    const refused = await server.request({ method: 'GET', url: '/fhir/_history', headers: doctor.headers });
    expect(refused.statusCode).toBe(403);

    const auditor = await as({ kind: 'auditor', staffId: 'privacy-officer' });
    const trail = await server.request({ method: 'GET', url: `/fhir/AuditEvent?agent=PractitionerRole/${doctor.roleId}&_count=50`, headers: auditor });
    expect(trail.statusCode).toBe(200);
    const events = (trail.json().entry as { resource: AuditEvent }[]).map((e) => e.resource);
    const reads = events.filter((e) => e.subtype?.some((s) => s.code === 'read'));
    expect(reads).toHaveLength(3);
    expect(reads[0]!.entity?.some((x) => x.what?.reference === `Patient/${patient.id}`)).toBe(true);
    expect(reads[0]!.entity?.some((x) => x.type?.code === 'lab-radiology')).toBe(true);
    expect(reads[0]!.agent.some((a) => a.who?.reference === `Organization/${hcp.id}`)).toBe(true);
    expect(events.some((e) => e.outcome === '4' && e.subtype?.some((s) => s.code === 'history-system'))).toBe(true);

    // The trail is the auditors': not HCProfs', and no one writes it through REST.
    expect((await server.request({ method: 'GET', url: '/fhir/AuditEvent', headers: doctor.headers })).statusCode).toBe(403);
    const forged = await server.request({ method: 'POST', url: '/fhir/AuditEvent', headers: FHIR_JSON, payload: { ...reads[0], id: undefined } });
    expect(forged.statusCode).toBe(403);
    expect((await server.request({ method: 'DELETE', url: `/fhir/AuditEvent/${reads[0]!.id}` })).statusCode).toBe(403);

    // The patient sees who, which HCP, when and which data types.
    const log = await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$access-log`, headers: patient.headers });
    expect(log.statusCode, log.body).toBe(200);
    const accesses = log.json().parameter as { name: string; part: { name: string; valueReference?: { reference: string }; valueCoding?: { code: string }; valueCode?: string }[] }[];
    const readsLogged = accesses.filter((a) => a.part.some((p) => p.name === 'action' && p.valueCode === 'read'));
    expect(readsLogged).toHaveLength(3);
    expect(readsLogged[0]!.part.find((p) => p.name === 'healthcareProvider')!.valueReference!.reference).toBe(`Organization/${hcp.id}`);
    expect(readsLogged[0]!.part.find((p) => p.name === 'professional')!.valueReference!.reference).toBe(`Practitioner/${doctor.practitionerId}`);
    expect(readsLogged[0]!.part.find((p) => p.name === 'dataType')!.valueCoding!.code).toBe('lab-radiology');
    expect(log.body).not.toContain('127.0.0.1');
    const other = await patientOf(server, hcp.id);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$access-log`, headers: other.headers })).statusCode).toBe(404);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$access-log`, headers: doctor.headers })).statusCode).toBe(403);

    // One notification for the three reads; a colleague's access is another. (The queue is read
    // by a client whose scope names Communication: a wildcard does not cover it.)
    const gateway = await as({ kind: 'system', clientId: 'sms-gateway', scopes: ['system/Communication.read'] });
    const notifications = async () => (await server.request({ method: 'GET', url: `/fhir/Communication?patient=Patient/${patient.id}`, headers: gateway })).json().total as number;
    expect(await notifications()).toBe(1);
    const colleague = (await accountsAt(server, hcp.id, ['nurse'])).nurse!;
    expect((await server.request({ method: 'GET', url: `/fhir/Observation/${obs.id}`, headers: colleague.headers })).statusCode).toBe(200);
    expect(await notifications()).toBe(2);
    // Restricted access is always notified, with the reason in the audit trail.
    const restricted = await server.create({ ...sampleRecords(patient.id)['lab-radiology'], meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] } });
    await server.create(restrictedGrant(patient.id, doctor.roleId, 'Checking HIV status before surgery') as unknown as Record<string, unknown>);
    for (let i = 0; i < 2; i++) expect((await server.request({ method: 'GET', url: `/fhir/Observation/${restricted.id}`, headers: doctor.headers })).statusCode).toBe(200);
    expect(await notifications()).toBe(4);
    const withReason = await server.request({ method: 'GET', url: `/fhir/AuditEvent?entity=Observation/${restricted.id}`, headers: auditor });
    expect((withReason.json().entry as { resource: AuditEvent }[]).every((e) => e.resource.purposeOfEvent?.[0]?.text === 'Checking HIV status before surgery')).toBe(true);
  });

  it('the chain verifies, and detects a record edited underneath the server', async () => {
    await server.request({ method: 'GET', url: '/fhir/Patient?_count=1' });
    // A request that can see AuditEvents waits until every event answered for is stored (on the
    // embedded store they follow their answers through the audit journal); the chain is read
    // from the store itself below.
    const auditor = await as({ kind: 'auditor', staffId: 'privacy-officer' });
    expect((await server.request({ method: 'GET', url: '/fhir/AuditEvent?_summary=count', headers: auditor })).statusCode).toBe(200);
    const before = await verifyAuditChain(server.store, plainJsonCodec);
    expect(before.ok).toBe(true);
    expect(before.checked).toBeGreaterThan(0);
    const [hit] = await server.store.search({ resourceTypes: ['AuditEvent'], where: [], sort: [], limit: 1 });
    const edited = { ...(JSON.parse(hit!.version.body!) as AuditEvent), outcome: '0' as const, outcomeDesc: 'nothing to see' };
    await server.store.write({ resourceType: 'AuditEvent', id: hit!.version.id, renderBody: () => JSON.stringify(edited) });
    const after = await verifyAuditChain(server.store, plainJsonCodec);
    expect(after.ok).toBe(false);
    expect(after.firstBroken?.id).toBe(hit!.version.id);
  });
});
