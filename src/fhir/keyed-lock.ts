/**
 * Serialises async work per key within this process. Conditional operations use it so that
 * "search, then write" cannot interleave with another conditional write of the same type.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(work, work);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await result;
    } finally {
      // Forget the key once nothing else has queued behind this holder.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
