import type { CapabilityStatement, CapabilityStatementRestResourceOperation } from 'fhir/r4.js';
import { capabilityStatement, type SoftwareInfo } from './fhir/capability.js';
import { allResourceTypes } from './fhir/definitions.js';
import { ALL_OPERATIONS } from './operations.js';
import { canonicalOf } from './participation/operations.js';

/** The whole CapabilityStatement: FHIR REST as implemented, plus the operations and security. */

/**
 * `transactions`: whether the store can apply a transaction all or none; `cors`: whether browser
 * apps of some origins may call the API. The repository file describes the defaults: the embedded
 * store, which can, and no CORS.
 */
export function serverCapabilityStatement(software: SoftwareInfo, { transactions = true, cors = false }: { transactions?: boolean; cors?: boolean } = {}): CapabilityStatement {
  const operations = new Map<string, CapabilityStatementRestResourceOperation[]>();
  for (const spec of ALL_OPERATIONS) {
    // An operation on 'Resource' (like $validate) is offered on every type. Standard operations
    // are defined at their canonical URLs, so what this server does with them is said here.
    for (const type of spec.resource === 'Resource' ? allResourceTypes() : [spec.resource]) {
      const list = operations.get(type) ?? [];
      list.push({ name: spec.code, definition: canonicalOf(spec), documentation: spec.description });
      operations.set(type, list);
    }
  }
  return capabilityStatement(software, {
    operations,
    transactions,
    security: {
      cors,
      service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR', display: 'SMART-on-FHIR' }] }],
      description:
        'Every request except metadata, /.well-known/smart-configuration, the public HCP register ($hcp-register) and the ' +
        'OperationDefinitions carries a bearer JWT (signature, issuer, audience, expiry and not-before are checked). Its sub names ' +
        'the principal: PractitionerRole/{id} (an HCProf account or user administrator), Patient/{id}, RelatedPerson/{id} (an SDM), ' +
        'registration-office/{staff}, auditor/{staff} (reads the audit trail, AuditEvent, and nothing else) or client/{id}. Backend ' +
        'clients (HA/DH bulk exchange) obtain tokens with SMART Backend Services: POST /auth/token, grant_type=client_credentials ' +
        'with a private_key_jwt assertion; system/ scopes (v1 and v2). No scope grants AuditEvent, and a system/*.… wildcard does ' +
        'not cover Communication (the patient-notification queue): only a scope naming it does. A backend client sees nothing of ' +
        'patients pending activation or withdrawn (their Patient resources and records are left out of every read, search and ' +
        'export, and cannot be changed or deleted by it, as for an HCP), unless the operator registered it to (seesNonParticipating). ' +
        'Missing or bad tokens get 401; a principal without the right gets 403.',
    },
  });
}
