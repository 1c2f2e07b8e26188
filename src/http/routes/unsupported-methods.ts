import type { FastifyInstance, HTTPMethods } from 'fastify';
import { isResourceType } from '../../fhir/definitions.js';
import { FhirError } from '../../fhir/outcome.js';

/**
 * Answers 405 (with Allow) for methods a FHIR path does not support, rather than a bare 404.
 * The supported methods are learnt from the routes as they are registered, so the two cannot
 * drift. An unknown resource type is still a 404.
 *
 * OPTIONS is one of them: FHIR R4 asks for capabilities with GET [base]/metadata, and without
 * CORS origins configured this server answers no preflight (with them, see http/cors.ts, the
 * CORS hook answers every OPTIONS first), but the 405's Allow still tells a client what the
 * path takes.
 */

const METHODS: HTTPMethods[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const ANSWERED: HTTPMethods[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

export type RouteMethods = Map<string, Set<string>>;

/** Starts recording the routes registered from now on. */
export function trackRoutes(app: FastifyInstance): RouteMethods {
  const routes: RouteMethods = new Map();
  app.addHook('onRoute', (route) => {
    const methods = routes.get(route.url) ?? new Set<string>();
    for (const m of [route.method].flat()) methods.add(m);
    routes.set(route.url, methods);
  });
  return routes;
}

/** Registers the 405 answers for every path recorded so far. */
export function methodNotAllowedRoutes(app: FastifyInstance, routes: RouteMethods): void {
  for (const [url, methods] of routes) {
    const supported = [...methods];
    const unsupported = METHODS.filter((m) => !supported.includes(m));
    if (unsupported.length === 0) continue;
    const allow = supported.filter((m) => ANSWERED.includes(m as HTTPMethods));
    app.route({
      method: unsupported,
      url,
      handler: async (request, reply) => {
        const type = (request.params as { type?: string }).type;
        if (type !== undefined && !isResourceType(type)) throw FhirError.of(404, 'not-found', `Unknown resource type '${type}'`);
        reply.header('Allow', allow.join(', '));
        const hint = allow.length ? `; this endpoint supports ${allow.join(', ')}` : '';
        throw FhirError.of(405, 'not-supported', `${request.method} is not supported here${hint}`);
      },
    });
  }
}
