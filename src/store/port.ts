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
 * A normalised search value stored beside a resource at write time. Token values carry a
 * system and a code; searches compare against these, never against bodies.
 */
export interface TokenIndexEntry {
  param: string;
  system: string | null;
  code: string;
}

export interface ResourceIndex {
  tokens: TokenIndexEntry[];
}

/** One alternative of a token criterion: `code`, `system|code`, `|code` (system null), `system|`. */
export interface TokenMatch {
  /** undefined: any system; null: no system. */
  system?: string | null;
  /** undefined: any code in the system. */
  code?: string;
}

/** A store-neutral criterion. A query is the AND of its criteria; each criterion ORs its values. */
export type Criterion =
  | { kind: 'id'; ids: string[] }
  | { kind: 'token'; param: string; anyOf: TokenMatch[] };

export interface CurrentQuery {
  resourceType: string;
  where: Criterion[];
  /** Maximum number of matches to return. */
  limit: number;
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
  /** Search values of the new version; ignored for tombstones. */
  index?: ResourceIndex;
  /**
   * Optimistic concurrency: the version the writer saw. `null` means "must not exist yet"
   * (no version at all, not even a tombstone). Undefined means "whatever is current".
   */
  expectedVersion?: number | null;
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

export interface ResourceStore {
  readonly kind: string;
  /** The newest version, tombstone included; undefined if the resource never existed. */
  readCurrent(resourceType: string, id: string): Promise<StoredVersion | undefined>;
  readVersion(resourceType: string, id: string, versionId: number): Promise<StoredVersion | undefined>;
  /** Appends one version atomically; versionId is current + 1 (1 for a new resource). */
  write(request: WriteRequest): Promise<StoredVersion>;
  /** Current, non-deleted resources of one type matching every criterion. */
  findCurrent(query: CurrentQuery): Promise<StoredVersion[]>;
  /** Versions newest first (lastUpdated, then type, id, version, all descending). */
  history(query: HistoryQuery): Promise<StoredVersion[]>;
  countHistory(query: Omit<HistoryQuery, 'after' | 'limit'>): Promise<number>;
  close(): Promise<void>;
}
