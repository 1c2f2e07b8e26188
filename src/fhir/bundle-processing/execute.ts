import type { Bundle } from 'fhir/r4.js';
import type { StoredVersion } from '../../store/port.js';
import { historyBundle } from '../bundle.js';
import { allResourceTypes, isResourceType } from '../definitions.js';
import type { HistoryService } from '../history.js';
import { requireAcceptableDepth } from '../json-depth.js';
import { badRequest, FhirError, notFound, preconditionFailed } from '../outcome.js';
import { requireKnownType, type JsonResource } from '../resource-input.js';
import type { Conditional, ReadCheck, ResourceService, WriteGuard } from '../resource-service.js';
import type { SearchService } from '../search/search-service.js';
import type { Visibility } from '../search/visibility.js';
import { parseIfMatch } from '../versioning.js';
import type { BundleEntryRequest } from './entries.js';

/** Runs one entry's interaction through the same services the single-resource routes use. */

export interface EntryServices {
  /** The real service for a batch; the transaction's staged one for a transaction. */
  resources: ResourceService;
  searches: SearchService;
  history: HistoryService;
}

/** Who is asking, as the access layer sees them (the same view the single-resource routes use). */
export interface CallerView {
  baseUrl: string;
  visibility: Visibility;
  canSee?: ReadCheck;
  /** The server's write guards and the caller's, combined. */
  guard?: WriteGuard;
  /** Types the caller may not read at all: left out of a system history. */
  hiddenTypes?: readonly string[];
}

export interface EntryResult {
  status: number;
  /** The version read or written (a tombstone for a delete). */
  stored?: StoredVersion;
  /** The resource read or written, as JSON text. */
  json?: string;
  /** A search or history answer. */
  bundle?: Bundle;
  /**
   * `Type/id` of the resource a write entry was aimed at, as resolved: also for a delete that
   * found it deleted already or absent, so a transaction can tell when two entries overlap.
   */
  target?: string;
}

/** A write's result with its target: the resource written, or matched by a conditional create. */
const aimedAt = <T extends { stored?: StoredVersion }>(result: T): T & { target?: string } =>
  result.stored ? { ...result, target: `${result.stored.resourceType}/${result.stored.id}` } : result;

const HISTORY_PARAMS = ['_count', '_since', '_page'];

function conditionalOf(query: string, caller: CallerView): Conditional {
  return { query, baseUrl: caller.baseUrl, visibility: caller.visibility };
}

/** A FHIR R4 patch inside a bundle travels as a Binary holding the JSON Patch document. */
function jsonPatchOf(resource: JsonResource | undefined): unknown {
  const binary = resource as { resourceType?: string; contentType?: string; data?: string } | undefined;
  if (binary?.resourceType !== 'Binary' || !/json-patch\+json/.test(binary.contentType ?? '') || typeof binary.data !== 'string') {
    throw badRequest('A PATCH entry carries a Binary with contentType application/json-patch+json and the patch in data (base64)', ['resource']);
  }
  let patch: unknown;
  try {
    patch = JSON.parse(Buffer.from(binary.data, 'base64').toString('utf8')) as unknown;
  } catch {
    throw badRequest('The PATCH entry\'s Binary.data is not base64-encoded JSON', ['resource.data']);
  }
  // JSON that entered inside the body's base64, past the body parser's depth check.
  requireAcceptableDepth(patch, 'The PATCH entry\'s Binary.data');
  return patch;
}

/** The one resource conditional criteria find among those the caller may see. */
async function matchOf(services: EntryServices, caller: CallerView, type: string, query: string): Promise<StoredVersion | undefined> {
  const where = await services.searches.criteriaFor(type, query, caller.baseUrl, caller.visibility);
  if (where.length === 0) throw badRequest('A conditional operation needs at least one search criterion');
  const matches = await services.searches.find(type, where, 2);
  if (matches.length > 1) throw preconditionFailed('The conditional criteria match more than one resource');
  return matches[0];
}

