import type { AuditEvent } from 'fhir/r4.js';
import { indexResource } from '../fhir/search/indexer.js';
import type { BodyCodec } from '../store/codec.js';
import { VersionConflictError, type ResourceStore, type WriteRequest } from '../store/port.js';
import { chainFieldsOf, readChainHead, sealAuditEvent, type ChainHead } from './audit-chain.js';
import type { AuditIndexer } from './audit-index.js';
import type { JournalLine } from './audit-journal.js';
import { auditEventOf } from './audit-event.js';
import type { AccessEvent, AccessRecorder } from './events.js';

export { verifyAuditChain, type ChainVerification } from './audit-chain.js';

/**
 * The audit trail: every access event becomes an AuditEvent (see audit-event.ts), stored as an
 * ordinary resource with its search index so auditors can search it (written with it, or just
 * behind it by an AuditIndexer: see audit-index.ts), and sealed into one hash chain (see
 * audit-chain.ts).
 *
 * Group commit: `record` queues the event; one writer at a time takes everything queued (up to
 * `maxBatch`), chains it in queue order and appends it with one `writeMany` (one transaction on
 * the embedded store), then settles every caller. So concurrent requests share a commit instead
 * of each waiting for its own. `record` resolves only once its AuditEvent is stored, and rejects
 * when it could not be (the request must then fail).
 *
 * Several server processes may share one store: ids are the sequence numbers, written with
 * `expectedVersion: null`, so two writers can never both take a number; the loser re-reads the
 * end of the chain and tries again after it.
 */

export interface AuditLogOptions {
  /** This server's base URL (the audit source, and the local base for indexing references). */
  baseUrl: string;
  /** A name for this server in AuditEvent.source.observer; defaults to the base URL. */
  observerName?: string;
  /** Most events written in one store transaction (default 500). */
  maxBatch?: number;
  /** The clock for AuditEvent.recorded (tests). */
  clock?: () => Date;
  /**
   * Writes each event's search index behind it (see audit-index.ts) instead of with it. The
   * indexer must be given the same store, and searches must go through `seeingRecordedAudits`.
   */
  indexer?: AuditIndexer;
  /**
   * Told, before each commit of events that came from the audit journal (see audit-journal.ts),
   * the journal line of its last event and that event's id and hash.
   */
  beforeStoring?: (last: { through: JournalLine; id: string; hash: string }) => void;
}

/** Where an event waited before it was stored: when it was recorded, and its line. */
export interface Journaled {
  recorded: Date;
  at: JournalLine;
}

/** The message of anything thrown, for reports that cross threads or reach the log. */
export const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** An access event that could not be made into an AuditEvent (stored again, it would fail again). */
export class UndescribableEvent extends Error {
  constructor(cause: unknown) {
    super(`the access event cannot be described as an AuditEvent: ${errorMessage(cause)}`);
    this.name = 'UndescribableEvent';
  }
}

interface Pending {
  event: AccessEvent;
  journaled?: Journaled;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Lost races for sequence numbers with other writers before giving up on a batch. */
const MAX_ATTEMPTS = 20;

export class AuditLog implements AccessRecorder {
  private queue: Pending[] = [];
  private draining = false;
  /** Where the chain ends; undefined until read from the store (again after any failure). */
  private head: ChainHead | undefined;
  private readonly maxBatch: number;

  constructor(
    private readonly store: ResourceStore,
    private readonly codec: BodyCodec,
    private readonly options: AuditLogOptions,
  ) {
    this.maxBatch = options.maxBatch ?? 500;
  }

  /**
   * Reads where the stored chain ends (otherwise done before the first write) and indexes what
   * a crash left unindexed; returns the chain's end.
   */
  async open(): Promise<ChainHead> {
    this.head = await readChainHead(this.store, this.codec);
    await this.options.indexer?.recover();
    return { ...this.head };
  }

