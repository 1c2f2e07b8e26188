import { MongoBulkWriteError, MongoClient, MongoServerError, type Collection, type Db } from 'mongodb';
import {
  bodyToWrite,
  VersionConflictError,
  type HistoryQuery,
  type OwnershipRule,
  type ResourceIndex,
  type ResourceStore,
  type SearchHit,
  type SearchQuery,
  type StoredVersion,
  type WriteRequest,
} from '../port.js';
import { backfillPatients } from './backfill-patients.js';
import { BODY_CHUNKS, BodyChunks } from './bodies.js';
import { CriteriaCompiler } from './criteria.js';
import {
  CURRENT,
  ENTRIES,
  VERSIONS,
  ensureIndexes,
  entryDocuments,
  resourceKey,
  storedSortKeys,
  versionKey,
  type CurrentDocument,
  type EntryDocument,
  type VersionDocument,
} from './documents.js';
import { HISTORY_ORDER, historyFilter } from './history.js';
import { compareInOrder, cursorFilter, segments, sortFields, valueAt } from './search-order.js';

export interface MongoStoreOptions {
  uri: string;
  /** Defaults to the database named in the URI (the driver's own default otherwise). */
  dbName?: string;
  /** Whose record a resource is: resources stored before patients were kept get them at start-up. */
  ownership?: OwnershipRule;
}

/**
 * Writers that lose the race for a version number without asking for a particular version
 * simply try the next one. Every lost race means another write succeeded, so this bound is
 * only reached by that many writers hammering one resource at the same moment.
 */
const MAX_WRITE_ATTEMPTS = 100;

const DUPLICATE_KEY = 11000;

function isDuplicateKey(error: unknown): boolean {
  if (error instanceof MongoBulkWriteError) {
    const first = [error.writeErrors].flat()[0];
    return (first?.code ?? error.code) === DUPLICATE_KEY;
  }
  return error instanceof MongoServerError && error.code === DUPLICATE_KEY;
}

/** How many documents of an ordered insertMany went in before it failed. */
function insertedBefore(error: unknown, attempted: number): number {
  if (!(error instanceof MongoBulkWriteError)) return 0;
  const indexes = [error.writeErrors].flat().map((e) => e.index);
  return indexes.length > 0 ? Math.min(...indexes) : Math.min(error.insertedCount, attempted);
}

const VERSION_FIELDS = { projection: { _id: 0, sortKeys: 0, patients: 0 } } as const;

export async function openMongoStore(options: MongoStoreOptions): Promise<MongoStore> {
  const client = await MongoClient.connect(options.uri);
  try {
    const db = client.db(options.dbName);
    await ensureIndexes(db);
    if (options.ownership) await backfillPatients(db, options.ownership);
    return new MongoStore(client, db);
  } catch (error) {
    await client.close();
    throw error;
  }
}

export class MongoStore implements ResourceStore {
  readonly kind = 'mongo';
  private readonly versions: Collection<VersionDocument>;
  private readonly current: Collection<CurrentDocument>;
  private readonly entries: Collection<EntryDocument>;
  private readonly bodies: BodyChunks;
  private readonly criteria: CriteriaCompiler;

  /** Use openMongoStore, which also creates the indexes. */
  constructor(
    private readonly client: MongoClient,
    db: Db,
  ) {
    this.versions = db.collection(VERSIONS);
    this.current = db.collection(CURRENT);
    this.entries = db.collection(ENTRIES);
    this.bodies = new BodyChunks(db.collection(BODY_CHUNKS));
    this.criteria = new CriteriaCompiler(this.current, this.entries);
  }

  async readCurrent(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    const newest = await this.newestVersion(resourceType, id);
    return newest && this.toStored(newest);
  }

  async readVersion(resourceType: string, id: string, versionId: number): Promise<StoredVersion | undefined> {
    const doc = await this.versionAt(resourceType, id, versionId);
    return doc && this.toStored(doc);
  }

  async write(request: WriteRequest): Promise<StoredVersion> {
    for (let attempt = 1; ; attempt++) {
      const written = await this.tryAppendVersion(request);
      if (written) {
        if (!written.deleted) await this.insertEntries(written, request.index);
        await this.advanceCurrent(written);
        if (written.versionId > 1) await this.dropEntriesBefore(written);
        return this.toStored(written);
      }
      if (request.expectedVersion !== undefined) throw await this.conflict(request);
      if (attempt === MAX_WRITE_ATTEMPTS) {
        throw new Error(`gave up writing ${request.resourceType}/${request.id} after ${attempt} lost races`);
      }
    }
  }

