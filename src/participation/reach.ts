import type { Consent, EpisodeOfCare, Organization, Patient, RelatedPerson } from 'fhir/r4.js';
import { inForce } from '../access/model.js';
import { normaliseHkic } from './hkic.js';
import { within } from './principals.js';
import type { Current, Records } from './records.js';
import { ESTABLISHMENT_TYPES, identityDocumentOf, SYSTEMS, type IdentityDocumentType } from './rules.js';
import { readStatus, statusOf } from './status.js';

/**
 * What the consent, care and restricted-access operations need to know about participants:
 * a patient's current identity documents, whether an HCP is a public provider, and whether an
 * HCP may reach a patient at all (the same `inForce` queries the visibility rules use).
 */

export interface IdentityDocument {
  system: string;
  /** As registered (canonical form). */
  value: string;
  type: IdentityDocumentType;
}

/** The identity documents a patient (or SDM) holds now: eligible types, not ended. */
export function identityDocumentsOf(resource: Patient | RelatedPerson): IdentityDocument[] {
  return (resource.identifier ?? []).flatMap((identifier) => {
    const type = identityDocumentOf(identifier.system);
    return type && identifier.value && !identifier.period?.end ? [{ system: identifier.system!, value: normaliseDocumentNumber(type, identifier.value), type }] : [];
  });
}

/** A document number as registration stores it: HKIC-style numbers as `A123456(3)`, others trimmed and upper-case. */
export function normaliseDocumentNumber(type: IdentityDocumentType, value: string): string {
  const trimmed = value.trim();
  return type.checkDigit === 'hkic' ? (normaliseHkic(trimmed) ?? trimmed.toUpperCase()) : trimmed.toUpperCase();
}

/**
 * Whether a number read from a document matches one of the patient's current documents (of the
 * given type codes, and of the given system, when given).
 */
export function documentMatches(patient: Patient, seen: string, types?: string[], system?: string): boolean {
  return identityDocumentsOf(patient).some(
    (doc) => (!types || types.includes(doc.type.code)) && (system === undefined || doc.system === system) && doc.value === normaliseDocumentNumber(doc.type, seen),
  );
}

/** HA and DH: public providers, which hold sharing consent from joining and are outside restricted control. */
export function isPublicProvider(org: Organization): boolean {
  const type = org.type?.flatMap((t) => t.coding ?? []).find((c) => c.system === SYSTEMS.establishmentType)?.code;
  return ESTABLISHMENT_TYPES.get(type ?? '')?.public === true;
}

/** A registered patient (one with a participation status), or undefined. */
export async function registeredPatient(records: Records, id: string): Promise<Current<Patient> | undefined> {
  const current = await records.current<Patient>('Patient', id);
  return current && readStatus(current.resource) ? current : undefined;
}

/** A registered HCP, or undefined. */
export async function registeredProvider(records: Records, id: string): Promise<Current<Organization> | undefined> {
  const current = await records.current<Organization>('Organization', id);
  return current && readStatus(current.resource) ? current : undefined;
}

/** The patient's sharing consent to the HCP in force now (status active, period covering now). */
export async function sharingConsentInForce(records: Records, patientId: string, organizationId: string, now: Date, baseUrl: string): Promise<Consent | undefined> {
  const found = await records.find<Consent>('Consent', `${inForce.sharingConsents(organizationId)}&patient=Patient/${patientId}`, baseUrl, 20);
  return found.find((c) => c.patient?.reference === `Patient/${patientId}` && within(c.provision?.period, now));
}

/** The patient's care relationship at the HCP in force now (status active, period covering now). */
export async function careRelationshipInForce(records: Records, patientId: string, organizationId: string, now: Date, baseUrl: string): Promise<EpisodeOfCare | undefined> {
  const found = await records.find<EpisodeOfCare>('EpisodeOfCare', `${inForce.careRelationships(organizationId)}&patient=Patient/${patientId}`, baseUrl, 20);
  return found.find((e) => e.patient.reference === `Patient/${patientId}` && within(e.period, now));
}

/**
 * Whether the HCP may reach the patient: the patient is active, the HCP holds a sharing consent
 * in force (or is HA/DH), and the patient is under its care now.
 */
export async function reachable(records: Records, patient: Patient & { id: string }, organization: Organization & { id: string }, now: Date, baseUrl: string): Promise<boolean> {
  if (statusOf(patient) !== 'active') return false;
  if (!isPublicProvider(organization) && !(await sharingConsentInForce(records, patient.id, organization.id, now, baseUrl))) return false;
  return (await careRelationshipInForce(records, patient.id, organization.id, now, baseUrl)) !== undefined;
}
