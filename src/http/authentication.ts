import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorize, refuseCrossTypeSearch, type Interaction } from '../access/rights.js';
import type { AccountPrincipal, Principal } from '../auth/principal.js';
import { InvalidToken } from '../auth/tokens.js';
import { allResourceTypes } from '../fhir/definitions.js';
import { FhirError } from '../fhir/outcome.js';
import { rawQuery } from './request.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is asking; set for every route in the authenticated scope. */
    principal: Principal;
  }
}

/** Turns a bearer token into the principal making the request; throws InvalidToken. */
export type Authenticate = (token: string) => Promise<Principal>;

const unauthorized = (diagnostics: string) => FhirError.of(401, 'login', diagnostics);

/** Adds bearer-token authentication and the REST gate to every route of this scope. */
export function requireAuthentication(scope: FastifyInstance, authenticate: Authenticate): void {
  scope.decorateRequest('principal', null as unknown as AccountPrincipal);
  scope.addHook('onRequest', async (request, reply) => {
    const header = request.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    try {
      if (!m) throw unauthorized('This request needs a bearer token (Authorization: Bearer …)');
      try {
        request.principal = await authenticate(m[1]!);
      } catch (error) {
        if (error instanceof InvalidToken) throw unauthorized(error.message);
        throw error;
      }
    } catch (error) {
      reply.header('WWW-Authenticate', `Bearer realm="fhir", error="invalid_token"`);
      throw error;
    }
  });
  scope.addHook('preHandler', async (request) => gate(request));
}

type Params = { type?: string; id?: string; compartmentType?: string };

/** The REST interaction a route stands for, checked against the principal's rights. */
function gate(request: FastifyRequest): void {
  const route = request.routeOptions.url ?? '';
  // Operations check their own rules against the principal.
  if (route.includes('$')) return;
  const { type, id, compartmentType } = request.params as Params;
  const principal = request.principal;
  const method = request.method;

  if (route.endsWith('/_history') || route.includes('/_history/')) {
    const interaction: Interaction = route.includes('/_history/') ? 'read' : 'history';
    for (const t of type ? [type] : allResourceTypes()) authorize(principal, interaction, { resourceType: t, ...(id !== undefined && { id }) });
    return;
  }
  if (method === 'GET' || route.endsWith('_search')) {
    const params = [...new URLSearchParams(rawQuery(request)), ...(request.body instanceof URLSearchParams ? [...request.body] : [])];
    if (compartmentType) {
      authorize(principal, 'read', { resourceType: type!, id: id! });
      authorize(principal, 'search', { resourceType: compartmentType });
      refuseCrossTypeSearch(principal, params);
    } else if (id !== undefined) {
      authorize(principal, 'read', { resourceType: type!, id });
      return;
    } else {
      const listed = params.filter(([n]) => n === '_type').flatMap(([, v]) => v.split(','));
      for (const t of type ? [type] : listed.length ? listed : allResourceTypes()) authorize(principal, 'search', { resourceType: t });
      refuseCrossTypeSearch(principal, params);
    }
    return;
  }
  if (type === undefined) return;
  authorize(principal, method === 'DELETE' ? 'delete' : 'write', { resourceType: type, ...(id !== undefined && { id }) });
  // Conditional writes search too: whether they match must not reveal other types' records.
  const ifNoneExist = request.headers['if-none-exist'];
  const criteria = [...new URLSearchParams(rawQuery(request)), ...(typeof ifNoneExist === 'string' ? new URLSearchParams(ifNoneExist) : [])];
  refuseCrossTypeSearch(principal, criteria);
}
