import { expect, it } from 'vitest';
import type { AccessEvent } from '../../src/access/events.js';
import { sampleRecords } from '../access/samples.js';
import { hcpWithAccounts, joinedPatient, patientOf, startCare } from '../access/territory.js';
import { systemClient, unique } from '../participation/fixtures.js';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, useServer, type TestServer } from './harness.js';

/** Bundle entries run under the caller's principal: nothing readable or writable in a bundle that is not singly. */

type Entry = Record<string, any>;
type Headers = Record<string, string>;

const single = (server: TestServer, entry: Entry, headers: Headers) =>
  server.request({ method: entry.request.method, url: `/fhir/${entry.request.url as string}`, headers: { ...(entry.resource && FHIR_JSON), ...headers }, ...(entry.resource && { payload: entry.resource }) });

describeEachStore('bundles under the access rules', (open) => {
  const events: AccessEvent[] = [];
  const server = useServer(open, { publicProviders: true, recorders: [{ record: async (event) => void events.push(event) }] });

  it("a HCProf account's batch reads and writes exactly what the same requests could singly, and is audited as a batch", async () => {
    const hcp = await hcpWithAccounts(server);
    const doctor = hcp.accounts['medical-practitioner']!.headers;
    const mine = await patientOf(server, hcp.id);
    // Under care but without a sharing consent: this HCP may not see the patient's records.
    const stranger = await joinedPatient(server);
    await startCare(server, stranger.id, hcp.id);
    const visible = await server.create(sampleRecords(mine.id)['observations-lifestyle']);
    const hidden = await server.create(sampleRecords(stranger.id)['observations-lifestyle']);

    const entries: Entry[] = [
      { request: { method: 'GET', url: `Observation/${visible.id}` } },
      { request: { method: 'GET', url: `Observation/${hidden.id}` } },
      { request: { method: 'GET', url: `Patient/${stranger.id}` } },
      { request: { method: 'GET', url: `Observation?subject=Patient/${stranger.id}` } },
      { request: { method: 'GET', url: `Observation/${hidden.id}/_history` } },
      { request: { method: 'POST', url: 'Observation' }, resource: sampleRecords(stranger.id)['observations-lifestyle'] },
      { request: { method: 'PUT', url: `Observation/${hidden.id}` }, resource: { ...hidden, status: 'amended' } },
      { request: { method: 'DELETE', url: `Observation/${hidden.id}` } },
      { request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient' } },
      { request: { method: 'GET', url: 'AuditEvent' } },
      { request: { method: 'GET', url: '_history' } },
      { request: { method: 'POST', url: 'Condition' }, resource: sampleRecords(mine.id)['diagnosis-procedure-medication'] },
    ];
    const singly: number[] = [];
    for (const entry of entries.slice(0, -1)) singly.push((await single(server, entry, doctor)).statusCode);
    expect(singly).toEqual([200, 404, 404, 200, 404, 403, 404, 404, 403, 403, 403]);

    events.length = 0;
    const res = await server.request({ method: 'POST', url: '/fhir', headers: { ...FHIR_JSON, ...doctor }, payload: { resourceType: 'Bundle', type: 'batch', entry: entries } });
    expect(res.statusCode, res.body).toBe(200);
    const answered = res.json().entry as Entry[];
    expect(answered.map((e) => Number(String(e.response.status).slice(0, 3)))).toEqual([...singly, 201]);
    expect(answered[3]!.resource.total).toBe(0);
    expect(JSON.stringify(answered[1])).not.toContain(stranger.id);
    // Nothing of the stranger's changed.
    const still = await server.request({ method: 'GET', url: `/fhir/Observation/${hidden.id}` });
    expect(still.json().meta.versionId).toBe('1');

    const event = events.find((e) => e.url === '/fhir' && e.method === 'POST')!;
    expect(event.interaction).toBe('batch');
    expect(event.patients).toContain(mine.id);
    expect(event.patients).not.toContain(stranger.id);
  });

  it("a refused entry fails the account's transaction and nothing is stored", async ({ skip }) => {
    if (!server.store.atomicWriteMany) skip();
    const hcp = await hcpWithAccounts(server);
    const doctor = hcp.accounts['medical-practitioner']!.headers;
    const mine = await patientOf(server, hcp.id);
    const stranger = await joinedPatient(server);
    await startCare(server, stranger.id, hcp.id);
    const count = async () => (await server.request({ method: 'GET', url: `/fhir/Condition?subject=Patient/${mine.id}&_summary=count` })).json().total as number;
    const before = await count();
    events.length = 0;
    const res = await server.request({
      method: 'POST',
      url: '/fhir',
      headers: { ...FHIR_JSON, ...doctor },
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
    expect(res.json().issue[0].expression).toContain('Bundle.entry[1]');
    expect(res.json().issue[0].diagnostics).toMatch(/not a joined patient under this HCP's care/);
    expect(await count()).toBe(before);
    expect(events.find((e) => e.url === '/fhir')!.interaction).toBe('transaction');

    const ok = await server.request({
      method: 'POST',
      url: '/fhir',
      headers: { ...FHIR_JSON, ...doctor },
      payload: { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'Condition' }, resource: sampleRecords(mine.id)['diagnosis-procedure-medication'] }] },
    });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(await count()).toBe(before + 1);
    // Stamped with the contributing HCP, as a single upload is.
    const location = ok.json().entry[0].response.location as string;
    const stored = (await server.request({ method: 'GET', url: `/fhir/${location}` })).json();
    expect(stored.meta.source).toBe(`Organization/${hcp.id}`);
  });

  it('a conditional reference is a search of its type: a client that may not search Patients cannot resolve one', async () => {
    const mrn = unique('mrn');
    const patient = await server.create({ resourceType: 'Patient', identifier: [{ system: 'urn:test:mrn', value: mrn }] });
    const observation = (reference: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference } });
    const bundle = (type: string, reference: string) => ({ resourceType: 'Bundle', type, entry: [{ request: { method: 'POST', url: 'Observation' }, resource: observation(reference) }] });
    const observationsOnly = await systemClient(['system/Observation.cruds']);
    const count = async () => (await server.request({ method: 'GET', url: `/fhir/Observation?subject=Patient/${patient.id}&_summary=count` })).json().total as number;

    // Whether the criteria match one, none or several Patients must not show: all three answer alike.
    for (const reference of [`Patient?identifier=urn:test:mrn|${mrn}`, 'Patient?identifier=urn:test:mrn|nobody', 'Patient?_id:missing=false']) {
      for (const type of ['batch', 'transaction']) {
        if (type === 'transaction' && !server.store.atomicWriteMany) continue;
        const res = await server.request({ method: 'POST', url: '/fhir', headers: { ...FHIR_JSON, ...observationsOnly }, payload: bundle(type, reference) });
        const outcome = type === 'batch' ? res.json().entry[0].response.outcome : res.json();
        const status = type === 'batch' ? Number(String(res.json().entry[0].response.status).slice(0, 3)) : res.statusCode;
        expect(status, res.body).toBe(403);
        expect(outcome.issue[0].code).toBe('forbidden');
        expect(JSON.stringify(res.json())).not.toContain(patient.id);
      }
    }
    expect(await count()).toBe(0);

    // With the right to search Patients, the same batch resolves the reference.
    const res = await server.request({ method: 'POST', url: '/fhir', headers: { ...FHIR_JSON, ...(await systemClient(['system/Observation.cruds', 'system/Patient.rs'])) }, payload: bundle('batch', `Patient?identifier=urn:test:mrn|${mrn}`) });
    expect(res.json().entry[0].response.status, res.body).toMatch(/^201/);
    expect(await count()).toBe(1);
  });
});
