import type { SharableTypeCode } from '../access/classification.js';
import type { AccessEvent } from '../access/events.js';
import { touched } from '../access/policy.js';
import { where, type BundleEntryRequest, type BundleKind } from '../fhir/bundle-processing/entries.js';
import type { FhirError } from '../fhir/outcome.js';
import type { JsonResource } from '../fhir/resource-input.js';

/**
 * A failed entry of a batch or transaction in the audit trail. The bundle's own event records
 * what its entries read and wrote; an entry refused (or failing) records, besides, an event of
 * its own, as the same request would alone: its interaction, type and id, its status, the
 * refusal (naming the entry), and the patients and data types of the resource it sent. Marked
 * with the bundle's kind as a second subtype, so `AuditEvent?outcome=4&patient=…` finds a
 * refusal whether it came alone or inside a bundle.
 */

/** What the event of a failed entry holds beyond who asked, when and from where. */
export type FailedEntryEvent = Omit<AccessEvent, 'at' | 'principal' | 'clientAddress'>;

/** The FHIR interaction an entry stands for, as `interactionOf` names a route's. */
function entryInteraction(entry: BundleEntryRequest): string {
  const { method, type, id, vid, compartmentType, history } = entry;
  if (method === 'POST') return 'create';
  if (method === 'PUT') return 'update';
  if (method === 'PATCH') return 'patch';
  if (method === 'DELETE') return 'delete';
  if (history) return id !== undefined ? 'history-instance' : type !== undefined ? 'history-type' : 'history-system';
  if (vid !== undefined) return 'vread';
  if (compartmentType !== undefined) return 'search-compartment';
  if (id !== undefined) return 'read';
  return type !== undefined ? 'search-type' : 'search-system';
}

/**
 * The patients and data types of a resource a write sent: the caller named them itself, and they
 * are what an auditor looks for. A create's id is the server's to give, so it names no one.
 */
export function sentRecords(method: string, resource: unknown, localBase: string): { patients: string[]; dataTypes: SharableTypeCode[] } {
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource) || typeof (resource as JsonResource).resourceType !== 'string') return { patients: [], dataTypes: [] };
  const sent = method === 'POST' ? { ...(resource as JsonResource), id: undefined } : (resource as JsonResource);
  try {
    const found = touched([sent], localBase);
    return { patients: found.patients, dataTypes: found.dataTypes };
  } catch {
    // A resource too malformed to classify was refused for that; it names no one.
    return { patients: [], dataTypes: [] };
  }
}

/** The request path of an entry's URL, as a request to it alone would have it (`/fhir/Observation?…`). */
function entryPath(url: string, baseUrl: string): string {
  const relative = (url.startsWith(`${baseUrl}/`) ? url.slice(baseUrl.length) : url).replace(/^\/+/, '');
  return `${new URL(baseUrl).pathname.replace(/\/+$/, '')}/${relative}`;
}

export function failedEntryEvent(entry: BundleEntryRequest, error: FhirError, kind: BundleKind, baseUrl: string): FailedEntryEvent {
  const { type, id, compartmentType } = entry;
  const sent = entry.method === 'POST' || entry.method === 'PUT' ? sentRecords(entry.method, entry.resource, baseUrl) : { patients: [], dataTypes: [] };
  // A compartment search concerns its patient even when refused, as a request alone would record.
  const patients = compartmentType !== undefined && type === 'Patient' && id !== undefined ? [...new Set([id, ...sent.patients])] : sent.patients;
  const diagnostics = error.outcome.issue.map((i) => i.diagnostics).find(Boolean) ?? error.outcome.issue[0]?.code ?? '';
  return {
    interaction: entryInteraction(entry),
    method: entry.method,
    url: entryPath(entry.url.trim(), baseUrl),
    ...((compartmentType ?? type) !== undefined && { resourceType: (compartmentType ?? type)! }),
    ...(id !== undefined && compartmentType === undefined && { id }),
    status: error.status,
    patients,
    dataTypes: sent.dataTypes,
    refusal: `${where(entry.index)} of a ${kind}: ${diagnostics}`,
    partOf: kind,
  };
}

const WRITE_INTERACTIONS: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete', GET: 'read', HEAD: 'read' };

/**
 * An entry too malformed to run (no request, a bad method or URL, a write without its resource)
 * is a refused attempt too: recorded with what can be read of it, the method when it is one, the
 * URL as sent, and the patients and data types of a resource it sent for a write.
 */
export function malformedEntryEvent(raw: unknown, index: number, error: FhirError, kind: BundleKind, baseUrl: string): FailedEntryEvent {
  const { request, resource } = (typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? raw : {}) as { request?: unknown; resource?: unknown };
  const { method, url } = (typeof request === 'object' && request !== null ? request : {}) as { method?: unknown; url?: unknown };
  const known = typeof method === 'string' && method in WRITE_INTERACTIONS ? method : undefined;
  const sent = known === 'POST' || known === 'PUT' ? sentRecords(known, resource, baseUrl) : { patients: [], dataTypes: [] };
  const diagnostics = error.outcome.issue.map((i) => i.diagnostics).find(Boolean) ?? error.outcome.issue[0]?.code ?? '';
  return {
    interaction: known ? WRITE_INTERACTIONS[known]! : kind,
    method: known ?? 'unknown',
    url: typeof url === 'string' && url.trim() !== '' ? entryPath(url.trim().slice(0, 1000), baseUrl) : '',
    status: error.status,
    patients: sent.patients,
    dataTypes: sent.dataTypes,
    refusal: `${where(index)} of a ${kind}: ${diagnostics}`,
    partOf: kind,
  };
}
