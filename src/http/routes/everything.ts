import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Parameters } from 'fhir/r4.js';
import { authorize, forbidden, limitedTo } from '../../access/rights.js';
import type { Principal } from '../../auth/principal.js';
import { patientCompartmentTypes, type EverythingService } from '../../fhir/everything.js';
import { badRequest, FhirError } from '../../fhir/outcome.js';
import { requireValidId, type JsonResource } from '../../fhir/resource-input.js';
import { noteTouched } from '../access.js';
import { baseUrl, header, rawQuery } from '../request.js';
import { sendJson } from '../respond.js';

/**
 * Patient/{id}/$everything, GET or POST with a Parameters body. Its URL holds a `$`, so the
 * REST gate leaves it alone: the principal is checked here, as a search of every compartment
 * type would be.
 */

/**
 * Who may ask, and the compartment types they may search: principals limited to some types may
 * not ask, since the answer spans the patient's whole record; the others get the types their
 * rights cover (an account, say, not the audit trail, which is the auditors').
 */
function searchableTypes(principal: Principal, patientId: string): string[] {
  const limited = limitedTo(principal);
  if (limited) throw forbidden(`$everything is not available to ${limited}: it returns every resource type of the patient's record`);
  authorize(principal, 'read', { resourceType: 'Patient', id: patientId });
  let refusal: unknown;
  const types = patientCompartmentTypes().filter((resourceType) => {
    try {
      authorize(principal, 'search', { resourceType });
      return true;
    } catch (error) {
      if (!(error instanceof FhirError) || error.status !== 403) throw error;
      refusal ??= error;
      return false;
    }
  });
  if (types.length === 0 || !types.includes('Patient')) throw refusal;
  return types;
}

/** Primitive parameters of a Parameters body as name/value pairs. */
function bodyParams(body: unknown): [string, string][] {
  if (body === undefined || body === null || body === '') return [];
  const parameters = body as Parameters;
  if (typeof body !== 'object' || parameters.resourceType !== 'Parameters') throw badRequest('$everything expects a Parameters resource as its body');
  if (parameters.parameter !== undefined && !Array.isArray(parameters.parameter)) throw badRequest('Parameters.parameter must be an array', ['Parameters.parameter']);
  return (parameters.parameter ?? []).map((p): [string, string] => {
    const value = p.valueInstant ?? p.valueDateTime ?? p.valueDate ?? p.valueString ?? p.valueCode ?? p.valueUnsignedInt ?? p.valueInteger ?? p.valuePositiveInt;
    if (typeof p.name !== 'string' || value === undefined) throw badRequest(`Parameter '${String(p.name)}' needs a primitive value`, [`Parameters.parameter('${String(p.name)}')`]);
    return [p.name, String(value)];
  });
}

export function everythingRoutes(app: FastifyInstance, everything: EverythingService): void {
  const handler = async (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const { id } = request.params;
    requireValidId(id);
    const allowedTypes = searchableTypes(request.principal, id);
    const params = [...new URLSearchParams(rawQuery(request)), ...(request.method === 'POST' ? bodyParams(request.body) : [])];
    const bundle = await everything.everything({
      patientId: id,
      allowedTypes,
      params,
      baseUrl: baseUrl(request),
      strict: /handling\s*=\s*strict/i.test(header(request, 'prefer') ?? ''),
      visibility: request.view.visibility,
      ...(request.view.canSee && { canSee: request.view.canSee }),
    });
    const returned = (bundle.entry ?? []).filter((e) => e.search?.mode !== 'outcome').map((e) => e.resource as unknown as JsonResource);
    noteTouched(request, returned, baseUrl(request));
    return sendJson(request, reply, 200, bundle);
  };
  app.get('/fhir/Patient/:id/$everything', handler);
  app.post('/fhir/Patient/:id/$everything', handler);
}
