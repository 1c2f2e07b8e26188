import type { Bundle, BundleEntry, BundleLink, FhirResource, OperationOutcomeIssue } from 'fhir/r4.js';
import type { BodyCodec } from '../store/codec.js';
import type { ResourceStore, SearchCriterion, SearchCursor, SearchQuery } from '../store/port.js';
import { allResourceTypes, isResourceType } from './definitions.js';
import { parseInstantLowerBound } from './instant.js';
import { badRequest, FhirError, issue } from './outcome.js';
import type { PageTokens } from './page-token.js';
import type { JsonResource } from './resource-input.js';
import type { ReadCheck, ResourceService } from './resource-service.js';
import { compartmentCriterion, patientCompartmentParams } from './search/compartments.js';
import { referencesOf } from './search/indexer.js';
import type { SearchLimits } from './search/request.js';
import { NOTHING, restrict, SEES_EVERYTHING, type Visibility } from './search/visibility.js';

/**
 * Patient/{id}/$everything: the patient and every resource in their Patient compartment, as
 * one query over every compartment type (so pages are full and the total is exact under the
 * caller's visibility), paged by signed cursors. Resources of types outside the compartment
 * that a page's resources reference through their search parameters (practitioners,
 * organisations, locations, medications, devices) come with that page as includes, under the
 * same visibility, as `_include` would bring them: not counted in the total, and repeated on
 * each page that references them.
 */

export interface EverythingInput {
  patientId: string;
  /** The compartment types the caller's rights cover (all when omitted). */
  allowedTypes?: string[];
  /** Operation parameters as received, from the URL and (for POST) the Parameters body. */
  params: [string, string][];
  baseUrl: string;
  /** Prefer: handling=strict turns ignored parameters into a 400. */
  strict: boolean;
  visibility?: Visibility;
  canSee?: ReadCheck;
}

interface Position {
  after?: SearchCursor;
  before?: SearchCursor;
}

/** Parameters of the R4 definition that this server accepts but does not apply. */
const IGNORED = new Set(['start', 'end']);
/** At most this many referenced resources come with one page. */
const MAX_REFERENCED = 1000;
const SHAPING = new Set(['_format', '_pretty']);

let compartmentTypes: string[] | undefined;

/** The Patient compartment's types (Patient itself included), in a stable order. */
export function patientCompartmentTypes(): string[] {
  compartmentTypes ??= [...allResourceTypes()].filter((t) => t === 'Patient' || patientCompartmentParams(t).length > 0).sort();
  return compartmentTypes;
}

/**
 * The compartment under the caller's visibility: each type's compartment criterion with that
 * type's restrictions compiled as a search of that type alone would have them (so a patient
 * already known reachable needs no patient list), and one alternative per group of types whose
 * criteria are the same, so the query stays small. Types the caller may not see drop out.
 */
function inCompartment(patientId: string, types: string[], visibility: Visibility): SearchCriterion[] {
  const groups = new Map<string, { types: string[]; criteria: SearchCriterion[] }>();
  const hidden = JSON.stringify(NOTHING);
  for (const type of types) {
    const criteria = restrict([compartmentCriterion('Patient', patientId, type)], [type], visibility);
    if (criteria.some((c) => JSON.stringify(c) === hidden)) continue;
    const key = JSON.stringify(criteria);
    const group = groups.get(key) ?? { types: [], criteria };
    group.types.push(type);
    groups.set(key, group);
  }
  if (groups.size === 0) return [NOTHING];
  const anyOf = [...groups.values()].map((group): SearchCriterion[] => [{ kind: 'type', types: group.types }, ...group.criteria]);
  // One group of every type needs no type test; otherwise each group keeps to its own types.
  return anyOf.length === 1 && groups.values().next().value!.types.length === types.length ? anyOf[0]!.slice(1) : [{ kind: 'or', anyOf }];
}

