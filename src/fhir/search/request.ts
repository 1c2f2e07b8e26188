import type { SearchCriterion, SortSpec } from '../../store/port.js';
import { FhirError, badRequest, issue } from '../outcome.js';
import { parseSubsetting, type Subsetting } from '../subsetting.js';
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import { parameterCriterion, parseName, type CriteriaContext } from './criteria.js';
import { searchParameters } from './registry.js';
import { DEFAULT_SEARCH_COST_LIMITS, SearchBudget, type SearchCostLimits } from './search-cost.js';

/** A search request as the FHIR layer understands it: selection, shaping and paging. */

export interface IncludeSpec {
  sourceType: string;
  /** A reference parameter of sourceType, or '*' for all of them. */
  param: string;
  targetType?: string;
  iterate: boolean;
}

export type TotalMode = 'none' | 'estimate' | 'accurate';

export interface ParsedSearch {
  where: SearchCriterion[];
  sort: SortSpec[];
  count: number;
  total: TotalMode;
  subsetting: Subsetting;
  includes: IncludeSpec[];
  revincludes: IncludeSpec[];
  page?: string;
  /** Parameters ignored because this server does not know them (reported in the bundle). */
  ignored: OperationOutcomeIssue[];
  /** The parameters that define the result set, normalised, for links and page-token binding. */
  canonical: [string, string][];
}

export interface SearchLimits {
  defaultPageSize: number;
  maxPageSize: number;
  /** What one search may ask of the store; the defaults where omitted. */
  searchCost?: Partial<SearchCostLimits>;
}

/** Parameters that shape or page the answer rather than select resources. */
const RESULT_PARAMETERS = new Set(['_count', '_sort', '_include', '_revinclude', '_total', '_summary', '_elements', '_page', '_format', '_pretty', '_type', '_contained', '_containedType']);
/** Result parameters that change the answer, so they are part of the query its links and page tokens stand for. */
const SHAPING_NAMES = new Set(['_sort', '_count', '_total', '_summary', '_elements', '_type']);
const UNSUPPORTED_SELECTORS = new Set(['_text', '_content', '_query', '_filter', '_has']);

function single(params: [string, string][], name: string): string | undefined {
  const values = params.filter(([n]) => n === name).map(([, v]) => v);
  if (values.length > 1) throw badRequest(`Parameter '${name}' may appear only once`, [name]);
  return values[0];
}

function parseCount(raw: string | undefined, limits: SearchLimits): number {
  if (raw === undefined) return limits.defaultPageSize;
  if (!/^\d+$/.test(raw)) throw badRequest("Parameter '_count' must be a non-negative integer", ['_count']);
  return Math.min(Number(raw), limits.maxPageSize);
}

function parseTotal(raw: string | undefined): TotalMode {
  if (raw === undefined) return 'accurate';
  if (raw !== 'none' && raw !== 'estimate' && raw !== 'accurate') throw badRequest("Parameter '_total' takes none, estimate or accurate", ['_total']);
  return raw;
}

function parseSort(raw: string | undefined, resourceTypes: string[]): SortSpec[] {
  if (raw === undefined) return [];
  return raw.split(',').map((key) => {
    const descending = key.startsWith('-');
    const param = descending ? key.slice(1) : key;
    const known = param === '_id' || param === '_lastUpdated' || resourceTypes.every((t) => {
      const def = searchParameters(t).get(param);
      return def && def.type !== 'composite' && def.type !== 'special';
    });
    if (!known) throw badRequest(`Cannot sort by '${param}'`, ['_sort']);
    return { param, descending };
  });
}

function parseIncludes(values: string[], name: '_include' | '_revinclude', iterate: boolean): IncludeSpec[] {
  return values.map((value) => {
    if (value === '*') return { sourceType: '*', param: '*', iterate };
    const [sourceType = '', param = '', targetType] = value.split(':');
    if (!/^[A-Z][A-Za-z]+$/.test(sourceType) || !param) throw badRequest(`${name} takes Type:parameter[:targetType], not '${value}'`, [name]);
    const def = searchParameters(sourceType).get(param);
    if (param !== '*' && (!def || def.type !== 'reference')) throw badRequest(`'${param}' is not a reference parameter of ${sourceType}`, [name]);
    const spec: IncludeSpec = { sourceType, param, iterate };
    if (targetType) spec.targetType = targetType;
    return spec;
  });
}

/**
 * A common parameter usually compiles the same way for each type: one criterion. Where it does
 * not (Patient indexes `name`, Practitioner the same values as `phonetic`), each type gets its own.
 */
function acrossTypes(resourceTypes: string[], perType: SearchCriterion[]): SearchCriterion {
  if (perType.length === 1) return perType[0]!;
  const first = JSON.stringify(perType[0]);
  if (perType.every((c) => JSON.stringify(c) === first)) return perType[0]!;
  return { kind: 'or', anyOf: perType.map((criterion, i): SearchCriterion[] => [{ kind: 'type', types: [resourceTypes[i]!] }, criterion]) };
}

