import type { Bundle, BundleEntry, BundleLink, FhirResource, OperationOutcome } from 'fhir/r4.js';
import type { BodyCodec } from '../../store/codec.js';
import type { ResourceStore, SearchCriterion, SearchCursor, SearchHit, SearchQuery, StoredVersion } from '../../store/port.js';
import { requireKnownType } from '../resource-input.js';
import type { PageTokens } from '../page-token.js';
import { applySubsetting } from '../subsetting.js';
import { compartmentCriterion } from './compartments.js';
import type { CriteriaContext } from './criteria.js';
import { referencesOf } from './indexer.js';
import { parseSearch, type IncludeSpec, type ParsedSearch, type SearchLimits } from './request.js';
import { restrict, SEES_EVERYTHING, type Visibility } from './visibility.js';

/** Runs searches: selection in the store, then paging, totals, includes and the Bundle. */

export interface SearchInput {
  /** One type for a type search; the _type list (or all types) for a system search. */
  resourceTypes: string[];
  params: [string, string][];
  compartment?: { type: string; id: string };
  baseUrl: string;
  /** The path the search was made on, relative to the base, e.g. `/Observation`. */
  path: string;
  strict: boolean;
  /** What the caller may see; everything when omitted. */
  visibility?: Visibility;
}

type JsonResource = Record<string, unknown> & { resourceType: string; id: string };

interface Position {
  after?: SearchCursor;
  before?: SearchCursor;
}

const MAX_INCLUDED = 1000;
const MAX_ITERATIONS = 3;

export class SearchService {
  constructor(
    private readonly store: ResourceStore,
    private readonly codec: BodyCodec,
    private readonly tokens: PageTokens,
    private readonly limits: SearchLimits,
  ) {}

  private decode(version: StoredVersion): JsonResource {
    return JSON.parse(this.codec.decode(version.body!)) as JsonResource;
  }

  /** Selection criteria for conditional operations: the full search, strictly parsed. */
  async criteriaFor(resourceType: string, query: string, baseUrl: string, visibility: Visibility = SEES_EVERYTHING): Promise<SearchCriterion[]> {
    const params = [...new URLSearchParams(query)].filter(([n]) => n !== '_format' && n !== '_pretty');
    const parsed = await parseSearch([resourceType], params, this.criteriaContext(baseUrl), { ...this.limits, strict: true });
    // No criteria stays no criteria (the caller refuses that); otherwise only what the caller may see.
    return parsed.where.length ? restrict(parsed.where, [resourceType], visibility) : [];
  }

  /** Current resources of one type matching criteria (conditional operations ask for at most 2). */
  async find(resourceType: string, where: SearchCriterion[], limit: number): Promise<StoredVersion[]> {
    const hits = await this.store.search({ resourceTypes: [resourceType], where, sort: [], limit });
    return hits.map((h) => h.version);
  }

  criteriaContext(baseUrl: string): CriteriaContext {
    return {
      baseUrl,
      valueSetCodes: async (url) => {
        const [hit] = await this.store.search({
          resourceTypes: ['ValueSet'],
          where: [{ kind: 'entry', param: 'url', anyOf: [[{ slot: 0, field: 'value', op: 'eq', value: url }]] }],
          sort: [],
          limit: 1,
        });
        if (!hit) return undefined;
        const vs = this.decode(hit.version) as { compose?: { include?: { system?: string; concept?: { code: string }[] }[] }; expansion?: { contains?: { system?: string; code?: string }[] } };
        const codes: { system: string; code?: string }[] = [];
        for (const include of vs.compose?.include ?? []) {
          if (!include.system) continue;
          if (include.concept?.length) codes.push(...include.concept.map((c) => ({ system: include.system!, code: c.code })));
          else codes.push({ system: include.system });
        }
        for (const c of vs.expansion?.contains ?? []) if (c.system && c.code) codes.push({ system: c.system, code: c.code });
        return codes;
      },
    };
  }

  async search(input: SearchInput): Promise<Bundle> {
    for (const type of input.resourceTypes) requireKnownType(type);
    const parsed = await parseSearch(input.resourceTypes, input.params, this.criteriaContext(input.baseUrl), { ...this.limits, strict: input.strict });
    const visibility = input.visibility ?? SEES_EVERYTHING;
    const selection = [...parsed.where];
    if (input.compartment) selection.push(compartmentCriterion(input.compartment.type, input.compartment.id, input.resourceTypes[0]!));
    const where = restrict(selection, input.resourceTypes, visibility);
    const queryKey = JSON.stringify([input.path, parsed.canonical]);
    const position: Position = parsed.page ? this.tokens.open<Position>(parsed.page, queryKey) : {};

    const query: SearchQuery = { resourceTypes: input.resourceTypes, where, sort: parsed.sort, limit: parsed.count + 1 };
    if (position.after) query.after = position.after;
    if (position.before) query.before = position.before;
    const countOnly = parsed.subsetting.summary === 'count';
    const hits = countOnly || parsed.count === 0 ? [] : await this.store.search(query);
    const more = hits.length > parsed.count;
    // Going backwards, the extra row is the one furthest from the cursor: the first.
    const page = position.before && more ? hits.slice(1) : hits.slice(0, parsed.count);
    // A first page with room to spare holds every match: its length is the total.
    const wholeResult = !countOnly && parsed.count > 0 && !more && !position.after && !position.before;
    const total =
      parsed.total === 'none' && !countOnly ? undefined : wholeResult ? page.length : await this.store.count({ resourceTypes: input.resourceTypes, where });

    const matches = page.map((h) => this.decode(h.version));
    const included = countOnly ? [] : await this.included(matches, parsed, input.baseUrl, visibility);
    return this.bundle(input, parsed, { page, matches, included, total, hasNext: position.before ? true : more, hasPrevious: position.before ? more : position.after !== undefined, queryKey });
  }

