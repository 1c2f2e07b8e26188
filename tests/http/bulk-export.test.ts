import { describe, expect, it } from 'vitest';
import type { PrincipalClaim } from '../../src/auth/principal.js';
import { bearer, tokenFor } from '../auth-fixture.js';
import { describeEachStore } from '../store/stores.js';
import { ASYNC, exportAll, kickOff, pathOf, waitForManifest } from './bulk-client.js';
import { FHIR_JSON, outcomeOf, useServer } from './harness.js';

/** Bulk Data $export (IG v2) through HTTP: kick-off, polling, manifest, files, cancel, ownership. */

const idsOf = (resources: Map<string, Record<string, any>[]>) =>
  Object.fromEntries([...resources].map(([type, list]) => [type, list.map((r) => r.id as string).sort()]));

type Headers = Record<string, string>;

const clientHeaders = async (claim: PrincipalClaim) => bearer(await tokenFor(claim));

describeEachStore('Bulk Data $export', (open) => {
  const server = useServer(open);
  let before = '';

  const put = async (resource: Record<string, unknown>) => {
    const res = await server.request({ method: 'PUT', url: `/fhir/${String(resource.resourceType)}/${String(resource.id)}`, headers: FHIR_JSON, payload: resource });
    expect(res.statusCode, res.body).toBeLessThan(300);
  };
  const observation = (id: string, patient: string, code: string) => ({ resourceType: 'Observation', id, status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] }, subject: { reference: `Patient/${patient}` } });

  it('sets up known data', async () => {
    await put({ resourceType: 'Patient', id: 'bx-p1', gender: 'female' });
    await put({ resourceType: 'Patient', id: 'bx-p2', gender: 'male' });
    await put(observation('bx-o1', 'bx-p1', '8867-4'));
    await put(observation('bx-o2', 'bx-p1', '2339-0'));
    await put(observation('bx-o3', 'bx-p2', '8867-4'));
    await put({ resourceType: 'Organization', id: 'bx-org', name: 'Clinic' });
    await put({ resourceType: 'Group', id: 'bx-g1', type: 'person', actual: true, member: [{ entity: { reference: 'Patient/bx-p1' } }] });
    await new Promise((r) => setTimeout(r, 5));
    before = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    await put({ resourceType: 'Condition', id: 'bx-c1', subject: { reference: 'Patient/bx-p2' }, code: { text: 'asthma' } });
  });

  it('exports the system with _type: exactly the stored resources, one file per type, with counts', async () => {
    const { manifest, resources } = await exportAll(server, '/fhir/$export?_type=Patient,Observation,Organization,Condition');
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.error).toEqual([]);
    expect(manifest.request).toBe('http://fhir.test/fhir/$export?_type=Patient,Observation,Organization,Condition');
    expect(Date.parse(manifest.transactionTime)).toBeGreaterThan(Date.parse(before));
    expect(manifest.output.map((o) => [o.type, o.count])).toEqual([['Patient', 2], ['Observation', 3], ['Organization', 1], ['Condition', 1]]);
    expect(idsOf(resources)).toEqual({ Patient: ['bx-p1', 'bx-p2'], Observation: ['bx-o1', 'bx-o2', 'bx-o3'], Organization: ['bx-org'], Condition: ['bx-c1'] });
    const read = (await server.request({ method: 'GET', url: '/fhir/Observation/bx-o1' })).json();
    expect(resources.get('Observation')!.find((r) => r.id === 'bx-o1')).toEqual(read);
  });

  it('exports every type without _type (types without resources have no file)', async () => {
    const { resources } = await exportAll(server, '/fhir/$export');
    expect(idsOf(resources)).toMatchObject({ Patient: ['bx-p1', 'bx-p2'], Observation: ['bx-o1', 'bx-o2', 'bx-o3'], Organization: ['bx-org'], Group: ['bx-g1'] });
  });

  it('exports at Patient level: patients and their compartments, nothing else', async () => {
    const { resources } = await exportAll(server, '/fhir/Patient/$export');
    const ids = idsOf(resources);
    expect(ids.Patient).toEqual(['bx-p1', 'bx-p2']);
    expect(ids.Observation).toEqual(['bx-o1', 'bx-o2', 'bx-o3']);
    expect(ids.Condition).toEqual(['bx-c1']);
    expect(ids.Organization).toBeUndefined();
    // Group is in the Patient compartment (through member).
    expect(ids.Group).toEqual(['bx-g1']);
  });

  it("exports a Group's members only, by GET and by POST", async () => {
    const { resources } = await exportAll(server, '/fhir/Group/bx-g1/$export?_type=Patient,Observation,Condition');
    expect(idsOf(resources)).toEqual({ Patient: ['bx-p1'], Observation: ['bx-o1', 'bx-o2'] });
    const post = await exportAll(server, '/fhir/Group/bx-g1/$export', {}, { resourceType: 'Parameters', parameter: [{ name: '_type', valueString: 'Observation' }, { name: '_outputFormat', valueString: 'application/fhir+ndjson' }] });
    expect(idsOf(post.resources)).toEqual({ Observation: ['bx-o1', 'bx-o2'] });
    const missing = await server.request({ method: 'GET', url: '/fhir/Group/nope/$export', headers: ASYNC });
    expect(missing.statusCode).toBe(404);
  });

  it('honours _since and _typeFilter', async () => {
    const since = await exportAll(server, `/fhir/$export?_type=Patient,Observation,Condition&_since=${encodeURIComponent(before)}`);
    expect(idsOf(since.resources)).toEqual({ Condition: ['bx-c1'] });
    const filtered = await exportAll(server, `/fhir/$export?_type=Observation,Patient&_typeFilter=${encodeURIComponent('Observation?code=http://loinc.org|8867-4,Patient?gender=male')}`);
    expect(idsOf(filtered.resources)).toEqual({ Observation: ['bx-o1', 'bx-o3'], Patient: ['bx-p2'] });
    const union = await exportAll(server, `/fhir/$export?_type=Observation&_typeFilter=${encodeURIComponent('Observation?subject=Patient/bx-p2')}&_typeFilter=${encodeURIComponent('Observation?code=2339-0')}`);
    expect(idsOf(union.resources)).toEqual({ Observation: ['bx-o2', 'bx-o3'] });
  });

  it('refuses kick-offs it cannot honour with an OperationOutcome', async () => {
    const bad = async (url: string, headers: Headers = ASYNC) => {
      const res = await server.request({ method: 'GET', url, headers });
      expect(res.statusCode, url).toBe(400);
      return outcomeOf(res).text;
    };
    expect(await bad('/fhir/$export', { accept: 'application/fhir+json' })).toMatch(/respond-async/);
    expect(await bad('/fhir/$export?_outputFormat=application/fhir+xml')).toMatch(/_outputFormat/);
    expect(await bad('/fhir/$export?_type=Nonsense')).toMatch(/Nonsense/);
    expect(await bad('/fhir/$export?_since=yesterday')).toMatch(/_since/);
    expect(await bad('/fhir/$export?_elements=id')).toMatch(/_elements/);
    expect(await bad('/fhir/$export?_type=Patient&_typeFilter=Observation%3Fcode%3D1')).toMatch(/does not include/);
    expect(await bad('/fhir/$export?_type=Patient&_typeFilter=Patient%3Fnonsense%3D1')).toBeTruthy();
    expect(await bad('/fhir/Patient/$export?_type=Organization')).toMatch(/compartment/);
    // The last as many clients send it: with its '+' unencoded, so it arrives as a space.
    for (const format of ['ndjson', 'application/ndjson', 'application/fhir+ndjson']) {
      const ok = await server.request({ method: 'GET', url: `/fhir/$export?_type=Patient&_outputFormat=${format}`, headers: ASYNC });
      expect(ok.statusCode).toBe(202);
    }
  });

  it('files and status belong to the client that asked: anyone else gets 404', async () => {
    const { manifest } = await exportAll(server, '/fhir/$export?_type=Patient');
    const other = await clientHeaders({ kind: 'system', clientId: 'someone-else', scopes: ['system/*.read'] });
    const file = await server.request({ method: 'GET', url: pathOf(manifest.output[0]!.url), headers: other });
    expect(file.statusCode).toBe(404);
    expect(file.body).not.toContain('bx-p1');
    const status = await kickOff(server, '/fhir/$export?_type=Patient');
    expect((await server.request({ method: 'GET', url: pathOf(status), headers: other })).statusCode).toBe(404);
    expect((await server.request({ method: 'DELETE', url: pathOf(status), headers: other })).statusCode).toBe(404);
    expect((await server.request({ method: 'GET', url: pathOf(manifest.output[0]!.url), headers: { authorization: '' } })).statusCode).toBe(401);
    expect((await server.request({ method: 'GET', url: '/fhir/$bulk-status/00000000-0000-0000-0000-000000000000' })).statusCode).toBe(404);
  });

  it('cancels a job: 202, then its status and files are gone', async () => {
    const status = await kickOff(server, '/fhir/$export?_type=Patient,Observation');
    const manifest = await waitForManifest(server, status);
    const cancel = await server.request({ method: 'DELETE', url: pathOf(status) });
    expect(cancel.statusCode).toBe(202);
    expect((await server.request({ method: 'GET', url: pathOf(status) })).statusCode).toBe(404);
    expect((await server.request({ method: 'GET', url: pathOf(manifest.output[0]!.url) })).statusCode).toBe(404);
    expect((await server.request({ method: 'DELETE', url: pathOf(status) })).statusCode).toBe(404);
  });

  it('runs under the caller: a client limited to some types may export only those', async () => {
    const limited = await clientHeaders({ kind: 'system', clientId: 'patients-only', scopes: ['system/Patient.read'] });
    const refused = await server.request({ method: 'GET', url: '/fhir/$export', headers: { ...ASYNC, ...limited } });
    expect(refused.statusCode).toBe(403);
    const observations = await server.request({ method: 'GET', url: '/fhir/$export?_type=Observation', headers: { ...ASYNC, ...limited } });
    expect(observations.statusCode).toBe(403);
    const chained = await server.request({ method: 'GET', url: `/fhir/$export?_type=Patient&_typeFilter=${encodeURIComponent('Patient?_has:Observation:subject:code=8867-4')}`, headers: { ...ASYNC, ...limited } });
    expect(chained.statusCode).toBe(403);
    const { resources } = await exportAll(server, '/fhir/$export?_type=Patient', limited);
    expect(idsOf(resources)).toEqual({ Patient: ['bx-p1', 'bx-p2'] });
    const office = await clientHeaders({ kind: 'registration-office', staffId: 'ro-1' });
    expect((await server.request({ method: 'GET', url: '/fhir/$export?_type=Observation', headers: { ...ASYNC, ...office } })).statusCode).toBe(403);
  });
});

describe('Bulk Data operations in the CapabilityStatement', () => {
  it('names the IG canonicals', async () => {
    const { BULK_OPERATIONS } = await import('../../src/http/routes/bulk-operations.js');
    expect(BULK_OPERATIONS.map((o) => o.canonical)).toEqual([
      'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export',
      'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export',
      'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export',
      // The IG defines no import operation: $import is this server's own.
      undefined,
    ]);
  });
});
