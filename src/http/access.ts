import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AccessEvent, AccessRecorder } from '../access/events.js';
import { touched, type AccessPolicy, type AccessView } from '../access/policy.js';
import type { SharableTypeCode } from '../access/classification.js';
import type { JsonResource } from '../fhir/resource-input.js';
import type { BundleEntryRequest, BundleKind } from '../fhir/bundle-processing/entries.js';
import { issue, operationOutcome, type FhirError } from '../fhir/outcome.js';
import { failedEntryEvent, malformedEntryEvent, sentRecords, type FailedEntryEvent } from './bundle-audit.js';
import { baseUrl } from './request.js';

/**
 * The access layer at the HTTP door: each authenticated request gets its view (what the
 * caller may see), notes which records it touched, and is recorded (audit trail, patient
 * notification) before its answer leaves. A request that cannot be recorded fails.
 */

declare module 'fastify' {
  interface FastifyRequest {
    /** What this request's principal may see and change; set before the handler runs. */
    view: AccessView;
    /** What the request touched, for the audit trail. */
    touchedRecords: {
      patients: Set<string>;
      dataTypes: Set<SharableTypeCode>;
      restricted: boolean;
      refusal?: string;
      identityDocument?: AccessEvent['identityDocument'];
      failedEntries: FailedEntryEvent[];
    };
  }
}

/** Notes records a request read, returned or wrote. */
export function noteTouched(request: FastifyRequest, resources: JsonResource[], localBase: string): void {
  const found = touched(resources, localBase);
  const record = request.touchedRecords;
  for (const p of found.patients) record.patients.add(p);
  for (const t of found.dataTypes) record.dataTypes.add(t);
  if (found.restricted) record.restricted = true;
}

/** Notes a bundle entry that failed: it is recorded as an access of its own (see bundle-audit.ts). */
export function noteFailedEntry(request: FastifyRequest, entry: BundleEntryRequest, error: FhirError, kind: BundleKind, localBase: string): void {
  request.touchedRecords.failedEntries.push(failedEntryEvent(entry, error, kind, localBase));
}

/** The same for an entry too malformed to run, from what it holds as sent. */
export function noteMalformedEntry(request: FastifyRequest, raw: unknown, index: number, error: FhirError, kind: BundleKind, localBase: string): void {
  request.touchedRecords.failedEntries.push(malformedEntryEvent(raw, index, error, kind, localBase));
}

export interface AccessRecording {
  policy: AccessPolicy;
  recorders: AccessRecorder[];
}

/** The FHIR interaction a route stands for, for the audit trail. */
export function interactionOf(request: FastifyRequest): { interaction: string; operation?: string } {
  const route = request.routeOptions.url ?? '';
  const method = request.method;
  const params = (request.params ?? {}) as { type?: string; id?: string; compartmentType?: string; vid?: string };
  const op = /\$([a-z-]+)/.exec(route);
  if (op) return { interaction: 'operation', operation: op[1]! };
  if (route === '/fhir' && method === 'POST') return { interaction: (request.body as { type?: unknown } | undefined)?.type === 'transaction' ? 'transaction' : 'batch' };
  if (route.endsWith('/_history')) return { interaction: params.id ? 'history-instance' : params.type ? 'history-type' : 'history-system' };
  if (params.vid !== undefined) return { interaction: 'vread' };
  if (method === 'GET' || route.endsWith('_search')) {
    if (params.compartmentType) return { interaction: 'search-compartment' };
    if (params.id !== undefined) return { interaction: 'read' };
    return { interaction: params.type ? 'search-type' : 'search-system' };
  }
  if (method === 'POST') return { interaction: 'create' };
  if (method === 'PUT') return { interaction: 'update' };
  if (method === 'PATCH') return { interaction: 'patch' };
  if (method === 'DELETE') return { interaction: 'delete' };
  return { interaction: method.toLowerCase() };
}