function single(params: [string, string][], name: string): string | undefined {
  const values = params.filter(([n]) => n === name).map(([, v]) => v);
  if (values.length > 1) throw badRequest(`Parameter '${name}' may appear only once`, [name]);
  return values[0];
}

interface Parsed {
  types: string[];
  since?: number;
  count: number;
  page?: string;
  /** The parameters that define the result, normalised, for links and token binding. */
  canonical: [string, string][];
  notes: OperationOutcomeIssue[];
}

function parse(params: [string, string][], limits: SearchLimits, strict: boolean, allowed: string[]): Parsed {
  const notes: OperationOutcomeIssue[] = [];
  const ignored: OperationOutcomeIssue[] = [];
  const canonical: [string, string][] = [];
  for (const [name] of params) {
    if (['_since', '_type', '_count', '_page'].includes(name) || SHAPING.has(name)) continue;
    const text = IGNORED.has(name) ? `Parameter '${name}' is not supported by this server and was ignored (every date is included)` : `Unknown parameter '${name}' was ignored`;
    if (!ignored.some((i) => i.expression?.[0] === name)) ignored.push(issue('warning', 'not-supported', text, [name]));
  }
  if (strict && ignored.length) throw new FhirError(400, ignored.map((i) => ({ ...i, severity: 'error' as const })));

  let types = allowed;
  const typeList = params.filter(([n]) => n === '_type').flatMap(([, v]) => v.split(',')).map((t) => t.trim()).filter((t) => t !== '');
  if (typeList.length) {
    for (const t of typeList) if (!isResourceType(t)) throw badRequest(`_type names an unknown resource type '${t}'`, ['_type']);
    const compartment = patientCompartmentTypes();
    const outside = [...new Set(typeList.filter((t) => !compartment.includes(t)))];
    const barred = [...new Set(typeList.filter((t) => compartment.includes(t) && !types.includes(t)))];
    if (outside.length) notes.push(issue('information', 'informational', `Not in the Patient compartment, so never part of $everything: ${outside.join(', ')}`, ['_type']));
    if (barred.length) notes.push(issue('information', 'informational', `Not searchable by this caller, so left out: ${barred.join(', ')}`, ['_type']));
    types = types.filter((t) => typeList.includes(t));
    // The links repeat the list as asked: only what was kept would read as "every type" once nothing is.
    canonical.push(['_type', [...new Set(typeList)].join(',')]);
  }
  const parsed: Parsed = { types, count: limits.defaultPageSize, canonical, notes: [...ignored, ...notes] };
  const since = single(params, '_since');
  if (since !== undefined) {
    parsed.since = parseInstantLowerBound(since, '_since');
    canonical.push(['_since', since]);
  }
  const count = single(params, '_count');
  if (count !== undefined) {
    if (!/^\d+$/.test(count)) throw badRequest("Parameter '_count' must be a non-negative integer", ['_count']);
    parsed.count = Math.min(Number(count), limits.maxPageSize);
  }
  canonical.push(['_count', String(parsed.count)]);
  const page = single(params, '_page');
  if (page !== undefined) parsed.page = page;
  canonical.sort(([a], [b]) => a.localeCompare(b));
  return parsed;
}

export class EverythingService {
  constructor(
    private readonly store: ResourceStore,
    private readonly codec: BodyCodec,
    private readonly tokens: PageTokens,
    private readonly limits: SearchLimits,
    private readonly resources: ResourceService,
  ) {}

