import {
  VersionConflictError,
  type HistoryQuery,
  type ResourceIndex,
  type ResourceStore,
  type SearchHit,
  type SearchQuery,
  type StoredVersion,
  type WriteRequest,
} from '../../store/port.js';

/**
 * A transaction's view of the store: writes are buffered (with the version number they will
 * get) and reads of those resources see them, until `commit` hands every buffered write to the
 * real store in one `writeMany`. Nothing reaches the real store before that, so a transaction
 * that fails half-way leaves no trace.
 *
 * Searches, counts and history read the real store only: conditional criteria inside a
 * transaction are judged against the database as it was before the transaction (the
 * transaction's own creates are not yet searchable).
 */

interface Staged {
  version: Omit<StoredVersion, 'body'>;
  /** Rendered on demand: keeping only the closure holds one copy of the resource, not two. */
  renderBody?: (versionId: number, lastUpdated: number) => string;
}

const key = (resourceType: string, id: string) => `${resourceType}/${id}`;

export class StagingStore implements ResourceStore {
  readonly kind: string;
  private readonly staged = new Map<string, Staged[]>();
  private readonly requests: WriteRequest[] = [];

  constructor(private readonly base: ResourceStore) {
    this.kind = base.kind;
  }

  /** How many writes are waiting for the commit. */
  get size(): number {
    return this.requests.length;
  }

  private body(staged: Staged): StoredVersion {
    const stored: StoredVersion = { ...staged.version };
    if (staged.renderBody) stored.body = staged.renderBody(stored.versionId, stored.lastUpdated);
    return stored;
  }

  async readCurrent(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    const versions = this.staged.get(key(resourceType, id));
    if (versions) return this.body(versions[versions.length - 1]!);
    return this.base.readCurrent(resourceType, id);
  }

  async readVersion(resourceType: string, id: string, versionId: number): Promise<StoredVersion | undefined> {
    const staged = this.staged.get(key(resourceType, id))?.find((s) => s.version.versionId === versionId);
    return staged ? this.body(staged) : this.base.readVersion(resourceType, id, versionId);
  }

  async write(request: WriteRequest): Promise<StoredVersion> {
    const { resourceType, id } = request;
    const current = await this.readCurrent(resourceType, id);
    const seen = current?.versionId ?? null;
    if (request.expectedVersion !== undefined && request.expectedVersion !== seen) {
      throw new VersionConflictError(resourceType, id, seen);
    }
    const versionId = (seen ?? 0) + 1;
    const lastUpdated = Math.max(Date.now(), current?.lastUpdated ?? 0);
    const staged: Staged = { version: { resourceType, id, versionId, lastUpdated, deleted: request.renderBody === undefined } };
    if (request.renderBody) staged.renderBody = request.renderBody;
    const list = this.staged.get(key(resourceType, id)) ?? [];
    list.push(staged);
    this.staged.set(key(resourceType, id), list);
    // Pinned to the version seen here: a concurrent writer before the commit fails the commit.
    this.requests.push({ ...request, expectedVersion: seen });
    return this.body(staged);
  }

  async writeMany(requests: WriteRequest[]): Promise<StoredVersion[]> {
    const stored: StoredVersion[] = [];
    for (const request of requests) stored.push(await this.write(request));
    return stored;
  }

  /** Writes everything buffered in one all-or-none `writeMany`; answers the stored versions in write order. */
  async commit(): Promise<StoredVersion[]> {
    const requests = this.requests.splice(0);
    this.staged.clear();
    return this.base.writeMany(requests);
  }

  search(query: SearchQuery): Promise<SearchHit[]> {
    return this.base.search(query);
  }

  count(query: Pick<SearchQuery, 'resourceTypes' | 'where'>): Promise<number> {
    return this.base.count(query);
  }

  reindex(resourceType: string, id: string, versionId: number, index: ResourceIndex): Promise<void> {
    return this.base.reindex(resourceType, id, versionId, index);
  }

  history(query: HistoryQuery): Promise<StoredVersion[]> {
    return this.base.history(query);
  }

  countHistory(query: Omit<HistoryQuery, 'after' | 'limit'>): Promise<number> {
    return this.base.countHistory(query);
  }

  /** The real store belongs to the server; a staging overlay has nothing of its own to close. */
  async close(): Promise<void> {}
}