export function installAccessRecording(scope: FastifyInstance, recording: AccessRecording): void {
  scope.decorateRequest('view', null as unknown as AccessView);
  scope.decorateRequest('touchedRecords', null as unknown as FastifyRequest['touchedRecords']);
  scope.addHook('onRequest', async (request) => {
    request.touchedRecords = { patients: new Set(), dataTypes: new Set(), restricted: false, failedEntries: [] };
  });
  // After authentication and the REST gate: the view of the principal now.
  scope.addHook('preHandler', async (request) => {
    request.view = await recording.policy.viewFor(request.principal);
  });
  scope.addHook('onSend', async (request, reply, payload) => {
    // A request refused before this scope's hooks ran (e.g. 406) touched nothing.
    const record = request.touchedRecords ?? { patients: new Set<string>(), dataTypes: new Set<SharableTypeCode>(), restricted: false, failedEntries: [] };
    const params = (request.params ?? {}) as { type?: string; id?: string; compartmentType?: string };
    const patientOperation = /^\/fhir\/Patient\/:id\/\$/.test(request.routeOptions.url ?? '');
    // An operation on a patient, or a compartment search, concerns that patient even when nothing is returned.
    if ((patientOperation || (params.compartmentType && params.type === 'Patient')) && params.id) record.patients.add(params.id);
    const { interaction, operation } = interactionOf(request);
    // A refused upload names the patients and data types of what it sent, as a refused bundle entry does.
    if (reply.statusCode >= 400 && (interaction === 'create' || interaction === 'update')) {
      const sent = sentRecords(request.method, request.body, baseUrl(request));
      for (const p of sent.patients) record.patients.add(p);
      for (const t of sent.dataTypes) record.dataTypes.add(t);
    }
    const patients = [...record.patients];
    const reasons = patients.map((p) => request.view?.restrictedReason(p)).filter((r): r is string => !!r);
    const event: AccessEvent = {
      at: new Date(Date.now() - Math.round(reply.elapsedTime)),
      principal: request.principal ?? undefined,
      interaction,
      ...(operation !== undefined && { operation }),
      method: request.method,
      url: request.url,
      ...((params.compartmentType ?? params.type) !== undefined && { resourceType: (params.compartmentType ?? params.type)! }),
      ...(params.id !== undefined && !params.compartmentType && { id: params.id }),
      status: reply.statusCode,
      patients,
      dataTypes: [...record.dataTypes],
      ...(record.restricted && { restricted: true }),
      ...(record.restricted && reasons.length > 0 && { restrictedReason: reasons.join('; ') }),
      clientAddress: request.ip,
      ...(record.identityDocument && { identityDocument: record.identityDocument }),
    };
    if (reply.statusCode >= 400 && typeof payload === 'string') {
      const diagnostics = /"diagnostics":"((?:[^"\\]|\\.)*)"/.exec(payload)?.[1];
      if (diagnostics) event.refusal = diagnostics;
    }
    // The bundle's event, then one per entry that failed, each as that request alone would be recorded.
    const events: AccessEvent[] = [event, ...record.failedEntries.map((entry) => ({ ...entry, at: event.at, principal: event.principal, clientAddress: event.clientAddress }))];
    try {
      // All at once: the audit trail stores the events of one moment in one commit, in this order.
      for (const recorder of recording.recorders) await Promise.all(events.map((recorded) => recorder.record(recorded)));
      return payload;
    } catch (error) {
      // An access that cannot be recorded does not happen, as far as the client is told.
      request.log.error({ err: error }, 'the access could not be recorded; answering 500');
      for (const name of ['etag', 'location', 'last-modified', 'content-location']) reply.removeHeader(name);
      reply.code(500).type('application/fhir+json; charset=utf-8');
      return JSON.stringify(operationOutcome([issue('error', 'exception', 'The access could not be recorded in the audit trail, so it was not completed; please retry')]));
    }
  });
}
