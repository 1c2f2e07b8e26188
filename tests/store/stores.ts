import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { describe, it } from 'vitest';
import { PATIENT_OWNERSHIP } from '../../src/fhir/search/compartments.js';
import { openMongoStore } from '../../src/store/mongo/mongo-store.js';
import type { ResourceStore } from '../../src/store/port.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

/**
 * The stores every store-level and HTTP-level suite runs against. Each open() gives a fresh,
 * empty store of its own (a new temp file, a new Mongo database) so tests and test files
 * running in parallel never see each other's data; close() also deletes it.
 */
export interface StoreFactory {
  name: string;
  open(): Promise<ResourceStore>;
}

export const mongoUri = process.env.MONGODB_URI || undefined;

/** A database name no other test or test file uses. */
export const freshDatabaseName = (): string => `fhir_test_${randomUUID().replaceAll('-', '')}`;

function deleteOnClose<T extends ResourceStore>(store: T, cleanup: () => Promise<void> | void): T {
  const close = store.close.bind(store);
  store.close = async () => {
    try {
      await close();
    } finally {
      await cleanup();
    }
  };
  return store;
}

const sqliteFactory: StoreFactory = {
  name: 'sqlite',
  async open() {
    const dir = mkdtempSync(join(tmpdir(), 'fhir-store-test-'));
    const store = new SqliteStore({ path: join(dir, 'store.db'), ownership: PATIENT_OWNERSHIP });
    return deleteOnClose(store, () => rmSync(dir, { recursive: true, force: true }));
  },
};

export async function dropDatabase(uri: string, dbName: string): Promise<void> {
  const client = await MongoClient.connect(uri);
  try {
    await client.db(dbName).dropDatabase();
  } finally {
    await client.close();
  }
}

function mongoFactory(uri: string): StoreFactory {
  return {
    name: 'mongo',
    async open() {
      const dbName = freshDatabaseName();
      const store = await openMongoStore({ uri, dbName });
      return deleteOnClose(store, () => dropDatabase(uri, dbName));
    },
  };
}

export const storeFactories: StoreFactory[] = mongoUri ? [sqliteFactory, mongoFactory(mongoUri)] : [sqliteFactory];

export const MONGO_SKIPPED = 'mongo (skipped: MONGODB_URI not set)';
let reportedMongoSkipped = false;

/**
 * One `describe(title)` holding a nested describe per store, each running `body` with that
 * store's factory. Without MONGODB_URI the mongo variant shows up as a skipped suite rather
 * than silently disappearing.
 */
export function describeEachStore(title: string, body: (open: () => Promise<ResourceStore>) => void): void {
  describe(title, () => {
    for (const factory of storeFactories) {
      describe(factory.name, () => body(() => factory.open()));
    }
    if (!mongoUri) {
      if (!reportedMongoSkipped) {
        reportedMongoSkipped = true;
        console.warn(`MongoDB suites skipped: set MONGODB_URI (e.g. mongodb://127.0.0.1:27017/) to run them`);
      }
      describe.skip(MONGO_SKIPPED, () => {
        it('runs only when MONGODB_URI is set', () => {});
      });
    }
  });
}
