import type { AuditEvent } from 'fhir/r4.js';
import { indexResource } from '../fhir/search/indexer.js';
import type { BodyCodec } from '../store/codec.js';
import type { HistoryQuery, ResourceStore, SearchCriterion, SearchCursor, SearchQuery } from '../store/port.js';
import { sequenceOfId } from './audit-chain.js';

/**
 * The search index of the audit trail, written behind the trail itself.
 *
 * Every request appends an AuditEvent before its answer leaves. On the embedded store most of
 * that append's cost was the event's ~20 search index entries: each lands on its own index page,
 * and every small group commit rewrote those pages (a backend client's reads went from about
 * 6,100 to 1,800 per second). So the trail is written with the request (the body, its version
 * and its place in the hash chain: what makes the record durable and tamper-evident), and the
 * index entries of many events follow in one commit, a fraction of a second later.
 *
 * Nobody can see the lag: every query that can reach AuditEvents (by type, by a chain or
 * `_has` through them, or a system-wide search) first waits until every event recorded so far
 * is indexed (`seeingRecordedAudits`). After a crash, the events written but not yet indexed are
 * the newest ones of the chain; `recover` indexes them at the next start.
 */

export interface AuditIndexOptions {
  /** The local base URL, for indexing references. */
  localBase: string;
  /** Index at the latest this long after an event was recorded (default 100 ms). */
  delayMs?: number;
  /** Index at once when this many events wait (default 250). */
  maxPending?: number;
  /** Most events indexed in one commit (default 250). */
  chunk?: number;
}

const AUDIT = 'AuditEvent';
/** Every event the log writes has `recorded`, so one without a `date` entry is not yet indexed. */
const INDEXED_MARK = 'date';
const RECOVERY_PAGE = 500;
/**
 * Events indexed in one commit. Each commit runs on the request thread (about 120 us per event
 * on 2 cores), so this bounds how long requests wait behind it: about 30 ms.
 */
const CHUNK = 250;

export class AuditIndexer implements AuditIndexProgress {
  private pending: AuditEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The indexing run in progress, if any; runs never overlap. */
  private running: Promise<void> = Promise.resolve();
  private readonly delayMs: number;
  private readonly maxPending: number;
  private readonly chunk: number;

  constructor(
    private readonly store: ResourceStore,
    private readonly codec: BodyCodec,
    private readonly options: AuditIndexOptions,
  ) {
    this.delayMs = options.delayMs ?? 100;
    this.maxPending = options.maxPending ?? CHUNK;
    this.chunk = options.chunk ?? CHUNK;
  }

  /** Events just stored (as version 1, without index entries), to index soon. */
  add(events: AuditEvent[]): void {
    this.pending.push(...events);
    if (this.pending.length >= this.maxPending) {
      void this.catchUp().catch(() => undefined);
    } else if (!this.timer) {
      // A failure here is retried by the next run; a search waiting on it sees the error.
      this.timer = setTimeout(() => void this.catchUp().catch(() => undefined), this.delayMs);
      this.timer.unref();
    }
  }

  /** Resolves once every event added so far is indexed; rejects if that could not be done. */
  catchUp(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const run = this.running.catch(() => undefined).then(() => this.indexPending());
    this.running = run;
    return run;
  }

