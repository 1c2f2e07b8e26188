import { parentPort, workerData } from 'node:worker_threads';
import { plainJsonCodec } from '../store/codec.js';
import { nameThisThread, THREAD_NAMES } from '../thread-name.js';
import { openSharedStore } from '../store/open-store.js';
import { AuditLog, errorMessage } from './audit.js';
import { AuditIndexer } from './audit-index.js';
import { JournalStore } from './audit-journal-store.js';
import type { AuditThreadData, FromAuditThread, ToAuditThread } from './audit-worker.js';

/**
 * The audit trail's own thread (see audit-worker.ts): it opens the store the request thread
 * shared, and runs the same AuditLog (hash chain, group commit) there; with a journal, it
 * stores what the request thread journaled (see audit-journal-store.ts).
 */

nameThisThread(THREAD_NAMES.audit);

const data = workerData as AuditThreadData;
const port = parentPort!;
const post = (message: FromAuditThread) => port.postMessage(message);

// Appends touch few pages besides the ends of the tables and indexes: a small page cache does
// (on the core bench's reads 4 MB stored events faster than 8, in less memory).
const store = openSharedStore(data.share, 4);
// Indexed behind the trail, each event costs this thread about a sixth less: the index's own
// commits, of many events, rewrite the pages every event touches (the last page of each
// value's entries: the type, the action, the outcome, ...) once per chunk instead of once per
// small group of events. This thread is what limits read throughput on the core bench.
// With a journal the events are stored many in a commit anyway: indexed with them.
const indexer =
  !data.journal && data.indexBehind ? new AuditIndexer(store, plainJsonCodec, { localBase: data.baseUrl, chunk: data.indexBehind.chunk, maxPending: data.indexBehind.chunk }) : undefined;
const log = new AuditLog(store, plainJsonCodec, {
  baseUrl: data.baseUrl,
  ...(data.observerName && { observerName: data.observerName }),
  ...(data.maxBatch && { maxBatch: data.maxBatch }),
  ...(indexer && { indexer }),
  ...(data.journal && { beforeStoring: (last) => journal!.beforeStoring(last) }),
});
// The log tells the journal of each commit before it, and the journal hands the log its events.
const journal = data.journal && new JournalStore(data.journal.dir, log, store, plainJsonCodec, post);

/** Record batches not yet answered: closing waits for them. */
const inFlight = new Set<Promise<unknown>>();

async function close(): Promise<void> {
  await Promise.allSettled([...inFlight]);
  await journal?.close();
  await indexer?.close();
  await store.close();
}

try {
  // Events an earlier server indexing behind them left unindexed at a crash.
  await new AuditIndexer(store, plainJsonCodec, { localBase: data.baseUrl }).recover();
  await log.open();
  // What earlier threads left journaled but not stored (every file before this thread's).
  await journal?.recover(data.journal!.before);
  post({ type: 'ready' });
} catch (error) {
  post({ type: 'open-failed', message: errorMessage(error) });
  await store.close().catch(() => undefined);
  port.close();
}

port.on('message', (message: ToAuditThread) => {
  switch (message.type) {
    case 'record': {
      if (journal && message.journaled) {
        journal.add({ batch: message.batch, events: message.events, ...message.journaled });
        return;
      }
      // Recorded in one turn, so the log writes them in one commit.
      const done = Promise.allSettled(message.events.map((event) => log.record(event))).then((outcomes) => {
        const failed = outcomes.flatMap((outcome, i) => (outcome.status === 'rejected' ? [{ index: i, message: errorMessage(outcome.reason) }] : []));
        post({ type: 'recorded', batch: message.batch, failed });
      });
      inFlight.add(done);
      void done.finally(() => inFlight.delete(done));
      return;
    }
    case 'catch-up': {
      // Every event recorded before this message has been handed to the indexer (or the journal's store) by now.
      const done = (journal?.catchUp() ?? indexer?.catchUp() ?? Promise.resolve()).then(
        () => post({ type: 'caught-up', request: message.request }),
        (error: unknown) => post({ type: 'caught-up', request: message.request, failure: errorMessage(error) }),
      );
      inFlight.add(done);
      void done.finally(() => inFlight.delete(done));
      return;
    }
    case 'close':
      close().then(
        () => {
          post({ type: 'closed' });
          port.close();
        },
        (error: unknown) => {
          post({ type: 'closed', failure: errorMessage(error) });
          port.close();
        },
      );
      return;
  }
});
