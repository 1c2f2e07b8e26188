import type { ServerConfig } from '../config.js';
import { openMongoStore } from './mongo/mongo-store.js';
import type { OwnershipRule, ResourceStore, StoreShare } from './port.js';
import { SqliteStore, type SqliteSharing } from './sqlite/sqlite-store.js';
import { WriteGate } from './sqlite/write-gate.js';

/**
 * The embedded store by default; MongoDB when MONGODB_URI is set. `ownership` says whose record
 * a resource is, for stores to fill in the owners of data indexed before they kept them.
 */
export async function openStore(config: ServerConfig, ownership: OwnershipRule): Promise<ResourceStore> {
  if (config.mongodbUri) {
    return openMongoStore({ uri: config.mongodbUri, ownership, ...(config.mongodbDatabase && { dbName: config.mongodbDatabase }) });
  }
  // Bundles are written on a thread of their own while this one stages the next (a database file only).
  return new SqliteStore({ path: config.sqlitePath, synchronous: config.sqliteSynchronous, ownership, writerThread: true });
}

/**
 * Opens, on this thread (a worker), the store another thread shared (`ResourceStore.share`).
 * `cacheMB` sizes this connection's own page cache: a worker with a narrow task (appending the
 * audit trail) needs less than the request thread, and every MB counts against the server's.
 */
export function openSharedStore(share: StoreShare, cacheMB?: number): ResourceStore {
  if (share.kind !== 'sqlite') throw new Error(`a ${share.kind} store cannot be shared with a worker thread`);
  const { path, synchronous, gate, checkpoints } = share.settings as SqliteSharing;
  return new SqliteStore({ path, synchronous, gate: { buffer: gate, party: 'worker', ...(checkpoints && { checkpoints }) }, ...(cacheMB !== undefined && { cacheMB }) });
}

/**
 * The database file of a shared store, and whether its commits are synced (files kept beside
 * it, such as the audit journal, should be as durable as its commits).
 */
export function sharedStoreFile(share: StoreShare): { path: string; synced: boolean } | undefined {
  if (share.kind !== 'sqlite') return undefined;
  const { path, synchronous } = share.settings as SqliteSharing;
  return { path, synced: synchronous === 'FULL' };
}

/**
 * After a thread that had opened a shared store died: frees the write turn it may have held (a
 * thread stopped mid-transaction cannot; SQLite itself rolls its transaction back).
 */
export function releaseSharedStore(share: StoreShare): void {
  if (share.kind !== 'sqlite') return;
  new WriteGate('main', (share.settings as SqliteSharing).gate).release('worker');
}
