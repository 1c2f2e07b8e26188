import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { THREAD_NAMES } from '../../thread-name.js';

/**
 * Copies the write-ahead log back into the database file on a thread of its own, so that work
 * (reading each logged page, writing it into the file, two fsyncs and the kernel's writeback
 * they wait for) leaves the request thread: on a create load, about 12 % of its CPU.
 *
 * The worker has its own connection and runs PASSIVE checkpoints: they never block the writer or
 * readers, and copy only frames no reader still needs. It runs after commits (the writer calls
 * `nudge`), at most once per `intervalMs`. The writer's own automatic checkpoint stays on as the
 * backstop: the log can only start over from its beginning once every frame is copied, and
 * under a steady load that happens when the writer, between two of its commits, copies the
 * little that is left (the frames since the worker's last pass).
 */

// Plain JavaScript evaluated by the worker (no file of its own to resolve, under tsx or from dist).
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
try {
  require('node:fs').writeFileSync('/proc/thread-self/comm', workerData.threadName);
} catch {
  // Not Linux: the thread keeps its name (see thread-name.ts).
}
const Database = require(workerData.driver);
const flags = new Int32Array(workerData.flags);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 0');
for (;;) {
  Atomics.wait(flags, 0, 0);
  if (Atomics.load(flags, 1) === 1) break;
  Atomics.store(flags, 0, 0);
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy (the writer is checkpointing itself) or failed: the next nudge tries again.
  }
  if (Atomics.load(flags, 1) === 1) break;
  Atomics.wait(flags, 1, 0, workerData.intervalMs);
}
db.close();
`;

const WORK = 0;
const STOP = 1;

/** Nudges the checkpointer of another thread's store (its `signal`) after commits on this thread. */
export class CheckpointSignal {
  private readonly flags: Int32Array;

  constructor(signal: SharedArrayBuffer) {
    this.flags = new Int32Array(signal);
  }

  /** Something was committed: checkpoint soon. */
  nudge(): void {
    if (Atomics.load(this.flags, WORK) === 0) {
      Atomics.store(this.flags, WORK, 1);
      Atomics.notify(this.flags, WORK);
    }
  }
}

export class Checkpointer {
  private readonly flags = new Int32Array(new SharedArrayBuffer(8));
  private readonly signalled = new CheckpointSignal(this.flags.buffer as SharedArrayBuffer);
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  constructor(path: string, intervalMs = 50) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, path, flags: this.flags.buffer, intervalMs, threadName: THREAD_NAMES.checkpointer } });
    // A worker that fails leaves checkpoints to the writer's automatic ones, as before.
    this.worker.on('error', () => undefined);
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.unref();
  }

  /** For stores of other threads writing the same file (see CheckpointSignal). */
  get signal(): SharedArrayBuffer {
    return this.flags.buffer as SharedArrayBuffer;
  }

  /** Something was committed: checkpoint soon. */
  nudge(): void {
    this.signalled.nudge();
  }

  /** Stops the worker and closes its connection (before the writer closes the database). */
  async stop(): Promise<void> {
    this.worker.ref();
    Atomics.store(this.flags, STOP, 1);
    Atomics.notify(this.flags, STOP);
    Atomics.store(this.flags, WORK, 1);
    Atomics.notify(this.flags, WORK);
    await this.exited;
  }
}
