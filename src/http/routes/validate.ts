import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authorize } from '../../access/rights.js';
import { requireKnownType, requireValidId } from '../../fhir/resource-input.js';
import { bothGuards, type WriteGuard } from '../../fhir/resource-service.js';
import { ValidateOperation, type ValidateRequest } from '../../fhir/validate-operation.js';
import { queryValue } from '../request.js';
import { sendJson } from '../respond.js';

/**
 * POST /{type}/$validate and /{type}/{id}/$validate. The URL holds a `$`, so the REST gate
 * leaves it alone: validating is answering "would this write be accepted", so the caller needs
 * the right to make that write (delete for mode=delete), checked here.
 */
export function validateRoutes(app: FastifyInstance, validator: ValidateOperation, guard?: WriteGuard): void {
  const handler = async (request: FastifyRequest<{ Params: { type: string; id?: string } }>, reply: FastifyReply) => {
    const { type, id } = request.params;
    requireKnownType(type);
    if (id !== undefined) requireValidId(id);
    const mode = queryValue(request, 'mode');
    const profile = queryValue(request, 'profile');
    const input: ValidateRequest = {
      resourceType: type,
      body: request.body,
      query: { ...(mode !== undefined && { mode }), ...(profile !== undefined && { profile }) },
      ...(id !== undefined && { id }),
    };
    const interaction = ValidateOperation.modeOf(input) === 'delete' ? 'delete' : 'write';
    authorize(request.principal, interaction, { resourceType: type, ...(id !== undefined && { id }) });
    const writeGuard = bothGuards(guard, request.view.guard);
    const outcome = await validator.validate({
      ...input,
      ...(writeGuard && { guard: writeGuard }),
      ...(request.view.canSee && { canSee: request.view.canSee }),
    });
    return sendJson(request, reply, 200, outcome);
  };
  app.post('/fhir/:type/$validate', handler);
  app.post('/fhir/:type/:id/$validate', handler);
}
