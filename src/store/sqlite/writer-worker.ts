import { parentPort, workerData } from 'node:worker_threads';
import { nameThisThread, THREAD_NAMES } from '../../thread-name.js';
import { VersionConflictError, type StoredVersion } from '../port.js';
import { SqliteStore } from './sqlite-store.js';
import { writeRequestOf, type FromWriterThread, type ToWriterThread, type WriteFailure, type WrittenVersion, type WriterThreadData } from './writer-thread.js';

/**
 * The writer thread (see writer-thread.ts): a store of its own on the shared file, writing what
 * it is handed. A PortableWrite is a WriteRequest whose body is `rendered` (see bodyToWrite) and
 * whose index is packed (see packed-index.ts).
 */

nameThisThread(THREAD_NAMES.writer);

const data = workerData as WriterThreadData;
const port = parentPort!;
const post = (message: FromWriterThread) => port.postMessage(message);
const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));

const written = ({ versionId, lastUpdated, deleted }: StoredVersion): WrittenVersion => ({ versionId, lastUpdated, deleted });

function failureOf(error: unknown): WriteFailure {
  return {
    message: describe(error),
    ...(error instanceof VersionConflictError && { conflict: { resourceType: error.resourceType, id: error.id, currentVersion: error.currentVersion } }),
  };
}

let store: SqliteStore | undefined;
const inFlight = new Set<Promise<unknown>>();

try {
  const { share } = data;
  store = new SqliteStore({
    path: share.path,
    synchronous: share.synchronous,
    gate: { buffer: share.gate, party: 'writer', ...(share.checkpoints && { checkpoints: share.checkpoints }) },
    cacheMB: data.cacheMB,
  });
  post({ type: 'ready' });
} catch (error) {
  post({ type: 'open-failed', message: describe(error) });
  port.close();
}

port.on('message', (message: ToWriterThread) => {
  if (!store) return;
  if (message.type === 'close') {
    const open = store;
    store = undefined;
    void Promise.allSettled([...inFlight])
      .then(() => open.close())
      .finally(() => port.close());
    return;
  }
  const { job, writes } = message;
  const done =
    message.type === 'many'
      ? store.writeMany(writes.map(writeRequestOf)).then(
          (stored) => post({ type: 'written', job, outcomes: stored.map(written) }),
          (error: unknown) => post({ type: 'failed', job, failure: failureOf(error) }),
        )
      : // Started in one turn: the store commits them together (see SqliteStore.commitQueued).
        Promise.allSettled(writes.map((write) => store!.write(writeRequestOf(write)))).then((settled) =>
          post({ type: 'written', job, outcomes: settled.map((outcome) => (outcome.status === 'fulfilled' ? written(outcome.value) : failureOf(outcome.reason))) }),
        );
  inFlight.add(done);
  void done.finally(() => inFlight.delete(done));
});
