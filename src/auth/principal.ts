/**
 * Who is asking. A token names a principal (`sub`); the participation records then say what
 * that principal currently is (an account may have been deactivated since the token was made).
 */

/** What a verified token claims to be, before anything is looked up. */
export type PrincipalClaim =
  | { kind: 'account'; practitionerRoleId: string }
  | { kind: 'patient'; patientId: string }
  | { kind: 'sdm'; relatedPersonId: string }
  | { kind: 'registration-office'; staffId: string }
  | { kind: 'auditor'; staffId: string }
  | { kind: 'system'; clientId: string; scopes: string[]; seesNonParticipating?: true };

/** An HCProf account (PractitionerRole): one practitioner at one HCP. */
export interface AccountPrincipal {
  kind: 'account';
  accountId: string;
  practitionerId: string;
  organizationId: string;
  /** The professional group code, when the account holder is a registered HCProf. */
  group: string | undefined;
  /** May manage its own HCP's accounts. */
  userAdministrator: boolean;
  /** Why the account may do nothing right now (inactive account, HCP not active); undefined when usable. */
  unusable: string | undefined;
  /** Why the account may not reach clinical records (no valid professional registration); undefined when it may. */
  noClinicalAccess: string | undefined;
}

export interface PatientPrincipal {
  kind: 'patient';
  patientId: string;
}

/** A substitute decision maker acting for one patient. */
export interface SdmPrincipal {
  kind: 'sdm';
  relatedPersonId: string;
  patientId: string;
}

export interface RegistrationOfficePrincipal {
  kind: 'registration-office';
  staffId: string;
}

/** An auditor (privacy officer): reads the audit trail, nothing else. */
export interface AuditorPrincipal {
  kind: 'auditor';
  staffId: string;
}

/** A backend client (SMART Backend Services), e.g. HA's or DH's bulk exchange. */
export interface SystemPrincipal {
  kind: 'system';
  clientId: string;
  scopes: string[];
  /**
   * An operator's own tool, not an HCP's system: it also sees the records of patients who do
   * not take part (pending activation, withdrawn), which HCP systems do not (see client-view.ts).
   * Set by the client's registration only (BackendClient), never by a scope it asks for.
   */
  seesNonParticipating?: true;
}

export type Principal = AccountPrincipal | PatientPrincipal | SdmPrincipal | RegistrationOfficePrincipal | AuditorPrincipal | SystemPrincipal;

const ID = '[A-Za-z0-9\\-.]{1,64}';
const SUBJECT = new RegExp(`^(PractitionerRole|Patient|RelatedPerson|registration-office|auditor|client)/(${ID})$`);

/** The claim of a backend client's token that says it sees non-participating patients (SystemPrincipal.seesNonParticipating). */
export const NON_PARTICIPATING_CLAIM = 'ehealth_non_participating';

/** Reads a token's `sub` (and `scope`, and NON_PARTICIPATING_CLAIM) into a claim; undefined when the subject names nothing known. */
export function claimFromToken(sub: unknown, scope: unknown, nonParticipating?: unknown): PrincipalClaim | undefined {
  if (typeof sub !== 'string') return undefined;
  const m = SUBJECT.exec(sub);
  if (!m) return undefined;
  const [, kind, id] = m as unknown as [string, string, string];
  switch (kind) {
    case 'PractitionerRole':
      return { kind: 'account', practitionerRoleId: id };
    case 'Patient':
      return { kind: 'patient', patientId: id };
    case 'RelatedPerson':
      return { kind: 'sdm', relatedPersonId: id };
    case 'registration-office':
      return { kind: 'registration-office', staffId: id };
    case 'auditor':
      return { kind: 'auditor', staffId: id };
    default:
      return {
        kind: 'system',
        clientId: id,
        scopes: typeof scope === 'string' ? scope.split(/\s+/).filter(Boolean) : [],
        ...(nonParticipating === true && { seesNonParticipating: true as const }),
      };
  }
}

/** The `sub` a token for this claim carries. */
export function subjectOf(claim: PrincipalClaim): string {
  switch (claim.kind) {
    case 'account':
      return `PractitionerRole/${claim.practitionerRoleId}`;
    case 'patient':
      return `Patient/${claim.patientId}`;
    case 'sdm':
      return `RelatedPerson/${claim.relatedPersonId}`;
    case 'registration-office':
      return `registration-office/${claim.staffId}`;
    case 'auditor':
      return `auditor/${claim.staffId}`;
    case 'system':
      return `client/${claim.clientId}`;
  }
}

/** The `sub` of the tokens that name this principal (audit agents, owners of bulk jobs). */
export function subjectOfPrincipal(principal: Principal): string {
  switch (principal.kind) {
    case 'account':
      return `PractitionerRole/${principal.accountId}`;
    case 'patient':
      return `Patient/${principal.patientId}`;
    case 'sdm':
      return `RelatedPerson/${principal.relatedPersonId}`;
    case 'registration-office':
      return `registration-office/${principal.staffId}`;
    case 'auditor':
      return `auditor/${principal.staffId}`;
    case 'system':
      return `client/${principal.clientId}`;
  }
}
