import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { BundleEntryRequest } from '../../fhir/bundle-processing/entries.js';
import type { BundleCaller, BundleProcessor } from '../../fhir/bundle-processing/processor.js';
import { bothGuards, type WriteGuard } from '../../fhir/resource-service.js';
import { gateRestRequest } from '../authentication.js';
import { noteFailedEntry, noteMalformedEntry, noteTouched } from '../access.js';
import { baseUrl, header } from '../request.js';
import { sendJson } from '../respond.js';

/**
 * batch and transaction Bundles at POST /fhir. Every entry runs under the caller's principal:
 * the REST gate, the access view and the write guards of the single-resource routes.
 */

/** Bundles answer each write minimally unless the client asks for more (10,000 representations add up). */
function preferredReturn(request: FastifyRequest): BundleCaller['prefer'] {
  const m = /return=(minimal|representation|OperationOutcome)/i.exec(header(request, 'prefer') ?? '');
  const value = m?.[1]?.toLowerCase();
  return value === 'representation' ? 'representation' : value === 'operationoutcome' ? 'OperationOutcome' : 'minimal';
}

/** An entry as the REST gate sees a request to the same URL. */
function gateEntry(request: FastifyRequest, entry: BundleEntryRequest): void {
  gateRestRequest(request.principal, {
    method: entry.method,
    ...(entry.type !== undefined && { type: entry.type }),
    ...(entry.id !== undefined && { id: entry.id }),
    ...(entry.compartmentType !== undefined && { compartmentType: entry.compartmentType }),
    ...((entry.history || entry.vid !== undefined) && { history: entry.vid !== undefined ? 'version' : 'list' }),
    params: [...new URLSearchParams(entry.query)],
    ...(entry.ifNoneExist !== undefined && { ifNoneExist: entry.ifNoneExist }),
  });
}

export function bundleRoutes(app: FastifyInstance, processor: BundleProcessor, options: { guard?: WriteGuard; bodyLimit: number }): void {
  app.post('/fhir', { bodyLimit: options.bodyLimit }, async (request, reply) => {
    const base = baseUrl(request);
    const { view } = request;
    const guard = bothGuards(options.guard, view.guard);
    const bundle = await processor.process(request.body, {
      baseUrl: base,
      visibility: view.visibility,
      ...(view.canSee && { canSee: view.canSee }),
      ...(view.hiddenTypes && { hiddenTypes: view.hiddenTypes }),
      ...(guard && { guard }),
      authorize: (entry) => gateEntry(request, entry),
      touched: (resources) => noteTouched(request, resources, base),
      failed: (entry, error, kind) => noteFailedEntry(request, entry, error, kind, base),
      malformed: (raw, index, error, kind) => noteMalformedEntry(request, raw, index, error, kind, base),
      prefer: preferredReturn(request),
    });
    return sendJson(request, reply, 200, bundle);
  });
}
