import type { FastifyRequest } from 'fastify';
import { badRequest } from '../fhir/outcome.js';
import type { FhirMediaType } from './negotiation.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** BASE_URL when configured; otherwise links are built from the request's own host. */
    fhirBaseUrl: string | undefined;
  }
  interface FastifyRequest {
    /** The media type negotiated for this request's answer. */
    fhirMediaType: FhirMediaType;
  }
}

/** Where the FHIR endpoint is, as the client reached it, unless configured. */
export function baseUrl(request: FastifyRequest): string {
  const configured = request.server.fhirBaseUrl;
  if (configured) return configured;
  return `${request.protocol}://${request.host}/fhir`;
}

/** One query parameter's value; repeating a parameter that takes one value is an error. */
export function queryValue(request: FastifyRequest, name: string): string | undefined {
  const value = (request.query as Record<string, unknown>)[name];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw badRequest(`Parameter '${name}' may appear only once`, [name]);
  return String(value);
}

/** The raw query string (without '?'), for conditional criteria. */
export function rawQuery(request: FastifyRequest): string {
  const at = request.url.indexOf('?');
  return at < 0 ? '' : request.url.slice(at + 1);
}

export function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