  private async indexPending(): Promise<void> {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      await this.index(batch);
    } catch (error) {
      // Kept for the next run, ahead of what arrived meanwhile.
      this.pending = [...batch, ...this.pending];
      throw error;
    }
  }

  private async index(events: AuditEvent[]): Promise<void> {
    for (let start = 0; start < events.length; start += this.chunk) {
      // A chunk is started in one turn of the event loop, so the embedded store commits it together.
      await Promise.all(
        events
          .slice(start, start + this.chunk)
          .map((event) =>
            this.store.reindex(AUDIT, event.id!, 1, indexResource(event as unknown as Record<string, unknown> & { resourceType: string }, { localBase: this.options.localBase })),
          ),
      );
    }
  }

  /**
   * Indexes the events a crash left unindexed: walking back from the newest record, page by
   * page, until a page has none. Returns how many it indexed.
   */
  async recover(): Promise<number> {
    let recovered = 0;
    let after: SearchCursor | undefined;
    for (;;) {
      const page = await this.store.search({ resourceTypes: [AUDIT], where: [], sort: [{ param: '_id', descending: true }], limit: RECOVERY_PAGE, ...(after && { after }) });
      const ids = page.map((hit) => hit.version.id).filter((id) => sequenceOfId(id) !== undefined);
      const unindexed =
        ids.length === 0
          ? []
          : await this.store.search({
              resourceTypes: [AUDIT],
              where: [{ kind: 'id', ids }, { kind: 'missing', param: INDEXED_MARK, missing: true }],
              sort: [{ param: '_id', descending: false }],
              limit: ids.length,
            });
      const events = unindexed.filter((hit) => hit.version.body !== undefined && hit.version.versionId === 1).map((hit) => JSON.parse(this.codec.decode(hit.version.body!)) as AuditEvent);
      if (events.length > 0) await this.index(events);
      recovered += events.length;
      if (events.length === 0 || page.length < RECOVERY_PAGE) return recovered;
      after = page[page.length - 1]!.cursor;
    }
  }

  /** Indexes what is pending (at shutdown). */
  async close(): Promise<void> {
    await this.catchUp();
  }
}

/** Whether a query can match or pass through AuditEvents. */
export function queryReaches(query: Pick<SearchQuery, 'resourceTypes' | 'where'>, type: string): boolean {
  return query.resourceTypes.includes(type) || query.where.some((c) => criterionReaches(c, type));
}

function criterionReaches(criterion: SearchCriterion, type: string): boolean {
  switch (criterion.kind) {
    case 'not':
      return criterionReaches(criterion.criterion, type);
    case 'or':
      return criterion.anyOf.some((all) => all.some((c) => criterionReaches(c, type)));
    case 'references':
      return criterion.targetType === type || criterion.where.some((c) => criterionReaches(c, type));
    case 'referencedBy':
      return criterion.sourceType === type || criterion.where.some((c) => criterionReaches(c, type));
    default:
      return false;
  }
}

/** What searches wait on: an AuditIndexer in this thread, or the audit thread's (AuditWorker). */
export interface AuditIndexProgress {
  /** Resolves once every event recorded so far is indexed; rejects if that could not be done. */
  catchUp(): Promise<void>;
}

/** Whether a history listing can hold AuditEvents: theirs, or the system's unless it leaves them out. */
const historyReaches = (query: Omit<HistoryQuery, 'limit'>) => (query.resourceType === undefined ? !query.withoutTypes?.includes(AUDIT) : query.resourceType === AUDIT);

/**
 * The store as requests must see it: whatever can reach AuditEvents (a search or count by type,
 * chain or `_has`, or system-wide; a read of one; their history or the system's) first waits
 * until every event recorded so far is indexed, or, journaled (see audit-journal.ts), stored.
 */
export function seeingRecordedAudits(store: ResourceStore, progress: AuditIndexProgress): ResourceStore {
  const waitFor = async (reaches: boolean) => {
    if (reaches) await progress.catchUp();
  };
  return {
    kind: store.kind,
    ...(store.atomicWriteMany !== undefined && { atomicWriteMany: store.atomicWriteMany }),
    readCurrent: async (type, id) => {
      await waitFor(type === AUDIT);
      return store.readCurrent(type, id);
    },
    readVersion: async (type, id, versionId) => {
      await waitFor(type === AUDIT);
      return store.readVersion(type, id, versionId);
    },
    write: (request) => store.write(request),
    writeMany: (requests) => store.writeMany(requests),
    search: async (query) => {
      await waitFor(queryReaches(query, AUDIT));
      return store.search(query);
    },
    count: async (query) => {
      await waitFor(queryReaches(query, AUDIT));
      return store.count(query);
    },
    reindex: (type, id, versionId, index) => store.reindex(type, id, versionId, index),
    history: async (query) => {
      await waitFor(historyReaches(query));
      return store.history(query);
    },
    countHistory: async (query) => {
      await waitFor(historyReaches(query));
      return store.countHistory(query);
    },
    close: () => store.close(),
  };
}
