import { readFileSync } from 'node:fs';
import type { OwnershipRule, SearchCriterion } from '../../store/port.js';
import { definitionsPath } from '../definitions.js';
import { notFound } from '../outcome.js';

/**
 * The R4 Patient compartment (from the published CompartmentDefinition): which parameters of
 * each type put a resource in a patient's compartment.
 */

let patientCompartment: Map<string, string[]> | undefined;

function load(): Map<string, string[]> {
  const definition = JSON.parse(readFileSync(definitionsPath('compartmentdefinition-patient.json'), 'utf8')) as {
    resource: { code: string; param?: string[] }[];
  };
  return new Map(definition.resource.filter((r) => r.param?.length).map((r) => [r.code, r.param!]));
}

export function patientCompartmentParams(resourceType: string): string[] {
  patientCompartment ??= load();
  return patientCompartment.get(resourceType) ?? [];
}

/**
 * Whose record a resource is, as the access rules judge a single record: a Patient is its own;
 * any other resource belongs to the patients its Patient-compartment parameters reference.
 */
export const PATIENT_COMPARTMENT: OwnershipRule = { ownerType: 'Patient', params: patientCompartmentParams };

/**
 * The types that name patients without being part of their record: the audit trail. Nobody
 * finds them by owner (an auditor sees all of it, a patient's access log is searched by its
 * entity entries), and a search's AuditEvent can name hundreds of patients.
 */
const NOT_OWNED = new Set(['AuditEvent']);

/**
 * Whose record a resource is, as stored with its search entries: PATIENT_COMPARTMENT, except
 * for the types in NOT_OWNED. The one definition the indexer (owners stored with the entries)
 * and the stores (owners of entries indexed before they kept them) apply.
 */
export const PATIENT_OWNERSHIP: OwnershipRule = { ownerType: 'Patient', params: (type) => (NOT_OWNED.has(type) ? [] : patientCompartmentParams(type)) };

/** The owners of a resource under `rule`; `referencesThrough(param)` lists where a reference parameter points. */
export function ownersOf(
  rule: OwnershipRule,
  resourceType: string,
  id: string | undefined,
  referencesThrough: (param: string) => Iterable<{ type: string; id: string }>,
): string[] {
  if (resourceType === rule.ownerType) return typeof id === 'string' ? [id] : [];
  const found = new Set<string>();
  for (const param of rule.params(resourceType)) {
    for (const ref of referencesThrough(param)) if (ref.type === rule.ownerType) found.add(ref.id);
  }
  return [...found];
}

/** The criterion that keeps a search within `Patient/{id}`'s compartment. */
export function compartmentCriterion(compartmentType: string, compartmentId: string, resourceType: string): SearchCriterion {
  if (compartmentType !== 'Patient') throw notFound(`Compartment searches are supported for Patient, not ${compartmentType}`);
  const params = patientCompartmentParams(resourceType);
  const alternatives: SearchCriterion[][] = params.map((param) => [
    {
      kind: 'entry',
      param,
      anyOf: [[
        { slot: 0, field: 'system', op: 'eq', value: 'Patient' },
        { slot: 0, field: 'value', op: 'eq', value: compartmentId },
      ]],
    },
  ]);
  if (resourceType === 'Patient') alternatives.push([{ kind: 'id', ids: [compartmentId] }]);
  if (alternatives.length === 0) throw notFound(`${resourceType} resources are not in the Patient compartment`);
  return alternatives.length === 1 ? alternatives[0]![0]! : { kind: 'or', anyOf: alternatives };
}
