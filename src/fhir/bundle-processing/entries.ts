import { isResourceType } from '../definitions.js';
import { badRequest, FhirError } from '../outcome.js';
import type { JsonResource } from '../resource-input.js';

/** Turning a batch or transaction Bundle into entries the processor can run, refusing malformed ones. */

export type EntryMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

export type BundleKind = 'batch' | 'transaction';

/** One entry's request, with its URL taken apart. */
export interface BundleEntryRequest {
  /** Position in Bundle.entry, for messages (`Bundle.entry[56]`). */
  index: number;
  method: EntryMethod;
  /** The URL as given, for messages. */
  url: string;
  type?: string;
  id?: string;
  vid?: string;
  compartmentType?: string;
  /** A _history listing (instance, type or system). */
  history?: boolean;
  /** The raw query string, without '?'. */
  query: string;
  fullUrl?: string;
  resource?: JsonResource;
  ifNoneExist?: string;
  ifMatch?: string;
  /** A read's conditions: 304 when the client's copy is current (see clientCopyIsCurrent). */
  ifNoneMatch?: string;
  ifModifiedSince?: string;
}

export const where = (index: number) => `Bundle.entry[${index}]`;

const bad = (index: number, message: string, field = '') => badRequest(`${where(index)}: ${message}`, [`${where(index)}${field}`]);

/** The bundle's type, or a 400 when the body is not a batch or transaction Bundle. */
export function bundleKind(body: unknown): BundleKind {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || (body as { resourceType?: unknown }).resourceType !== 'Bundle') {
    throw badRequest('POST to the base URL takes a Bundle of type batch or transaction', ['Bundle']);
  }
  const { type, entry } = body as { type?: unknown; entry?: unknown };
  if (type !== 'batch' && type !== 'transaction') {
    throw badRequest(`Bundle.type must be batch or transaction to be processed here, not ${JSON.stringify(type ?? null)}`, ['Bundle.type']);
  }
  if (entry !== undefined && !Array.isArray(entry)) throw badRequest('Bundle.entry must be a list', ['Bundle.entry']);
  return type;
}

function decodeSegment(index: number, segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw bad(index, `request.url has a malformed percent-encoding in '${segment.slice(0, 64)}'`, '.request.url');
  }
}

/** A URL relative to the base (an absolute one must be on this server's base), taken apart. */
function parseUrl(index: number, method: EntryMethod, raw: string, baseUrl: string): Pick<BundleEntryRequest, 'type' | 'id' | 'vid' | 'compartmentType' | 'history' | 'query'> {
  let url = raw;
  if (/^[a-z][a-z0-9+.-]*:/i.test(url)) {
    if (!url.startsWith(`${baseUrl}/`) && url !== baseUrl) throw bad(index, `request.url '${raw.slice(0, 200)}' is not on this server`, '.request.url');
    url = url.slice(baseUrl.length);
  }
  url = url.replace(/^\/+/, '');
  const at = url.indexOf('?');
  const path = at < 0 ? url : url.slice(0, at);
  const query = at < 0 ? '' : url.slice(at + 1);
  const segments = path === '' ? [] : path.split('/').map((s) => decodeSegment(index, s));
  if (segments.some((s) => s.startsWith('$'))) throw bad(index, 'operations are not available inside a batch or transaction', '.request.url');
  const [type, second, third, fourth, ...rest] = segments;
  if (rest.length > 0 || segments.some((s) => s === '')) throw bad(index, `request.url '${raw.slice(0, 200)}' is not a FHIR RESTful URL`, '.request.url');
  const reading = method === 'GET' || method === 'HEAD';
  if (type === undefined || type === '_history') {
    if (!reading || segments.length > 1) throw bad(index, `${method} needs a resource type in request.url`, '.request.url');
    return { query, ...(type === '_history' && { history: true }) };
  }
  if (!isResourceType(type)) throw bad(index, `request.url names an unknown resource type '${type.slice(0, 64)}'`, '.request.url');
  if (second === undefined || second === '_history') {
    if (second === '_history' && (!reading || third !== undefined)) throw bad(index, `${method} ${raw.slice(0, 200)} is not a FHIR interaction`, '.request.url');
    if (method === 'POST' && query !== '') throw bad(index, 'a create takes no query (put conditions in request.ifNoneExist)', '.request.url');
    if ((method === 'PUT' || method === 'PATCH' || method === 'DELETE') && query === '') throw bad(index, `${method} needs an id or search criteria in request.url`, '.request.url');
    return { type, query, ...(second === '_history' && { history: true }) };
  }
  if (method === 'POST') throw bad(index, 'a create is a POST to the type (e.g. Patient), not to an id', '.request.url');
  if (third === undefined) return { type, id: second, query };
  if (!reading) throw bad(index, `${method} ${raw.slice(0, 200)} is not a FHIR interaction`, '.request.url');
  if (third === '_history') return { type, id: second, query, ...(fourth === undefined ? { history: true } : { vid: fourth }) };
  if (fourth !== undefined || !isResourceType(third)) throw bad(index, `request.url '${raw.slice(0, 200)}' is not a FHIR RESTful URL`, '.request.url');
  return { type, id: second, compartmentType: third, query };
}