  /** Stores the event; `journaled` when it comes from the audit journal. */
  record(event: AccessEvent, journaled?: Journaled): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ event, ...(journaled && { journaled }), resolve, reject });
      if (!this.draining) {
        this.draining = true;
        // Let the callers of this turn of the event loop join the first batch.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        await this.write(batch);
      }
    } finally {
      this.draining = false;
    }
  }

  private async write(batch: Pending[]): Promise<void> {
    // Build each event on its own: one that cannot be described fails alone, not its batch.
    const recorded = this.options.clock?.() ?? new Date();
    let rest: { item: Pending; draft: AuditEvent }[] = [];
    for (const item of batch) {
      try {
        const options = { baseUrl: this.options.baseUrl, recorded: item.journaled?.recorded ?? recorded, ...(this.options.observerName && { observerName: this.options.observerName }) };
        rest.push({ item, draft: auditEventOf(item.event, options) });
      } catch (error) {
        item.reject(new UndescribableEvent(error));
      }
    }
    for (let attempt = 1; rest.length > 0; attempt++) {
      let requests: { request: WriteRequest; hash: string }[] = [];
      let events: AuditEvent[] = [];
      try {
        this.head ??= await readChainHead(this.store, this.codec);
        const chain = this.sealed(
          rest.map((r) => r.draft),
          this.head,
        );
        requests = chain.requests;
        events = chain.events;
        const through = rest[rest.length - 1]!.item.journaled?.at;
        if (through) this.options.beforeStoring?.({ through, id: events[events.length - 1]!.id!, hash: chain.head.hash });
        await this.store.writeMany(requests.map((r) => r.request));
        this.head = chain.head;
        this.options.indexer?.add(events);
        for (const { item } of rest) item.resolve();
        return;
      } catch (error) {
        // Re-read the chain's end before writing again: another writer may have extended it,
        // or (on a store without transactions) the start of this batch may have gone in; those
        // records are stored, so their callers are answered.
        this.head = undefined;
        const done = await this.writtenPrefix(requests).catch(() => 0);
        this.options.indexer?.add(events.slice(0, done));
        for (const { item } of rest.slice(0, done)) item.resolve();
        rest = rest.slice(done);
        if (error instanceof VersionConflictError && attempt < MAX_ATTEMPTS) continue;
        for (const { item } of rest) item.reject(error);
        return;
      }
    }
  }

  /** Chains the events after `head`, in order, as write requests for new AuditEvents. */
  private sealed(drafts: AuditEvent[], head: ChainHead): { requests: { request: WriteRequest; hash: string }[]; events: AuditEvent[]; head: ChainHead } {
    let { sequence, hash } = head;
    const events = drafts.map((draft) => {
      const audit = sealAuditEvent(draft, ++sequence, hash);
      hash = chainFieldsOf(audit).hash!;
      return audit;
    });
    const requests = events.map((audit) => ({ request: this.writeRequest(audit), hash: chainFieldsOf(audit).hash! }));
    return { requests, events, head: { sequence, hash } };
  }

  private writeRequest(audit: AuditEvent): WriteRequest {
    const { resourceType, id, ...rest } = audit;
    const codec = this.codec;
    return {
      resourceType,
      id: id!,
      expectedVersion: null,
      // Without an index the store writes no entries and no sort keys; the indexer adds both.
      ...(!this.options.indexer && { index: indexResource(audit as unknown as Record<string, unknown> & { resourceType: string }, { localBase: this.options.baseUrl }) }),
      renderBody: (versionId, lastUpdated) =>
        codec.encode(JSON.stringify({ resourceType, id, meta: { versionId: String(versionId), lastUpdated: new Date(lastUpdated).toISOString() }, ...rest })),
    };
  }

  /** How many of these requests, from the first, are stored as this log sealed them. */
  private async writtenPrefix(requests: { request: WriteRequest; hash: string }[]): Promise<number> {
    let done = 0;
    for (const { request, hash } of requests) {
      const stored = await this.store.readVersion(request.resourceType, request.id, 1);
      if (!stored?.body || chainFieldsOf(JSON.parse(this.codec.decode(stored.body)) as AuditEvent).hash !== hash) break;
      done++;
    }
    return done;
  }
}
