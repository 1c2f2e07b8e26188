import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorize, refuseCrossTypeSearch, typesAcrossAll, type Interaction } from '../access/rights.js';
import type { AccountPrincipal, Principal } from '../auth/principal.js';
import { InvalidToken } from '../auth/tokens.js';
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

/** A REST interaction as the gate judges it: from a route, or from a batch or transaction entry. */
export interface RestRequestShape {
  method: string;
  type?: string;
  id?: string;
  compartmentType?: string;
  /** 'list' for _history listings, 'version' for a vread. */
  history?: 'list' | 'version';
  /** Search parameters, or a conditional write's criteria. */
  params: [string, string][];
  ifNoneExist?: string;
}

/** The REST interaction a route stands for, checked against the principal's rights. */
function gate(request: FastifyRequest): void {
  const route = request.routeOptions.url ?? '';
  // Operations check their own rules against the principal.
  if (route.includes('$')) return;
  const { type, id, compartmentType } = request.params as Params;
  const ifNoneExist = request.headers['if-none-exist'];
  gateRestRequest(request.principal, {
    method: route.endsWith('_search') ? 'GET' : request.method,
    ...(type !== undefined && { type }),
    ...(id !== undefined && { id }),
    ...(compartmentType !== undefined && { compartmentType }),
    ...((route.endsWith('/_history') || route.includes('/_history/')) && { history: route.includes('/_history/') ? 'version' : 'list' }),
    params: [...new URLSearchParams(rawQuery(request)), ...(request.body instanceof URLSearchParams ? [...request.body] : [])],
    ...(typeof ifNoneExist === 'string' && { ifNoneExist }),
  });
}

/** Throws unless the principal may make this REST interaction (a 403, or a 404 for another's record). */
export function gateRestRequest(principal: Principal, shape: RestRequestShape): void {
  const { method, type, id, compartmentType, params } = shape;
  if (shape.history) {
    const interaction: Interaction = shape.history === 'version' ? 'read' : 'history';
    for (const t of type ? [type] : typesAcrossAll(principal)) authorize(principal, interaction, { resourceType: t, ...(id !== undefined && { id }) });
    return;
  }
  if (method === 'GET' || method === 'HEAD') {
    if (compartmentType) {
      authorize(principal, 'read', { resourceType: type!, id: id! });
      authorize(principal, 'search', { resourceType: compartmentType });
      refuseCrossTypeSearch(principal, params);
    } else if (id !== undefined) {
      authorize(principal, 'read', { resourceType: type!, id });
      return;
    } else {
      const listed = params.filter(([n]) => n === '_type').flatMap(([, v]) => v.split(','));
      for (const t of type ? [type] : listed.length ? listed : typesAcrossAll(principal)) authorize(principal, 'search', { resourceType: t });
      refuseCrossTypeSearch(principal, params);
    }
    return;
  }
  if (type === undefined) return;
  authorize(principal, method === 'DELETE' ? 'delete' : 'write', { resourceType: type, ...(id !== undefined && { id }) });
  // Conditional writes search too: whether they match must not reveal other types' records.
  const criteria = [...params, ...(shape.ifNoneExist !== undefined ? new URLSearchParams(shape.ifNoneExist) : [])];
  refuseCrossTypeSearch(principal, criteria);
}
