import type { Worker } from 'node:worker_threads';
import { newModuleThread, ThreadStarter } from '../thread-module.js';
import { releaseSharedStore } from '../store/open-store.js';
import type { StoreShare } from '../store/port.js';
import type { AuditIndexProgress } from './audit-index.js';
import { JournalWriter, nextGeneration, type JournalLine } from './audit-journal.js';
import type { AccessEvent, AccessRecorder } from './events.js';

/**
 * The audit trail written on a thread of its own.
 *
 * Every request appends an AuditEvent, and on the embedded store that append (sealing it into
 * the hash chain, its version, its ~15 search index rows, the commits) was about two thirds of a
 * read's CPU, all on the thread that serves requests. Here the request thread only hands the
 * access event over; a worker thread with its own connection to the same database file runs
 * the AuditLog there, on the other core. Nothing about the trail changes: a request's answer
 * still waits until its event is durable, and a failure still fails the request. Durable means
 * stored (`record` resolves on the thread's word that it committed), or, with a `journal`, in
 * the audit journal (see audit-journal.ts): then `record` resolves once this thread has
 * appended the event there, and the thread stores it a moment later with many others. The
 * thread indexes each event in the commit that stores it, or (`indexBehind`, without a
 * journal) a moment later with many others, as AuditIndexer does on this thread. Either way a
 * request that can reach AuditEvents first asks the thread to catch up (`catchUp`, through
 * seeingRecordedAudits).
 *
 * If the thread dies, what it had not confirmed fails (those requests fail; journaled events
 * are not lost), and the next request starts a new one, which first stores what the journal
 * holds and continues the chain from the store.
 */

export interface AuditThreadData {
  share: StoreShare;
  baseUrl: string;
  observerName?: string;
  /** Most events in one commit (the request thread's own writes may wait for one). */
  maxBatch?: number;
  /** Index events a moment after recording them, this many in one commit (see audit-index.ts). */
  indexBehind?: { chunk: number };
  /** Store what the request thread journaled (see audit-journal.ts), first what the files before `before` hold. */
  journal?: { dir: string; before: number };
}

export type ToAuditThread =
  | { type: 'record'; batch: number; events: AccessEvent[]; journaled?: { first: JournalLine; recorded: number } }
  | { type: 'catch-up'; request: number }
  | { type: 'close' };

export type FromAuditThread =
  | { type: 'ready' }
  | { type: 'open-failed'; message: string }
  | { type: 'recorded'; batch: number; failed: { index: number; message: string }[] }
  | { type: 'caught-up'; request: number; failure?: string }
  /** Journaled events the thread passed over (nobody waits for them any more). */
  | { type: 'trail-error'; message: string }
  | { type: 'closed'; failure?: string };

