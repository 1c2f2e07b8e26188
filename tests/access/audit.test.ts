import type { AuditEvent } from 'fhir/r4.js';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { AuditLog, verifyAuditChain } from '../../src/access/audit.js';
import { plainJsonCodec } from '../../src/store/codec.js';
import type { ResourceStore } from '../../src/store/port.js';
import { describeEachStore } from '../store/stores.js';
import { BASE, accessEvent, account, bodyOf, deferred, searchIds, settledState, wrapStore } from './audit-fixtures.js';

/** The audit trail: what an AuditEvent says about an access, and that recording is durable or fails. */

const SHARABLE = 'https://ehealth.example.hk/fhir/CodeSystem/sharable-type';
const GROUP = 'https://ehealth.example.hk/fhir/CodeSystem/professional-group';

describeEachStore('AuditLog', (open) => {
  let store: ResourceStore;
  let log: AuditLog;
  const RECORDED = new Date('2025-03-04T05:06:08.000Z');
  beforeEach(async () => {
    store = await open();
    log = new AuditLog(store, plainJsonCodec, { baseUrl: BASE, observerName: 'eHealth FHIR server', clock: () => RECORDED });
  });
  afterEach(async () => {
    await store.close();
  });

  const only = async (): Promise<AuditEvent> => {
    const ids = await searchIds(store, 'AuditEvent', '');
    expect(ids).toHaveLength(1);
    return bodyOf<AuditEvent>(await store.readCurrent('AuditEvent', ids[0]!));
  };

  it("records an account's read: interaction, action, outcome, the account, practitioner, HCP and group, the client, the patient, the record and its data type", async () => {
    await log.record(accessEvent());
    const audit = await only();
    expect(audit).toMatchObject({
      resourceType: 'AuditEvent',
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
      subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read' }],
      action: 'R',
      outcome: '0',
      recorded: RECORDED.toISOString(),
      period: { start: '2025-03-04T05:06:07.000Z', end: RECORDED.toISOString() },
      source: { observer: { display: 'eHealth FHIR server', identifier: { value: BASE } } },
      meta: { versionId: '1' },
    });
    expect(audit.agent).toHaveLength(3);
    const [user, practitioner, hcp] = audit.agent;
    expect(user).toMatchObject({
      who: { reference: 'PractitionerRole/ac1' },
      altId: 'PractitionerRole/ac1',
      requestor: true,
      network: { address: '10.0.0.7', type: '2' },
      type: { coding: [{ code: 'IRCP' }] },
    });
    expect(user!.role![0]!.coding).toContainEqual({ system: GROUP, code: 'medical-practitioner' });
    expect(practitioner).toMatchObject({ who: { reference: 'Practitioner/pr1' }, requestor: false });
    expect(hcp).toMatchObject({ who: { reference: 'Organization/org1' }, requestor: false });
    expect(audit.entity).toEqual([
      expect.objectContaining({ what: { reference: 'Patient/p1' }, role: expect.objectContaining({ code: '1' }) }),
      expect.objectContaining({ what: { reference: 'Observation/o1' }, role: expect.objectContaining({ code: '4' }) }),
      expect.objectContaining({ type: expect.objectContaining({ system: SHARABLE, code: 'lab-radiology' }) }),
    ]);
    expect(audit.outcomeDesc).toBeUndefined();
    expect(audit.purposeOfEvent).toBeUndefined();
  });

  it('is found by the searches an auditor makes: patient, agent (account, practitioner, HCP), altid, role, address, entity, data type, date, outcome, subtype', async () => {
    await log.record(accessEvent());
    await log.record(accessEvent({ principal: account(2, { organizationId: 'org2', group: 'nurse' }), patients: ['p2'], id: 'o2', url: '/fhir/Observation/o2', status: 403, refusal: 'no consent' }));
    const [first, second] = await searchIds(store, 'AuditEvent', '');
    const finds = async (query: string) => searchIds(store, 'AuditEvent', query);
    expect(await finds('patient=Patient/p1')).toEqual([first]);
    expect(await finds('patient=p2')).toEqual([second]);
    expect(await finds('agent=PractitionerRole/ac1')).toEqual([first]);
    expect(await finds('agent=Practitioner/pr2')).toEqual([second]);
    expect(await finds('agent=Organization/org1')).toEqual([first]);
    expect(await finds('altid=PractitionerRole/ac2')).toEqual([second]);
    expect(await finds(`agent-role=${encodeURIComponent(`${GROUP}|nurse`)}`)).toEqual([second]);
    expect(await finds('address=10.0.0.7')).toEqual([first, second]);
    expect(await finds('entity=Observation/o2')).toEqual([second]);
    expect(await finds(`entity-type=${encodeURIComponent(`${SHARABLE}|lab-radiology`)}`)).toEqual([first, second]);
    expect(await finds('date=2025-03-04')).toEqual([first, second]);
    expect(await finds('date=lt2025-03-04')).toEqual([]);
    expect(await finds('outcome=4')).toEqual([second]);
    expect(await finds('subtype=read&action=R')).toEqual([first, second]);
  });

  it('records a search with its query (base64), as an E action naming every patient and data type returned', async () => {
    const url = '/fhir/Observation?subject=Patient/p1&category=laboratory&_count=5';
    await log.record(accessEvent({ interaction: 'search-type', url, id: undefined, patients: ['p1', 'p3'], dataTypes: ['lab-radiology', 'observations-lifestyle'] }));
    const audit = await only();
    expect(audit).toMatchObject({ action: 'E', subtype: [{ code: 'search-type' }] });
    expect(audit.agent[0]).toMatchObject({ type: { coding: [{ code: 'IRCP' }] } });
    const query = audit.entity!.find((e) => e.role?.code === '24');
    expect(Buffer.from(query!.query!, 'base64').toString('utf8')).toBe(url);
    expect(audit.entity!.filter((e) => e.role?.code === '1').map((e) => e.what?.reference)).toEqual(['Patient/p1', 'Patient/p3']);
    expect(audit.entity!.filter((e) => e.type?.system === SHARABLE).map((e) => e.type?.code)).toEqual(['lab-radiology', 'observations-lifestyle']);
    expect(await searchIds(store, 'AuditEvent', 'patient=p3')).toEqual([audit.id]);
  });

  it('records a refused attempt by someone unknown: outcome 4 with the refusal, the client address, no patient', async () => {
    await log.record(accessEvent({ principal: undefined, status: 401, patients: [], dataTypes: [], refusal: 'A bearer token is required', clientAddress: '192.0.2.9' }));
    const audit = await only();
    expect(audit).toMatchObject({ outcome: '4', outcomeDesc: 'HTTP 401: A bearer token is required', action: 'R' });
    expect(audit.agent[0]).toMatchObject({ requestor: true, who: { display: 'unknown (not authenticated)' }, network: { address: '192.0.2.9' } });
    expect(audit.agent[0]!.altId).toBeUndefined();
    expect(audit.entity!.some((e) => e.role?.code === '1')).toBe(false);
    expect(await searchIds(store, 'AuditEvent', 'address=192.0.2.9&outcome=4')).toEqual([audit.id]);
  });

  it('records writes, operations, other principals, server errors and restricted access with its reason', async () => {
    await log.record(accessEvent({ interaction: 'create', method: 'POST', status: 201 }));
    await log.record(accessEvent({ interaction: 'operation', operation: 'give-consent', method: 'POST', url: '/fhir/Patient/p1/$give-consent', resourceType: 'Patient', id: 'p1', principal: { kind: 'patient', patientId: 'p1' }, dataTypes: [] }));
    await log.record(accessEvent({ principal: { kind: 'system', clientId: 'ha', scopes: ['system/*.read'] }, status: 503 }));
    await log.record(accessEvent({ principal: { kind: 'auditor', staffId: 'a1' }, interaction: 'search-type', resourceType: 'AuditEvent', id: undefined, url: '/fhir/AuditEvent?patient=p1', patients: [], dataTypes: [] }));
    await log.record(accessEvent({ restricted: true, restrictedReason: 'emergency: unconscious on arrival' }));
    const ids = await searchIds(store, 'AuditEvent', '');
    const [create, operation, failed, auditor, restricted] = await Promise.all(ids.map(async (id) => bodyOf<AuditEvent>(await store.readCurrent('AuditEvent', id))));
    expect(create).toMatchObject({ action: 'C', subtype: [{ code: 'create' }] });
    expect(create!.agent[0]).toMatchObject({ type: { coding: [{ code: 'AUT' }] } });
    expect(operation!.subtype).toEqual([
      { system: 'http://hl7.org/fhir/restful-interaction', code: 'operation' },
      { system: 'https://ehealth.example.hk/fhir/CodeSystem/operation', code: 'give-consent', display: '$give-consent' },
    ]);
    expect(operation!.action).toBe('E');
    expect(operation!.agent[0]).toMatchObject({ who: { reference: 'Patient/p1' }, altId: 'Patient/p1', requestor: true });
    // The patient's own Patient is entity once, as the patient.
    expect(operation!.entity!.filter((e) => e.what?.reference === 'Patient/p1')).toHaveLength(1);
    expect(failed).toMatchObject({ outcome: '8', outcomeDesc: 'HTTP 503' });
    expect(failed!.agent[0]).toMatchObject({ altId: 'client/ha', who: { identifier: { value: 'ha' } } });
    expect(auditor!.action).toBe('E');
    expect(auditor!.agent[0]).toMatchObject({ altId: 'auditor/a1' });
    expect(restricted!.purposeOfEvent).toEqual([
      {
        coding: [{ system: 'https://ehealth.example.hk/fhir/CodeSystem/consent-category', code: 'restricted-access', display: 'Restricted access' }],
        text: 'emergency: unconscious on arrival',
      },
    ]);
    expect(await searchIds(store, 'AuditEvent', 'altid=client/ha')).toEqual([failed!.id]);
  });

  it('an event that cannot be described fails alone, not the others written with it', async () => {
    const results = await Promise.allSettled([log.record(accessEvent()), log.record(accessEvent({ at: new Date(Number.NaN) })), log.record(accessEvent())]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await verifyAuditChain(store, plainJsonCodec)).toMatchObject({ ok: true, checked: 2 });
  });

  it('resolves only once the AuditEvent is stored', async () => {
    const gate = deferred();
    let stored = 0;
    const held = wrapStore(store, {
      writeMany: async (requests) => {
        await gate.promise;
        const written = await store.writeMany(requests);
        stored += written.length;
        return written;
      },
    });
    const gated = new AuditLog(held, plainJsonCodec, { baseUrl: BASE });
    const recording = gated.record(accessEvent());
    expect(await settledState(recording)).toBe('pending');
    expect(await store.count({ resourceTypes: ['AuditEvent'], where: [] })).toBe(0);
    gate.resolve();
    await recording;
    expect(stored).toBe(1);
    expect(await store.count({ resourceTypes: ['AuditEvent'], where: [] })).toBe(1);
  });

  it('rejects when the store fails, and records again (still chained) once it recovers', async () => {
    let failing = true;
    const flaky = wrapStore(store, {
      writeMany: async (requests) => {
        if (failing) throw new Error('disk full');
        return store.writeMany(requests);
      },
    });
    const flakyLog = new AuditLog(flaky, plainJsonCodec, { baseUrl: BASE });
    await flakyLog.record(accessEvent()).then(
      () => expect.unreachable('recorded without a store'),
      (error: Error) => expect(error.message).toBe('disk full'),
    );
    const concurrent = await Promise.allSettled([flakyLog.record(accessEvent()), flakyLog.record(accessEvent())]);
    expect(concurrent.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await store.count({ resourceTypes: ['AuditEvent'], where: [] })).toBe(0);
    failing = false;
    await flakyLog.record(accessEvent());
    await flakyLog.record(accessEvent());
    expect(await searchIds(store, 'AuditEvent', '')).toEqual(['0000000000000001', '0000000000000002']);
    expect(await verifyAuditChain(store, plainJsonCodec)).toMatchObject({ ok: true, checked: 2 });
  });
});
