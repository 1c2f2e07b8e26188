import { allResourceTypes, isResourceType } from '../definitions.js';
import { parseInstantLowerBound } from '../instant.js';
import { badRequest } from '../outcome.js';
import { ID_PATTERN } from '../resource-input.js';
import { patientCompartmentParams } from '../search/compartments.js';

/**
 * A Bulk Data (IG v2) export kick-off, read from its query or Parameters body into what the
 * export needs: which types, since when, which per-type filters, for which patients.
 */

export type ExportLevel = 'system' | 'patient' | 'group';

export interface ExportRequest {
  level: ExportLevel;
  /** The types to export, in output order; undefined means every type the level covers. */
  types?: string[];
  /** lastUpdated lower bound (ms), inclusive. */
  since?: number;
  /** Per type, the search queries (without the type) of `_typeFilter`; a resource matching any is exported. */
  typeFilters: Map<string, string[]>;
  /** Patient ids named by the POST `patient` parameter (patient and group level). */
  patients?: string[];
}

export const NDJSON = 'application/fhir+ndjson';
const OUTPUT_FORMATS = new Set([NDJSON, 'application/ndjson', 'ndjson']);
const KNOWN = new Set(['_type', '_since', '_typeFilter', '_outputFormat', 'patient', '_format', '_pretty']);

const TYPE_FILTER = /^([A-Z][A-Za-z]+)\?(.+)$/;

/** The query pairs of a kick-off (GET query, or POST Parameters read into the same pairs). */
export function parseExportRequest(level: ExportLevel, pairs: [string, string][]): ExportRequest {
  const request: ExportRequest = { level, typeFilters: new Map() };
  for (const [name] of pairs) {
    if (!KNOWN.has(name)) throw badRequest(`The export parameter '${name}' is not supported (supported: _type, _since, _typeFilter, _outputFormat, patient)`, [name]);
  }
  const single = (name: string) => {
    const values = pairs.filter(([n]) => n === name).map(([, v]) => v);
    if (values.length > 1) throw badRequest(`Parameter '${name}' may appear only once`, [name]);
    return values[0];
  };
  const format = single('_outputFormat');
  // An unencoded '+' in the query string arrives as a space: application/fhir ndjson is meant as fhir+ndjson.
  if (format !== undefined && !OUTPUT_FORMATS.has(format.trim().replace(/ /g, '+'))) {
    throw badRequest(`_outputFormat '${format}' is not supported; this server writes ${NDJSON}`, ['_outputFormat']);
  }
  const since = single('_since');
  if (since !== undefined) request.since = parseInstantLowerBound(since, '_since');

  const listed = pairs.filter(([n]) => n === '_type').flatMap(([, v]) => v.split(',')).map((t) => t.trim()).filter(Boolean);
  for (const t of listed) if (!isResourceType(t)) throw badRequest(`_type names an unknown resource type '${t}'`, ['_type']);
  if (listed.length) request.types = [...new Set(listed)];

  for (const [, value] of pairs.filter(([n]) => n === '_typeFilter')) {
    for (const filter of splitFilters(value)) {
      const m = TYPE_FILTER.exec(filter);
      if (!m || !isResourceType(m[1]!)) throw badRequest(`_typeFilter '${filter}' must be a resource type, '?', and search parameters`, ['_typeFilter']);
      request.typeFilters.set(m[1]!, [...(request.typeFilters.get(m[1]!) ?? []), m[2]!]);
    }
  }
  const patients = pairs.filter(([n]) => n === 'patient').map(([, v]) => v);
  if (patients.length) {
    if (level === 'system') throw badRequest('The patient parameter applies to Patient and Group exports only', ['patient']);
    request.patients = [...new Set(patients.map(patientId))];
  }
  return request;
}

/** _typeFilter values are comma-separated; commas inside a query are percent-encoded. */
function splitFilters(value: string): string[] {
  return value.split(',').map((f) => f.trim()).filter(Boolean).map((f) => f.replace(/%2C/gi, ','));
}

function patientId(reference: string): string {
  const m = /^(?:.*\/)?Patient\/([^/]+)$/.exec(reference.trim());
  if (!m || !ID_PATTERN.test(m[1]!)) throw badRequest(`patient '${reference.slice(0, 80)}' must be a reference to a Patient`, ['patient']);
  return m[1]!;
}

/** The types an export covers: those asked for, or every type of its level. */
export function typesOf(request: ExportRequest): string[] {
  const all = request.level === 'system' ? [...allResourceTypes()] : [...allResourceTypes()].filter((t) => t === 'Patient' || patientCompartmentParams(t).length > 0);
  if (!request.types) return all.sort();
  if (request.level === 'system') return request.types;
  const outside = request.types.filter((t) => !all.includes(t));
  if (outside.length) throw badRequest(`${outside.join(', ')} ${outside.length === 1 ? 'is' : 'are'} not in the Patient compartment, so not part of a ${request.level} export`, ['_type']);
  return request.types;
}

/** Parameters body → the same pairs a GET query gives. */
export function pairsFromParameters(body: unknown): [string, string][] {
  const parameters = (body as { resourceType?: string; parameter?: unknown[] } | undefined);
  if (!parameters || parameters.resourceType !== 'Parameters') throw badRequest('A POST kick-off carries a Parameters resource');
  const pairs: [string, string][] = [];
  for (const p of parameters.parameter ?? []) {
    const { name, ...rest } = p as Record<string, unknown>;
    if (typeof name !== 'string') throw badRequest('Each parameter needs a name');
    const reference = (rest.valueReference as { reference?: unknown } | undefined)?.reference;
    const value = rest.valueString ?? rest.valueInstant ?? rest.valueDateTime ?? rest.valueCode ?? reference;
    if (typeof value !== 'string') throw badRequest(`Parameter '${name}' needs a string, instant, code or reference value`, [name]);
    pairs.push([name, value]);
  }
  return pairs;
}
