import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';

/**
 * Browser apps (SMART on FHIR apps, a patient portal) of the configured origins may call the
 * API: preflights are answered before authentication (a browser sends them without the token),
 * and answers carry the headers a FHIR client reads. Tokens travel as bearer headers, never
 * cookies, so no credentials mode. `@fastify/cors` does the protocol (Vary, preflight caching,
 * origin matching), which is easy to get subtly wrong by hand.
 */

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
/** What FHIR clients send: content negotiation, conditional requests, Prefer. */
const REQUEST_HEADERS = ['Authorization', 'Content-Type', 'Accept', 'Prefer', 'If-Match', 'If-None-Match', 'If-None-Exist', 'If-Modified-Since'];
/** What they read back: versions, where a write or an async job went, Bulk Data progress. */
const EXPOSED_HEADERS = ['ETag', 'Last-Modified', 'Location', 'Content-Location', 'X-Progress', 'Retry-After'];
const PREFLIGHT_CACHE_SECONDS = 600;

export async function allowBrowserOrigins(app: FastifyInstance, origins: string[]): Promise<void> {
  await app.register(cors, {
    origin: origins.includes('*') ? '*' : origins,
    methods: METHODS,
    allowedHeaders: REQUEST_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: PREFLIGHT_CACHE_SECONDS,
    credentials: false,
    // A plain OPTIONS (no Origin) is answered 204 too, not with a text/plain 400.
    strictPreflight: false,
  });
}
