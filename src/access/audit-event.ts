import type { AuditEvent, AuditEventAgent, AuditEventEntity, Coding } from 'fhir/r4.js';
import { subjectOfPrincipal, type Principal } from '../auth/principal.js';
import { EHEALTH, SYSTEMS } from '../participation/rules.js';
import { SHARABLE_TYPES } from './classification.js';
import type { AccessEvent } from './events.js';
import { ACCESS_SYSTEMS, RESTRICTED_ACCESS } from './model.js';
import { SHARABLE_TYPE_SYSTEM } from './records-of.js';

/**
 * An access event as an R4 AuditEvent, after IHE Basic Audit Log Patterns (BALP):
 *
 * - type `audit-event-type|rest`; subtype the FHIR interaction (`restful-interaction`), and for
 *   operations also the operation's code (`…/CodeSystem/operation`, e.g. `give-consent`); for a
 *   failed entry of a bundle, recorded on its own, also `batch` or `transaction`;
 * - action C (create), R (read, vread, instance history), U (update, patch), D (delete),
 *   E (searches, type and system history, operations);
 * - outcome 0 for 2xx/3xx, 4 for 4xx, 8 for 5xx; outcomeDesc the status and the refusal;
 * - period.start when the request arrived, recorded when it was written to the trail;
 * - agent: the requestor (user), findable by `agent` (its FHIR reference) and `altid` (the
 *   token subject, e.g. `PractitionerRole/ac1`, `registration-office/s1`, `client/ha`), with the
 *   client's network address (`address`); for an HCProf account also the Practitioner and the
 *   HCP Organization as agents of their own (`agent=Practitioner/…`, `agent=Organization/…`) and
 *   the professional group as role (`agent-role=…/professional-group|medical-practitioner`);
 * - source.observer this server (BALP's separate destination agent would only repeat it);
 * - entity: each patient touched (`Patient/{id}`, type 1 person, role 1 patient: `patient=`), or
 *   the identity document looked up when no patient was found (what.identifier, number masked),
 *   the resource addressed (role 4 domain resource: `entity=`), the query of searches (role 24,
 *   base64 in entity.query), and one entity per sharable data type touched (type coded in
 *   `…/CodeSystem/sharable-type`: `entity-type=`);
 * - purposeOfEvent, for restricted access: the reason the HCProf gave (text), coded
 *   `consent-category|restricted-access`.
 *
 * Every request writes one of these, and writing costs per search index entry, so the searchable
 * elements carry only what is searched: codes without displays (each display would be one more
 * `:text` entry), no role codings beyond the professional group. About 20 entries per event.
 */

export const OPERATION_SYSTEM = `${EHEALTH}/CodeSystem/operation`;

const AUDIT_EVENT_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-event-type';
const RESTFUL_INTERACTION = 'http://hl7.org/fhir/restful-interaction';
const PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
const ROLE_CLASS = 'http://terminology.hl7.org/CodeSystem/v3-RoleClass';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const SOURCE_TYPE = 'http://terminology.hl7.org/CodeSystem/security-source-type';
const STAFF = `${EHEALTH}/sid/staff`;
const CLIENT = `${EHEALTH}/sid/client`;

/** The interactions of R4's restful-interaction code system; others map onto their parent. */
const INTERACTIONS = new Set([
  'read', 'vread', 'update', 'patch', 'delete', 'history', 'history-instance', 'history-type', 'history-system',
  'create', 'search', 'search-type', 'search-system', 'capabilities', 'transaction', 'batch', 'operation',
]);

const ACTIONS: Record<string, AuditEvent['action']> = {
  create: 'C',
  read: 'R',
  vread: 'R',
  'history-instance': 'R',
  update: 'U',
  patch: 'U',
  delete: 'D',
};

export function interactionCode(interaction: string): string {
  if (INTERACTIONS.has(interaction)) return interaction;
  if (interaction.startsWith('search')) return 'search';
  if (interaction.startsWith('history')) return 'history';
  return 'operation';
}

export function outcomeOf(status: number): AuditEvent['outcome'] {
  if (status >= 500) return '8';
  if (status >= 400) return '4';
  return '0';
}

const WRITES = new Set(['C', 'U', 'D']);


function principalAgents(principal: Principal | undefined, userType: Coding, network: AuditEventAgent['network']): AuditEventAgent[] {
  const requestor = (agent: Omit<AuditEventAgent, 'requestor'>): AuditEventAgent => ({ ...agent, requestor: true, network });
  if (!principal) {
    return [requestor({ type: { coding: [userType] }, who: { display: 'unknown (not authenticated)' } })];
  }
  const altId = subjectOfPrincipal(principal);
  switch (principal.kind) {
    case 'account': {
      return [
        requestor({
          type: { coding: [userType] },
          ...(principal.group && { role: [{ coding: [{ system: SYSTEMS.professionalGroup, code: principal.group }] }] }),
          who: { reference: `PractitionerRole/${principal.accountId}` },
          altId,
        }),
        {
          type: { coding: [{ system: ROLE_CLASS, code: 'PROV', display: 'healthcare provider' }] },
          who: { reference: `Practitioner/${principal.practitionerId}` },
          requestor: false,
        },
        {
          type: { coding: [{ system: ROLE_CLASS, code: 'ASSIGNED', display: 'assigned entity' }], text: 'the account\'s HCP' },
          who: { reference: `Organization/${principal.organizationId}` },
          requestor: false,
        },
      ];
    }
    case 'patient':
      return [
        requestor({
          type: { coding: [{ system: ROLE_CLASS, code: 'PAT', display: 'patient' }] },
          who: { reference: `Patient/${principal.patientId}` },
          altId,
        }),
      ];
    case 'sdm':
      return [
        requestor({
          type: { coding: [userType] },
          who: { reference: `RelatedPerson/${principal.relatedPersonId}` },
          altId,
        }),
      ];
    case 'registration-office':
    case 'auditor':
      return [
        requestor({
          type: { coding: [userType] },
          who: { identifier: { system: STAFF, value: principal.staffId }, display: altId },
          altId,
        }),
      ];
    case 'system':
      return [
        requestor({
          type: { coding: [userType] },
          who: { identifier: { system: CLIENT, value: principal.clientId }, display: altId },
          altId,
        }),
      ];
  }
}

