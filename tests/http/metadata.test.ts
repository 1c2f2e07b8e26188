import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { serverCapabilityStatement } from '../../src/capability-statement.js';
import { allResourceTypes } from '../../src/fhir/definitions.js';
import { software } from '../../src/software.js';
import { describeEachStore } from '../store/stores.js';
import { useServer } from './harness.js';

const published = JSON.parse(readFileSync(new URL('../../capability-statement.json', import.meta.url), 'utf8'));

describeEachStore('CapabilityStatement', (open) => {
  const server = useServer(open);

  it('GET /fhir/metadata is the repository capability-statement.json (run `npm run capability` after changing capabilities)', async () => {
    const res = await server.request({ method: 'GET', url: '/fhir/metadata' });
    expect(res.statusCode).toBe(200);
    // The repository file describes the embedded store; a store that cannot apply transactions all or none offers batches only.
    expect(res.json()).toEqual(server.store.atomicWriteMany ? published : serverCapabilityStatement(software, { transactions: false }));
  });

  it('declares FHIR 4.0.1, JSON formats, JSON Patch and every R4 resource type with its interactions', async () => {
    const cs = (await server.request({ method: 'GET', url: '/fhir/metadata' })).json();
    expect(cs.fhirVersion).toBe('4.0.1');
    expect(cs.format).toEqual(['application/fhir+json', 'application/json']);
    expect(cs.patchFormat).toEqual(['application/json-patch+json']);
    const types = cs.rest[0].resource.map((r: any) => r.type);
    expect(types).toEqual([...allResourceTypes()]);
    expect(types).toHaveLength(146);
    const patient = cs.rest[0].resource.find((r: any) => r.type === 'Patient');
    expect(patient.interaction.map((i: any) => i.code).sort()).toEqual(['create', 'delete', 'history-instance', 'history-type', 'patch', 'read', 'search-type', 'update', 'vread']);
    const params = new Map(patient.searchParam.map((p: any) => [p.name, p.type]));
    expect(params.get('name')).toBe('string');
    expect(params.get('birthdate')).toBe('date');
    expect(params.get('general-practitioner')).toBe('reference');
    expect(params.get('_lastUpdated')).toBe('date');
    expect(patient.searchInclude).toContain('Patient:general-practitioner');
    expect(patient.searchRevInclude).toContain('Observation:subject');
    expect(patient).toMatchObject({ versioning: 'versioned-update', updateCreate: true, conditionalCreate: true, conditionalUpdate: true, conditionalDelete: 'single' });
    const bundles = server.store.atomicWriteMany ? [{ code: 'batch' }, { code: 'transaction' }] : [{ code: 'batch' }];
    expect(cs.rest[0].interaction).toEqual([{ code: 'history-system' }, { code: 'search-system' }, ...bundles]);
  });

  it('every interaction the statement declares is really served (none answers 404 or 405)', async () => {
    const cs = (await server.request({ method: 'GET', url: '/fhir/metadata' })).json();
    const methodOf: Record<string, [string, string]> = {
      read: ['GET', '/fhir/{type}/x'],
      vread: ['GET', '/fhir/{type}/x/_history/1'],
      update: ['PUT', '/fhir/{type}/x'],
      patch: ['PATCH', '/fhir/{type}/x'],
      delete: ['DELETE', '/fhir/{type}/x'],
      'history-instance': ['GET', '/fhir/{type}/x/_history'],
      'history-type': ['GET', '/fhir/{type}/_history'],
      create: ['POST', '/fhir/{type}'],
      'search-type': ['GET', '/fhir/{type}'],
    };
    for (const resource of cs.rest[0].resource.filter((r: any) => ['Patient', 'Observation', 'Binary'].includes(r.type))) {
      for (const { code } of resource.interaction) {
        const [method, template] = methodOf[code]!;
        const res = await server.request({ method: method as 'GET', url: template.replace('{type}', resource.type), headers: { 'content-type': 'application/fhir+json' }, payload: method === 'GET' || method === 'DELETE' ? undefined : '{}' });
        expect(res.statusCode, `${code} ${resource.type}`).not.toBe(405);
        if (!['read', 'vread', 'patch'].includes(code)) expect(res.statusCode, `${code} ${resource.type}`).not.toBe(404);
      }
    }
  });
});