/**
 * Reads entry `index` of a bundle. Structural faults (no request, an unknown method, a URL that
 * is no FHIR interaction, a write without its resource) throw a 400 naming the entry.
 */
export function readEntry(raw: unknown, index: number, baseUrl: string): BundleEntryRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(index, 'an entry must be an object');
  const { request, resource, fullUrl } = raw as { request?: unknown; resource?: unknown; fullUrl?: unknown };
  if (typeof request !== 'object' || request === null) throw bad(index, 'every entry of a batch or transaction needs a request (method and url)', '.request');
  const { method, url, ifNoneExist, ifMatch, ifNoneMatch, ifModifiedSince } = request as Record<string, unknown>;
  if (typeof method !== 'string' || !METHODS.has(method)) {
    throw bad(index, `request.method must be one of GET, HEAD, POST, PUT, PATCH, DELETE, not ${JSON.stringify(method ?? null)?.slice(0, 40)}`, '.request.method');
  }
  if (typeof url !== 'string' || url.trim() === '') throw bad(index, 'request.url is missing', '.request.url');
  const entry: BundleEntryRequest = { index, method: method as EntryMethod, url, ...parseUrl(index, method as EntryMethod, url.trim(), baseUrl) };
  if (fullUrl !== undefined) {
    if (typeof fullUrl !== 'string') throw bad(index, 'fullUrl must be a string', '.fullUrl');
    entry.fullUrl = fullUrl;
  }
  const writes = method === 'POST' || method === 'PUT' || method === 'PATCH';
  if (writes) {
    if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) throw bad(index, `${method} needs the entry's resource`, '.resource');
    entry.resource = resource as JsonResource;
  }
  if (ifNoneExist !== undefined) {
    if (typeof ifNoneExist !== 'string' || method !== 'POST') throw bad(index, 'request.ifNoneExist is a search string, and only for POST', '.request.ifNoneExist');
    entry.ifNoneExist = ifNoneExist.replace(/^[^?]*\?/, '');
  }
  if (ifMatch !== undefined) {
    if (typeof ifMatch !== 'string') throw bad(index, 'request.ifMatch must be an ETag such as W/"3"', '.request.ifMatch');
    entry.ifMatch = ifMatch;
  }
  const reads = method === 'GET' || method === 'HEAD';
  if (ifNoneMatch !== undefined) {
    if (typeof ifNoneMatch !== 'string' || !reads) throw bad(index, 'request.ifNoneMatch is an ETag such as W/"3", and only for GET and HEAD', '.request.ifNoneMatch');
    entry.ifNoneMatch = ifNoneMatch;
  }
  if (ifModifiedSince !== undefined) {
    if (typeof ifModifiedSince !== 'string' || !reads || Number.isNaN(Date.parse(ifModifiedSince))) {
      throw bad(index, 'request.ifModifiedSince is an instant such as 2024-03-01T10:00:00Z, and only for GET and HEAD', '.request.ifModifiedSince');
    }
    entry.ifModifiedSince = ifModifiedSince;
  }
  return entry;
}

/**
 * Reads every entry; an entry that cannot be read is kept as its 400, in its place: a batch
 * answers it like any failed entry, a transaction fails with it as a whole.
 */
export function readEntries(list: unknown[], baseUrl: string): (BundleEntryRequest | FhirError)[] {
  return list.map((raw, index) => {
    try {
      return readEntry(raw, index, baseUrl);
    } catch (error) {
      if (error instanceof FhirError) return error;
      throw error;
    }
  });
}