  async everything(input: EverythingInput): Promise<Bundle> {
    const parsed = parse(input.params, this.limits, input.strict, input.allowedTypes ?? patientCompartmentTypes());
    // An unknown patient, or one the caller may not see, is a 404 (a deleted one a 410).
    await this.resources.read('Patient', input.patientId, input.canSee);
    const path = `/Patient/${input.patientId}/$everything`;
    const queryKey = JSON.stringify([path, parsed.canonical]);
    const position: Position = parsed.page ? this.tokens.open<Position>(parsed.page, queryKey) : {};

    const resourceTypes = parsed.types.length ? parsed.types : ['Patient'];
    const where: SearchCriterion[] = parsed.types.length ? inCompartment(input.patientId, parsed.types, input.visibility ?? SEES_EVERYTHING) : [NOTHING];
    if (parsed.since !== undefined) where.push({ kind: 'lastUpdated', tests: [{ op: 'ge', value: parsed.since }] });
    const query: SearchQuery = { resourceTypes, where, sort: [], limit: parsed.count + 1 };
    if (position.after) query.after = position.after;
    if (position.before) query.before = position.before;
    const hits = parsed.count === 0 ? [] : await this.store.search(query);
    const more = hits.length > parsed.count;
    // Going backwards, the extra row is the one furthest from the cursor: the first.
    const page = position.before && more ? hits.slice(1) : hits.slice(0, parsed.count);
    const total = await this.store.count({ resourceTypes, where });

    const url = (extra: [string, string][] = []) => {
      const qs = new URLSearchParams([...parsed.canonical, ...extra]).toString();
      return `${input.baseUrl}${path}${qs ? `?${qs}` : ''}`;
    };
    const hasNext = position.before ? true : more;
    const hasPrevious = position.before ? more : position.after !== undefined;
    const link: BundleLink[] = [{ relation: 'self', url: url(parsed.page ? [['_page', parsed.page]] : []) }, { relation: 'first', url: url() }];
    const [first, last] = [page[0], page[page.length - 1]];
    if (hasPrevious && first) link.push({ relation: 'previous', url: url([['_page', this.tokens.issue<Position>(queryKey, { before: first.cursor })]]) });
    if (hasNext && last) link.push({ relation: 'next', url: url([['_page', this.tokens.issue<Position>(queryKey, { after: last.cursor })]]) });

    const matches = page.map((hit) => JSON.parse(this.codec.decode(hit.version.body!)) as JsonResource & { id: string });
    const referenced = await this.referenced(matches, input.baseUrl, input.visibility ?? SEES_EVERYTHING);
    const entryOf = (resource: JsonResource & { id: string }, mode: 'match' | 'include'): BundleEntry => ({
      fullUrl: `${input.baseUrl}/${resource.resourceType}/${resource.id}`,
      resource: resource as unknown as FhirResource,
      search: { mode },
    });
    const entry: BundleEntry[] = [...matches.map((r) => entryOf(r, 'match')), ...referenced.map((r) => entryOf(r, 'include'))];
    if (parsed.notes.length) entry.push({ resource: { resourceType: 'OperationOutcome', issue: parsed.notes }, search: { mode: 'outcome' } });
    return { resourceType: 'Bundle', type: 'searchset', total, link, ...(entry.length && { entry }) };
  }

  /** The resources outside the compartment that `matches` reference, those the caller may see. */
  private async referenced(matches: JsonResource[], baseUrl: string, visibility: Visibility): Promise<(JsonResource & { id: string })[]> {
    const compartment = new Set(patientCompartmentTypes());
    const wanted = new Map<string, Set<string>>();
    for (const resource of matches) {
      for (const ref of referencesOf(resource, '*', baseUrl)) {
        if (compartment.has(ref.type) || !isResourceType(ref.type)) continue;
        wanted.set(ref.type, (wanted.get(ref.type) ?? new Set()).add(ref.id));
      }
    }
    const found: (JsonResource & { id: string })[] = [];
    for (const [type, ids] of wanted) {
      if (found.length >= MAX_REFERENCED) break;
      const where = restrict([{ kind: 'id', ids: [...ids] }], [type], visibility);
      const hits = await this.store.search({ resourceTypes: [type], where, sort: [], limit: Math.min(ids.size, MAX_REFERENCED - found.length) });
      found.push(...hits.map((h) => JSON.parse(this.codec.decode(h.version.body!)) as JsonResource & { id: string }));
    }
    return found;
  }
}
