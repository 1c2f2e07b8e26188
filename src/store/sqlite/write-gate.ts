/**
 * One writer at a time across the threads that share a database file, without sleeping.
 *
 * SQLite lets one connection write at a time; another connection that tries meanwhile gets
 * SQLITE_BUSY and (with busy_timeout) sleeps in growing steps of up to 100 ms before trying
 * again. A request thread that sleeps like that stalls every request it serves (waits of over
 * 200 ms were measured with the audit trail written from a worker thread). So the threads that
 * share a file take turns through this gate instead, a lock word in shared memory, and wait
 * for it without blocking their event loop (Atomics.waitAsync), woken the moment it is free.
 *
 * The request thread has priority: a worker thread does not take the gate while the request
 * thread waits for it, so a request waits for at most one of the worker's transactions.
 * Parties: the request thread (`main`), the audit trail's thread (`worker`), and the thread
 * that writes bundles (`writer`, see writer-thread.ts).
 */

export type GateParty = 'main' | 'worker' | 'writer';

const LOCK = 0;
const MAIN_WAITING = 1;
const FREE = 0;
const HOLDER: Record<GateParty, number> = { main: 1, worker: 2, writer: 3 };
/** Wake up and look again at least this often, whatever was missed. */
const RECHECK_MS = 50;

export class WriteGate {
  private readonly words: Int32Array;

  /** A new gate, or the one in `buffer` (made by another thread's gate). */
  constructor(
    private readonly party: GateParty,
    buffer: SharedArrayBuffer = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT),
  ) {
    this.words = new Int32Array(buffer);
  }

  /** To hand to another thread (with `postMessage` or `workerData`). */
  get buffer(): SharedArrayBuffer {
    return this.words.buffer as SharedArrayBuffer;
  }

  /** Resolves once this thread holds the gate; `leave` must follow. */
  async enter(): Promise<void> {
    const me = HOLDER[this.party];
    for (;;) {
      if (this.party !== 'main' && Atomics.load(this.words, MAIN_WAITING) === 1) {
        await Atomics.waitAsync(this.words, MAIN_WAITING, 1, RECHECK_MS).value;
        continue;
      }
      if (Atomics.compareExchange(this.words, LOCK, FREE, me) === FREE) {
        if (this.party === 'main' && Atomics.exchange(this.words, MAIN_WAITING, 0) === 1) Atomics.notify(this.words, MAIN_WAITING);
        return;
      }
      if (this.party === 'main') Atomics.store(this.words, MAIN_WAITING, 1);
      const holder = Atomics.load(this.words, LOCK);
      if (holder !== FREE) await Atomics.waitAsync(this.words, LOCK, holder, RECHECK_MS).value;
    }
  }

  leave(): void {
    Atomics.compareExchange(this.words, LOCK, HOLDER[this.party], FREE);
    Atomics.notify(this.words, LOCK);
  }

  /**
   * Frees the gate if `party` holds it: for the thread that stays when another died (an exited
   * worker cannot leave).
   */
  release(party: GateParty): void {
    if (Atomics.compareExchange(this.words, LOCK, HOLDER[party], FREE) === HOLDER[party]) Atomics.notify(this.words, LOCK);
  }
}
