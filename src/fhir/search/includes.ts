import type { OperationOutcomeIssue } from 'fhir/r4.js';
import type { SearchCriterion, SearchHit, SearchQuery, StoredVersion } from '../../store/port.js';
import { issue } from '../outcome.js';
import { referencesOf } from './indexer.js';
import { searchParameters } from './registry.js';
import type { IncludeSpec, ParsedSearch } from './request.js';
import { restrict, type Visibility } from './visibility.js';

/** _include and _revinclude (with :iterate): the resources a page's matches bring along. */

export type JsonResource = Record<string, unknown> & { resourceType: string; id: string };

/** At most this many included resources per page: a page is for reading, not for export. */
export const MAX_INCLUDED = 1000;
/** Rounds of :iterate after the first; deep enough for any real chain (Encounter → partOf → … ). */
export const MAX_ITERATIONS = 8;

export interface IncludeSources {
  search(query: SearchQuery): Promise<SearchHit[]>;
  decode(version: StoredVersion): JsonResource;
}

export interface Included {
  resources: JsonResource[];
  /** Warnings for the searchset's OperationOutcome when a limit cut the inclusion short. */
  notes: OperationOutcomeIssue[];
}

const key = (r: { resourceType: string; id: string }) => `${r.resourceType}/${r.id}`;

/** The reference parameters a revinclude names: one, or every one of its type for `Type:*`. */
function revincludeParams(spec: IncludeSpec): string[] {
  if (spec.param !== '*') return [spec.param];
  return [...searchParameters(spec.sourceType).values()].filter((def) => def.type === 'reference').map((def) => def.code);
}

export async function includedResources(sources: IncludeSources, matches: JsonResource[], parsed: ParsedSearch, baseUrl: string, visibility: Visibility): Promise<Included> {
  const notes: OperationOutcomeIssue[] = [];
  if (!parsed.includes.length && !parsed.revincludes.length) return { resources: [], notes };
  const seen = new Set(matches.map(key));
  const result: JsonResource[] = [];
  let from = matches;
  for (let round = 0; from.length && result.length < MAX_INCLUDED; round++) {
    const applicable = (spec: IncludeSpec) => round === 0 || spec.iterate;
    if (round > MAX_ITERATIONS) {
      if (parsed.includes.some(applicable) || parsed.revincludes.some(applicable)) {
        notes.push(issue('warning', 'too-costly', `:iterate stopped after ${MAX_ITERATIONS} rounds; resources further along the chain are not included`, ['_include:iterate']));
      }
      break;
    }
    const found = [...(await follow(sources, from, parsed.includes.filter(applicable), seen, baseUrl, visibility)), ...(await revfollow(sources, from, parsed.revincludes.filter(applicable), visibility))];
    const fresh = found.filter((r) => !seen.has(key(r)));
    for (const r of fresh) seen.add(key(r));
    result.push(...fresh);
    from = fresh;
  }
  if (result.length > MAX_INCLUDED) {
    notes.push(issue('warning', 'too-costly', `Only the first ${MAX_INCLUDED} included resources are on this page; ask for a smaller _count to get them all`, ['_include']));
  }
  return { resources: result.slice(0, MAX_INCLUDED), notes };
}

/** _include: the resources the sources' reference parameters point at. */
async function follow(sources: IncludeSources, from: JsonResource[], specs: IncludeSpec[], seen: Set<string>, baseUrl: string, visibility: Visibility): Promise<JsonResource[]> {
  const wanted = new Map<string, Set<string>>();
  for (const spec of specs) {
    for (const source of from) {
      if (spec.sourceType !== '*' && spec.sourceType !== source.resourceType) continue;
      for (const ref of referencesOf(source, spec.param, baseUrl)) {
        if (spec.targetType && ref.type !== spec.targetType) continue;
        if (seen.has(`${ref.type}/${ref.id}`)) continue;
        wanted.set(ref.type, (wanted.get(ref.type) ?? new Set()).add(ref.id));
      }
    }
  }
  const found: JsonResource[] = [];
  for (const [type, ids] of wanted) {
    const where = restrict([{ kind: 'id', ids: [...ids] }], [type], visibility);
    const hits = await sources.search({ resourceTypes: [type], where, sort: [], limit: ids.size });
    found.push(...hits.map((h) => sources.decode(h.version)));
  }
  return found;
}

/** _revinclude: resources whose reference parameter points at one of the sources. */
async function revfollow(sources: IncludeSources, from: JsonResource[], specs: IncludeSpec[], visibility: Visibility): Promise<JsonResource[]> {
  const byType = new Map<string, string[]>();
  for (const s of from) byType.set(s.resourceType, [...(byType.get(s.resourceType) ?? []), s.id]);
  const found: JsonResource[] = [];
  for (const spec of specs) {
    const anyOf = [...byType]
      .filter(([type]) => !spec.targetType || spec.targetType === type)
      .map(([type, ids]) => [
        { slot: 0 as const, field: 'system' as const, op: 'eq' as const, value: type },
        { slot: 0 as const, field: 'value' as const, op: 'in' as const, value: ids },
      ]);
    if (!anyOf.length) continue;
    const pointing: SearchCriterion[] = revincludeParams(spec).map((param) => ({ kind: 'entry', param, anyOf }));
    if (!pointing.length) continue;
    const selection: SearchCriterion = pointing.length === 1 ? pointing[0]! : { kind: 'or', anyOf: pointing.map((c) => [c]) };
    const where = restrict([selection], [spec.sourceType], visibility);
    // One more than the page may hold, so a cut-off shows as more than MAX_INCLUDED found.
    const hits = await sources.search({ resourceTypes: [spec.sourceType], where, sort: [], limit: MAX_INCLUDED + 1 });
    found.push(...hits.map((h) => sources.decode(h.version)));
  }
  return found;
}
