import { parentPort, workerData } from 'node:worker_threads';
import { openSharedStore } from '../../src/store/open-store.js';
import type { StoreShare } from '../../src/store/port.js';
import { patientWrite } from './sharing-fixtures.js';

/** A worker thread writing to a store shared with it: batches and single writes, all at once. */
const { share, rounds } = workerData as { share: StoreShare; rounds: number };
const store = openSharedStore(share);
try {
  const work: Promise<unknown>[] = [];
  for (let round = 0; round < rounds; round++) {
    work.push(store.writeMany(Array.from({ length: 200 }, (_, i) => patientWrite(`o${round}-${i}`, 'Wong'))));
    work.push(store.write(patientWrite('same')));
    // Later rounds in later turns, interleaving with the other thread's writes.
    await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(work);
  parentPort!.postMessage({ ok: true });
} catch (error) {
  parentPort!.postMessage({ ok: false, message: error instanceof Error ? error.message : String(error) });
} finally {
  await store.close();
}
