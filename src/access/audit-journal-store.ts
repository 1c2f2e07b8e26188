import type { AuditEvent } from 'fhir/r4.js';
import type { BodyCodec } from '../store/codec.js';
import type { ResourceStore } from '../store/port.js';
import { errorMessage, UndescribableEvent, type AuditLog } from './audit.js';
import { chainFieldsOf } from './audit-chain.js';
import { isBefore, JournalReader, type JournalLine, type JournalState } from './audit-journal.js';
import type { AccessEvent } from './events.js';

/**
 * The audit thread's side of the audit journal (see audit-journal.ts): it stores, through the
 * AuditLog, the events the request thread journaled and already answered for: many in one
 * commit, since nobody waits for each (a commit of a few events rewrote the same pages of the
 * trail's tables and indexes over and over). Whoever may see AuditEvents waits for `catchUp`.
 *
 * Before each commit the log tells `beforeStoring` the commit's last line, which goes into the
 * journal's state with that AuditEvent's id and hash; once stored, lines are `stored` and the
 * files wholly stored are removed. A failure to store stops the thread: its events stay in the
 * journal, and the next thread stores them from where the state says (`recover`). An event
 * that cannot be made into an AuditEvent is reported and passed over (it would fail again).
 */

export interface JournaledBatch {
  batch: number;
  events: AccessEvent[];
  first: JournalLine;
  recorded: number;
}

export type JournalReport = { type: 'recorded'; batch: number; failed: { index: number; message: string }[] } | { type: 'trail-error'; message: string };

/** Events stored in one commit at most, and how long the first of them may wait for others. */
const CHUNK = 128;
const GATHER_MS = 10;

export class JournalStore {
  private readonly reader: JournalReader;
  private stored: JournalLine | undefined;
  private removedBefore = 0;
  private gathered: JournaledBatch[] = [];
  private gatheredEvents = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Settles when everything handed to the log so far is stored (or failed). */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    dir: string,
    private readonly log: AuditLog,
    private readonly store: ResourceStore,
    private readonly codec: BodyCodec,
    private readonly report: (message: JournalReport) => void,
  ) {
    this.reader = new JournalReader(dir);
  }

  /** For the AuditLog's `beforeStoring`. */
  beforeStoring(storing: { through: JournalLine; id: string; hash: string }): void {
    const state: JournalState = { ...(this.stored && { stored: this.stored }), storing };
    this.reader.writeState(state);
  }

  /** Stores what is journaled in the files before generation `before`, and removes them. */
  async recover(before: number): Promise<number> {
    this.stored = await this.storedAt(this.reader.readState());
    let recovered = 0;
    let chunk: Promise<void>[] = [];
    const onBadLine = (at: JournalLine) => this.report({ type: 'trail-error', message: `audit journal ${at.generation} line ${at.line} cannot be read; passed over` });
    for (const { event, recorded, at } of this.reader.unstored(before, this.stored, onBadLine)) {
      chunk.push(this.storeOne(event, recorded, at));
      recovered++;
      if (chunk.length >= CHUNK) {
        await this.settle(chunk);
        chunk = [];
      }
    }
    await this.settle(chunk);
    this.reader.removeBefore(before);
    this.removedBefore = before;
    return recovered;
  }

  /** A batch the request thread journaled (and answered for). */
  add(batch: JournaledBatch): void {
    this.gathered.push(batch);
    this.gatheredEvents += batch.events.length;
    if (this.gatheredEvents >= CHUNK) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), GATHER_MS);
  }

  /** Resolves once every batch added so far is stored. */
  async catchUp(): Promise<void> {
    this.flush();
    await this.tail;
  }

  /** Stores what waits; then every file is wholly stored. */
  async close(): Promise<void> {
    await this.catchUp();
    if (this.stored) this.reader.removeBefore(this.stored.generation + 1);
    this.reader.close();
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batches = this.gathered;
    this.gathered = [];
    this.gatheredEvents = 0;
    // Handed to the log in one turn, so it stores them in one commit.
    const done = batches.map((batch) => this.storeBatch(batch));
    this.tail = Promise.all([this.tail, ...done]);
  }

  private async storeBatch({ batch, events, first, recorded }: JournaledBatch): Promise<void> {
    const at = new Date(recorded);
    const outcomes = await Promise.allSettled(events.map((event, i) => this.storeOne(event, at, { generation: first.generation, line: first.line + i })));
    const failed = outcomes.flatMap((outcome, index) => (outcome.status === 'rejected' ? [{ index, message: errorMessage(outcome.reason) }] : []));
    this.report({ type: 'recorded', batch, failed });
    const fatal = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected' && !(outcome.reason instanceof UndescribableEvent));
    // Out of this promise chain, so the thread ends (the next one stores from the journal).
    if (fatal) setImmediate(() => {
      throw fatal.reason;
    });
  }

  private async storeOne(event: AccessEvent, recorded: Date, at: JournalLine): Promise<void> {
    try {
      await this.log.record(event, { recorded, at });
    } catch (error) {
      if (error instanceof UndescribableEvent) this.report({ type: 'trail-error', message: `audit journal ${at.generation} line ${at.line}: ${error.message}` });
      throw error;
    }
    if (!this.stored || isBefore(this.stored, at)) this.stored = at;
    if (at.generation > this.removedBefore) {
      this.reader.removeBefore(at.generation);
      this.removedBefore = at.generation;
    }
  }

  /** Waits for a chunk of recovered events; an event that cannot be described is passed over. */
  private async settle(chunk: Promise<void>[]): Promise<void> {
    for (const outcome of await Promise.allSettled(chunk)) {
      if (outcome.status === 'rejected' && !(outcome.reason instanceof UndescribableEvent)) throw outcome.reason;
    }
  }

  /** Where the stored lines end: the state's last commit, if its last AuditEvent is there as sealed. */
  private async storedAt(state: JournalState): Promise<JournalLine | undefined> {
    if (!state.storing) return state.stored;
    const version = await this.store.readVersion('AuditEvent', state.storing.id, 1);
    const hash = version?.body && chainFieldsOf(JSON.parse(this.codec.decode(version.body)) as AuditEvent).hash;
    return hash === state.storing.hash ? state.storing.through : state.stored;
  }
}
