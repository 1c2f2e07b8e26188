import { isResourceType } from '../definitions.js';
import { badRequest, FhirError } from '../outcome.js';
import type { ImportInput } from './job-files.js';
import { NDJSON } from './export-request.js';

/**
 * A Bulk Data import manifest (a Parameters resource: inputFormat, input with type and url)
 * read into the inputs of an import job. The server fetches only URLs under one of the
 * configured prefixes: anything else is refused before anything is fetched.
 */

const FORMATS = new Set([NDJSON, 'application/ndjson', 'ndjson']);

interface Parameter {
  name?: unknown;
  valueCode?: unknown;
  valueString?: unknown;
  valueUri?: unknown;
  valueUrl?: unknown;
  part?: Parameter[];
}

const text = (p: Parameter | undefined) => [p?.valueCode, p?.valueString, p?.valueUri, p?.valueUrl].find((v): v is string => typeof v === 'string');

/** Whether a URL lies under one of the allowed prefixes, compared as parsed URLs (no tricks with `..` or user info). */
export function allowedUrl(url: string, prefixes: readonly string[]): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.username || parsed.password || !['http:', 'https:', 'file:'].includes(parsed.protocol)) return false;
  return prefixes.some((prefix) => {
    try {
      return parsed.href.startsWith(new URL(prefix).href);
    } catch {
      return false;
    }
  });
}

export function parseImportManifest(body: unknown, allowedPrefixes: readonly string[]): ImportInput[] {
  const parameters = body as { resourceType?: unknown; parameter?: Parameter[] } | undefined;
  if (!parameters || parameters.resourceType !== 'Parameters') throw badRequest('An import manifest is a Parameters resource (or send the NDJSON itself as application/fhir+ndjson)');
  const list = parameters.parameter ?? [];
  const format = text(list.find((p) => p.name === 'inputFormat'));
  if (format !== undefined && !FORMATS.has(format)) throw badRequest(`inputFormat '${format}' is not supported; this server reads ${NDJSON}`, ['inputFormat']);
  const inputs: ImportInput[] = [];
  for (const input of list.filter((p) => p.name === 'input')) {
    const type = text(input.part?.find((p) => p.name === 'type'));
    const url = text(input.part?.find((p) => p.name === 'url'));
    if (!url) throw badRequest('Each input needs a url part', ['input']);
    if (type !== undefined && !isResourceType(type)) throw badRequest(`input type '${type}' is not a resource type`, ['input']);
    if (!allowedUrl(url, allowedPrefixes)) {
      throw FhirError.of(400, 'security', `The input URL '${url.slice(0, 200)}' is not in a location this server imports from (BULK_IMPORT_ALLOWED_URLS)`, ['input']);
    }
    inputs.push({ ...(type && { type }), url });
  }
  if (inputs.length === 0) throw badRequest('The manifest names no input', ['input']);
  return inputs;
}
