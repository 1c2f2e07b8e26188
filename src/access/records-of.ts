import type { Coding } from 'fhir/r4.js';
import { ownersOf, PATIENT_COMPARTMENT, patientCompartmentParams } from '../fhir/search/compartments.js';
import { referencesOf } from '../fhir/search/indexer.js';
import type { JsonResource } from '../fhir/resource-input.js';
import type { IndexEntry } from '../store/port.js';
import { classify, type SharableTypeCode } from './classification.js';
import { ACCESS_SYSTEMS, RESTRICTED_CODES } from './model.js';
import { EHEALTH } from '../participation/rules.js';

/** What the access rules need to know of one record: whose it is, its sharable type, whether it is restricted. */

/** The derived search entry that holds a record's sharable type, so roles can be checked inside a query. */
export const SHARABLE_TYPE_PARAM = '_sharable-type';
export const SHARABLE_TYPE_SYSTEM = `${EHEALTH}/CodeSystem/sharable-type`;

export function accessIndexEntries(resource: Record<string, unknown> & { resourceType: string }): IndexEntry[] {
  const classification = classify(resource);
  return classification.type ? [{ param: SHARABLE_TYPE_PARAM, values: [{ system: SHARABLE_TYPE_SYSTEM, value: classification.type }] }] : [];
}

/** Types whose records belong to a patient (the R4 Patient compartment, and Patient itself). */
export const isPatientBound = (resourceType: string): boolean => resourceType === 'Patient' || patientCompartmentParams(resourceType).length > 0;

const patientsMemo = new WeakMap<object, string[]>();
const typeMemo = new WeakMap<object, SharableTypeCode | undefined>();

/** The patients a record belongs to: the Patient itself, or the patients its compartment references name. */
export function patientsOf(resource: JsonResource, localBase?: string): string[] {
  // A record is judged on reading and again when the access is recorded: evaluate once.
  let patients = patientsMemo.get(resource);
  if (!patients) {
    patients = findPatients(resource, localBase);
    patientsMemo.set(resource, patients);
  }
  return patients;
}

/** The compartment rule (the indexer stores the same, AuditEvents aside), applied to the resource itself. */
function findPatients(resource: JsonResource, localBase?: string): string[] {
  const typed = resource as JsonResource & { resourceType: string };
  return ownersOf(PATIENT_COMPARTMENT, typed.resourceType, typeof resource.id === 'string' ? resource.id : undefined, (param) => referencesOf(typed, param, localBase));
}

export function isRestricted(resource: JsonResource): boolean {
  const security = (resource.meta as { security?: Coding[] } | undefined)?.security ?? [];
  return security.some((c) => c.system === ACCESS_SYSTEMS.confidentiality && c.code !== undefined && RESTRICTED_CODES.includes(c.code));
}

export function sharableTypeOf(resource: JsonResource): SharableTypeCode | undefined {
  if (typeMemo.has(resource)) return typeMemo.get(resource);
  const type = classify(resource).type;
  typeMemo.set(resource, type);
  return type;
}

/** The HCP that contributed a record, as the server stamps it in meta.source. */
export const contributorSource = (organizationId: string) => `Organization/${organizationId}`;
export const contributorOf = (resource: JsonResource): string | undefined => {
  const source = (resource.meta as { source?: string } | undefined)?.source;
  return source?.startsWith('Organization/') ? source.slice('Organization/'.length) : undefined;
};
