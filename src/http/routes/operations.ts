import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireValidId } from '../../fhir/resource-input.js';
import type { OperationSpec } from '../../participation/operations.js';
import { Inputs } from '../../participation/parameters.js';
import { AuditedRefusal, type OperationAudit } from '../../participation/patients.js';
import type { Participation } from '../../participation/service.js';
import { baseUrl } from '../request.js';
import { sendJson } from '../respond.js';

/** The participation operations, one route each, in the authenticated scope. */

export function operationPath(spec: OperationSpec): string {
  if (spec.level === 'system') return `/fhir/$${spec.code}`;
  return spec.level === 'type' ? `/fhir/${spec.resource}/$${spec.code}` : `/fhir/${spec.resource}/:id/$${spec.code}`;
}

/** Hands what the operation reported to the access layer, which writes the AuditEvent. */
function noteAudit(request: FastifyRequest, audit: OperationAudit | undefined): void {
  const record = request.touchedRecords;
  if (!audit || !record) return;
  for (const patient of audit.patients ?? []) record.patients.add(patient);
  if (audit.identityDocument) record.identityDocument = audit.identityDocument;
}

export function operationRoutes(app: FastifyInstance, specs: OperationSpec[], participation: Participation): void {
  for (const spec of specs) {
    const invoke = participation.handlers[spec.id];
    if (!invoke) throw new Error(`no handler for operation ${spec.id}`);
    app.route<{ Params: { id?: string } }>({
      method: spec.method,
      url: operationPath(spec),
      handler: async (request, reply) => {
        const id = request.params.id;
        if (id !== undefined) requireValidId(id);
        const base = baseUrl(request);
        let result;
        try {
          result = await invoke(request.principal, id, new Inputs(request.body), base);
        } catch (error) {
          if (error instanceof AuditedRefusal) noteAudit(request, error.audit);
          throw error;
        }
        noteAudit(request, result.audit);
        if (result.location) reply.header('Location', `${base}/${result.location}`);
        return sendJson(request, reply, result.status, result.body);
      },
    });
  }
}
