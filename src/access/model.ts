import type { Consent, EpisodeOfCare } from 'fhir/r4.js';
import { EHEALTH } from '../participation/rules.js';

/**
 * How the access rules are kept as FHIR resources: sharing consents, restricted-access grants
 * and care relationships. The operations that create them and the visibility rules that read
 * them both use these shapes, so they cannot drift apart.
 */

export const ACCESS_SYSTEMS = {
  /** Consent.category: `sharing` (a patient's sharing consent to one HCP) or `restricted-access`. */
  consentCategory: `${EHEALTH}/CodeSystem/consent-category`,
  /** Consent extension: `indefinite` or `one-year`. */
  consentOption: `${EHEALTH}/StructureDefinition/consent-option`,
  /** Consent extension: how it was given (smart-hkic, ehealth-app, access-key, voice-response, signed-form; otp for restricted access). */
  consentMethod: `${EHEALTH}/StructureDefinition/consent-method`,
  /** Consent extension on a restricted-access grant: the HCProf's reason. */
  accessReason: `${EHEALTH}/StructureDefinition/access-reason`,
  /** EpisodeOfCare.type: `under-care`, the care relationship that makes a patient reachable by an HCP. */
  careRelationship: `${EHEALTH}/CodeSystem/care-relationship`,
  /** The confidentiality labels that put a record under restricted control. */
  confidentiality: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality',
} as const;

export const SHARING = 'sharing';
export const RESTRICTED_ACCESS = 'restricted-access';
export const UNDER_CARE = 'under-care';
/** meta.security codes (v3-Confidentiality) that make a record restricted. */
export const RESTRICTED_CODES: readonly string[] = ['R', 'V'];

export type ConsentOption = 'indefinite' | 'one-year';
export type ConsentMethod = 'smart-hkic' | 'ehealth-app' | 'access-key' | 'voice-response' | 'signed-form';
export type AdditionalConsentMethod = 'otp' | 'smart-hkic';

/** How long a restricted-access grant lasts once the patient's additional consent is given. */
export const RESTRICTED_GRANT_MS = 2 * 60 * 60 * 1000;

/**
 * A sharing consent: one per patient per HCP. `status` active while in force, `inactive` once
 * revoked. provision.period.end is set for one-year consents (end of the Hong Kong day a year on).
 * provision.actor[0].reference is `Organization/{hcp}`.
 */
export type SharingConsent = Consent & {
  category: [{ coding: [{ system: typeof ACCESS_SYSTEMS.consentCategory; code: typeof SHARING }] }];
};

/**
 * A restricted-access grant: the patient's additional consent for one account
 * (provision.actor[0].reference `PractitionerRole/{account}`) to see restricted records, for
 * RESTRICTED_GRANT_MS from provision.period.start (period.end set). Carries the reason.
 */
export type RestrictedAccessGrant = Consent & {
  category: [{ coding: [{ system: typeof ACCESS_SYSTEMS.consentCategory; code: typeof RESTRICTED_ACCESS }] }];
};

/**
 * A care relationship: EpisodeOfCare with type `under-care`, status active, managingOrganization
 * the HCP, period.start when the patient's identity was verified at a visit; status finished (and
 * period.end) once care ends.
 */
export type CareRelationship = EpisodeOfCare;

/** The search queries (as query strings) that find what is in force for an HCP or account. */
export const inForce = {
  sharingConsents: (organizationId: string) =>
    `category=${encodeURIComponent(`${ACCESS_SYSTEMS.consentCategory}|${SHARING}`)}&status=active&actor=Organization/${organizationId}`,
  restrictedGrants: (accountId: string) =>
    `category=${encodeURIComponent(`${ACCESS_SYSTEMS.consentCategory}|${RESTRICTED_ACCESS}`)}&status=active&actor=PractitionerRole/${accountId}`,
  careRelationships: (organizationId: string) =>
    `type=${encodeURIComponent(`${ACCESS_SYSTEMS.careRelationship}|${UNDER_CARE}`)}&status=active&organization=Organization/${organizationId}`,
};