  private async fetchByIds(type: string, ids: string[], visibility: Visibility): Promise<JsonResource[]> {
    if (ids.length === 0) return [];
    const hits = await this.store.search({ resourceTypes: [type], where: restrict([{ kind: 'id', ids }], [type], visibility), sort: [], limit: ids.length });
    return hits.map((h) => this.decode(h.version));
  }

  private async included(matches: JsonResource[], parsed: ParsedSearch, baseUrl: string, visibility: Visibility): Promise<JsonResource[]> {
    if (!parsed.includes.length && !parsed.revincludes.length) return [];
    const key = (r: { resourceType: string; id: string }) => `${r.resourceType}/${r.id}`;
    const seen = new Set(matches.map(key));
    const result: JsonResource[] = [];
    let sources = matches;
    for (let round = 0; round < MAX_ITERATIONS && sources.length && result.length < MAX_INCLUDED; round++) {
      const applicable = (spec: IncludeSpec) => round === 0 || spec.iterate;
      const found: JsonResource[] = [];
      // _include: follow the sources' references.
      const wanted = new Map<string, Set<string>>();
      for (const spec of parsed.includes.filter(applicable)) {
        for (const source of sources) {
          if (spec.sourceType !== '*' && spec.sourceType !== source.resourceType) continue;
          for (const ref of referencesOf(source, spec.param, baseUrl)) {
            if (spec.targetType && ref.type !== spec.targetType) continue;
            if (seen.has(`${ref.type}/${ref.id}`)) continue;
            wanted.set(ref.type, (wanted.get(ref.type) ?? new Set()).add(ref.id));
          }
        }
      }
      for (const [type, ids] of wanted) found.push(...(await this.fetchByIds(type, [...ids], visibility)));
      // _revinclude: resources whose reference parameter points at a source.
      for (const spec of parsed.revincludes.filter(applicable)) {
        const byType = new Map<string, string[]>();
        for (const s of sources) byType.set(s.resourceType, [...(byType.get(s.resourceType) ?? []), s.id]);
        const anyOf = [...byType].map(([type, ids]) => [
          { slot: 0 as const, field: 'system' as const, op: 'eq' as const, value: type },
          { slot: 0 as const, field: 'value' as const, op: 'in' as const, value: ids },
        ]);
        const where = restrict([{ kind: 'entry', param: spec.param, anyOf }], [spec.sourceType], visibility);
        const hits: SearchHit[] = await this.store.search({ resourceTypes: [spec.sourceType], where, sort: [], limit: MAX_INCLUDED });
        found.push(...hits.map((h) => this.decode(h.version)));
      }
      const fresh = found.filter((r) => !seen.has(key(r)));
      for (const r of fresh) seen.add(key(r));
      result.push(...fresh);
      sources = fresh;
    }
    return result.slice(0, MAX_INCLUDED);
  }

  private bundle(
    input: SearchInput,
    parsed: ParsedSearch,
    r: { page: SearchHit[]; matches: JsonResource[]; included: JsonResource[]; total: number | undefined; hasNext: boolean; hasPrevious: boolean; queryKey: string },
  ): Bundle {
    const url = (extra: [string, string][] = []) => {
      const qs = new URLSearchParams([...parsed.canonical, ...extra]).toString();
      return `${input.baseUrl}${input.path}${qs ? `?${qs}` : ''}`;
    };
    const link: BundleLink[] = [{ relation: 'self', url: url(parsed.page ? [['_page', parsed.page]] : []) }, { relation: 'first', url: url() }];
    const first = r.page[0];
    const last = r.page[r.page.length - 1];
    if (r.hasPrevious && first) link.push({ relation: 'previous', url: url([['_page', this.tokens.issue<Position>(r.queryKey, { before: first.cursor })]]) });
    if (r.hasNext && last) link.push({ relation: 'next', url: url([['_page', this.tokens.issue<Position>(r.queryKey, { after: last.cursor })]]) });

    const entry = (resource: JsonResource, mode: 'match' | 'include'): BundleEntry => ({
      fullUrl: `${input.baseUrl}/${resource.resourceType}/${resource.id}`,
      resource: applySubsetting(resource as unknown as FhirResource, parsed.subsetting) as FhirResource,
      search: { mode },
    });
    const entries: BundleEntry[] = [...r.matches.map((m) => entry(m, 'match')), ...r.included.map((m) => entry(m, 'include'))];
    if (parsed.ignored.length) {
      const outcome: OperationOutcome = { resourceType: 'OperationOutcome', issue: parsed.ignored };
      entries.push({ resource: outcome, search: { mode: 'outcome' } });
    }
    // FHIR JSON has no empty arrays: an empty page has no entry element at all.
    const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', link, ...(entries.length && { entry: entries }) };
    if (r.total !== undefined) bundle.total = r.total;
    return bundle;
  }
}