const TYPE_DISPLAY = new Map(SHARABLE_TYPES.map((t) => [t.code as string, t.display]));

export interface AuditEventOptions {
  /** This server's base URL: the audit source. */
  baseUrl: string;
  /** A name for this server in source.observer; defaults to the base URL. */
  observerName?: string;
  /** When the event was written to the trail; defaults to now. */
  recorded?: Date;
}

/** Builds the AuditEvent (without id and chain fields) that records one access. */
export function auditEventOf(event: AccessEvent, options: AuditEventOptions): AuditEvent {
  const interaction = interactionCode(event.interaction);
  const action = ACTIONS[event.interaction] ?? 'E';
  const subtype: Coding[] = [{ system: RESTFUL_INTERACTION, code: interaction }];
  if (event.interaction === 'operation' && event.operation) subtype.push({ system: OPERATION_SYSTEM, code: event.operation, display: `$${event.operation}` });
  // An entry of a bundle: also found as part of a batch or transaction (`subtype=batch`).
  if (event.partOf) subtype.push({ system: RESTFUL_INTERACTION, code: event.partOf });
  // BALP: the user is the information recipient of reads and queries, the author of writes.
  const userType: Coding = WRITES.has(action!) ? { system: PARTICIPATION_TYPE, code: 'AUT', display: 'author' } : { system: PARTICIPATION_TYPE, code: 'IRCP', display: 'information recipient' };
  const network = event.clientAddress ? { address: event.clientAddress, type: /^[0-9a-fA-F:.]+$/.test(event.clientAddress) ? ('2' as const) : ('1' as const) } : undefined;
  const agent = principalAgents(event.principal, userType, network);

  const entity: AuditEventEntity[] = [];
  for (const patient of [...new Set(event.patients)]) {
    entity.push({
      what: { reference: `Patient/${patient}` },
      type: { system: ENTITY_TYPE, code: '1' },
      role: { system: OBJECT_ROLE, code: '1' },
    });
  }
  if (event.identityDocument) {
    entity.push({
      what: { identifier: { ...event.identityDocument } },
      type: { system: ENTITY_TYPE, code: '1' },
      role: { system: OBJECT_ROLE, code: '1' },
      description: 'Identity document looked up (number masked); no active participant was found',
    });
  }
  if (event.resourceType && event.id && !(event.resourceType === 'Patient' && event.patients.includes(event.id))) {
    entity.push({
      what: { reference: `${event.resourceType}/${event.id}` },
      type: { system: ENTITY_TYPE, code: '2' },
      role: { system: OBJECT_ROLE, code: '4' },
    });
  }
  if (interaction.startsWith('search') || (action === 'E' && event.url.includes('?'))) {
    entity.push({
      type: { system: ENTITY_TYPE, code: '2' },
      role: { system: OBJECT_ROLE, code: '24' },
      query: Buffer.from(event.url, 'utf8').toString('base64'),
      ...(event.resourceType && { name: event.resourceType }),
    });
  }
  for (const code of [...new Set(event.dataTypes)]) {
    entity.push({
      type: { system: SHARABLE_TYPE_SYSTEM, code },
      role: { system: OBJECT_ROLE, code: '4' },
      // The type's name (not indexed: searching goes by code).
      ...(TYPE_DISPLAY.has(code) && { description: TYPE_DISPLAY.get(code)! }),
    });
  }

  const recorded = options.recorded ?? new Date();
  const outcomeDesc = event.status >= 400 ? `HTTP ${event.status}${event.refusal ? `: ${event.refusal}` : ''}` : undefined;
  const audit: AuditEvent = {
    resourceType: 'AuditEvent',
    type: { system: AUDIT_EVENT_TYPE, code: 'rest' },
    subtype,
    action: action!,
    period: { start: event.at.toISOString(), end: recorded.toISOString() },
    recorded: recorded.toISOString(),
    outcome: outcomeOf(event.status),
    ...(outcomeDesc && { outcomeDesc }),
    agent,
    source: {
      observer: { identifier: { system: 'urn:ietf:rfc:3986', value: options.baseUrl }, display: options.observerName ?? options.baseUrl },
      type: [{ system: SOURCE_TYPE, code: '3', display: 'Web Server' }],
    },
    ...(entity.length > 0 && { entity }),
  };
  if (event.restricted || event.restrictedReason) {
    audit.purposeOfEvent = [
      {
        coding: [{ system: ACCESS_SYSTEMS.consentCategory, code: RESTRICTED_ACCESS, display: 'Restricted access' }],
        ...(event.restrictedReason && { text: event.restrictedReason }),
      },
    ];
  }
  return audit;
}
