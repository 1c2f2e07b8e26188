import { expect, it } from 'vitest';
import { sampleRecords } from '../access/samples.js';
import { hcpWithAccounts, joinedPatient, patientOf } from '../access/territory.js';
import { systemClient } from '../participation/fixtures.js';
import { describeEachStore } from '../store/stores.js';
import { importNdjson, pathOf } from './bulk-client.js';
import { useServer } from './harness.js';

/** An HCProf account's import passes the upload rules of its own writes, line by line. */

describeEachStore('Bulk Data $import under the upload rules', (open) => {
  const server = useServer(open, { publicProviders: true });

  it("writes an account's lines for patients it may reach, stamped as its HCP's, and refuses the others", async () => {
    const hcp = await hcpWithAccounts(server);
    const doctor = hcp.accounts['medical-practitioner']!.headers;
    const mine = await patientOf(server, hcp.id);
    const notMine = await joinedPatient(server);
    const line = (id: string, patientId: string) => JSON.stringify({ ...sampleRecords(patientId)['observations-lifestyle'], id });
    const manifest = await importNdjson(server, [line('acc-o1', mine.id), line('acc-o2', notMine.id)].join('\n'), doctor);
    expect(manifest.output).toEqual([{ type: 'Observation', count: 1 }]);
    expect(manifest.error).toHaveLength(1);
    const errors = await server.request({ method: 'GET', url: pathOf((manifest.error[0] as { url: string }).url), headers: doctor });
    expect(errors.body).toMatch(/^\{"resourceType":"OperationOutcome".*Line 2 of input 1/);
    const stored = await server.request({ method: 'GET', url: '/fhir/Observation/acc-o1' });
    expect(stored.json().meta.source).toBe(`Organization/${hcp.id}`);
    expect((await server.request({ method: 'GET', url: '/fhir/Observation/acc-o2' })).statusCode).toBe(404);
  });

  it('refuses a read-only client before any job starts, whether the types are named or not', async () => {
    const readOnly = await systemClient(['system/*.read']);
    const line = JSON.stringify({ resourceType: 'Observation', id: 'read-only-probe', status: 'final', code: { text: 'x' } });
    const uploaded = await server.request({ method: 'POST', url: '/fhir/$import', headers: { prefer: 'respond-async', 'content-type': 'application/fhir+ndjson', ...readOnly }, payload: line });
    expect(uploaded.statusCode, uploaded.body).toBe(403);
    expect(uploaded.json().issue[0].code).toBe('forbidden');
    expect(uploaded.headers['content-location']).toBeUndefined();
    const manifest = await importNdjson(server, line, await systemClient(['system/Observation.write']));
    const errors = manifest.error.length ? (await server.request({ method: 'GET', url: pathOf((manifest.error[0] as { url: string }).url), headers: await systemClient(['system/Observation.write']) })).body : '';
    expect(manifest.output, errors).toEqual([{ type: 'Observation', count: 1 }]);
  });
});
