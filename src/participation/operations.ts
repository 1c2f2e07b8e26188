import type { OperationDefinition, OperationDefinitionParameter } from 'fhir/r4.js';
import { RESTRICTED_GRANT_MS } from '../access/model.js';
import { ACCESS_KEY, ACCESS_KEY_LIMIT } from './access-keys.js';
import { CARD_READING_MAX_AGE_SECONDS, CARD_READING_TYPE } from './card-readings.js';
import { NOT_FOUND_LIMIT } from './care.js';
import { IMPLICIT_CONSENT_TAG } from './consents.js';
import { RESTRICTED_OTP, RESTRICTED_REQUEST_LIMIT, RESTRICTED_WRONG_LIMIT } from './restricted-access.js';
import { EHEALTH, SYSTEMS } from './rules.js';
import { minutes } from './secrets.js';

/**
 * The participation operations as data: the HTTP layer registers a route for each, and the
 * CapabilityStatement lists them with these OperationDefinitions.
 */

export interface OperationSpec {
  /** The OperationDefinition's id, e.g. `Patient-register`. */
  id: string;
  code: string;
  /** A resource type, or 'System' for system-level operations. */
  resource: string;
  /** The canonical URL of a standard operation (e.g. Patient-everything); this server's own otherwise. */
  canonical?: string;
  level: 'type' | 'instance' | 'system';
  /** Further levels the same operation is invoked at (e.g. $validate: type and instance). */
  alsoAt?: ('type' | 'instance' | 'system')[];
  /** GET for operations that change nothing. */
  method: 'POST' | 'GET';
  /** Whether it changes anything, when its method does not say (a POST that only checks, like $validate). */
  affectsState?: boolean;
  /** Callable without a token. */
  public?: boolean;
  title: string;
  description: string;
  parameters: OperationDefinitionParameter[];
}

const input = (name: string, type: string, min: number, max: string, documentation: string): OperationDefinitionParameter => ({ name, use: 'in', min, max, type, documentation });
const output = (name: string, type: string, min: number, max: string, documentation: string): OperationDefinitionParameter => ({ name, use: 'out', min, max, type, documentation });
const reason = input('reason', 'string', 0, '1', 'Why, in words kept on the record');
const effective = input('effectiveDate', 'dateTime', 0, '1', 'When the change took effect (not in the future); now when omitted');
const cardReading = (alternative: string) =>
  input('cardReading', 'string', 0, '1', `The reading of the patient's smart HKIC: a compact JWS (typ ${CARD_READING_TYPE}) signed by a card reader registered to the account's HCP, carrying identityDocument (system and value read from the chip), iat (at most ${CARD_READING_MAX_AGE_SECONDS} seconds old) and a jti used once (${alternative})`);
/** What a reading that is no evidence gets, in the descriptions. */
const READING_REFUSALS =
  "A number typed from the card is refused (400): it is printed on the card and proves nothing. A reading that is not a compact JWS of that type is 400; " +
  `one not signed by a registered reader (asymmetric algorithms only), more than ${CARD_READING_MAX_AGE_SECONDS} seconds old, dated in the future or used before is 422 (security); ` +
  "one from another HCP's reader is 403; a card that is not the patient's registered HKIC is 422 and counts as a wrong attempt.";

