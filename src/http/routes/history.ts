import type { FastifyInstance, FastifyRequest } from 'fastify';
import { historyBundle } from '../../fhir/bundle.js';
import type { HistoryService } from '../../fhir/history.js';
import { FhirError } from '../../fhir/outcome.js';
import type { JsonResource } from '../../fhir/resource-input.js';
import type { ResourceService } from '../../fhir/resource-service.js';
import { noteTouched } from '../access.js';
import { baseUrl, queryValue } from '../request.js';
import { sendJson } from '../respond.js';

/** _history at instance, type and system level. */

const HISTORY_PARAMS = ['_count', '_since', '_page'] as const;

function historyParams(request: FastifyRequest): Record<string, string | undefined> {
  return Object.fromEntries(HISTORY_PARAMS.map((name) => [name, queryValue(request, name)]));
}

/**
 * History lists versions, not current records, so it cannot be narrowed inside the query the
 * way search is: a caller whose view is checked record by record gets instance history of the
 * records it may see. An HCProf account gets no history across records (search with
 * _lastUpdated does that job); a backend client, whose view leaves out only the patients who
 * take no part, gets it with their versions left out, each judged by its own content.
 */
async function checkHistoryAllowed(request: FastifyRequest, resources: ResourceService, resourceType?: string, id?: string): Promise<void> {
  const canSee = request.view.canSee;
  if (!canSee) return;
  if (resourceType === undefined || id === undefined) {
    if (request.principal.kind === 'system') return;
    throw FhirError.of(403, 'forbidden', 'History across records is not available to HCProf accounts; search with _lastUpdated instead');
  }
  try {
    await resources.read(resourceType, id, canSee);
  } catch (error) {
    // A deleted record the caller could see still has a history.
    if (!(error instanceof FhirError && error.status === 410)) throw error;
  }
}

export function historyRoutes(app: FastifyInstance, history: HistoryService, resources: ResourceService): void {
  const answer = async (request: FastifyRequest, path: string, resourceType?: string, id?: string) => {
    await checkHistoryAllowed(request, resources, resourceType, id);
    const page = await history.list({
      params: historyParams(request),
      ...(request.view.canSee && { canSee: request.view.canSee }),
      ...(request.view.hiddenTypes && { hiddenTypes: request.view.hiddenTypes }),
      ...(resourceType !== undefined && { resourceType }),
      ...(id !== undefined && { id }),
    });
    const base = baseUrl(request);
    noteTouched(request, page.entries.filter((e) => e.json !== undefined).map((e) => JSON.parse(e.json!) as JsonResource), base);
    return historyBundle(page, base, (params) => `${base}${path}?${new URLSearchParams(params).toString()}`);
  };

  app.get('/fhir/_history', async (request, reply) => sendJson(request, reply, 200, await answer(request, '/_history')));

  app.get<{ Params: { type: string } }>('/fhir/:type/_history', async (request, reply) => {
    const { type } = request.params;
    return sendJson(request, reply, 200, await answer(request, `/${type}/_history`, type));
  });

  app.get<{ Params: { type: string; id: string } }>('/fhir/:type/:id/_history', async (request, reply) => {
    const { type, id } = request.params;
    return sendJson(request, reply, 200, await answer(request, `/${type}/${id}/_history`, type, id));
  });
}
