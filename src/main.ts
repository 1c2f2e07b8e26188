import pino from 'pino';
import { authFromConfig } from './auth/from-config.js';
import { readConfig } from './config.js';
import { allResourceTypes, preloadDefinitions } from './fhir/definitions.js';
import { precompileValidators } from './fhir/validation.js';
import { buildServer } from './server.js';
import { software } from './software.js';
import { PATIENT_OWNERSHIP } from './fhir/search/compartments.js';
import { openStore } from './store/open-store.js';

const config = readConfig();
const store = await openStore(config, PATIENT_OWNERSHIP);
// Pay for loading definitions and compiling validators before the first request, not during it.
preloadDefinitions();
precompileValidators(allResourceTypes());

// Buffered: a write(2) per request line cost about a tenth of a read's CPU. What a crash can
// lose is the last few KB of the request log; the audit trail is what keeps the record.
const requestLog = pino.destination({ dest: 1, sync: false, minLength: 4096 });
// A quiet server's lines still appear within a second.
setInterval(() => requestLog.flush(), 1000).unref();
const app = await buildServer({
  store,
  software,
  bodyLimit: config.bodyLimit,
  bundleBodyLimit: config.bundleBodyLimit,
  defaultPageSize: config.defaultPageSize,
  maxPageSize: config.maxPageSize,
  searchCost: config.searchCost,
  pagingSecret: config.pagingSecret,
  ...(config.baseUrl && { baseUrl: config.baseUrl }),
  searchIndexing: config.searchIndexing,
  corsAllowedOrigins: config.corsAllowedOrigins,
  bulk: { dir: config.bulkDataDir, retentionMs: config.bulkRetentionSeconds * 1000, importAllowedUrls: config.bulkImportAllowedUrls, uploadLimitBytes: config.bulkImportBodyLimit },
  auth: await authFromConfig(config),
  publicProviders: true,
  log: { level: config.logLevel, stream: requestLog },
});

let closing = false;
async function shutdown(signal: string): Promise<void> {
  if (closing) return;
  closing = true;
  app.log.info({ signal }, 'shutting down');
  await app.close();
  await store.close();
  requestLog.flushSync();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

await app.listen({ port: config.port, host: config.host });
app.log.info({ store: store.kind, port: config.port, mode: config.mode }, 'FHIR server ready');
if (config.mode === 'development') {
  app.log.info(`development mode: tokens signed with ${config.auth.devKeyFile} are accepted; mint one with \`npm run token -- operator\``);
}
requestLog.flush();
