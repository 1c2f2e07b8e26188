import type { ServerConfig } from '../config.js';
import { openMongoStore } from './mongo/mongo-store.js';
import type { ResourceStore } from './port.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

/** The embedded store by default; MongoDB when MONGODB_URI is set. */
export async function openStore(config: ServerConfig): Promise<ResourceStore> {
  if (config.mongodbUri) {
    return openMongoStore({ uri: config.mongodbUri, ...(config.mongodbDatabase && { dbName: config.mongodbDatabase }) });
  }
  return new SqliteStore({ path: config.sqlitePath, synchronous: config.sqliteSynchronous });
}
