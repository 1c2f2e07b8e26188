import type { Principal } from '../auth/principal.js';
import { coveredByWildcard, grantFor, writesSomeType } from '../auth/scopes.js';
import { allResourceTypes } from '../fhir/definitions.js';
import { FhirError, notFound } from '../fhir/outcome.js';

/**
 * Which principal may use which REST interaction on which resource type. This is the coarse
 * gate in front of the FHIR API; consent, need-to-know and the role matrix narrow what an
 * HCProf account sees beyond it.
 */

export type Interaction = 'read' | 'search' | 'history' | 'write' | 'delete';

/** The records of who takes part in eHealth, managed by the registration office and HCPs' user administrators. */
export const PARTICIPATION_TYPES: ReadonlySet<string> = new Set(['Patient', 'RelatedPerson', 'Organization', 'Location', 'Practitioner', 'PractitionerRole']);

export const forbidden = (diagnostics: string) => FhirError.of(403, 'forbidden', diagnostics);

const WRITES: ReadonlySet<Interaction> = new Set(['write', 'delete']);

export interface Target {
  resourceType: string;
  /** Set for instance-level interactions. */
  id?: string;
}

export function authorize(principal: Principal, interaction: Interaction, target: Target): void {
  const { resourceType } = target;
  const writing = WRITES.has(interaction);
  switch (principal.kind) {
    case 'system': {
      if (resourceType === 'AuditEvent') throw forbidden('The audit trail is written by the server only and read by auditors; no client scope grants AuditEvent');
      const grant = grantFor(principal.scopes, resourceType);
      if (writing ? !grant.write : !grant.read) throw forbidden(`This client's scopes do not allow ${writing ? 'writing' : 'reading'} ${resourceType}`);
      return;
    }
    case 'registration-office':
      if (!PARTICIPATION_TYPES.has(resourceType)) throw forbidden('The registration office manages participation records only; it has no access to health records');
      if (writing && resourceType === 'PractitionerRole') throw forbidden("Accounts are managed by the HCP's user administrator ($create-account, $deactivate)");
      return;
    case 'auditor':
      if (resourceType !== 'AuditEvent' || writing) throw forbidden('Auditors read the audit trail (AuditEvent) only');
      return;
    case 'account':
      if (principal.unusable) throw forbidden(principal.unusable);
      if (PARTICIPATION_TYPES.has(resourceType)) {
        if (writing) throw forbidden(`${resourceType} records change only through the registration operations (see the CapabilityStatement)`);
        return;
      }
      if (resourceType === 'AuditEvent') throw forbidden('The audit trail is read by auditors; a patient reads their own access log ($access-log)');
      if (principal.noClinicalAccess) throw forbidden(principal.noClinicalAccess);
      return;
    case 'patient':
    case 'sdm': {
      const own = resourceType === 'Patient' ? principal.patientId : principal.kind === 'sdm' && resourceType === 'RelatedPerson' ? principal.relatedPersonId : undefined;
      if (writing || interaction === 'search' || own === undefined) {
        throw forbidden('Patients and their substitute decision makers may read their own participation record and use the participation operations only');
      }
      // Someone else's record does not exist, as far as this caller can tell.
      if (target.id !== own) throw notFound(`${resourceType}/${target.id ?? ''} is not known`);
      return;
    }
  }
}

/**
 * Throws unless the principal may write some resource type: for operations such as $import
 * that learn the types only from their input, a read-only client is refused before any job starts.
 */
export function requireSomeWriteRight(principal: Principal): void {
  if (principal.kind === 'system') {
    if (!writesSomeType(principal.scopes)) throw forbidden("This client's scopes allow writing no resource type");
    return;
  }
  if (principal.kind === 'account') {
    if (principal.unusable) throw forbidden(principal.unusable);
    if (principal.noClinicalAccess) throw forbidden(principal.noClinicalAccess);
  }
}

/**
 * The types a request across every type covers (a search or history without a type or `_type`,
 * an export without `_type`), each then authorised. A backend client's leave out the types a
 * wildcard scope does not cover (the audit trail, the notification queue) unless a scope names
 * them: its view hides them, so `system/*.read` still reaches across every health record type.
 * Everyone else's cover every type.
 */
export function typesAcrossAll(principal: Principal): string[] {
  const all = [...allResourceTypes()];
  if (principal.kind !== 'system') return all;
  return all.filter((type) => coveredByWildcard(type) || grantFor(principal.scopes, type).read);
}

/** Who may reach only some resource types, and so may not search across types. */
export function limitedTo(principal: Principal): string | undefined {
  if (principal.kind === 'registration-office') return 'the registration office (participation records only)';
  if (principal.kind === 'auditor') return 'an auditor (the audit trail only)';
  if (principal.kind === 'account' && principal.noClinicalAccess) return `this account (${principal.noClinicalAccess})`;
  if (principal.kind === 'system' && !grantFor(principal.scopes, '*').read) return "this client (its scopes name some resource types only)";
  return undefined;
}

/**
 * Search parameters that reach into other resource types (_include, _revinclude, _has,
 * chains) are refused to principals limited to some types: `Patient?_revinclude=Observation:subject`
 * would otherwise hand them records of a type they may not read.
 */
export function refuseCrossTypeSearch(principal: Principal, params: [string, string][]): void {
  const who = limitedTo(principal);
  if (!who) return;
  for (const [name] of params) {
    const base = name.split(':')[0]!;
    if (base === '_has' || base === '_revinclude' || base === '_include' || name.includes('.')) {
      throw forbidden(`'${base}${name.includes('.') && !base.startsWith('_') ? ' (a chain)' : ''}' is not available to ${who}: it reaches into other resource types`);
    }
  }
}
