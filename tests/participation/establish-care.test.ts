import type { LightMyRequestResponse } from 'fastify';
import type { AuditEvent } from 'fhir/r4.js';
import { afterEach, expect, it, vi } from 'vitest';
import { useServer } from '../http/harness.js';
import { describeEachStore } from '../store/stores.js';
import { advanceClock, clinicianAt, hkic, HKIC, MINUTE, registerPatient, setClock } from './access-fixtures.js';
import { account, as, expectOutcome, operation, registerHcp, type Headers } from './fixtures.js';

/**
 * $establish-care and the register: the patient found is named in the audit trail; documents
 * nobody holds are audited (system and masked number) and limited per account.
 */

describeEachStore('establishing care, audited and limited', (open) => {
  // The server's own audit trail on every store (see the harness); the outbox is not looked at.
  const server = useServer(open, { publicProviders: true, recorders: undefined, dispatchNotifications: false });
  afterEach(() => {
    vi.useRealTimers();
  });

  const establish = (number: string, headers: Headers): Promise<LightMyRequestResponse> =>
    operation(server, '/fhir/Patient/$establish-care', [{ name: 'identifier', valueIdentifier: { system: HKIC, value: number } }], headers);
  async function establishEvents(roleId: string): Promise<AuditEvent[]> {
    const auditor = await as({ kind: 'auditor', staffId: 'privacy-officer' });
    const res = await server.request({ method: 'GET', url: `/fhir/AuditEvent?agent=PractitionerRole/${roleId}&_count=100`, headers: auditor });
    expect(res.statusCode, res.body).toBe(200);
    return ((res.json().entry ?? []) as { resource: AuditEvent }[]).map((e) => e.resource).filter((e) => e.subtype?.some((s) => s.code === 'establish-care'));
  }

  it('names the patient found in the audit trail and the access log; a document nobody holds is a refused lookup with its system and masked number', async () => {
    const hcp = await registerHcp(server);
    const doctor = await clinicianAt(server, hcp.id);
    const patient = await registerPatient(server);
    expect((await establish(patient.hkic, doctor.headers)).statusCode).toBe(201);
    expectOutcome(await establish('A123456(3)', doctor.headers), 404, 'not-found');

    const events = await establishEvents(doctor.roleId);
    expect(events).toHaveLength(2);
    const found = events.find((e) => e.outcome === '0');
    const notFound = events.find((e) => e.outcome === '4');
    expect(found!.outcome).toBe('0');
    expect(found!.entity).toContainEqual(expect.objectContaining({ what: { reference: `Patient/${patient.id}` }, role: expect.objectContaining({ code: '1' }) }));
    expect(notFound!.outcome).toBe('4');
    expect(notFound!.outcomeDesc).toMatch(/^HTTP 404: No active eHealth participant holds this identity document/);
    expect(notFound!.entity).toContainEqual(expect.objectContaining({ what: { identifier: { system: HKIC, value: 'A12****(*)' } } }));
    expect(notFound!.entity!.some((e) => e.what?.reference)).toBe(false);
    expect(JSON.stringify(notFound)).not.toMatch(/123456/);

    const log = await server.request({ method: 'GET', url: `/fhir/Patient/${patient.id}/$access-log`, headers: patient.headers });
    expect(log.statusCode, log.body).toBe(200);
    expect(log.body).toContain('establish-care');
  });

  it('after ten documents nobody holds within an hour, the account establishes no care for an hour (429), found or not', async () => {
    setClock(Date.now());
    const hcp = await registerHcp(server);
    const doctor = await clinicianAt(server, hcp.id);
    const colleague = await clinicianAt(server, hcp.id);
    const patient = await registerPatient(server);
    const other = await registerPatient(server);

    for (let i = 1; i <= 9; i++) expectOutcome(await establish(hkic('Q'), doctor.headers), 404, 'not-found');
    // Patients found do not count, and do not wipe the count.
    expect((await establish(patient.hkic, doctor.headers)).statusCode).toBe(201);
    expectOutcome(await establish(hkic('Q'), doctor.headers), 404, 'not-found');
    expectOutcome(await establish(other.hkic, doctor.headers), 429, 'throttled', /after/);
    expectOutcome(await establish(hkic('Q'), doctor.headers), 429, 'throttled');
    // Another account is not locked.
    expect((await establish(other.hkic, colleague.headers)).statusCode).toBe(201);
    const refusals = (await establishEvents(doctor.roleId)).filter((e) => e.outcomeDesc?.startsWith('HTTP 429'));
    expect(refusals).toHaveLength(2);

    advanceClock(60 * MINUTE + 1000);
    expect((await establish(other.hkic, await account(doctor.roleId))).statusCode).toBe(200);
  });
});
