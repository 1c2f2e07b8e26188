import type { Organization, Patient, Practitioner, PractitionerRole, RelatedPerson } from 'fhir/r4.js';
import type { Principal, PrincipalClaim } from '../auth/principal.js';
import type { Records } from './records.js';
import { endOfDay, PROFESSIONAL_GROUPS, startOfDay, SYSTEMS, USER_ADMINISTRATOR } from './rules.js';
import { statusOf } from './status.js';

/**
 * What a token's principal is right now, from the participation records: an account's HCP may
 * have been suspended, or the professional's registration may have lapsed, since the token was
 * made. Undefined when the principal does not exist at all (the token is then no good).
 */

export function within(period: { start?: string; end?: string } | undefined, now: Date): boolean {
  if (!period) return true;
  const t = now.getTime();
  if (period.start && (period.start.length === 10 ? startOfDay(period.start) : Date.parse(period.start)) > t) return false;
  // A date-only end means the whole of that day, in the territory.
  if (period.end && (period.end.length === 10 ? endOfDay(period.end) : Date.parse(period.end)) < t) return false;
  return true;
}

/** The professional group whose registration is valid now, if any. */
export function validRegistration(practitioner: Practitioner, now: Date): { group: string; problem?: string } | undefined {
  let lapsed: string | undefined;
  for (const q of practitioner.qualification ?? []) {
    const group = q.code.coding?.find((c) => c.system === SYSTEMS.professionalGroup && c.code && PROFESSIONAL_GROUPS.has(c.code))?.code;
    if (!group) continue;
    if (within(q.period, now) && q.identifier?.some((i) => i.value)) return { group };
    lapsed = group;
  }
  return lapsed ? { group: lapsed, problem: 'the professional registration is not valid' } : undefined;
}

export function isUserAdministrator(role: PractitionerRole): boolean {
  return (role.code ?? []).some((c) => c.coding?.some((k) => k.system === SYSTEMS.accountRole && k.code === USER_ADMINISTRATOR));
}

export async function resolvePrincipal(claim: PrincipalClaim, records: Records, now = new Date()): Promise<Principal | undefined> {
  switch (claim.kind) {
    case 'registration-office':
    case 'auditor':
    case 'system':
      return { ...claim };
    case 'patient':
      return (await records.current<Patient>('Patient', claim.patientId)) ? { kind: 'patient', patientId: claim.patientId } : undefined;
    case 'sdm': {
      const person = await records.current<RelatedPerson>('RelatedPerson', claim.relatedPersonId);
      const patientId = person?.resource.patient.reference?.replace(/^Patient\//, '');
      if (!person || person.resource.active === false || !patientId) return undefined;
      return { kind: 'sdm', relatedPersonId: claim.relatedPersonId, patientId };
    }
    case 'account':
      return resolveAccount(claim.practitionerRoleId, records, now);
  }
}

async function resolveAccount(roleId: string, records: Records, now: Date): Promise<Principal | undefined> {
  const role = await records.current<PractitionerRole>('PractitionerRole', roleId);
  if (!role) return undefined;
  const organizationId = role.resource.organization?.reference?.replace(/^Organization\//, '') ?? '';
  const practitionerId = role.resource.practitioner?.reference?.replace(/^Practitioner\//, '') ?? '';
  const [organization, practitioner] = await Promise.all([
    records.current<Organization>('Organization', organizationId),
    records.current<Practitioner>('Practitioner', practitionerId),
  ]);
  const registration = practitioner ? validRegistration(practitioner.resource, now) : undefined;

  let unusable: string | undefined;
  if (role.resource.active !== true || !within(role.resource.period, now)) unusable = 'This account has been deactivated';
  else if (!organization || statusOf(organization.resource) !== 'active') unusable = "This account's healthcare provider is not active in eHealth";
  else if (!practitioner) unusable = "This account's professional record does not exist";

  let noClinicalAccess: string | undefined;
  if (practitioner?.resource.active === false) noClinicalAccess = "This account holder's professional record is inactive";
  else if (!registration) noClinicalAccess = 'This account holder is not a registered healthcare professional';
  else if (registration.problem) noClinicalAccess = "This account holder's professional registration is not valid";

  return {
    kind: 'account',
    accountId: roleId,
    practitionerId,
    organizationId,
    group: registration?.group,
    userAdministrator: isUserAdministrator(role.resource),
    unusable,
    noClinicalAccess,
  };
}
