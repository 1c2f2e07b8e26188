/**
 * The storage port: everything the FHIR layer may ask of a store, and nothing about FHIR
 * semantics. Adapters (sqlite/, mongo/) implement it; one conformance suite tests both.
 *
 * A store keeps every version of every resource. Bodies are opaque strings produced by the
 * codec above the port (JSON now, encrypted later), so adapters never parse them.
 */

/** One stored version of a resource, or a deletion tombstone (body undefined). */
export interface StoredVersion {
  resourceType: string;
  id: string;
  versionId: number;
  /** Milliseconds since the epoch; also the ordering key of history. */
  lastUpdated: number;
  deleted: boolean;
  /** The encoded resource body; absent on tombstones. */
  body?: string;
}

/**
 * One component of a normalised search value. Which fields are set depends on the parameter
 * type: token (system, value = code), string (value = folded text, text = exact text), token
 * display text (value = folded text), reference (system = target type and value = target id;
 * or system null and value = an absolute or canonical URL), uri (value), date (low..high, ms,
 * inclusive), number and quantity (low..high; quantity system and value = unit code, text =
 * 'canonical' on the UCUM-converted copy, else the human unit where it differs from the code).
 */
export interface IndexValue {
  system?: string | null;
  value?: string;
  text?: string;
  low?: number;
  high?: number;
}

/** A search value stored beside a resource: one component, or up to three for composites. */
export interface IndexEntry {
  param: string;
  values: [IndexValue] | [IndexValue, IndexValue] | [IndexValue, IndexValue, IndexValue];
}

/** Precomputed sort keys of one parameter: the lowest value sorts ascending, the highest descending. */
export interface SortKey {
  min: string | number;
  max: string | number;
}

export type IndexField = 'system' | 'value' | 'text' | 'low' | 'high';

