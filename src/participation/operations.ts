import type { OperationDefinition, OperationDefinitionParameter } from 'fhir/r4.js';
import { EHEALTH } from './rules.js';

/**
 * The participation operations as data: the HTTP layer registers a route for each, and the
 * CapabilityStatement lists them with these OperationDefinitions.
 */

export interface OperationSpec {
  /** The OperationDefinition's id, e.g. `Patient-register`. */
  id: string;
  code: string;
  resource: 'Patient' | 'Organization' | 'Practitioner' | 'PractitionerRole' | 'System';
  level: 'type' | 'instance' | 'system';
  /** GET for operations that change nothing. */
  method: 'POST' | 'GET';
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

export const canonicalOf = (spec: OperationSpec) => `${EHEALTH}/OperationDefinition/${spec.id}`;

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
    affectsState: spec.method === 'POST',
    code: spec.code,
    ...(spec.resource !== 'System' && { resource: [spec.resource] }),
    system: spec.level === 'system',
    type: spec.level === 'type',
    instance: spec.level === 'instance',
    parameter: spec.parameters,
  };
}
