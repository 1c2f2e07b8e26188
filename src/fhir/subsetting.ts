import type { Coding, Resource } from 'fhir/r4.js';
import { topLevelElements } from './definitions.js';
import { badRequest } from './outcome.js';

/** _summary and _elements: returning part of a resource, marked SUBSETTED as the spec asks. */

export type SummaryMode = 'true' | 'text' | 'data' | 'count' | 'false';
const SUMMARY_MODES: readonly string[] = ['true', 'text', 'data', 'count', 'false'];

export interface Subsetting {
  summary?: SummaryMode;
  elements?: string[];
}

const SUBSETTED: Coding = {
  system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue',
  code: 'SUBSETTED',
  display: 'subsetted',
};

export function parseSubsetting(query: Record<string, unknown>): Subsetting {
  const result: Subsetting = {};
  const summary = query._summary;
  if (summary !== undefined) {
    if (typeof summary !== 'string' || !SUMMARY_MODES.includes(summary)) {
      throw badRequest(`_summary must be one of ${SUMMARY_MODES.join(', ')}`, ['_summary']);
    }
    result.summary = summary as SummaryMode;
  }
  const elements = query._elements;
  if (elements !== undefined) {
    const list = (Array.isArray(elements) ? elements : [elements]).flatMap((e) => String(e).split(','));
    const names = list.map((e) => e.trim()).filter(Boolean);
    if (names.some((n) => !/^[A-Za-z][A-Za-z0-9]*$/.test(n))) {
      throw badRequest('_elements takes a comma-separated list of top-level element names', ['_elements']);
    }
    result.elements = names;
  }
  if (result.summary !== undefined && result.elements !== undefined) {
    throw badRequest('_summary and _elements cannot be combined', ['_summary', '_elements']);
  }
  return result;
}

export function isSubsetting(s: Subsetting): boolean {
  return (s.summary !== undefined && s.summary !== 'false') || s.elements !== undefined;
}

function markSubsetted(resource: Record<string, unknown>): void {
  const meta = { ...((resource.meta as Record<string, unknown> | undefined) ?? {}) };
  const tags = [...((meta.tag as Coding[] | undefined) ?? [])];
  if (!tags.some((t) => t.code === SUBSETTED.code && t.system === SUBSETTED.system)) tags.push(SUBSETTED);
  meta.tag = tags;
  resource.meta = meta;
}

function keep(resource: Record<string, unknown>, wanted: (name: string) => boolean): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(resource)) if (wanted(name)) result[name] = value;
  return result;
}

/** Applies _summary/_elements to one resource; returns it unchanged when nothing is asked. */
export function applySubsetting(resource: Resource, s: Subsetting): Resource {
  if (!isSubsetting(s)) return resource;
  const body = resource as unknown as Record<string, unknown>;
  const facts = topLevelElements(resource.resourceType);
  const always = (name: string) =>
    name === 'resourceType' || name === 'id' || name === 'meta' || (facts?.mandatory.has(name) ?? false);
  let result: Record<string, unknown>;
  if (s.elements) {
    const asked = new Set(s.elements.flatMap((e) => [e, `_${e}`]));
    result = keep(body, (n) => always(n) || asked.has(n));
  } else if (s.summary === 'true') {
    result = keep(body, (n) => always(n) || (facts?.summary.has(n) ?? true));
  } else if (s.summary === 'text') {
    result = keep(body, (n) => always(n) || n === 'text');
  } else if (s.summary === 'data') {
    result = keep(body, (n) => n !== 'text');
  } else {
    // _summary=count asks for no resources at all; a single read answers with the summary.
    result = keep(body, (n) => always(n) || (facts?.summary.has(n) ?? true));
  }
  markSubsetted(result);
  return result as unknown as Resource;
}