  /**
   * An ordered batch: the version documents go in with one ordered insertMany, then their search
   * entries with one insertMany and their pointers. Without multi-document transactions this is
   * not all-or-none: when a request fails (a version conflict, a lost race that cannot be
   * retried, an error), the versions before it are completed and kept, none after it are
   * written, and the promise rejects with that request's error. A request without an expected
   * version that loses a race is retried from there, as `write` does.
   */
  async writeMany(requests: WriteRequest[]): Promise<StoredVersion[]> {
    const written: VersionDocument[] = [];
    // One resource twice in a batch: its later version builds on the earlier, so go in turn.
    if (new Set(requests.map((r) => resourceKey(r.resourceType, r.id))).size < requests.length) {
      const stored: StoredVersion[] = [];
      for (const request of requests) stored.push(await this.write(request));
      return stored;
    }
    let rest = requests;
    for (let attempt = 1; rest.length > 0; attempt++) {
      const prepared = await Promise.allSettled(rest.map(async (request) => this.versionDocument(request, await this.predecessor(request))));
      const firstRefused = prepared.findIndex((p) => p.status === 'rejected');
      const docs = (firstRefused === -1 ? prepared : prepared.slice(0, firstRefused)).map((p) => (p as PromiseFulfilledResult<VersionDocument>).value);
      // Bodies prepared for requests after a refused one are never written.
      const unused = firstRefused === -1 ? [] : prepared.slice(firstRefused + 1).flatMap((p) => (p.status === 'fulfilled' ? [p.value] : []));
      await Promise.all(unused.map((doc) => this.bodies.discard(doc).catch(() => undefined)));
      let inserted = docs.length;
      let failure: unknown;
      if (docs.length > 0) {
        try {
          await this.versions.insertMany(docs, { ordered: true });
        } catch (error) {
          failure = error;
          inserted = insertedBefore(error, docs.length);
          await Promise.all(docs.slice(inserted).map((doc) => this.bodies.discard(doc).catch(() => undefined)));
        }
      }
      await this.complete(docs.slice(0, inserted), rest);
      written.push(...docs.slice(0, inserted));
      if (failure === undefined && firstRefused === -1) break;
      if (failure === undefined) throw (prepared[firstRefused] as PromiseRejectedResult).reason;
      const failed = rest[inserted]!;
      if (!isDuplicateKey(failure)) throw failure;
      if (failed.expectedVersion !== undefined) throw await this.conflict(failed);
      if (attempt === MAX_WRITE_ATTEMPTS) {
        throw new Error(`gave up writing ${failed.resourceType}/${failed.id} after ${attempt} lost races`);
      }
      rest = rest.slice(inserted);
    }
    return Promise.all(written.map((doc) => this.toStored(doc)));
  }

  /** Search entries and pointers for freshly inserted versions (what `write` does after its insert). */
  private async complete(docs: VersionDocument[], requests: WriteRequest[]): Promise<void> {
    if (docs.length === 0) return;
    const entries = docs.flatMap((doc, i) => (doc.deleted ? [] : entryDocuments(doc, requests[i]!.index)));
    if (entries.length > 0) await this.entries.insertMany(entries);
    // A first version's pointer can be inserted outright: an insert never overwrites a newer
    // pointer, so it needs no re-check. The rest, and any insert that finds a pointer, take
    // the guarded path.
    const first = docs.filter((doc) => doc.versionId === 1);
    const later = docs.filter((doc) => doc.versionId > 1);
    let refused: VersionDocument[] = [];
    if (first.length > 0) {
      try {
        await this.current.insertMany(first.map((doc) => this.pointerOf(doc)), { ordered: false });
      } catch (error) {
        if (!(error instanceof MongoBulkWriteError)) throw error;
        const failed = new Set([error.writeErrors].flat().map((e) => e.index));
        refused = first.filter((_, i) => failed.has(i));
      }
    }
    await Promise.all([...refused, ...later].map((doc) => this.advanceCurrent(doc)));
    await Promise.all(later.map((doc) => this.dropEntriesBefore(doc)));
  }

