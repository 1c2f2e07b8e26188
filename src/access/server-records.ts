import { FhirError } from '../fhir/outcome.js';
import type { JsonResource } from '../fhir/resource-input.js';
import type { WriteGuard } from '../fhir/resource-service.js';
import { NOTIFICATION_CATEGORY } from './notifications.js';

/**
 * Records only the server writes: the audit trail (append-only and hash-chained; a record
 * written through REST would break the chain or forge an access) and the patient notification
 * outbox (a forged one would make the server message a patient). Everyone gets 403, backend
 * clients with every scope included.
 */

const forbidden = (diagnostics: string) => FhirError.of(403, 'forbidden', diagnostics);

const isNotification = (resource: JsonResource | undefined) =>
  ((resource?.category as { coding?: { system?: string }[] }[] | undefined) ?? []).some((c) => c.coding?.some((k) => k.system === NOTIFICATION_CATEGORY));

function refuse(resource: JsonResource | undefined, other?: JsonResource): void {
  if (resource?.resourceType === 'AuditEvent') throw forbidden('The audit trail is written by the server only; AuditEvents cannot be created, changed or deleted');
  if (isNotification(resource) || isNotification(other)) throw forbidden('Patient notifications are written by the server only');
}

export const serverRecordsGuard: WriteGuard = {
  appliesTo: (type) => type === 'AuditEvent' || type === 'Communication',
  check: (next, previous) => refuse(next, previous),
  checkDelete: (previous) => refuse(previous),
};
