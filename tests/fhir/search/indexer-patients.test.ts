import { expect, it } from 'vitest';
import { realResources as corpus, type RealResource as Resource } from '../../fixtures/real-resources.js';
import { patientsOf } from '../../../src/access/records-of.js';
import { allResourceTypes } from '../../../src/fhir/definitions.js';
import { patientCompartmentParams } from '../../../src/fhir/search/compartments.js';
import { indexResource } from '../../../src/fhir/search/indexer.js';
import { searchParameters, splitUnion } from '../../../src/fhir/search/registry.js';

/**
 * The patients the indexer stores with a resource (ResourceIndex.patients) are the ones the
 * access rules find in the resource itself (patientsOf): through each parameter of the R4
 * Patient compartment, and on every official example and the Synthea sample; AuditEvents are
 * stored with none.
 */

const BASE = 'http://example.org/fhir';
const indexed = (resource: Resource) => indexResource(resource, { localBase: BASE }).patients;

/** A resource of `type` whose `path` (e.g. `agent.who`) holds `value`, as an object or a one-element list. */
function withPath(type: string, path: string[], value: unknown, asList: boolean): Resource {
  let node: unknown = value;
  for (const name of [...path].reverse()) node = { [name]: asList && node !== value ? [node] : node };
  return { resourceType: type, id: 'r1', ...(node as Record<string, unknown>) };
}

it('finds the patient through every parameter of the Patient compartment', () => {
  const covered: string[] = [];
  const unbuilt: string[] = [];
  // A Patient is its own, whatever its links say (the next test).
  for (const type of [...allResourceTypes()].filter((t) => t !== 'Patient')) {
    for (const param of patientCompartmentParams(type)) {
      const expression = searchParameters(type).get(param)?.expression ?? '';
      // The plain paths of the expression, e.g. Observation.subject.where(resolve() is Patient) → subject.
      const paths = splitUnion(expression)
        .map((part) => part.replace(/\.where\(resolve\(\) is [A-Za-z]+\)/g, '').replace(/^\(|\)$/g, ''))
        .filter((part) => part.startsWith(`${type}.`) && /^[A-Za-z.]+$/.test(part))
        .map((part) => part.split('.').slice(1));
      let found = false;
      for (const path of paths) {
        for (const asList of [false, true]) {
          for (const reference of ['Patient/x', `${BASE}/Patient/x`]) {
            const resource = withPath(type, path, { reference }, asList);
            if (!indexResource(resource, { localBase: BASE }).entries.some((e) => e.param === param && e.values[0].value === 'x')) continue;
            found = true;
            // The audit trail names patients but is no part of their record: stored with none.
            expect(indexed(resource), `${type}.${param} (${reference})`).toEqual(type === 'AuditEvent' ? [] : ['x']);
            expect(patientsOf(resource, BASE), `${type}.${param} (${reference})`).toEqual(['x']);
            // Not a patient's: the same place pointing elsewhere.
            expect(indexed(withPath(type, path, { reference: 'Group/x' }, asList))).toEqual([]);
          }
        }
      }
      (found ? covered : unbuilt).push(`${type}.${param}`);
    }
  }
  expect(unbuilt).toEqual([]);
  // R4 has 101 such parameters besides Patient.link.
  expect(covered.length).toBeGreaterThanOrEqual(101);
});

it('a Patient is its own; a resource naming several patients belongs to each, once', () => {
  expect(indexed({ resourceType: 'Patient', id: 'p1', link: [{ other: { reference: 'Patient/p2' } }] })).toEqual(['p1']);
  expect(indexed({ resourceType: 'Patient' })).toEqual([]);
  const observation = { resourceType: 'Observation', id: 'o1', subject: { reference: 'Patient/a' }, performer: [{ reference: 'Patient/b' }, { reference: 'Patient/a' }, { reference: 'Practitioner/c' }] };
  expect(indexed(observation).sort()).toEqual(['a', 'b']);
  expect(patientsOf(observation, BASE).sort()).toEqual(['a', 'b']);
  // A patient on another server is not one of ours.
  expect(indexed({ resourceType: 'Observation', subject: { reference: 'http://elsewhere.org/fhir/Patient/a' } })).toEqual([]);
});

it('stores the patients the access rules find, on every official example and the Synthea sample', { timeout: 300_000 }, () => {
  const differences: string[] = [];
  let owned = 0;
  for (const [name, resource] of corpus()) {
    if (resource.resourceType === 'Bundle') continue;
    const stored = [...indexed(resource)].sort();
    const found = resource.resourceType === 'AuditEvent' ? [] : [...patientsOf(resource, BASE)].sort();
    if (JSON.stringify(stored) !== JSON.stringify(found)) differences.push(`${name}: indexed ${stored.join(',')} vs found ${found.join(',')}`);
    if (stored.length) owned++;
  }
  expect(differences).toEqual([]);
  expect(owned).toBeGreaterThan(500);
});