  async search(query: SearchQuery): Promise<SearchHit[]> {
    if (query.limit <= 0 || query.resourceTypes.length === 0) return [];
    const fields = sortFields(query.sort);
    const forward = query.before === undefined;
    const cursor = query.before ?? query.after;
    const matching = await this.matching(query);
    const pages = await Promise.all(
      segments(fields, forward).map(({ filter, sort }) =>
        this.current
          .find({ $and: [matching, filter, ...(cursor ? [cursorFilter(fields, cursor, forward)] : [])] })
          .sort(sort)
          .limit(query.limit)
          .toArray(),
      ),
    );
    const rows = pages.flat().sort(compareInOrder(fields, forward)).slice(0, query.limit);
    // A backward page was read in reverse order.
    if (!forward) rows.reverse();
    const docs = await this.versions.find({ _id: { $in: rows.map((row) => row.versionKey) } }).toArray();
    const byKey = new Map(docs.map((doc) => [doc._id, doc]));
    return Promise.all(
      rows.flatMap((row) => {
        const doc = byKey.get(row.versionKey);
        if (!doc) return [];
        const keys = fields.map(({ path }) => valueAt(row, path));
        return [this.toStored(doc).then((version) => ({ version, cursor: { resourceType: row.resourceType, id: row.id, keys } }))];
      }),
    );
  }

  async count(query: Pick<SearchQuery, 'resourceTypes' | 'where'>): Promise<number> {
    if (query.resourceTypes.length === 0) return 0;
    return this.current.countDocuments(await this.matching(query));
  }

  async reindex(resourceType: string, id: string, versionId: number, index: ResourceIndex): Promise<void> {
    const pointer = await this.current.findOne({ _id: resourceKey(resourceType, id) });
    if (!pointer || pointer.deleted || pointer.versionId !== versionId) return;
    const version = await this.versionAt(resourceType, id, versionId);
    if (!version) return;
    // New entries first, then the old ones go: a search in between sees both, never neither.
    const previous = await this.entries.find({ owner: version._id }, { projection: { _id: 1 } }).toArray();
    await this.insertEntries(version, index);
    await this.entries.deleteMany({ _id: { $in: previous.map((entry) => entry._id) } });
    const sortKeys = storedSortKeys(index);
    const patients = [...new Set(index.patients)];
    await this.versions.updateOne({ _id: version._id }, { $set: { sortKeys, patients } });
    await this.current.updateOne({ _id: pointer._id, versionId }, { $set: { sortKeys, patients } });
  }

  async history(query: HistoryQuery): Promise<StoredVersion[]> {
    if (query.limit <= 0) return [];
    const docs = await this.versions
      .find(historyFilter(query), VERSION_FIELDS)
      .sort(HISTORY_ORDER)
      .limit(query.limit)
      .toArray();
    return Promise.all(docs.map((doc) => this.toStored(doc)));
  }