export interface AuditWorkerOptions {
  baseUrl: string;
  observerName?: string;
  /**
   * Index events behind the trail on the thread (see audit-index.ts): then searches that can
   * reach AuditEvents must wait on `catchUp` (see seeingRecordedAudits).
   */
  indexBehind?: boolean;
  /**
   * Answer once the events are in the audit journal in `dir` (see audit-journal.ts), synced
   * when `sync`; the thread stores them behind, and searches, reads and histories that can
   * reach AuditEvents must wait on `catchUp` (see seeingRecordedAudits).
   */
  journal?: { dir: string; sync: boolean };
  /** Journaled events the thread may be behind by before answers wait for it (default MAX_UNSTORED). */
  maxUnstored?: number;
  /** Where the thread's failures are told (never to clients). */
  onError?: (message: string) => void;
}

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * Events in one commit: a commit holds the database's write turn, which the request thread's
 * own writes wait for (about 300 us an event on the core bench's reads, so up to some 30 ms).
 */
const MAX_BATCH = 100;
/**
 * Events indexed in one commit when indexing behind: the trail's own commits (which requests
 * wait for) queue behind it on the thread, and the request thread's writes at the write gate,
 * so it is kept short (about 64 x 100 us); most of what a larger one saves, it saves already.
 */
const INDEX_CHUNK = 64;
const POST_INTERVAL_MS = 1;
/** Events stored in one commit when journaled (nobody waits for it: see audit-journal-store.ts). */
const JOURNAL_BATCH = 128;
/**
 * Journaled events the thread may be behind by before answers wait for it to catch up: about
 * 75 ms of its work. Messages waiting for it take memory (1,000 cost the core bench 6 MB of RSS).
 */
const MAX_UNSTORED = 500;
/** A journal file is followed by the next past this size (it is removed once stored). */
const JOURNAL_FILE_BYTES = 32 * 1024 * 1024;

class AuditThreadFailure extends Error {
  constructor(message: string) {
    super(`the audit trail could not be written: ${message}`);
    this.name = 'AuditThreadFailure';
  }
}

/**
 * The thread keeps little alive (a batch of events, the chain's end), so a young generation of
 * 16 MB does: left to size itself it took 32 MB, counted in the server's RSS, which the core
 * bench's read load held at its 300 MB limit.
 */
const AUDIT_HEAP = { maxYoungGenerationSizeMb: 16 };

function newThread(data: AuditThreadData): Worker {
  return newModuleThread(import.meta.url, 'audit-thread', data, AUDIT_HEAP);
}

export class AuditWorker implements AccessRecorder, AuditIndexProgress {
  private worker: Worker | undefined;
  private readonly threads = new ThreadStarter(
    () => this.start(),
    () => this.worker,
  );
  private queue: { event: AccessEvent; waiter: Waiter }[] = [];
  private postScheduled = false;
  private lastPost = -Infinity;
  private readonly awaiting = new Map<number, Waiter[]>();
  private readonly catchingUp = new Map<number, Waiter>();
  /** Batches answered as recorded, and how many of them an answered catch-up covered. */
  private recordedBatches = 0;
  private indexedBatches = 0;
  private closing: Waiter | undefined;
  private nextId = 1;
  private closed = false;
  private journal: JournalWriter | undefined;
  /** Journaled events not yet stored by the thread, and each batch's count. */
  private unstored = 0;
  private readonly journaledBatches = new Map<number, number>();
  /**
   * Journaled events whose answers wait while the thread is too far behind, oldest first: they
   * go as soon as it is back within MAX_UNSTORED, so answers are slowed to the rate it stores
   * at (a few ms each; at most one batch per waiting request), not held until their own turn.
   */
  private held: Waiter[][] = [];

  constructor(
    private readonly share: StoreShare,
    private readonly options: AuditWorkerOptions,
  ) {}

  /** Starts the thread, which reads where the chain ends and indexes what a crash left unindexed. */
  async open(): Promise<void> {
    await this.threads.started();
  }

  record(event: AccessEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.closed) return reject(new AuditThreadFailure('the server is shutting down'));
      this.queue.push({ event, waiter: { resolve, reject } });
      if (!this.postScheduled) {
        this.postScheduled = true;
        // The events of this turn of the event loop go over in one message. Under load, at most
        // one message a millisecond: posted per event, messages took about 8 % of the request
        // thread's time in a CPU profile of the core bench's reads, whatever they carried.
        const wait = this.lastPost + POST_INTERVAL_MS - performance.now();
        if (wait > 0) setTimeout(() => void this.postQueued(), wait);
        else setImmediate(() => void this.postQueued());
      }
    });
  }

  /**
   * Resolves once the thread has indexed every event recorded so far (at once when it indexes
   * each event in the commit that stores it).
   */
  async catchUp(): Promise<void> {
    if (this.options.journal) {
      // Events waiting to be journaled are not answered yet; sending them along is simpler than telling them apart.
      if (this.queue.length > 0) await this.postQueued();
      // A thread that is ready has stored what the journal held when it started (after one died).
      await this.threads.started();
      if (this.unstored === 0) return;
    } else if (!this.options.indexBehind || this.indexedBatches === this.recordedBatches) return;
    const covers = this.recordedBatches;
    const worker = await this.threads.started();
    const request = this.nextId++;
    await new Promise<void>((resolve, reject) => {
      this.catchingUp.set(request, { resolve, reject });
      worker.postMessage({ type: 'catch-up', request } satisfies ToAuditThread);
    });
    this.indexedBatches = Math.max(this.indexedBatches, covers);
  }

  /** Lets the thread finish what it was given (and index what waits for it) and close its connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.postQueued();
    // Nothing more is appended: the thread may remove the file once it has stored it.
    this.journal?.close();
    const worker = await this.threads.current();
    if (!worker) return;
    await new Promise<void>((resolve, reject) => {
      this.closing = { resolve, reject };
      worker.postMessage({ type: 'close' } satisfies ToAuditThread);
    });
  }

  private async postQueued(): Promise<void> {
    this.postScheduled = false;
    this.lastPost = performance.now();
    const items = this.queue;
    this.queue = [];
    if (items.length === 0) return;
    try {
      const worker = await this.threads.started();
      const batch = this.nextId++;
      const events = items.map((item) => item.event);
      if (!this.journal) {
        this.awaiting.set(batch, items.map((item) => item.waiter));
        worker.postMessage({ type: 'record', batch, events } satisfies ToAuditThread);
        return;
      }
      const recorded = new Date();
      const first = this.journal.append(events, recorded);
      // Durable now: answered at once, unless the thread is too far behind.
      this.unstored += events.length;
      this.journaledBatches.set(batch, events.length);
      this.held.push(items.map((item) => item.waiter));
      this.releaseHeld();
      worker.postMessage({ type: 'record', batch, events, journaled: { first, recorded: recorded.getTime() } } satisfies ToAuditThread);
    } catch (error) {
      for (const item of items) item.waiter.reject(error as Error);
    }
  }

  private start(): Promise<Worker> {
    const journal = this.options.journal;
    // Each thread appends to a generation of its own; it first stores what the earlier ones left.
    const before = journal && nextGeneration(journal.dir);
    if (journal) {
      this.journal?.close();
      this.journal = new JournalWriter(journal.dir, before!, { sync: journal.sync, rotateBytes: JOURNAL_FILE_BYTES });
    }
    const data: AuditThreadData = {
      share: this.share,
      baseUrl: this.options.baseUrl,
      ...(this.options.observerName && { observerName: this.options.observerName }),
      maxBatch: journal ? JOURNAL_BATCH : MAX_BATCH,
      ...(this.options.indexBehind && { indexBehind: { chunk: INDEX_CHUNK } }),
      ...(journal && { journal: { dir: journal.dir, before: before! } }),
    };
    const worker = newThread(data);
    return new Promise<Worker>((resolve, reject) => {
      let ready = false;
      worker.on('message', (message: FromAuditThread) => {
        if (message.type === 'ready') {
          ready = true;
          this.worker = worker;
          // The process may end without closing the log (the trail is durable per event).
          worker.unref();
          resolve(worker);
        } else if (message.type === 'open-failed') {
          reject(new AuditThreadFailure(message.message));
        } else {
          this.answer(message);
        }
      });
      let crash: string | undefined;
      worker.on('error', (error) => {
        crash = error.message;
        this.options.onError?.(`audit thread failed: ${error.message}`);
      });
      worker.on('exit', (code) => {
        if (this.worker === worker) this.worker = undefined;
        // A thread that died mid-commit cannot let go of the write turn itself.
        releaseSharedStore(this.share);
        const failure = new AuditThreadFailure(code === 0 ? 'the audit thread stopped' : `the audit thread exited with code ${code}${crash ? ` (${crash})` : ''}`);
        if (!ready) reject(failure);
        this.failOutstanding(failure);
      });
    });
  }

  private answer(message: FromAuditThread): void {
    switch (message.type) {
      case 'recorded': {
        this.recordedBatches++;
        this.unstored -= this.journaledBatches.get(message.batch) ?? 0;
        this.journaledBatches.delete(message.batch);
        this.releaseHeld();
        const waiters = this.awaiting.get(message.batch) ?? [];
        this.awaiting.delete(message.batch);
        for (const failure of message.failed) this.options.onError?.(`audit record not written: ${failure.message}`);
        const failed = new Map(message.failed.map((f) => [f.index, f.message]));
        waiters.forEach((waiter, i) => {
          const failure = failed.get(i);
          if (failure === undefined) waiter.resolve();
          else waiter.reject(new AuditThreadFailure(failure));
        });
        return;
      }
      case 'trail-error':
        this.options.onError?.(message.message);
        return;
      case 'caught-up': {
        const waiter = this.catchingUp.get(message.request);
        this.catchingUp.delete(message.request);
        if (message.failure === undefined) waiter?.resolve();
        else waiter?.reject(new AuditThreadFailure(message.failure));
        return;
      }
      case 'closed': {
        const waiter = this.closing;
        this.closing = undefined;
        if (message.failure === undefined) waiter?.resolve();
        else waiter?.reject(new AuditThreadFailure(message.failure));
        return;
      }
      default:
        return;
    }
  }

  /** Answers the held batches, oldest first, while the thread is within MAX_UNSTORED. */
  private releaseHeld(): void {
    while (this.held.length > 0 && this.unstored <= (this.options.maxUnstored ?? MAX_UNSTORED)) for (const waiter of this.held.shift()!) waiter.resolve();
  }

  private failOutstanding(failure: Error): void {
    // Journaled events the thread did not store: the next thread stores them (from the journal)
    // before it is ready. Held answers go now: their events are in the journal.
    this.unstored = 0;
    this.journaledBatches.clear();
    this.releaseHeld();
    for (const waiters of this.awaiting.values()) for (const waiter of waiters) waiter.reject(failure);
    this.awaiting.clear();
    for (const waiter of this.catchingUp.values()) waiter.reject(failure);
    this.catchingUp.clear();
    // Closing ends with the thread's exit: done, unless it died before saying so.
    if (this.closing) {
      const waiter = this.closing;
      this.closing = undefined;
      if (this.closed) waiter.resolve();
      else waiter.reject(failure);
    }
  }
}