/** One comparison on one field of one component of an index entry. */
export type FieldTest =
  | { slot: 0 | 1 | 2; field: IndexField; op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge'; value: string | number }
  | { slot: 0 | 1 | 2; field: IndexField; op: 'isNull' | 'notNull' }
  | { slot: 0 | 1 | 2; field: 'value' | 'text'; op: 'startsWith' | 'contains'; value: string }
  | { slot: 0 | 1 | 2; field: IndexField; op: 'in'; value: string[] };

/**
 * The store-neutral search IR. A query is the AND of its criteria. Stores translate it to
 * indexed native queries; none of it mentions FHIR beyond parameter names and types.
 */
export type SearchCriterion =
  /** The resource's id is one of these. */
  | { kind: 'id'; ids: string[] }
  /** The resource is of one of these types (to give each type of a multi-type query its own criteria). */
  | { kind: 'type'; types: string[] }
  /** lastUpdated (ms) passes every test. */
  | { kind: 'lastUpdated'; tests: { op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge'; value: number }[] }
  /**
   * Some index entry of `param` passes every test of at least one alternative. `filter` is a
   * planning hint: other criteria select few rows, so check this one per candidate rather than
   * use it to select (stores may ignore it; the result is the same).
   */
  | { kind: 'entry'; param: string; anyOf: FieldTest[][]; filter?: boolean }
  /** The resource has (missing: false) or has no (missing: true) entry for `param`. */
  | { kind: 'missing'; param: string; missing: boolean }
  | { kind: 'not'; criterion: SearchCriterion }
  | { kind: 'or'; anyOf: SearchCriterion[][] }
  /** Chaining: an entry of reference `param` points at a current `targetType` resource matching `where`. */
  | { kind: 'references'; param: string; targetType: string; where: SearchCriterion[] }
  /** Reverse chaining (_has): a current `sourceType` resource matching `where` points here through `param`. */
  | { kind: 'referencedBy'; sourceType: string; param: string; where: SearchCriterion[] }
  /**
   * The resource belongs to one of these patients (ResourceIndex.patients). Stores keep each
   * entry's owner beside it, so "code X of these patients" is one index seek per patient.
   */
  | { kind: 'patient'; ids: string[] };

export interface SortSpec {
  /** A parameter name with precomputed sort keys, or '_id' / '_lastUpdated'. */
  param: string;
  descending: boolean;
}

/** Sort-key values of the last row of a page; the next page starts strictly after it. */
export type SearchCursor = { resourceType: string; id: string; keys: (string | number | null)[] };

export interface SearchQuery {
  resourceTypes: string[];
  where: SearchCriterion[];
  /** Applied in order; ties are broken by resource type then id, ascending. */
  sort: SortSpec[];
  /** Only rows strictly after this one in the order (the next page). */
  after?: SearchCursor;
  /**
   * Only rows strictly before this one (the previous page): the `limit` rows closest to it,
   * still returned in the query's order.
   */
  before?: SearchCursor;
  limit: number;
}

export interface SearchHit {
  version: StoredVersion;
  /** This row's values of the query's sort keys, for building a cursor. */
  cursor: SearchCursor;
}

/** What is stored beside a resource for search: its index entries, sort keys and owners. */
export interface ResourceIndex {
  entries: IndexEntry[];
  sortKeys: Record<string, SortKey>;
  /**
   * The patients the resource belongs to, as OwnershipRule derives them from `entries` (usually
   * one; none for resources outside any patient's record; several is rare).
   */
  patients: string[];
}

/**
 * How the layers above derive a resource's patients from its index entries: a resource of
 * `ownerType` is its own; any other belongs to the `ownerType` targets of its reference entries
 * of `params(resourceType)`. The indexer applies it to new entries; stores apply it to entries
 * stored before they kept owners (the embedded store's schema 6 → 7 migration).
 */
export interface OwnershipRule {
  ownerType: string;
  params(resourceType: string): string[];
}

/** Position in a history listing: entries strictly older than this one come next. */
export interface HistoryCursor {
  lastUpdated: number;
  resourceType: string;
  id: string;
  versionId: number;
}

export interface HistoryQuery {
  /** Omitted for system history. */
  resourceType?: string;
  /** Only with resourceType: instance history. */
  id?: string;
  /** Without resourceType: versions of these types are left out (types the caller may not read). */
  withoutTypes?: readonly string[];
  /** Only versions with lastUpdated >= since (ms). */
  since?: number;
  /** Only versions with lastUpdated <= at most (ms); used to pin a listing while others write. */
  notAfter?: number;
  after?: HistoryCursor;
  limit: number;
}

export interface WriteRequest {
  resourceType: string;
  id: string;
  /**
   * Renders the encoded body from the version number and timestamp the store assigns, so the
   * stored body can carry meta.versionId/meta.lastUpdated. Undefined writes a tombstone.
   */
  renderBody?: (versionId: number, lastUpdated: number) => string;
  /**
   * The same body as plain data, when it is plain JSON already rendered for the version this
   * write pins (`expectedVersion` + 1) at `lastUpdated`: a store that stamps another time
   * replaces the `"lastUpdated":"..."` it holds (restampJson). A store may then write it on
   * another thread, where a closure cannot go.
   */
  rendered?: { json: string; lastUpdated: number };
  /** Search values of the new version; ignored for tombstones. */
  index?: ResourceIndex;
  /**
   * Optimistic concurrency: the version the writer saw. `null` means "must not exist yet"
   * (no version at all, not even a tombstone). Undefined means "whatever is current".
   */
  expectedVersion?: number | null;
}

/**
 * `json` (a body rendered at `renderedAt`) as stamped at `at` instead: the one
 * `"lastUpdated":"..."` of its meta replaced.
 */
export function restampJson(json: string, renderedAt: number, at: number): string {
  if (renderedAt === at) return json;
  const from = `"lastUpdated":"${new Date(renderedAt).toISOString()}"`;
  const place = json.indexOf(from);
  if (place < 0) throw new Error('a rendered body lost its meta.lastUpdated');
  return `${json.slice(0, place)}"lastUpdated":"${new Date(at).toISOString()}"${json.slice(place + from.length)}`;
}

/**
 * The body a store writes for `request` as version `versionId` at `lastUpdated`: the rendered
 * one (restamped) when there is one, which is for this version since the write pins the one
 * before it; else what renderBody makes; undefined for a tombstone.
 */
export function bodyToWrite(request: WriteRequest, versionId: number, lastUpdated: number): string | undefined {
  const { rendered } = request;
  if (rendered && request.expectedVersion !== undefined) return restampJson(rendered.json, rendered.lastUpdated, lastUpdated);
  return request.renderBody?.(versionId, lastUpdated);
}

/**
 * Thrown by search and count when the store cannot run a query this large (the embedded
 * store's statement limits): the query asked too much, which the layers above answer as such.
 */
export class SearchTooLargeError extends Error {
  constructor() {
    super('the search is too large for the store to run');
    this.name = 'SearchTooLargeError';
  }
}

/** Thrown when expectedVersion does not match what is stored. */
export class VersionConflictError extends Error {
  constructor(
    readonly resourceType: string,
    readonly id: string,
    readonly currentVersion: number | null,
  ) {
    super(`version conflict on ${resourceType}/${id}`);
    this.name = 'VersionConflictError';
  }
}

/**
 * What another thread of this process needs to open the same store as a store of its own
 * (`openSharedStore` in open-store.ts). Structured-cloneable, so it can be posted to a worker.
 */
export interface StoreShare {
  kind: string;
  settings: unknown;
}

export interface ResourceStore {
  readonly kind: string;
  /**
   * Present when another thread may open this store too (a database file, not one held in
   * memory), and writes from both are kept from stalling each other.
   */
  readonly share?: StoreShare;
  /**
   * True when `writeMany` is all or none (the embedded store: one SQL transaction), so FHIR
   * transactions can rely on it; absent or false when a failure may leave earlier writes in.
   */
  readonly atomicWriteMany?: boolean;
  /** The newest version, tombstone included; undefined if the resource never existed. */
  readCurrent(resourceType: string, id: string): Promise<StoredVersion | undefined>;
  readVersion(resourceType: string, id: string, versionId: number): Promise<StoredVersion | undefined>;
  /** What readCurrent says of the newest version, without its body (optional: cheaper where a store can). */
  readHead?(resourceType: string, id: string): Promise<Omit<StoredVersion, 'body'> | undefined>;
  /** Appends one version atomically; versionId is current + 1 (1 for a new resource). */
  write(request: WriteRequest): Promise<StoredVersion>;
  /**
   * Appends several versions in order, as if written one after another by `write`, answering
   * them in the same order. The embedded store commits them in one transaction: all or none.
   * A store without multi-document transactions (MongoDB adapter on FerretDB) writes them as an
   * ordered batch: on failure the versions before the failing request stay written and none
   * after it are; the promise rejects with the failing request's error.
   */
  writeMany(requests: WriteRequest[]): Promise<StoredVersion[]>;
  /** Current, non-deleted resources matching the query, in sort order. */
  search(query: SearchQuery): Promise<SearchHit[]>;
  /** How many current, non-deleted resources match (sort, cursors and limit do not apply). */
  count(query: Pick<SearchQuery, 'resourceTypes' | 'where'>): Promise<number>;
  /**
   * Replaces the index of a resource's current version (after the search definitions changed);
   * does nothing when `versionId` is no longer current.
   */
  reindex(resourceType: string, id: string, versionId: number, index: ResourceIndex): Promise<void>;
  /** Versions newest first (lastUpdated, then type, id, version, all descending). */
  history(query: HistoryQuery): Promise<StoredVersion[]>;
  countHistory(query: Omit<HistoryQuery, 'after' | 'limit'>): Promise<number>;
  close(): Promise<void>;
}