  async countHistory(query: Omit<HistoryQuery, 'after' | 'limit'>): Promise<number> {
    return this.versions.countDocuments(historyFilter(query));
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private async matching(query: Pick<SearchQuery, 'resourceTypes' | 'where'>) {
    const types = query.resourceTypes;
    return { resourceType: { $in: types }, deleted: false, ...(await this.criteria.all(query.where, types)) };
  }

  private async toStored(doc: Omit<VersionDocument, '_id' | 'sortKeys' | 'patients'>): Promise<StoredVersion> {
    const stored: StoredVersion = {
      resourceType: doc.resourceType,
      id: doc.id,
      versionId: doc.versionId,
      lastUpdated: doc.lastUpdated,
      deleted: doc.deleted,
    };
    const body = await this.bodies.load(doc);
    if (body !== undefined) stored.body = body;
    return stored;
  }

  private async versionAt(resourceType: string, id: string, versionId: number): Promise<VersionDocument | undefined> {
    return (await this.versions.findOne({ _id: versionKey(resourceType, id, versionId) })) ?? undefined;
  }

  /** Starts from the pointer, which is never ahead of the versions, and looks past it. */
  private async newestVersion(resourceType: string, id: string): Promise<VersionDocument | undefined> {
    const pointer = await this.current.findOne(
      { _id: resourceKey(resourceType, id) },
      { projection: { _id: 0, versionId: 1 } },
    );
    const pointed = pointer?.versionId ?? 0;
    const [atPointer, later] = await Promise.all([
      pointed > 0 ? this.versionAt(resourceType, id, pointed) : undefined,
      this.newestAfter(resourceType, id, pointed),
    ]);
    return later ?? atPointer;
  }

  /** The newest version numbered above `versionId`, if any; numbers have no gaps, so count up. */
  private async newestAfter(resourceType: string, id: string, versionId: number): Promise<VersionDocument | undefined> {
    let newest: VersionDocument | undefined;
    for (let next = versionId + 1; ; next++) {
      const doc = await this.versionAt(resourceType, id, next);
      if (!doc) return newest;
      newest = doc;
    }
  }

  private async conflict({ resourceType, id }: WriteRequest): Promise<VersionConflictError> {
    const newest = await this.newestVersion(resourceType, id);
    return new VersionConflictError(resourceType, id, newest?.versionId ?? null);
  }

  /**
   * The version to write after. With an expected version that is exactly that one, and the
   * insert of its successor checks that it is still the newest (numbers have no gaps, so
   * "nothing yet" means version 1 is free).
   */
  private async predecessor(request: WriteRequest): Promise<VersionDocument | undefined> {
    const { resourceType, id, expectedVersion } = request;
    if (expectedVersion === undefined) return this.newestVersion(resourceType, id);
    if (expectedVersion === null) return undefined;
    const expected = await this.versionAt(resourceType, id, expectedVersion);
    if (!expected) throw await this.conflict(request);
    return expected;
  }

  /** Inserts the next version, or returns undefined if another writer took that number first. */
  private async tryAppendVersion(request: WriteRequest): Promise<VersionDocument | undefined> {
    const doc = await this.versionDocument(request, await this.predecessor(request));
    try {
      await this.versions.insertOne(doc);
      return doc;
    } catch (error) {
      // Best effort: chunks nobody refers to are only wasted space.
      await this.bodies.discard(doc).catch(() => undefined);
      if (isDuplicateKey(error)) return undefined;
      throw error;
    }
  }

  /** The version document that follows `previous`, its body's chunks (if any) already written. */
  private async versionDocument(request: WriteRequest, previous: VersionDocument | undefined): Promise<VersionDocument> {
    const { resourceType, id } = request;
    const versionId = (previous?.versionId ?? 0) + 1;
    // Never let a version look older than its predecessor, even if the clock steps back.
    const lastUpdated = Math.max(Date.now(), previous?.lastUpdated ?? 0);
    const body = bodyToWrite(request, versionId, lastUpdated);
    return {
      _id: versionKey(resourceType, id, versionId),
      resourceType,
      id,
      versionId,
      lastUpdated,
      deleted: body === undefined,
      ...(await this.bodies.store(body)),
      sortKeys: body === undefined ? {} : storedSortKeys(request.index),
      patients: body === undefined ? [] : [...new Set(request.index?.patients ?? [])],
    };
  }

  private pointerOf(version: VersionDocument): CurrentDocument {
    const { resourceType, id, versionId, deleted, lastUpdated, sortKeys, patients } = version;
    return { _id: resourceKey(resourceType, id), resourceType, id, versionId, versionKey: version._id, deleted, lastUpdated, sortKeys, patients };
  }

  private async insertEntries(version: VersionDocument, index: ResourceIndex | undefined): Promise<void> {
    const entries = entryDocuments(version, index);
    if (entries.length > 0) await this.entries.insertMany(entries);
  }

  /** Entries of older versions can never match again (no pointer goes back to them for good). */
  private async dropEntriesBefore({ resourceType, id, versionId }: VersionDocument): Promise<void> {
    await this.entries.deleteMany({ resourceType, id, versionId: { $lt: versionId } });
  }

  /**
   * Leaves resource_current at the newest version. On MongoDB the guarded write in
   * writePointer never moves it backwards; FerretDB 1.x checks the guard and updates in two
   * steps, so a slower writer can overwrite a newer pointer. Hence every writer re-checks
   * after writing and catches up if a newer version exists: the last pointer write is always
   * followed by a check that sees the newest version.
   */
  private async advanceCurrent(written: VersionDocument): Promise<void> {
    for (let target: VersionDocument | undefined = written; target; ) {
      await this.writePointer(target);
      target = await this.newestAfter(target.resourceType, target.id, target.versionId);
    }
  }

  private async writePointer(version: VersionDocument): Promise<void> {
    const { resourceType, id, versionId, deleted, lastUpdated, sortKeys, patients } = version;
    const _id = resourceKey(resourceType, id);
    const fields = { resourceType, id, versionId, versionKey: version._id, deleted, lastUpdated, sortKeys, patients };
    const olderPointer = { _id, versionId: { $lt: versionId } };
    try {
      // A first version has no older pointer to guard against, and a plain insert spares
      // FerretDB the full decode of the collection that a guarded upsert costs it.
      if (versionId === 1) await this.current.insertOne({ _id, ...fields });
      else await this.current.updateOne(olderPointer, { $set: fields }, { upsert: true });
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      // A pointer exists that the guard did not match (it is not older), or a concurrent
      // first write inserted one meanwhile; a plain guarded update settles which.
      await this.current.updateOne(olderPointer, { $set: fields });
    }
  }
}
