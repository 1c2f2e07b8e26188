import { expect, it } from 'vitest';
import { sampleRecords } from '../access/samples.js';
import { hcpWithAccounts, joinedPatient, patientOf, startCare } from '../access/territory.js';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, useServer } from './harness.js';

/**
 * A record's earlier versions under an HCProf account's view: a version it may not see stays
 * hidden in _history and vread, even when the record as it is now is visible, and a record
 * hidden now (restricted since) has no versions for the account.
 */

type Json = Record<string, any>;
const RESTRICTED = { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] };

describeEachStore('history under the access rules', (open) => {
  const server = useServer(open, { publicProviders: true });

  const put = async (resource: Json) => {
    const res = await server.request({ method: 'PUT', url: `/fhir/${resource.resourceType as string}/${resource.id as string}`, headers: FHIR_JSON, payload: resource });
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  };

  it("a version that was another patient's is left out of the record's history and refused by vread", async () => {
    const hcp = await hcpWithAccounts(server);
    const doctor = hcp.accounts['medical-practitioner']!.headers;
    const mine = await patientOf(server, hcp.id);
    // Under care but without a sharing consent: this HCP may not see the patient's records.
    const stranger = await joinedPatient(server);
    await startCare(server, stranger.id, hcp.id);
    const misfiled = await server.create({ ...sampleRecords(stranger.id)['observations-lifestyle'], note: [{ text: 'the stranger’s own words' }] });
    await put({ ...misfiled, subject: { reference: `Patient/${mine.id}` }, note: [{ text: 'refiled' }] });

    const history = await server.request({ method: 'GET', url: `/fhir/Observation/${misfiled.id}/_history`, headers: doctor });
    expect(history.statusCode, history.body).toBe(200);
    expect(history.json().entry.map((e: Json) => e.resource.meta.versionId)).toEqual(['2']);
    expect(history.json().total).toBeUndefined();
    expect(history.body).not.toContain('stranger’s own words');
    expect((await server.request({ method: 'GET', url: `/fhir/Observation/${misfiled.id}/_history/1`, headers: doctor })).statusCode).toBe(404);
    expect((await server.request({ method: 'GET', url: `/fhir/Observation/${misfiled.id}/_history/2`, headers: doctor })).statusCode).toBe(200);

    // The same in a batch.
    const batch = await server.request({
      method: 'POST',
      url: '/fhir',
      headers: { ...FHIR_JSON, ...doctor },
      payload: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Observation/${misfiled.id}/_history` } }, { request: { method: 'GET', url: `Observation/${misfiled.id}/_history/1` } }] },
    });
    const [listed, version] = batch.json().entry as Json[];
    expect(listed!.resource.entry.map((e: Json) => e.resource.meta.versionId)).toEqual(['2']);
    expect(version!.response.status).toMatch(/^404/);

    // Without a per-record view (a backend client) every version is there, with the total.
    const all = (await server.request({ method: 'GET', url: `/fhir/Observation/${misfiled.id}/_history` })).json();
    expect(all.entry.map((e: Json) => e.resource.meta.versionId)).toEqual(['2', '1']);
    expect(all.total).toBe(2);
  });

  it('a record restricted since has no readable versions for an account without the additional consent', async () => {
    const hcp = await hcpWithAccounts(server);
    const doctor = hcp.accounts['medical-practitioner']!.headers;
    const mine = await patientOf(server, hcp.id);
    const record = await server.create(sampleRecords(mine.id)['observations-lifestyle']);
    expect((await server.request({ method: 'GET', url: `/fhir/Observation/${record.id}/_history/1`, headers: doctor })).statusCode).toBe(200);
    await put({ ...record, meta: RESTRICTED });

    for (const url of [`/fhir/Observation/${record.id}`, `/fhir/Observation/${record.id}/_history`, `/fhir/Observation/${record.id}/_history/1`, `/fhir/Observation/${record.id}/_history/2`]) {
      expect((await server.request({ method: 'GET', url, headers: doctor })).statusCode, url).toBe(404);
    }
  });
});
