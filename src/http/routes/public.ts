import type { FastifyInstance } from 'fastify';
import type { OperationDefinition } from 'fhir/r4.js';
import { badRequest } from '../../fhir/outcome.js';
import type { ProviderRegistry } from '../../participation/providers.js';
import { baseUrl, queryValue } from '../request.js';
import { sendJson } from '../respond.js';

/** What anyone may read without a token: the public HCP register and the operation definitions. */

const MAX_REGISTER_PAGE = 100;

export function publicRoutes(app: FastifyInstance, providers: ProviderRegistry, definitions: OperationDefinition[]): void {
  app.get('/fhir/$hcp-register', async (request, reply) => {
    const countText = queryValue(request, '_count') ?? '20';
    const count = Number(countText);
    if (!/^\d{1,4}$/.test(countText) || count < 1) throw badRequest('_count must be a positive integer', ['_count']);
    const name = queryValue(request, 'name');
    const address = queryValue(request, 'address');
    const bundle = await providers.publicRegister({ ...(name && { name }), ...(address && { address }), count: Math.min(count, MAX_REGISTER_PAGE) }, baseUrl(request));
    return sendJson(request, reply, 200, bundle);
  });

  for (const definition of definitions) {
    app.get(`/fhir/OperationDefinition/${definition.id!}`, async (request, reply) => sendJson(request, reply, 200, definition));
  }
}
