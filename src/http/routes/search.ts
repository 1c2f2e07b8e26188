import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { allResourceTypes, isResourceType } from '../../fhir/definitions.js';
import { badRequest, FhirError, notFound } from '../../fhir/outcome.js';
import { requireValidId } from '../../fhir/resource-input.js';
import type { SearchService } from '../../fhir/search/search-service.js';
import { baseUrl, header, rawQuery } from '../request.js';
import { sendJson } from '../respond.js';
import { noteTouched } from '../access.js';
import type { Bundle } from 'fhir/r4.js';
import type { JsonResource } from '../../fhir/resource-input.js';

/** Search: type, system and compartment; GET with a query, or POST _search with a form. */

function queryParams(request: FastifyRequest): [string, string][] {
  const fromUrl = [...new URLSearchParams(rawQuery(request))];
  const body: unknown = request.body;
  // A JSON body parses too (the server's own parser), but criteria there would go unseen and
  // the search would answer unfiltered.
  if (body !== undefined && body !== null && !(body instanceof URLSearchParams)) {
    throw FhirError.of(415, 'not-supported', 'POST _search takes its parameters as a form (application/x-www-form-urlencoded) or in the URL');
  }
  const form = body instanceof URLSearchParams ? [...body] : [];
  return [...fromUrl, ...form];
}

/** Notes whose records a page holds, and answers it. */
function answer(request: FastifyRequest, reply: FastifyReply, bundle: Bundle) {
  const resources = (bundle.entry ?? []).filter((e) => e.search?.mode !== 'outcome' && e.resource).map((e) => e.resource as unknown as JsonResource);
  noteTouched(request, resources, baseUrl(request));
  return sendJson(request, reply, 200, bundle);
}

function strict(request: FastifyRequest): boolean {
  return /handling\s*=\s*strict/i.test(header(request, 'prefer') ?? '');
}

export async function searchRoutes(app: FastifyInstance, searches: SearchService): Promise<void> {
  const typeSearch = async (request: FastifyRequest<{ Params: { type: string } }>, reply: FastifyReply) => {
    const { type } = request.params;
    const bundle = await searches.search({ resourceTypes: [type], params: queryParams(request), baseUrl: baseUrl(request), path: `/${type}`, strict: strict(request), visibility: request.view.visibility });
    return answer(request, reply, bundle);
  };

  const systemSearch = async (request: FastifyRequest, reply: FastifyReply) => {
    const params = queryParams(request);
    const typeList = params.filter(([n]) => n === '_type').flatMap(([, v]) => v.split(','));
    for (const t of typeList) if (!isResourceType(t)) throw badRequest(`_type names an unknown resource type '${t}'`, ['_type']);
    const resourceTypes = typeList.length ? [...new Set(typeList)] : [...allResourceTypes()];
    const bundle = await searches.search({ resourceTypes, params, baseUrl: baseUrl(request), path: '', strict: strict(request), visibility: request.view.visibility });
    return answer(request, reply, bundle);
  };

  app.get('/fhir/:type', typeSearch);
  app.get('/fhir', systemSearch);
  app.get<{ Params: { type: string; id: string; compartmentType: string } }>('/fhir/:type/:id/:compartmentType', async (request, reply) => {
    const { type, id, compartmentType } = request.params;
    if (!isResourceType(type) || !isResourceType(compartmentType)) throw notFound(`No FHIR endpoint at ${request.url.split('?')[0]}`);
    requireValidId(id);
    const bundle = await searches.search({
      resourceTypes: [compartmentType],
      params: queryParams(request),
      compartment: { type, id },
      baseUrl: baseUrl(request),
      path: `/${type}/${id}/${compartmentType}`,
      strict: strict(request),
      visibility: request.view.visibility,
    });
    return answer(request, reply, bundle);
  });

  // Form-encoded bodies exist only for _search, so the parser lives only in this scope.
  await app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
      done(null, new URLSearchParams(body as string));
    });
    scope.post('/fhir/:type/_search', typeSearch);
    scope.post('/fhir/_search', systemSearch);
  });
}
