import type { Bundle, BundleEntry, BundleLink, FhirResource, OperationOutcome } from 'fhir/r4.js';
import type { BodyCodec } from '../../store/codec.js';
import { SearchTooLargeError, type ResourceStore, type SearchCriterion, type SearchCursor, type SearchHit, type SearchQuery, type StoredVersion } from '../../store/port.js';
import { FhirError } from '../outcome.js';
import { requireKnownType } from '../resource-input.js';
import type { PageTokens } from '../page-token.js';
import { applySubsetting } from '../subsetting.js';
import { compartmentCriterion } from './compartments.js';
import type { CriteriaContext } from './criteria.js';
import { includedResources, type Included, type JsonResource } from './includes.js';
import { parseSearch, type ParsedSearch, type SearchLimits } from './request.js';
import { ValueSetExpander, type TerminologySource } from './value-sets.js';
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


interface Position {
  after?: SearchCursor;
  before?: SearchCursor;
}


function tooCostly(error: unknown): never {
  if (error instanceof SearchTooLargeError) throw FhirError.of(400, 'too-costly', 'This search asks for more than the server can compare at once: name fewer values or parameters');
  throw error;
}

export class SearchService {
  constructor(
    private readonly store: ResourceStore,
    private readonly codec: BodyCodec,
    private readonly tokens: PageTokens,
    private readonly limits: SearchLimits,
  ) {}

  /** The store's search; one too large for it to run is the client's to narrow (400), not a failure. */
  private async storeSearch(query: SearchQuery): Promise<SearchHit[]> {
    return this.store.search(query).catch(tooCostly);
  }

  private async storeCount(query: Pick<SearchQuery, 'resourceTypes' | 'where'>): Promise<number> {
    return this.store.count(query).catch(tooCostly);
  }

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
    const hits = await this.storeSearch({ resourceTypes: [resourceType], where, sort: [], limit });
    return hits.map((h) => h.version);
  }

  criteriaContext(baseUrl: string): CriteriaContext {
    const expander = new ValueSetExpander(this.terminology(), baseUrl);
    return { baseUrl, valueSetCodes: (reference) => expander.codesOf(reference) };
  }

  /** The ValueSets and CodeSystems stored here, current versions, for :in and :not-in. */
  private terminology(): TerminologySource {
    const byUrl = async (type: string, url: string, version?: string) => {
      const where: SearchCriterion[] = [{ kind: 'entry', param: 'url', anyOf: [[{ slot: 0, field: 'value', op: 'eq', value: url }]] }];
      if (version !== undefined) where.push({ kind: 'entry', param: 'version', anyOf: [[{ slot: 0, field: 'value', op: 'eq', value: version }]] });
      // Of several versions, the one written last.
      const [hit] = await this.storeSearch({ resourceTypes: [type], where, sort: [{ param: '_lastUpdated', descending: true }], limit: 1 });
      return hit && this.decode(hit.version);
    };
    return {
      valueSetById: async (id) => {
        const version = await this.store.readCurrent('ValueSet', id);
        return version && !version.deleted ? this.decode(version) : undefined;
      },
      valueSetByUrl: (url, version) => byUrl('ValueSet', url, version),
      codeSystemByUrl: (url) => byUrl('CodeSystem', url),
    };
  }

  async search(input: SearchInput): Promise<Bundle> {
    for (const type of input.resourceTypes) requireKnownType(type);
    const parsed = await parseSearch(input.resourceTypes, input.params, this.criteriaContext(input.baseUrl), { ...this.limits, strict: input.strict, typeLevel: input.path !== '' });
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
    const hits = countOnly || parsed.count === 0 ? [] : await this.storeSearch(query);
    const more = hits.length > parsed.count;
    // Going backwards, the extra row is the one furthest from the cursor: the first.
    const page = position.before && more ? hits.slice(1) : hits.slice(0, parsed.count);
    // A first page with room to spare holds every match: its length is the total.
    const wholeResult = !countOnly && parsed.count > 0 && !more && !position.after && !position.before;
    const total =
      parsed.total === 'none' && !countOnly ? undefined : wholeResult ? page.length : await this.storeCount({ resourceTypes: input.resourceTypes, where });

    const matches = page.map((h) => this.decode(h.version));
    const sources = { search: (query: SearchQuery) => this.storeSearch(query), decode: (version: StoredVersion) => this.decode(version) };
    const included: Included = countOnly ? { resources: [], notes: [] } : await includedResources(sources, matches, parsed, input.baseUrl, visibility);
    return this.bundle(input, parsed, { page, matches, included, total, hasNext: position.before ? true : more, hasPrevious: position.before ? more : position.after !== undefined, queryKey });
  }

  private bundle(
    input: SearchInput,
    parsed: ParsedSearch,
    r: { page: SearchHit[]; matches: JsonResource[]; included: Included; total: number | undefined; hasNext: boolean; hasPrevious: boolean; queryKey: string },
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
    const entries: BundleEntry[] = [...r.matches.map((m) => entry(m, 'match')), ...r.included.resources.map((m) => entry(m, 'include'))];
    const notes = [...parsed.ignored, ...r.included.notes];
    if (notes.length) {
      const outcome: OperationOutcome = { resourceType: 'OperationOutcome', issue: notes };
      entries.push({ resource: outcome, search: { mode: 'outcome' } });
    }
    // FHIR JSON has no empty arrays: an empty page has no entry element at all.
    const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', link, ...(entries.length && { entry: entries }) };
    if (r.total !== undefined) bundle.total = r.total;
    return bundle;
  }
}