async function read(entry: BundleEntryRequest, services: EntryServices, caller: CallerView): Promise<EntryResult> {
  const { type, id, vid, compartmentType, query } = entry;
  const params = [...new URLSearchParams(query)];
  if (entry.history) {
    if (caller.canSee) {
      // As on the history routes: accounts see instance history of records they may see, nothing across records.
      if (type === undefined || id === undefined) throw FhirError.of(403, 'forbidden', 'History across records is not available to HCProf accounts');
      await services.resources.read(type, id, caller.canSee).catch((error: unknown) => {
        if (!(error instanceof FhirError && error.status === 410)) throw error;
      });
    }
    if (type !== undefined) requireKnownType(type);
    const page = await services.history.list({
      ...(caller.canSee && { canSee: caller.canSee }),
      ...(caller.hiddenTypes && { hiddenTypes: caller.hiddenTypes }),
      params: Object.fromEntries(HISTORY_PARAMS.map((name) => [name, new URLSearchParams(query).get(name) ?? undefined])),
      ...(type !== undefined && { resourceType: type }),
      ...(id !== undefined && { id }),
    });
    const path = `${type ? `/${type}` : ''}${id ? `/${id}` : ''}/_history`;
    return { status: 200, bundle: historyBundle(page, caller.baseUrl, (p) => `${caller.baseUrl}${path}?${new URLSearchParams(p).toString()}`) };
  }
  if (id !== undefined && compartmentType === undefined) {
    const result = vid !== undefined ? await services.resources.vread(type!, id, vid, caller.canSee) : await services.resources.read(type!, id, caller.canSee);
    return { status: 200, ...result };
  }
  const typeList = params.filter(([n]) => n === '_type').flatMap(([, v]) => v.split(','));
  for (const t of typeList) if (!isResourceType(t)) throw badRequest(`_type names an unknown resource type '${t.slice(0, 64)}'`, ['_type']);
  const bundle = await services.searches.search({
    resourceTypes: compartmentType ? [compartmentType] : type ? [type] : typeList.length ? [...new Set(typeList)] : [...allResourceTypes()],
    params,
    ...(compartmentType !== undefined && { compartment: { type: type!, id: id! } }),
    baseUrl: caller.baseUrl,
    path: compartmentType ? `/${type}/${id}/${compartmentType}` : type ? `/${type}` : '',
    strict: false,
    visibility: caller.visibility,
  });
  return { status: 200, bundle };
}

/** A create: under the id a transaction assigned beforehand, else one the server picks. */
async function create(entry: BundleEntryRequest, services: EntryServices, caller: CallerView, assignedId: string | undefined): Promise<EntryResult> {
  const { resources } = services;
  const { type, resource } = entry;
  if (assignedId === undefined) {
    const conditional = entry.ifNoneExist === undefined ? undefined : conditionalOf(entry.ifNoneExist, caller);
    return resources.create(type!, resource, caller.baseUrl, conditional, caller.guard);
  }
  if (entry.ifNoneExist !== undefined && (await matchOf(services, caller, type!, entry.ifNoneExist))) {
    return resources.create(type!, resource, caller.baseUrl, conditionalOf(entry.ifNoneExist, caller), caller.guard);
  }
  requireKnownType(type!);
  if (resource?.resourceType !== type) return resources.create(type!, resource, caller.baseUrl, undefined, caller.guard);
  return resources.createWithId(type!, assignedId, { ...resource, id: assignedId }, caller.baseUrl, caller.guard);
}

/**
 * Runs one entry. `assignedId` is the id a transaction gave a create (so placeholders could be
 * resolved before it ran); without one the server picks it.
 */
export async function executeEntry(entry: BundleEntryRequest, services: EntryServices, caller: CallerView, assignedId?: string): Promise<EntryResult> {
  const { resources } = services;
  const { type, id, query, resource } = entry;
  const ifMatch = parseIfMatch(entry.ifMatch);
  switch (entry.method) {
    case 'GET':
    case 'HEAD':
      return read(entry, services, caller);
    case 'POST':
      return aimedAt(await create(entry, services, caller, assignedId));
    case 'PUT':
      if (id !== undefined) return aimedAt(await resources.update(type!, id, resource, caller.baseUrl, ifMatch, caller.guard));
      return aimedAt(await resources.conditionalUpdate(type!, conditionalOf(query, caller), resource, ifMatch, caller.guard));
    case 'PATCH': {
      const patch = jsonPatchOf(resource);
      requireKnownType(type!);
      const target = id ?? (await matchOf(services, caller, type!, query))?.id;
      if (target === undefined) throw notFound('No resource matches the conditional patch criteria');
      return aimedAt({ ...(await resources.patch(type!, target, patch, caller.baseUrl, ifMatch, caller.guard, caller.canSee)), status: 200 });
    }
    case 'DELETE': {
      const result = id !== undefined ? await resources.delete(type!, id, ifMatch, caller.guard) : await resources.conditionalDelete(type!, conditionalOf(query, caller), caller.guard);
      const targetId = id ?? result.matched;
      return { status: 204, ...(result.stored && { stored: result.stored }), ...(targetId !== undefined && { target: `${type}/${targetId}` }) };
    }
  }
}
