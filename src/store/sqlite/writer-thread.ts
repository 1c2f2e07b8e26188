import type { Worker } from 'node:worker_threads';
import { newModuleThread, ThreadStarter } from '../../thread-module.js';
import { VersionConflictError, type WriteRequest } from '../port.js';
import { packIndex, unpackIndex, type PackedIndex } from './packed-index.js';
import type { SqliteSharing } from './sqlite-store.js';

/**
 * Writes committed on a thread of their own, with its own connection to the same database file:
 * bundles (large `writeMany`s), and single writes that arrive while others wait (see
 * SqliteStore.write), when their bodies are plain data.
 *
 * Loading transaction bundles, about half of the request thread's time went into SQLite (the
 * index rows above all) while the other half was FHIR work (parsing, validating, indexing the
 * next bundle), one after the other on one core; creates under load were much the same. Here
 * the request thread hands the writes over as plain data, and while the thread commits them it
 * goes on with the next request. Nothing else changes: the answer waits for the commit, a
 * writeMany is all or nothing, and a version conflict comes back as the same
 * VersionConflictError.
 */

/** A write as plain data: its body already rendered (WriteRequest.rendered), or a tombstone; its index packed flat. */
export interface PortableWrite {
  resourceType: string;
  id: string;
  expectedVersion?: number | null;
  rendered?: { json: string; lastUpdated: number };
  index?: PackedIndex;
}

export interface WrittenVersion {
  versionId: number;
  lastUpdated: number;
  deleted: boolean;
}

export interface WriterThreadData {
  share: SqliteSharing;
  cacheMB: number;
}

/** Why a write failed, as data: a version conflict comes back as a VersionConflictError. */
export interface WriteFailure {
  message: string;
  conflict?: { resourceType: string; id: string; currentVersion: number | null };
}

/**
 * `many`: one all-or-nothing writeMany. `each`: independent single writes (those of one turn of
 * this thread's event loop, sharing the thread's group commit), each answered on its own.
 */
export type ToWriterThread = { type: 'many' | 'each'; job: number; writes: PortableWrite[] } | { type: 'close' };

export type FromWriterThread =
  | { type: 'ready' }
  | { type: 'open-failed'; message: string }
  | { type: 'written'; job: number; outcomes: (WrittenVersion | WriteFailure)[] }
  | { type: 'failed'; job: number; failure: WriteFailure };

/** The write as plain data, or undefined when it carries a closure only (then it stays on this thread). */
export function portableWrite(request: WriteRequest): PortableWrite | undefined {
  const { resourceType, id, expectedVersion, rendered, renderBody, index } = request;
  // A rendered body is the one for the version the write pins; without a pin it could be another.
  if (rendered ? expectedVersion === undefined : renderBody !== undefined) return undefined;
  return { resourceType, id, ...(expectedVersion !== undefined && { expectedVersion }), ...(rendered && { rendered }), ...(index && { index: packIndex(index) }) };
}

/**
 * The write the thread's store is given for a PortableWrite. Its index is unpacked when read,
 * each time: a bundle's writes are all handed over at once, and unpacked at once their objects
 * lived through the whole commit, so young-generation collections copied them and promoted
 * them (promotions were most of the thread's garbage collection). Read when the store notes the
 * write's parameters and again when it writes its rows, each unpacking dies young.
 */
export function writeRequestOf(write: PortableWrite): WriteRequest {
  const { index, ...rest } = write;
  if (!index) return rest;
  return Object.defineProperty(rest, 'index', { enumerable: true, get: () => unpackIndex(index) });
}

/**
 * The thread holds at most a few bundles' writes at a time (WRITER_MAX_WRITES each), so a small
 * heap does: left to size itself, it kept some 70 MB after a load, counted in the server's RSS.
 */
const WRITER_HEAP = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 };

class WriterThreadFailure extends Error {
  constructor(message: string) {
    super(`the writer thread failed: ${message}`);
    this.name = 'WriterThreadFailure';
  }
}

interface Job {
  resolve: (outcomes: (WrittenVersion | WriteFailure)[]) => void;
  reject: (error: Error) => void;
}

export function failureError(failure: WriteFailure): Error {
  return failure.conflict ? new VersionConflictError(failure.conflict.resourceType, failure.conflict.id, failure.conflict.currentVersion) : new WriterThreadFailure(failure.message);
}

