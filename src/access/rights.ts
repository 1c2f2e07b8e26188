import type { Principal } from '../auth/principal.js';
import { grantFor } from '../auth/scopes.js';
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
      const grant = grantFor(principal.scopes, resourceType);
      if (writing ? !grant.write : !grant.read) throw forbidden(`This client's scopes do not allow ${writing ? 'writing' : 'reading'} ${resourceType}`);
      return;
    }
    case 'registration-office':
      if (!PARTICIPATION_TYPES.has(resourceType)) throw forbidden('The registration office manages participation records only; it has no access to health records');
      if (writing && resourceType === 'PractitionerRole') throw forbidden("Accounts are managed by the HCP's user administrator ($create-account, $deactivate)");
      return;
    case 'account':
      if (principal.unusable) throw forbidden(principal.unusable);
      if (PARTICIPATION_TYPES.has(resourceType)) {
        if (writing) throw forbidden(`${resourceType} records change only through the registration operations (see the CapabilityStatement)`);
        return;
      }
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

/** Search parameters that reach into other resource types, refused to principals limited to some types. */
export function refuseCrossTypeSearch(principal: Principal, params: [string, string][]): void {
  if (principal.kind !== 'registration-office') return;
  for (const [name] of params) {
    if (name.startsWith('_has') || name.startsWith('_revinclude') || name.startsWith('_include:iterate')) {
      throw forbidden(`'${name.split(':')[0]}' is not available to the registration office: it could reach health records`);
    }
  }
}