export const OPERATIONS: OperationSpec[] = [
  {
    id: 'Patient-register', code: 'register', resource: 'Patient', level: 'type', method: 'POST',
    title: 'Register a healthcare recipient',
    description: 'Registers a patient aged 16 or above with an eligible identity document, or (with an SDM) a child under 16 or an adult incapable of consent, or a newborn with the birth hospital\'s document. The HKIC check digit, date of birth and sex are validated; a second registration with the same identity document is refused (409). A 12-digit eHR number is assigned; the record is pending activation. Registration office, a registered HCP\'s account, or a system client with Patient write scope.',
    parameters: [
      input('patient', 'Patient', 1, '1', 'The patient: name, birthDate, gender and one identity document in identifier'),
      input('sdm', 'RelatedPerson', 0, '1', 'The substitute decision maker (parent, family member or person residing with the patient), with an identity document'),
      input('sdmBasis', 'code', 0, '1', "'incapable-of-consent' when an SDM registers a patient aged 16 or above"),
      output('ehrNumber', 'Identifier', 1, '1', 'The assigned eHR number'),
      output('patient', 'Patient', 1, '1', 'The registered patient (pending activation)'),
      output('sdm', 'RelatedPerson', 0, '1', 'The recorded SDM'),
    ],
  },
  {
    id: 'Patient-activate', code: 'activate', resource: 'Patient', level: 'instance', method: 'POST',
    title: 'Activate a patient record after identity verification',
    description: 'Pending activation → active, once the identity document has been verified in person. Registration office only.',
    parameters: [input('identityDocument', 'string', 1, '1', 'The number of the identity document seen; must match the registered one'), output('return', 'Patient', 1, '1', 'The activated patient')],
  },
  {
    id: 'Patient-complete-newborn-registration', code: 'complete-newborn-registration', resource: 'Patient', level: 'instance', method: 'POST',
    title: 'Complete a newborn record with the birth certificate',
    description: "Adds the Hong Kong birth certificate to a record registered with the birth hospital's document (which is kept, ended). Registration office only.",
    parameters: [input('birthCertificate', 'string', 1, '1', 'The birth certificate number'), output('return', 'Patient', 1, '1', 'The completed patient')],
  },
  {
    id: 'Patient-withdraw', code: 'withdraw', resource: 'Patient', level: 'instance', method: 'POST',
    title: 'Withdraw a patient from eHealth',
    description: 'Any state → withdrawn. Every record is kept; nothing is shared from then on. The patient, their SDM, or the registration office.',
    parameters: [reason, effective, output('return', 'Patient', 1, '1', 'The withdrawn patient')],
  },
  {
    id: 'Organization-register', code: 'register', resource: 'Organization', level: 'type', method: 'POST',
    title: 'Register a healthcare provider',
    description: 'Registers an HCP of one of the establishment types in profiles/participation.json with an accepted supporting document and at least one service location. The HCP starts as applied. Registration office only.',
    parameters: [
      input('organization', 'Organization', 1, '1', 'The HCP: name, type (establishment type), identifier typed with the supporting document'),
      input('location', 'Location', 1, '*', 'Service locations: name, address, phone'),
      output('organization', 'Organization', 1, '1', 'The registered HCP'),
      output('location', 'Location', 1, '*', 'Its service locations'),
    ],
  },
  ...(['approve', 'suspend', 'reinstate', 'cancel', 'withdraw'] as const).map((code): OperationSpec => ({
    id: `Organization-${code}`, code, resource: 'Organization', level: 'instance', method: 'POST',
    title: `${code[0]!.toUpperCase()}${code.slice(1)} a healthcare provider`,
    description: {
      approve: 'applied → active. Registration office only.',
      suspend: 'active → suspended, with a reason. Its accounts can do nothing while suspended. Registration office only.',
      reinstate: 'suspended → active. Registration office only.',
      cancel: 'applied, active or suspended → cancelled, with a reason. Registration office only.',
      withdraw: "applied, active or suspended → withdrawn. The registration office or the HCP's own user administrator.",
    }[code],
    parameters: [code === 'suspend' || code === 'cancel' ? { ...reason, min: 1 } : reason, effective, output('return', 'Organization', 1, '1', 'The HCP in its new state')],
  })),
  {
    id: 'Organization-create-account', code: 'create-account', resource: 'Organization', level: 'instance', method: 'POST',
    title: "Create an account at this HCP",
    description: "Creates an HCProf account (PractitionerRole) for a professional with a valid registration. The HCP's user administrator; the registration office appoints user administrators only.",
    parameters: [
      input('practitioner', 'Reference', 1, '1', 'Practitioner/id'),
      input('userAdministrator', 'boolean', 0, '1', 'Make the account a user administrator of this HCP'),
      output('return', 'PractitionerRole', 1, '1', 'The account'),
    ],
  },
  {
    id: 'PractitionerRole-deactivate', code: 'deactivate', resource: 'PractitionerRole', level: 'instance', method: 'POST',
    title: 'Deactivate an account',
    description: "Ends an HCProf account. The HCP's own user administrator only.",
    parameters: [reason, output('return', 'PractitionerRole', 1, '1', 'The deactivated account')],
  },
  {
    id: 'Practitioner-register', code: 'register', resource: 'Practitioner', level: 'type', method: 'POST',
    title: 'Record a healthcare professional',
    description: 'Records a professional of one of the 13 groups with the registration number and its validity (qualification). One record per registration number. The registration office or a user administrator.',
    parameters: [input('practitioner', 'Practitioner', 1, '1', 'The professional'), output('return', 'Practitioner', 1, '1', 'The recorded professional')],
  },
  {
    id: 'Patient-generate-access-key', code: 'generate-access-key', resource: 'Patient', level: 'instance', method: 'POST',
    title: 'Generate an access key',
    description: `An 8-digit access key the patient gives to an HCP, whose account then records the patient's sharing consent ($give-consent, method access-key). Valid for ${minutes(ACCESS_KEY.ttlMs)} and for one use; a new key replaces the previous one. After ${ACCESS_KEY_LIMIT.max} wrong keys the patient's key is locked for ${minutes(ACCESS_KEY_LIMIT.lockMs)}. Keys are kept hashed in the server process's memory only: a restart forgets them. The patient or their SDM only; the record must be active.`,
    parameters: [output('accessKey', 'string', 1, '1', 'The 8 digits'), output('expires', 'instant', 1, '1', 'When the key stops working')],
  },
  {
    id: 'Patient-give-consent', code: 'give-consent', resource: 'Patient', level: 'instance', method: 'POST',
    title: 'Give sharing consent to an HCP',
    description:
      "Records the patient's sharing consent to one HCP: a Consent (category sharing, status active, the HCP as provision.actor, performer, dateTime, option and method extensions). One per patient per HCP: giving again replaces it (new option and period). One-year consents end at the end of the Hong Kong day a year on. " +
      "Who and how: the patient or their SDM by ehealth-app or voice-response; an account of that HCP by smart-hkic (cardReading: the card read by the HCP's card reader), access-key (accessKey: the patient's key) or signed-form (identityDocument: the number on the form, checked against the document); the registration office by signed-form. " +
      `${READING_REFUSALS} ` +
      `The patient must be active and the HCP active; HA and DH hold consent from joining and are refused (422). Wrong keys, cards or document numbers count towards a lock (${ACCESS_KEY_LIMIT.max} within ${minutes(ACCESS_KEY_LIMIT.windowMs)}: 429 for ${minutes(ACCESS_KEY_LIMIT.lockMs)}).`,
    parameters: [
      input('organization', 'Reference', 1, '1', 'The HCP: Organization/id'),
      input('option', 'code', 1, '1', "'indefinite' or 'one-year'"),
      input('method', 'code', 1, '1', "'smart-hkic', 'ehealth-app', 'access-key', 'voice-response' or 'signed-form'"),
      input('accessKey', 'string', 0, '1', 'The 8-digit access key the patient generated (method access-key)'),
      cardReading('method smart-hkic'),
      input('identityDocument', 'string', 0, '1', 'The identity document number on the signed form (method signed-form at an HCP); must match the registered one'),
      output('return', 'Consent', 1, '1', 'The sharing consent (201 when first given, 200 when it replaced an earlier one)'),
    ],
  },
  {
    id: 'Patient-revoke-consent', code: 'revoke-consent', resource: 'Patient', level: 'instance', method: 'POST',
    title: 'Revoke sharing consent to an HCP',
    description: "Ends the patient's sharing consent to one HCP at once: status inactive, provision.period.end now. HA's and DH's consent lasts while the patient stays in eHealth and cannot be revoked (422; withdraw instead). The patient, their SDM or the registration office.",
    parameters: [input('organization', 'Reference', 1, '1', 'The HCP: Organization/id'), output('return', 'Consent', 1, '1', 'The revoked consent')],
  },
  {
    id: 'Patient-consents', code: 'consents', resource: 'Patient', level: 'instance', method: 'GET',
    title: "A patient's sharing consents",
    description: `The patient's sharing consents, in force and past, as a searchset Bundle; HA and DH appear as implicit consents generated for display (meta.tag ${IMPLICIT_CONSENT_TAG.system}|${IMPLICIT_CONSENT_TAG.code}, no id, not stored). The patient, their SDM or the registration office.`,
    parameters: [output('return', 'Bundle', 1, '1', 'A searchset of Consent')],
  },
  {
    id: 'Patient-access-log', code: 'access-log', resource: 'Patient', level: 'instance', method: 'GET',
    title: "Who accessed a patient's record",
    description: "The patient's access log from the audit trail: each access by a healthcare professional, newest first (at most 1,000): when, the professional and their group, the HCP, the action, whether it succeeded, the sharable data types, and the reason given for restricted access. No network addresses or queries. The patient, their SDM, or an auditor.",
    parameters: [output('access', 'string', 0, '*', 'One access, with parts when, professional, professionalGroup, healthcareProvider, action, outcome, dataType (repeating) and restrictedAccessReason')],
  },
  {
    id: 'Patient-establish-care', code: 'establish-care', resource: 'Patient', level: 'type', method: 'POST',
    title: "Put a patient under this HCP's care, at a visit",
    description:
      "After verifying the patient's identity document at a visit, an HCProf account with clinical access records that the patient is under its HCP's care: an EpisodeOfCare (type under-care, status active, managingOrganization the account's HCP, period.start now, careManager the account). An active one is kept (200) rather than duplicated (201 when created). " +
      'A document no active participant holds (unknown, pending activation or withdrawn) gets the same 404, audited as a refused lookup with the document\'s system and masked number. ' +
      `After ${NOT_FOUND_LIMIT.max} such documents within ${minutes(NOT_FOUND_LIMIT.windowMs)} the account establishes no care (429, found or not) for ${minutes(NOT_FOUND_LIMIT.lockMs)}, so the register cannot be walked. The patient found is named in the audit trail and notified like any access.`,
    parameters: [
      input('identifier', 'Identifier', 1, '1', `The identity document as registered: system (e.g. ${SYSTEMS.identityDocument('hkic')}) and number`),
      output('patient', 'Reference', 1, '1', 'The patient'),
      output('episodeOfCare', 'EpisodeOfCare', 1, '1', 'The care relationship'),
    ],
  },
  {
    id: 'EpisodeOfCare-end-care', code: 'end-care', resource: 'EpisodeOfCare', level: 'instance', method: 'POST',
    title: 'End a care relationship',
    description: "status finished, period.end now. An account of the HCP whose care it is, or the registration office; another HCP's care relationships are not found (404).",
    parameters: [output('return', 'EpisodeOfCare', 1, '1', 'The ended care relationship')],
  },
  {
    id: 'Patient-request-restricted-access', code: 'request-restricted-access', resource: 'Patient', level: 'instance', method: 'POST',
    title: "Ask the patient's additional consent to see restricted records",
    description:
      `An HCProf account with clinical access, at an HCP in the community (HA and DH need none: 422), gives a reason; a ${RESTRICTED_OTP.digits}-digit one-time password valid for ${minutes(RESTRICTED_OTP.ttlMs)} is sent to the patient's contact (chosen channel, else phone, email, post; 422 when there is none). ` +
      `Only for a patient the HCP may reach (active, sharing consent in force, under its care); any other patient is not found (404). At most ${RESTRICTED_REQUEST_LIMIT.max} passwords per patient and account in ${minutes(RESTRICTED_REQUEST_LIMIT.windowMs)}. Passwords are kept hashed in the server process's memory only.`,
    parameters: [input('reason', 'string', 1, '1', 'Why the professional needs the restricted records (sent to the patient, kept on the grant)'), output('return', 'OperationOutcome', 1, '1', 'That a password was sent, and by which channel')],
  },
  {
    id: 'Patient-grant-restricted-access', code: 'grant-restricted-access', resource: 'Patient', level: 'instance', method: 'POST',
    title: "Record the patient's additional consent to see restricted records",
    description:
      `The account that asked gives the one-time password the patient read out (otp; the reason must be the one sent) or the reading of the patient's smart HKIC by the HCP's card reader (cardReading). ${READING_REFUSALS} Creates a Consent (category restricted-access, status active, provision.actor PractitionerRole/{account}, period now to ${RESTRICTED_GRANT_MS / 3_600_000} hours on, reason and method extensions). ` +
      `Passwords are single use; ${RESTRICTED_WRONG_LIMIT.max} wrong attempts lock additional consent for the patient and account for ${minutes(RESTRICTED_WRONG_LIMIT.lockMs)} (429). Same patients, HCPs and refusals as $request-restricted-access.`,
    parameters: [
      input('reason', 'string', 1, '1', 'Why the professional needs the restricted records'),
      input('otp', 'string', 0, '1', 'The one-time password the patient received (or cardReading)'),
      cardReading('or otp'),
      output('return', 'Consent', 1, '1', 'The restricted-access grant'),
    ],
  },
  {
    id: 'hcp-register', code: 'hcp-register', resource: 'System', level: 'system', method: 'GET', public: true,
    title: 'Public HCP register',
    description: "Without a token: the service locations of active HCPs, with the HCP's name, the location's address and a phone number, and nothing else.",
    parameters: [
      input('name', 'string', 0, '1', "Start of the HCP's name (case- and accent-insensitive)"),
      input('address', 'string', 0, '1', 'Part of the address'),
      input('_count', 'integer', 0, '1', 'At most this many (default 20, at most 100)'),
      output('return', 'Bundle', 1, '1', 'A searchset of Location (name, address, telecom, managingOrganization.display)'),
    ],
  },
];

export const canonicalOf = (spec: OperationSpec) => spec.canonical ?? `${EHEALTH}/OperationDefinition/${spec.id}`;

export function operationDefinition(spec: OperationSpec, date: string): OperationDefinition {
  return {
    resourceType: 'OperationDefinition',
    id: spec.id,
    url: canonicalOf(spec),
    name: spec.id.replace(/[^A-Za-z0-9]/g, ''),
    title: spec.title,
    status: 'active',
    kind: 'operation',
    date,
    description: spec.description,
    affectsState: spec.affectsState ?? spec.method === 'POST',
    code: spec.code,
    ...(spec.resource !== 'System' && { resource: [spec.resource] }),
    system: spec.level === 'system' || spec.alsoAt?.includes('system') === true,
    type: spec.level === 'type' || spec.alsoAt?.includes('type') === true,
    instance: spec.level === 'instance' || spec.alsoAt?.includes('instance') === true,
    parameter: spec.parameters,
  };
}
