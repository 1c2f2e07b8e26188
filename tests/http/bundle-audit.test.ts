import type { AuditEvent } from 'fhir/r4.js';
import { expect, it } from 'vitest';
import { sampleRecords } from '../access/samples.js';
import { hcpWithAccounts, joinedPatient, patientOf, startCare } from '../access/territory.js';
import { as, type Headers } from '../participation/fixtures.js';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, useServer, type TestServer } from './harness.js';

/**
 * Refused entries of a batch or transaction are in the audit trail as refusals, each as the same
 * request alone would be (and a refused upload names the patient and data type it sent), while
 * the bundle's own event records what its entries read and wrote.
 */

type Entry = Record<string, any>;

async function trail(server: TestServer, auditor: Headers, query: string): Promise<AuditEvent[]> {
  const res = await server.request({ method: 'GET', url: `/fhir/AuditEvent?${query}&_count=200`, headers: auditor });
  expect(res.statusCode, res.body).toBe(200);
  return ((res.json().entry ?? []) as { resource: AuditEvent }[]).map((e) => e.resource);
}

const subtypes = (event: AuditEvent) => (event.subtype ?? []).map((s) => s.code);
const patientsOf = (event: AuditEvent) => (event.entity ?? []).flatMap((e) => (e.what?.reference?.startsWith('Patient/') ? [e.what.reference.slice('Patient/'.length)] : []));
const entitiesOf = (event: AuditEvent) => (event.entity ?? []).flatMap((e) => (e.what?.reference ? [e.what.reference] : []));
const typesOf = (event: AuditEvent) => (event.entity ?? []).flatMap((e) => (e.type?.system?.endsWith('/sharable-type') && e.type.code ? [e.type.code] : []));