export interface ParseOptions extends SearchLimits {
  /** Prefer: handling=strict turns ignored parameters into a 400. */
  strict: boolean;
  /** A search of one type's URL (or a compartment), where `_type` has no meaning. */
  typeLevel?: boolean;
}

/** The _include and _revinclude forms this server runs; `:recurse` is R3's name for `:iterate`. */
const INCLUDE_NAMES = new Set(['_include', '_include:iterate', '_include:recurse', '_revinclude', '_revinclude:iterate', '_revinclude:recurse']);

/**
 * Why a result parameter that this search will not act on is ignored, or undefined when it is
 * used: the client is told, as for an unknown parameter, rather than answered as if it were.
 */
function unusedResultParameter(name: string, value: string, options: ParseOptions): OperationOutcomeIssue | undefined {
  const ignoredBecause = (why: string) => issue('warning', 'not-supported', `Parameter '${name}' was ignored: ${why}`, [name]);
  if ((name.startsWith('_include') || name.startsWith('_revinclude')) && !INCLUDE_NAMES.has(name)) {
    return ignoredBecause('the modifiers of _include and _revinclude are :iterate (and its older name :recurse)');
  }
  if (name === '_revinclude' || name === '_revinclude:iterate' || name === '_revinclude:recurse') {
    if (value === '*') return ignoredBecause("_revinclude=* (every reference to the matches, from any type) is not supported; name the type, as in Observation:* or Observation:subject");
  }
  if (name === '_contained' && value !== 'false') return ignoredBecause('searching contained resources is not supported; only whole resources are searched');
  if (name === '_containedType') return ignoredBecause('searching contained resources is not supported');
  if (name === '_type' && options.typeLevel) return ignoredBecause('_type selects types on a system search (/fhir?_type=…), not on a search of one type');
  return undefined;
}

/** Parses a type-level (one type) or system-level (several types) search. */
export async function parseSearch(resourceTypes: string[], params: [string, string][], context: CriteriaContext, options: ParseOptions): Promise<ParsedSearch> {
  const where: SearchCriterion[] = [];
  const ignored: OperationOutcomeIssue[] = [];
  const selection: [string, string][] = [];
  const budget = new SearchBudget({ ...DEFAULT_SEARCH_COST_LIMITS, ...options.searchCost });
  for (const [name, value] of params) {
    const base = parseName(name).code;
    const unused = unusedResultParameter(name, value, options);
    if (unused) {
      ignored.push(unused);
      continue;
    }
    if (RESULT_PARAMETERS.has(base)) continue;
    if (UNSUPPORTED_SELECTORS.has(base) && !name.startsWith('_has:')) {
      ignored.push(issue('warning', 'not-supported', `Parameter '${name}' is not supported and was ignored`, [name]));
      continue;
    }
    const perType = await Promise.all(resourceTypes.map((t) => parameterCriterion(t, name, value, context)));
    if (perType.some((c) => c === undefined)) {
      ignored.push(issue('warning', 'not-supported', `Unknown search parameter '${name}' was ignored`, [name]));
      continue;
    }
    const criterion = acrossTypes(resourceTypes, perType as SearchCriterion[]);
    budget.add(name, criterion);
    selection.push([name, value]);
    where.push(criterion);
  }
  if (options.strict && ignored.length) throw new FhirError(400, ignored.map((i) => ({ ...i, severity: 'error' as const })));

  const includeValues = (n: string) => params.filter(([k]) => k === n).map(([, v]) => v);
  const parsed: ParsedSearch = {
    where,
    sort: parseSort(single(params, '_sort'), resourceTypes),
    count: parseCount(single(params, '_count'), options),
    total: parseTotal(single(params, '_total')),
    subsetting: parseSubsetting(Object.fromEntries(params.filter(([n]) => n === '_summary' || n === '_elements'))),
    includes: [...parseIncludes(includeValues('_include'), '_include', false), ...parseIncludes([...includeValues('_include:iterate'), ...includeValues('_include:recurse')], '_include', true)],
    revincludes: [
      ...parseIncludes(includeValues('_revinclude').filter((v) => v !== '*'), '_revinclude', false),
      ...parseIncludes([...includeValues('_revinclude:iterate'), ...includeValues('_revinclude:recurse')].filter((v) => v !== '*'), '_revinclude', true),
    ],
    ignored,
    canonical: [],
  };
  const page = single(params, '_page');
  if (page !== undefined) parsed.page = page;
  const shaping = params.filter(([n, v]) => (SHAPING_NAMES.has(n) || INCLUDE_NAMES.has(n)) && !unusedResultParameter(n, v, options));
  parsed.canonical = [...selection, ...shaping, ['_count', String(parsed.count)] as [string, string]]
    .filter(([n], i, all) => n !== '_count' || i === all.length - 1)
    .sort(([a, av], [b, bv]) => (a === b ? av.localeCompare(bv) : a.localeCompare(b)));
  return parsed;
}
