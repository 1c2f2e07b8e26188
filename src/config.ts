import { randomBytes } from 'node:crypto';

/** Everything the server reads from its environment, read in one place. */
export interface ServerConfig {
  port: number;
  host: string;
  /** Public base URL of the FHIR endpoint, used in Location headers and bundle links. */
  baseUrl?: string;
  /** The embedded store's file. */
  sqlitePath: string;
  sqliteSynchronous: 'NORMAL' | 'FULL';
  /** When set, the MongoDB adapter is used instead of the embedded store. */
  mongodbUri?: string;
  mongodbDatabase?: string;
  /** Largest accepted request body for a single resource, in bytes. */
  bodyLimit: number;
  /** Default and maximum page sizes for history and search listings. */
  defaultPageSize: number;
  maxPageSize: number;
  /** Signs paging tokens so they cannot be forged or replayed across queries. */
  pagingSecret: Buffer;
  logLevel: string;
  /**
   * Index resources for search as they are written (the default). Off only for measuring what
   * indexing costs, or for a bulk load followed by `npm run reindex`: until then searches and
   * conditional operations see nothing.
   */
  searchIndexing: boolean;
}

function integer(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const synchronous = (env.SQLITE_SYNCHRONOUS ?? 'NORMAL').toUpperCase();
  if (synchronous !== 'NORMAL' && synchronous !== 'FULL') {
    throw new Error('SQLITE_SYNCHRONOUS must be NORMAL or FULL');
  }
  const config: ServerConfig = {
    port: integer(env.PORT, 8080, 'PORT'),
    host: env.HOST ?? '0.0.0.0',
    sqlitePath: env.SQLITE_PATH ?? './data/fhir.sqlite',
    sqliteSynchronous: synchronous,
    bodyLimit: integer(env.BODY_LIMIT_BYTES, 16 * 1024 * 1024, 'BODY_LIMIT_BYTES'),
    defaultPageSize: integer(env.DEFAULT_PAGE_SIZE, 20, 'DEFAULT_PAGE_SIZE'),
    maxPageSize: integer(env.MAX_PAGE_SIZE, 1000, 'MAX_PAGE_SIZE'),
    pagingSecret: env.PAGING_SECRET ? Buffer.from(env.PAGING_SECRET, 'utf8') : randomBytes(32),
    logLevel: env.LOG_LEVEL ?? 'info',
    searchIndexing: env.SEARCH_INDEXING !== 'off',
  };
  if (env.BASE_URL) config.baseUrl = env.BASE_URL.replace(/\/+$/, '');
  if (env.MONGODB_URI) config.mongodbUri = env.MONGODB_URI;
  if (env.MONGODB_DATABASE) config.mongodbDatabase = env.MONGODB_DATABASE;
  return config;
}
