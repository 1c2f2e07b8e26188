import { plainJsonCodec, type BodyCodec } from '../../store/codec.js';
import {
  bodyToWrite,
  restampJson,
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
 * transaction are judged against the database as it was before the transaction (its own
 * creates are not yet searchable, its updates and deletes not seen), and its GET listings are
 * run again after the commit (see BundleProcessor.transaction). Letting searches see staged
 * writes is no small change: either the search IR (criteria,
 * chains and _has across staged and stored resources, sort keys, cursors, counts) evaluated
 * over the staged index entries and merged with the store's answer, minus what the staging
 * superseded; or the searches run inside the commit's SQL transaction, which needs a
 * synchronous search path on the connection that commits (searches are asynchronous and share
 * the request thread's connection with every other request, so an open transaction across
 * them would show other requests uncommitted rows).
 */

interface Staged {
  version: Omit<StoredVersion, 'body'>;
  /** The encoded body as staged: a string is a far smaller copy than the parsed resource and its index. */
  body?: string;
}

/**
 * The staged body with the timestamp the store gives at commit (meta.lastUpdated is the one
 * place a staged body differs from the committed one; the version number is pinned).
 */
function restamp(codec: BodyCodec, body: string, staged: number, final: number): string {
  if (staged === final) return body;
  return codec.encode(restampJson(codec.decode(body), staged, final));
}

const key = (resourceType: string, id: string) => `${resourceType}/${id}`;

/**
 * The first writes of a transaction keep their index objects: turning them into text and back
 * cost about 9 % of the request thread's time when loading 500-entry transactions. Past this
 * many, a 10,000-entry transaction keeps text (object graphs for all of it strained the heap).
 */
const PARSED_INDEXES_KEPT = 1000;

export class StagingStore implements ResourceStore {
  readonly kind: string;
  private readonly staged = new Map<string, Staged[]>();
  private readonly requests: WriteRequest[] = [];

  constructor(
    private readonly base: ResourceStore,
    private readonly codec: BodyCodec,
  ) {
    this.kind = base.kind;
  }

  /** How many writes are waiting for the commit. */
  get size(): number {
    return this.requests.length;
  }

  private body(staged: Staged): StoredVersion {
    const stored: StoredVersion = { ...staged.version };
    if (staged.body !== undefined) stored.body = staged.body;
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

  /** The newest version's number and time, staged or (unless `stagedOnly`) stored; a write needs no body. */
  private async head(resourceType: string, id: string, stagedOnly = false): Promise<Omit<StoredVersion, 'body'> | undefined> {
    const versions = this.staged.get(key(resourceType, id));
    if (versions) return versions[versions.length - 1]!.version;
    if (stagedOnly) return undefined;
    return this.base.readHead ? this.base.readHead(resourceType, id) : this.base.readCurrent(resourceType, id);
  }

  async write(request: WriteRequest): Promise<StoredVersion> {
    const { resourceType, id } = request;
    // A create (nothing may exist yet) is not looked up in the store: its id is one the server
    // just drew, and should it exist after all, the commit, pinned to "none", fails whole.
    const current = await this.head(resourceType, id, request.expectedVersion === null);
    const seen = current?.versionId ?? null;
    if (request.expectedVersion !== undefined && request.expectedVersion !== seen) {
      throw new VersionConflictError(resourceType, id, seen);
    }
    const versionId = (seen ?? 0) + 1;
    const lastUpdated = Math.max(Date.now(), current?.lastUpdated ?? 0);
    const body = bodyToWrite(request, versionId, lastUpdated);
    const staged: Staged = { version: { resourceType, id, versionId, lastUpdated, deleted: body === undefined }, ...(body !== undefined && { body }) };
    const list = this.staged.get(key(resourceType, id)) ?? [];
    list.push(staged);
    this.staged.set(key(resourceType, id), list);
    const codec = this.codec;
    const index = body !== undefined ? request.index : undefined;
    const staging: WriteRequest = {
      resourceType,
      id,
      // Pinned to the version seen here: a concurrent writer before the commit fails the commit.
      expectedVersion: seen,
      ...(body !== undefined && { renderBody: (_version: number, at: number) => restamp(codec, body, lastUpdated, at) }),
      // Plain JSON can also go as data, e.g. to a store's writer thread.
      ...(body !== undefined && codec === plainJsonCodec && { rendered: { json: body, lastUpdated } }),
    };
    if (index && this.requests.length >= PARSED_INDEXES_KEPT) {
      // Kept as text until the commit reads it (one at a time), not as thousands of object graphs.
      const indexJson = JSON.stringify(index);
      Object.defineProperty(staging, 'index', { enumerable: true, get: () => JSON.parse(indexJson) as ResourceIndex });
    } else if (index) {
      staging.index = index;
    }
    this.requests.push(staging);
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
