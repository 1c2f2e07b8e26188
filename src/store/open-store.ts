import type { ServerConfig } from '../config.js';
import { openMongoStore } from './mongo/mongo-store.js';
import type { OwnershipRule, ResourceStore } from './port.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

/**
 * The embedded store by default; MongoDB when MONGODB_URI is set. `ownership` says whose record
 * a resource is, for stores to fill in the owners of data indexed before they kept them.
 */
export async function openStore(config: ServerConfig, ownership: OwnershipRule): Promise<ResourceStore> {
  if (config.mongodbUri) {
    return openMongoStore({ uri: config.mongodbUri, ownership, ...(config.mongodbDatabase && { dbName: config.mongodbDatabase }) });
  }
  return new SqliteStore({ path: config.sqlitePath, synchronous: config.sqliteSynchronous, ownership });
}
