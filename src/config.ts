import { randomBytes } from 'node:crypto';
import { DEFAULT_SEARCH_COST_LIMITS, type SearchCostLimits } from './fhir/search/search-cost.js';

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
  /** Largest accepted batch or transaction Bundle, in bytes (a 10,000-entry bundle is far above one resource). */
  bundleBodyLimit: number;
  /** Default and maximum page sizes for history and search listings. */
  defaultPageSize: number;
  maxPageSize: number;
  /** What one search may ask of the store (beyond it: 400 too-costly). */
  searchCost: SearchCostLimits;
  /** Signs paging tokens so they cannot be forged or replayed across queries. */
  pagingSecret: Buffer;
  logLevel: string;
  /**
   * Index resources for search as they are written (the default). Off only for measuring what
   * indexing costs, or for a bulk load followed by `npm run reindex`: until then searches and
   * conditional operations see nothing.
   */
  searchIndexing: boolean;
  /** Where Bulk Data jobs and their NDJSON files are kept (they survive a restart there). */
  bulkDataDir: string;
  /** How long a finished bulk job's files stay available, in seconds. */
  bulkRetentionSeconds: number;
  /** URL prefixes $import may fetch NDJSON from; empty: uploads only. */
  bulkImportAllowedUrls: string[];
  /** Origins whose browser apps may call the API (CORS); none by default. */
  corsAllowedOrigins: string[];
  /** Largest NDJSON body $import accepts, in bytes (streamed to disk). */
  bulkImportBodyLimit: number;
  /** production: only configured keys are trusted, never the development key. */
  mode: 'development' | 'production';
  auth: {
    issuers: string[];
    audience: string;
    /** A JSON Web Key Set file of trusted public keys (e.g. an identity provider's). */
    jwksFile?: string;
    /** An identity provider's JWKS URL, fetched and cached. */
    jwksUrl?: string;
    /** The private JWK that signs this server's access tokens (required in production for /auth/token). */
    signingKeyFile?: string;
    /** Development only: where the development key is kept (made on first start). */
    devKeyFile: string;
    /** The registered backend clients (SMART Backend Services). */
    clientsFile?: string;
    /** The card readers whose smart HKIC readings are trusted, each registered to an HCP. */
    cardReadersFile?: string;
    tokenLifetimeSeconds: number;
  };
}

export const DEFAULT_ISSUER = 'ehealth-fhir-server';
export const DEFAULT_AUDIENCE = 'ehealth-fhir';

function integer(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

/** `https://app.example.org,http://localhost:3000`: origins exactly as browsers send them (scheme, host, port; no path), or `*`. */
function corsOrigins(value: string | undefined): string[] {
  const origins = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$/i.test(origin)) {
      throw new Error(`CORS_ALLOWED_ORIGINS: '${origin}' is not an origin such as https://app.example.org (scheme, host and port only)`);
    }
  }
  return origins;
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
    bundleBodyLimit: integer(env.BUNDLE_BODY_LIMIT_BYTES, 64 * 1024 * 1024, 'BUNDLE_BODY_LIMIT_BYTES'),
    defaultPageSize: integer(env.DEFAULT_PAGE_SIZE, 20, 'DEFAULT_PAGE_SIZE'),
    maxPageSize: integer(env.MAX_PAGE_SIZE, 1000, 'MAX_PAGE_SIZE'),
    searchCost: {
      maxParameters: integer(env.SEARCH_MAX_PARAMETERS, DEFAULT_SEARCH_COST_LIMITS.maxParameters, 'SEARCH_MAX_PARAMETERS'),
      maxComparisons: integer(env.SEARCH_MAX_COMPARISONS, DEFAULT_SEARCH_COST_LIMITS.maxComparisons, 'SEARCH_MAX_COMPARISONS'),
      maxListValues: integer(env.SEARCH_MAX_LIST_VALUES, DEFAULT_SEARCH_COST_LIMITS.maxListValues, 'SEARCH_MAX_LIST_VALUES'),
    },
    pagingSecret: env.PAGING_SECRET ? Buffer.from(env.PAGING_SECRET, 'utf8') : randomBytes(32),
    logLevel: env.LOG_LEVEL ?? 'info',
    searchIndexing: env.SEARCH_INDEXING !== 'off',
    bulkDataDir: env.BULK_DATA_DIR ?? './data/bulk',
    bulkRetentionSeconds: integer(env.BULK_EXPORT_RETENTION_SECONDS, 24 * 3600, 'BULK_EXPORT_RETENTION_SECONDS'),
    bulkImportAllowedUrls: (env.BULK_IMPORT_ALLOWED_URLS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    corsAllowedOrigins: corsOrigins(env.CORS_ALLOWED_ORIGINS),
    bulkImportBodyLimit: integer(env.BULK_IMPORT_BODY_LIMIT_BYTES, 1024 * 1024 * 1024, 'BULK_IMPORT_BODY_LIMIT_BYTES'),
    mode: env.EHEALTH_MODE === 'production' ? 'production' : 'development',
    auth: {
      issuers: (env.AUTH_ISSUER ?? DEFAULT_ISSUER).split(',').map((s) => s.trim()).filter(Boolean),
      audience: env.AUTH_AUDIENCE ?? DEFAULT_AUDIENCE,
      devKeyFile: env.AUTH_DEV_KEY_FILE ?? './data/dev-signing-key.json',
      tokenLifetimeSeconds: integer(env.AUTH_TOKEN_LIFETIME_SECONDS, 300, 'AUTH_TOKEN_LIFETIME_SECONDS'),
    },
  };
  if (env.EHEALTH_MODE && env.EHEALTH_MODE !== 'production' && env.EHEALTH_MODE !== 'development') {
    throw new Error('EHEALTH_MODE must be development or production');
  }
  if (env.AUTH_JWKS_FILE) config.auth.jwksFile = env.AUTH_JWKS_FILE;
  if (env.AUTH_JWKS_URL) config.auth.jwksUrl = env.AUTH_JWKS_URL;
  if (env.AUTH_SIGNING_KEY_FILE) config.auth.signingKeyFile = env.AUTH_SIGNING_KEY_FILE;
  if (env.AUTH_CLIENTS_FILE) config.auth.clientsFile = env.AUTH_CLIENTS_FILE;
  if (env.AUTH_CARD_READERS_FILE) config.auth.cardReadersFile = env.AUTH_CARD_READERS_FILE;
  if (env.BASE_URL) config.baseUrl = env.BASE_URL.replace(/\/+$/, '');
  if (env.MONGODB_URI) config.mongodbUri = env.MONGODB_URI;
  if (env.MONGODB_DATABASE) config.mongodbDatabase = env.MONGODB_DATABASE;
  return config;
}