describeEachStore('refused bundle entries in the audit trail', (open) => {
  // The server's own audit trail, on every store (see the harness).
  const server = useServer(open, { publicProviders: true, recorders: undefined, dispatchNotifications: false });

  async function territory() {
    const hcp = await hcpWithAccounts(server);
    const doctor = hcp.accounts['medical-practitioner']!;
    const mine = await patientOf(server, hcp.id);
    // Under care but without a sharing consent: this HCP may not see or upload the patient's records.
    const stranger = await joinedPatient(server);
    await startCare(server, stranger.id, hcp.id);
    return { hcp, doctor, mine, stranger, auditor: await as({ kind: 'auditor', staffId: 'privacy-officer' }) };
  }

  it("each refused entry of a batch is a refusal of its own, naming the patient and data type of what it sent; the batch's event records what succeeded", async () => {
    const { doctor, mine, stranger, auditor } = await territory();
    const visible = await server.create(sampleRecords(mine.id)['observations-lifestyle']);
    const hidden = await server.create(sampleRecords(stranger.id)['observations-lifestyle']);
    const entries: Entry[] = [
      { request: { method: 'GET', url: `Observation/${visible.id}` } },
      { request: { method: 'GET', url: `Observation/${hidden.id}` } },
      { request: { method: 'POST', url: 'Condition' }, resource: sampleRecords(stranger.id)['diagnosis-procedure-medication'] },
      { request: { method: 'PUT', url: `Observation/${hidden.id}` }, resource: { ...hidden, status: 'amended' } },
      { request: { method: 'POST', url: 'Condition' }, resource: sampleRecords(mine.id)['diagnosis-procedure-medication'] },
    ];
    const res = await server.request({ method: 'POST', url: '/fhir', headers: { ...FHIR_JSON, ...doctor.headers }, payload: { resourceType: 'Bundle', type: 'batch', entry: entries } });
    expect(res.statusCode, res.body).toBe(200);
    expect((res.json().entry as Entry[]).map((e) => Number(String(e.response.status).slice(0, 3)))).toEqual([200, 404, 403, 404, 201]);
    // The hidden record's answer does not tell whose it is.
    expect(JSON.stringify(res.json().entry[1])).not.toContain(stranger.id);

    const mineAll = await trail(server, auditor, `agent=PractitionerRole/${doctor.roleId}&subtype=batch`);
    const bundle = mineAll.filter((e) => subtypes(e)[0] === 'batch');
    expect(bundle).toHaveLength(1);
    expect(bundle[0]!.outcome).toBe('0');
    expect(patientsOf(bundle[0]!)).toEqual([mine.id]);

    const refused = mineAll.filter((e) => e.outcome === '4');
    expect(refused.map((e) => [subtypes(e), e.action]).sort()).toEqual([
      [['create', 'batch'], 'C'],
      [['read', 'batch'], 'R'],
      [['update', 'batch'], 'U'],
    ]);
    const read = refused.find((e) => subtypes(e)[0] === 'read')!;
    expect(entitiesOf(read)).toEqual([`Observation/${hidden.id}`]);
    expect(read.outcomeDesc).toMatch(/^HTTP 404: Bundle\.entry\[1\] of a batch: /);
    // The uploads the account was refused are found by the patient they were for.
    const forStranger = await trail(server, auditor, `patient=Patient/${stranger.id}&outcome=4`);
    const create = forStranger.find((e) => subtypes(e).join() === 'create,batch')!;
    expect(create.outcomeDesc).toMatch(/^HTTP 403: Bundle\.entry\[2\] of a batch: .*not a joined patient under this HCP's care/);
    expect(typesOf(create)).toEqual(['diagnosis-procedure-medication']);
    expect(forStranger.some((e) => subtypes(e).join() === 'update,batch' && entitiesOf(e).includes(`Observation/${hidden.id}`))).toBe(true);
    // Nobody else reads any of it.
    expect((await server.request({ method: 'GET', url: `/fhir/AuditEvent?patient=Patient/${stranger.id}`, headers: doctor.headers })).statusCode).toBe(403);
    // The refused attempts are in the patient's own access log, as refusals.
    const log = await server.request({ method: 'GET', url: `/fhir/Patient/${stranger.id}/$access-log`, headers: stranger.headers });
    const outcomes = (log.json().parameter as { part: { name: string; valueCode?: string }[] }[]).map((a) => a.part.find((p) => p.name === 'outcome')!.valueCode);
    expect(outcomes).toContain('refused');
    expect(outcomes).not.toContain('success');
  });

  it('an entry too malformed to run is a refusal of its own too, naming the patient of what it sent', async () => {
    const { doctor, mine, auditor } = await territory();
    const entries: Entry[] = [
      // ifNoneExist must be a search string: the upload for this patient is refused unread.
      { request: { method: 'POST', url: 'Condition', ifNoneExist: 5 }, resource: sampleRecords(mine.id)['diagnosis-procedure-medication'] },
      { request: { method: 'FETCH', url: 'Condition' } },
      { request: { method: 'GET', url: `Patient/${mine.id}` } },
    ];
    const res = await server.request({ method: 'POST', url: '/fhir', headers: { ...FHIR_JSON, ...doctor.headers }, payload: { resourceType: 'Bundle', type: 'batch', entry: entries } });
    expect(res.statusCode, res.body).toBe(200);
    expect((res.json().entry as Entry[]).map((e) => Number(String(e.response.status).slice(0, 3)))).toEqual([400, 400, 200]);
    const refused = (await trail(server, auditor, `agent=PractitionerRole/${doctor.roleId}&outcome=4`)).filter((e) => (e.outcomeDesc ?? '').includes('of a batch'));
    const upload = refused.find((e) => subtypes(e).join() === 'create,batch')!;
    expect(upload.outcomeDesc).toMatch(/^HTTP 400: Bundle\.entry\[0\] of a batch: .*ifNoneExist/);
    expect(patientsOf(upload)).toEqual([mine.id]);
    expect(typesOf(upload)).toEqual(['diagnosis-procedure-medication']);
    const unknown = refused.find((e) => (e.outcomeDesc ?? '').includes('Bundle.entry[1]'))!;
    expect(subtypes(unknown)).toEqual(['batch', 'batch']);
    expect(unknown.outcomeDesc).toMatch(/request\.method/);
  });

  it('a malformed entry that fails a transaction is a refusal of its own', async ({ skip }) => {
    if (!server.store.atomicWriteMany) skip();
    const { doctor, mine, auditor } = await territory();
    const entries: Entry[] = [
      { request: { method: 'POST', url: 'Condition' }, resource: sampleRecords(mine.id)['diagnosis-procedure-medication'] },
      { request: { method: 'PUT', url: 'Condition/c1' } },
    ];
    const res = await server.request({ method: 'POST', url: '/fhir', headers: { ...FHIR_JSON, ...doctor.headers }, payload: { resourceType: 'Bundle', type: 'transaction', entry: entries } });
    expect(res.statusCode).toBe(400);
    const events = await trail(server, auditor, `agent=PractitionerRole/${doctor.roleId}&subtype=transaction`);
    expect(events.map((e) => [subtypes(e), e.outcome]).sort()).toEqual([
      [['transaction'], '4'],
      [['update', 'transaction'], '4'],
    ]);
    expect(events.find((e) => subtypes(e)[0] === 'update')!.outcomeDesc).toMatch(/^HTTP 400: Bundle\.entry\[1\] of a transaction: .*needs the entry's resource/);
  });

  it('a refused upload alone names the patient and data type it sent, as in a bundle', async () => {
    const { doctor, stranger, auditor } = await territory();
    const single = await server.request({ method: 'POST', url: '/fhir/Condition', headers: { ...FHIR_JSON, ...doctor.headers }, payload: sampleRecords(stranger.id)['diagnosis-procedure-medication'] });
    expect(single.statusCode).toBe(403);
    const events = await trail(server, auditor, `patient=Patient/${stranger.id}&outcome=4&subtype=create`);
    expect(events).toHaveLength(1);
    expect(subtypes(events[0]!)).toEqual(['create']);
    expect(typesOf(events[0]!)).toEqual(['diagnosis-procedure-medication']);
  });

  it("the entry that fails a transaction is a refusal of its own, naming its patient; the transaction's event is a refusal too", async ({ skip }) => {
    if (!server.store.atomicWriteMany) skip();
    const { doctor, mine, stranger, auditor } = await territory();
    const res = await server.request({
      method: 'POST',
      url: '/fhir',
      headers: { ...FHIR_JSON, ...doctor.headers },
      payload: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { request: { method: 'POST', url: 'Condition' }, resource: sampleRecords(mine.id)['diagnosis-procedure-medication'] },
          { request: { method: 'POST', url: 'Condition' }, resource: sampleRecords(stranger.id)['diagnosis-procedure-medication'] },
        ],
      },
    });
    expect(res.statusCode).toBe(403);
    const events = await trail(server, auditor, `agent=PractitionerRole/${doctor.roleId}&subtype=transaction`);
    expect(events.map((e) => [subtypes(e), e.outcome]).sort()).toEqual([
      [['create', 'transaction'], '4'],
      [['transaction'], '4'],
    ]);
    const entry = events.find((e) => subtypes(e)[0] === 'create')!;
    expect(patientsOf(entry)).toEqual([stranger.id]);
    expect(entry.outcomeDesc).toMatch(/^HTTP 403: Bundle\.entry\[1\] of a transaction: /);
  });
});
