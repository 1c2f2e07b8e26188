import { expect, it } from 'vitest';
import { sampleRecords } from '../access/samples.js';
import { hcpWithAccounts, joinedPatient, patientOf } from '../access/territory.js';
import { as, registrationOffice, type Headers } from '../participation/fixtures.js';
import { describeEachStore } from '../store/stores.js';
import { ASYNC, exportAll, kickOff, pathOf, waitForManifest } from './bulk-client.js';
import { FHIR_JSON, useServer, type TestServer } from './harness.js';

/** An HCProf account's export holds exactly what the same account's searches find, and is audited. */

const searchIds = async (server: TestServer, url: string, headers: Headers) =>
  (((await server.request({ method: 'GET', url, headers })).json().entry ?? []) as { resource: { id: string } }[]).map((e) => e.resource.id).sort();

describeEachStore('Bulk Data $export under the consent rules', (open) => {
  const server = useServer(open, { publicProviders: true, recorders: undefined });

  it("an account's export is its search: consented patients under care only", async () => {
    const hcp = await hcpWithAccounts(server);
    const doctor = hcp.accounts['medical-practitioner']!.headers;
    const mine = await patientOf(server, hcp.id);
    const notMine = await joinedPatient(server);
    const records = (patientId: string) => sampleRecords(patientId);
    for (const p of [mine.id, notMine.id]) {
      await server.create(records(p)['observations-lifestyle']);
      await server.create(records(p)['lab-radiology']);
      await server.create(records(p)['diagnosis-procedure-medication']);
    }

    const { resources } = await exportAll(server, '/fhir/$export?_type=Observation,Condition', doctor);
    const exported = (type: string) => (resources.get(type) ?? []).map((r) => r.id as string).sort();
    expect(exported('Observation')).toEqual(await searchIds(server, '/fhir/Observation?_count=1000', doctor));
    expect(exported('Condition')).toEqual(await searchIds(server, '/fhir/Condition?_count=1000', doctor));
    expect(exported('Observation')).toHaveLength(2);
    for (const list of resources.values()) for (const r of list) expect(JSON.stringify(r)).toContain(`Patient/${mine.id}`);

    const patientLevel = await exportAll(server, '/fhir/Patient/$export?_type=Patient,Observation', doctor);
    expect((patientLevel.resources.get('Observation') ?? []).map((r) => r.id as string).sort()).toEqual(exported('Observation'));
    expect((patientLevel.resources.get('Patient') ?? []).map((r) => r.id as string).sort()).toEqual(await searchIds(server, '/fhir/Patient?_count=1000', doctor));

    // Every type, as a search of every type, includes the audit trail, which accounts may not read.
    expect((await server.request({ method: 'GET', url: '/fhir/$export', headers: { ...ASYNC, ...doctor } })).statusCode).toBe(403);

    if (server.store.kind === 'sqlite') {
      // The completed export is in the audit trail, naming the patient whose records it held.
      const auditor = await as({ kind: 'auditor', staffId: 'privacy-officer' });
      let events: { subtype?: { code: string }[]; entity?: { what?: { reference?: string } }[] }[] = [];
      for (let i = 0; i < 50; i++) {
        const trail = await server.request({ method: 'GET', url: `/fhir/AuditEvent?agent=PractitionerRole/${hcp.accounts['medical-practitioner']!.roleId}&_count=200`, headers: auditor });
        events = ((trail.json().entry ?? []) as { resource: (typeof events)[number] }[]).map((e) => e.resource).filter((e) => e.subtype?.some((s) => s.code === 'export'));
        if (events.some((e) => e.entity?.some((x) => x.what?.reference === `Patient/${mine.id}`))) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(events.some((e) => e.entity?.some((x) => x.what?.reference === `Patient/${mine.id}`))).toBe(true);
      expect(events.some((e) => e.entity?.some((x) => x.what?.reference === `Patient/${notMine.id}`))).toBe(false);
    }
  });

  it("a finished export is not read by its owner once the owner's HCP is suspended", async () => {
    const hcp = await hcpWithAccounts(server);
    const doctor = hcp.accounts['medical-practitioner']!.headers;
    const mine = await patientOf(server, hcp.id);
    await server.create(sampleRecords(mine.id)['lab-radiology']);
    const status = await kickOff(server, '/fhir/$export?_type=Observation', doctor);
    const manifest = await waitForManifest(server, status, doctor);
    const file = pathOf(manifest.output[0]!.url);
    expect((await server.request({ method: 'GET', url: file, headers: doctor })).statusCode).toBe(200);

    const suspended = await server.request({
      method: 'POST',
      url: `/fhir/Organization/${hcp.id}/$suspend`,
      headers: { ...FHIR_JSON, ...(await registrationOffice()) },
      payload: { resourceType: 'Parameters', parameter: [{ name: 'reason', valueString: 'Licence under review' }] },
    });
    expect(suspended.statusCode, suspended.body).toBe(200);
    for (const url of [pathOf(status), file]) expect((await server.request({ method: 'GET', url, headers: doctor })).statusCode).toBe(403);
  });
});