export class WriterThread {
  private worker: Worker | undefined;
  private readonly threads = new ThreadStarter(
    () => this.start(),
    () => this.worker,
  );
  private readonly jobs = new Map<number, Job>();
  private nextJob = 1;
  private exited: Promise<void> | undefined;
  private stopped = false;
  /** Single writes of this turn, posted together. */
  private singles: { write: PortableWrite; resolve: (version: WrittenVersion) => void; reject: (error: Error) => void }[] = [];

  /** `release` frees the write gate for the thread, should it die holding it. */
  constructor(
    private readonly data: WriterThreadData,
    private readonly release: () => void,
  ) {}

  /** All of them or none, in one transaction. */
  async writeMany(writes: PortableWrite[]): Promise<WrittenVersion[]> {
    const outcomes = await this.post('many', writes);
    const failure = outcomes.find((outcome): outcome is WriteFailure => 'message' in outcome);
    if (failure) throw failureError(failure);
    return outcomes as WrittenVersion[];
  }

  /** Writes are handed over or being written. */
  get busy(): boolean {
    return this.singles.length > 0 || this.jobs.size > 0;
  }

  /** One write, in the thread's next group commit with the others of this turn. */
  write(write: PortableWrite): Promise<WrittenVersion> {
    return new Promise<WrittenVersion>((resolve, reject) => {
      this.singles.push({ write, resolve, reject });
      if (this.singles.length === 1) setImmediate(() => void this.postSingles());
    });
  }

  private async postSingles(): Promise<void> {
    const singles = this.singles;
    if (singles.length === 0) return;
    this.singles = [];
    try {
      const outcomes = await this.post('each', singles.map((s) => s.write));
      singles.forEach((single, i) => {
        const outcome = outcomes[i]!;
        if ('message' in outcome) single.reject(failureError(outcome));
        else single.resolve(outcome);
      });
    } catch (error) {
      for (const single of singles) single.reject(error as Error);
    }
  }

  private async post(type: 'many' | 'each', writes: PortableWrite[]): Promise<(WrittenVersion | WriteFailure)[]> {
    if (this.stopped) throw new WriterThreadFailure('the store is closing');
    const worker = await this.threads.started();
    const job = this.nextJob++;
    return new Promise((resolve, reject) => {
      this.jobs.set(job, { resolve, reject });
      try {
        worker.postMessage({ type, job, writes } satisfies ToWriterThread);
      } catch (error) {
        this.jobs.delete(job);
        reject(error as Error);
      }
    });
  }

  /** Lets the thread finish what it was given, and close its connection. */
  async stop(): Promise<void> {
    const handedOver = this.postSingles();
    this.stopped = true;
    await handedOver;
    const worker = await this.threads.current();
    if (!worker) return;
    worker.postMessage({ type: 'close' } satisfies ToWriterThread);
    await this.exited;
  }

  private start(): Promise<Worker> {
    const worker = newModuleThread(import.meta.url, 'writer-worker', this.data satisfies WriterThreadData, WRITER_HEAP);
    return new Promise<Worker>((resolve, reject) => {
      let ready = false;
      let crash: string | undefined;
      this.exited = new Promise<void>((done) => {
        worker.on('exit', (code) => {
          if (this.worker === worker) this.worker = undefined;
          // A thread that died mid-commit cannot let go of the write turn itself.
          this.release();
          const failure = new WriterThreadFailure(code === 0 ? 'it stopped' : `it exited with code ${code}${crash ? ` (${crash})` : ''}`);
          if (!ready) reject(failure);
          for (const job of this.jobs.values()) job.reject(failure);
          this.jobs.clear();
          done();
        });
      });
      worker.on('error', (error) => {
        crash = error.message;
      });
      worker.on('message', (message: FromWriterThread) => {
        switch (message.type) {
          case 'ready':
            ready = true;
            this.worker = worker;
            worker.unref();
            resolve(worker);
            return;
          case 'open-failed':
            reject(new WriterThreadFailure(message.message));
            return;
          case 'written':
          case 'failed': {
            const job = this.jobs.get(message.job);
            this.jobs.delete(message.job);
            if (!job) return;
            if (message.type === 'written') job.resolve(message.outcomes);
            else job.resolve([message.failure]);
            return;
          }
        }
      });
    });
  }
}
