import type { FastifyInstance, FastifyRequest } from 'fastify';
import { historyBundle } from '../../fhir/bundle.js';
import type { HistoryService } from '../../fhir/history.js';
import { baseUrl, queryValue } from '../request.js';
import { sendJson } from '../respond.js';

/** _history at instance, type and system level. */

const HISTORY_PARAMS = ['_count', '_since', '_page'] as const;

function historyParams(request: FastifyRequest): Record<string, string | undefined> {
  return Object.fromEntries(HISTORY_PARAMS.map((name) => [name, queryValue(request, name)]));
}

export function historyRoutes(app: FastifyInstance, history: HistoryService): void {
  const answer = async (request: FastifyRequest, path: string, resourceType?: string, id?: string) => {
    const page = await history.list({
      params: historyParams(request),
      ...(resourceType !== undefined && { resourceType }),
      ...(id !== undefined && { id }),
    });
    const base = baseUrl(request);
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
