import type { FastifyReply, FastifyRequest } from 'fastify';
import type { OperationOutcome, Resource } from 'fhir/r4.js';
import { issue, operationOutcome } from '../fhir/outcome.js';
import type { VersionedResource } from '../fhir/resource-service.js';
import { applySubsetting, isSubsetting, parseSubsetting } from '../fhir/subsetting.js';
import { clientCopyIsCurrent, etag } from '../fhir/versioning.js';
import { baseUrl, header, queryValue } from './request.js';

/** Writing FHIR answers: media type, _pretty, version headers, and Prefer: return. */

function wantsPretty(request: FastifyRequest): boolean {
  return queryValue(request, '_pretty') === 'true';
}

export function sendJson(request: FastifyRequest, reply: FastifyReply, status: number, body: unknown): FastifyReply {
  const text = wantsPretty(request) ? JSON.stringify(body, null, 2) : JSON.stringify(body);
  return reply.code(status).type(`${request.fhirMediaType}; charset=utf-8`).send(text);
}

export function sendOutcome(request: FastifyRequest, reply: FastifyReply, status: number, outcome: OperationOutcome): FastifyReply {
  return sendJson(request, reply, status, outcome);
}

function versionHeaders(reply: FastifyReply, { stored }: VersionedResource): void {
  reply.header('ETag', etag(stored.versionId));
  reply.header('Last-Modified', new Date(stored.lastUpdated).toUTCString());
}

/** A read: 304 when the client's copy is current; else the stored JSON as it is, unless the client asked to reshape it. */
export function sendRead(request: FastifyRequest, reply: FastifyReply, result: VersionedResource): FastifyReply {
  versionHeaders(reply, result);
  if (clientCopyIsCurrent(header(request, 'if-none-match'), header(request, 'if-modified-since'), result.stored)) return reply.code(304).send();
  const subsetting = parseSubsetting(request.query as Record<string, unknown>);
  if (!isSubsetting(subsetting) && !wantsPretty(request)) {
    return reply.code(200).type(`${request.fhirMediaType}; charset=utf-8`).send(result.json);
  }
  const resource = applySubsetting(JSON.parse(result.json!) as Resource, subsetting);
  return sendJson(request, reply, 200, resource);
}

type PreferredReturn = 'minimal' | 'representation' | 'OperationOutcome';

function preferredReturn(request: FastifyRequest): PreferredReturn {
  const prefer = request.headers.prefer;
  const m = typeof prefer === 'string' ? /return=(minimal|representation|OperationOutcome)/i.exec(prefer) : null;
  const value = m?.[1]?.toLowerCase();
  if (value === 'minimal') return 'minimal';
  if (value === 'operationoutcome') return 'OperationOutcome';
  return 'representation';
}

/** A create, update or patch: version headers, Location, and the body Prefer asks for. */
export function sendWrite(
  request: FastifyRequest,
  reply: FastifyReply,
  result: VersionedResource,
  status: number,
  message: string,
): FastifyReply {
  const { stored } = result;
  versionHeaders(reply, result);
  reply.header('Location', `${baseUrl(request)}/${stored.resourceType}/${stored.id}/_history/${stored.versionId}`);
  switch (preferredReturn(request)) {
    case 'minimal':
      return reply.code(status).send();
    case 'OperationOutcome':
      return sendOutcome(request, reply, status, operationOutcome([issue('information', 'informational', message)]));
    case 'representation':
      if (wantsPretty(request)) return sendJson(request, reply, status, JSON.parse(result.json!));
      return reply.code(status).type(`${request.fhirMediaType}; charset=utf-8`).send(result.json);
  }
}

/** A delete: 204 by default, or an OperationOutcome when the client prefers one. */
export function sendDeleted(request: FastifyRequest, reply: FastifyReply, versionId: number | undefined, message: string): FastifyReply {
  if (versionId !== undefined) reply.header('ETag', etag(versionId));
  if (preferredReturn(request) === 'OperationOutcome') {
    return sendOutcome(request, reply, 200, operationOutcome([issue('information', 'informational', message)]));
  }
  return reply.code(204).send();
}
