import Fastify, { type FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import { BackendServices } from './auth/backend-services.js';
import { trustedKeys } from './auth/keys.js';
import type { AuthSetup } from './auth/setup.js';
import { InvalidToken, TokenVerifier } from './auth/tokens.js';
import { claimFromToken, subjectOfPrincipal } from './auth/principal.js';
import { serverCapabilityStatement } from './capability-statement.js';
import type { SoftwareInfo } from './fhir/capability.js';
import { HistoryService } from './fhir/history.js';
import { PageTokens } from './fhir/page-token.js';
import { bothGuards, ResourceService } from './fhir/resource-service.js';
import { SearchService } from './fhir/search/search-service.js';
import { FhirError } from './fhir/outcome.js';
import { installErrorHandling } from './http/errors.js';
import { installJsonBodyParser } from './http/json-body.js';
import { negotiate } from './http/negotiation.js';
import { OneLineRequestLog, requestSerializers } from './http/logging.js';
import { requireAuthentication } from './http/authentication.js';
import { installAccessRecording } from './http/access.js';
import type { AccessEvent, AccessRecorder, NotificationSender } from './access/events.js';
import { AuditLog } from './access/audit.js';
import { AuditIndexer, seeingRecordedAudits } from './access/audit-index.js';
import { AuditWorker } from './access/audit-worker.js';
import { LogSender, NotificationOutbox } from './access/notifications.js';
import { serverRecordsGuard } from './access/server-records.js';
import { AccessPolicy } from './access/policy.js';
import { AccessLog } from './access/access-log.js';
import { CareNetwork } from './access/reach.js';
import { accessIndexEntries } from './access/records-of.js';
import { authRoutes } from './http/routes/auth.js';
import { historyRoutes } from './http/routes/history.js';
import { operationRoutes } from './http/routes/operations.js';
import { publicRoutes } from './http/routes/public.js';
import { instanceRoutes } from './http/routes/instance.js';
import { allowBrowserOrigins } from './http/cors.js';
import { healthRoutes } from './http/routes/health.js';
import { metadataRoutes } from './http/routes/metadata.js';
import { searchRoutes } from './http/routes/search.js';
import { bundleRoutes } from './http/routes/bundle.js';
import { BundleProcessor } from './fhir/bundle-processing/processor.js';
import { openBulkData, type BulkDataOptions } from './http/bulk-data.js';
import { everythingRoutes } from './http/routes/everything.js';
import { validateRoutes } from './http/routes/validate.js';
import { EverythingService } from './fhir/everything.js';
import { ValidateOperation } from './fhir/validate-operation.js';
import { methodNotAllowedRoutes, trackRoutes } from './http/routes/unsupported-methods.js';
import { participationGuard } from './participation/guard.js';
import { ALL_OPERATIONS } from './operations.js';
import { operationDefinition, OPERATIONS } from './participation/operations.js';
import { resolvePrincipal } from './participation/principals.js';
import { PrincipalCache } from './participation/principal-cache.js';
import { Records } from './participation/records.js';
import { Participation } from './participation/service.js';
import type { SearchCostLimits } from './fhir/search/search-cost.js';
import { plainJsonCodec, type BodyCodec } from './store/codec.js';
import type { ResourceStore } from './store/port.js';
import { sharedStoreFile } from './store/open-store.js';

/** The composition root: wires the rooms together into one Fastify app. */

export interface ServerOptions {
  store: ResourceStore;
  codec?: BodyCodec;
  software: SoftwareInfo;
  bodyLimit: number;
  /** Largest accepted batch or transaction Bundle; the single-resource limit when omitted. */
  bundleBodyLimit?: number;
  defaultPageSize: number;
  maxPageSize: number;
  /** What one search may ask of the store; the defaults (search-cost.ts) where omitted. */
  searchCost?: Partial<SearchCostLimits>;
  pagingSecret: Buffer;
  baseUrl?: string;
  /** False only for measuring indexing cost or bulk loads followed by a reindex. */
  searchIndexing?: boolean;
  auth: AuthSetup;
  /** Origins whose browser apps may call the API (CORS, see http/cors.ts); none when omitted. */
  corsAllowedOrigins?: string[];
  /** Create HA and DH when they are missing (the real server; test suites start empty). */
  publicProviders?: boolean;
  /**
   * Where every authenticated request is recorded before its answer leaves; the audit trail
   * and the patient notification outbox unless given (tests of the recording itself).
   */
  recorders?: AccessRecorder[];
  /** How patients are messaged; the built-in sender writes to the log. */
  notificationSender?: NotificationSender;
  /**
   * False leaves queued notifications unsent by this process (another process dispatches them,
   * or a test looks at the queue without the dispatcher rewriting it meanwhile). Default true.
   */
  dispatchNotifications?: boolean;
  /** Bulk Data jobs: where they are kept and for how long. */
  bulk?: BulkDataOptions;
  /**
   * Index each AuditEvent a moment after recording it, many in one commit (see
   * access/audit-index.ts). Default: on the embedded store, where the index rows were most of a
   * read's cost; off on MongoDB, whose adapter writes a later index in several round trips.
   */
  auditIndexBehind?: boolean;
  /**
   * Write the audit trail on a thread of its own (see access/audit-worker.ts). Default: when the
   * store can be opened from another thread (a database file) and bodies are stored as plain
   * JSON (a codec cannot be handed to a thread); `auditIndexBehind` then applies inside it.
   */
  auditThread?: boolean;
  /**
   * With the audit thread on a database file: answer once the access events are in the audit
   * journal beside it, and store them behind (see access/audit-journal.ts). Default true.
   */
  auditJournal?: boolean;
  /** Request logging; omitted for silence (tests). */
  log?: { level: string; stream?: DestinationStream };
}

/**
 * The audit trail: on its own thread where the store allows it, otherwise in this one, with its
 * index written inline or just behind (`auditIndex` is then what searches must wait on).
 */
function openAuditTrail(options: ServerOptions, codec: BodyCodec, localBase: string, onError: (message: string) => void) {
  const share = options.store.share;
  const indexBehind = options.auditIndexBehind ?? options.store.kind === 'sqlite';
  if (share && codec === plainJsonCodec && (options.auditThread ?? true)) {
    const file = (options.auditJournal ?? true) ? sharedStoreFile(share) : undefined;
    const journal = file && { dir: `${file.path}-audit-journal`, sync: file.synced };
    const worker = new AuditWorker(share, { baseUrl: localBase, onError, indexBehind, ...(journal && { journal }) });
    return { auditLog: worker, auditIndex: indexBehind || journal ? worker : undefined };
  }
  const indexer = indexBehind ? new AuditIndexer(options.store, codec, { localBase }) : undefined;
  const log = new AuditLog(options.store, codec, { baseUrl: localBase, ...(indexer && { indexer }) });
  return { auditLog: { record: (event: AccessEvent) => log.record(event), open: () => log.open(), close: async () => indexer?.close() }, auditIndex: indexer };
}

/** The one route that answers NDJSON (see http/routes/bulk-status.ts). */
const BULK_FILE_ROUTE = '/fhir/$bulk-file/:job/:file';

const JSON_TYPES = ['application/json', 'application/fhir+json', 'application/json-patch+json', 'application/json+fhir'];

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: options.bodyLimit,
    logger: options.log ? { level: options.log.level, serializers: requestSerializers, ...(options.log.stream && { stream: options.log.stream }) } : false,
    logController: new OneLineRequestLog(),
    // The JSON parser (http/json-body.ts) refuses __proto__ and constructor.prototype keys outright.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Some clients end the base with a slash (`GET /fhir/?_type=Patient` for a system search):
    // `/fhir/` is the base and `/fhir/Patient/` the type, as they are without it.
    routerOptions: { ignoreTrailingSlash: true },
  });
  app.decorate('fhirBaseUrl', options.baseUrl);
  app.decorateRequest('fhirMediaType', 'application/fhir+json');
  // Only JSON bodies are FHIR here; anything else is a 415, not a string handed to a route.
  app.removeContentTypeParser(['text/plain', 'application/json']);
  installJsonBodyParser(app, JSON_TYPES);

  installErrorHandling(app);
  app.addHook('onRequest', async (request) => {
    const query = request.query as Record<string, unknown>;
    const format = typeof query._format === 'string' ? query._format : undefined;
    const accept = typeof request.headers.accept === 'string' ? request.headers.accept : undefined;
    const mediaType = negotiate(format, accept, { ndjson: request.routeOptions.url === BULK_FILE_ROUTE });
    if (!mediaType) {
      throw FhirError.of(406, 'not-supported', 'This server answers in JSON only: application/fhir+json or application/json');
    }
    request.fhirMediaType = mediaType;
  });

  const codec = options.codec ?? plainJsonCodec;
  const localBase = options.baseUrl ?? 'http://localhost/fhir';
  const { auditLog, auditIndex } = openAuditTrail(options, codec, localBase, (message) => app.log.error(message));
  // Everything below reads through this: queries that can reach AuditEvents see every one recorded.
  const store = auditIndex ? seeingRecordedAudits(options.store, auditIndex) : options.store;
  const tokens = new PageTokens(options.pagingSecret);
  const searches = new SearchService(store, codec, tokens, options);
  const network = new CareNetwork(searches, codec, localBase);
  const policy = new AccessPolicy(network, localBase);
  // Resolves against the participation records (made below) only once requests arrive.
  const principals = new PrincipalCache((claim) => resolvePrincipal(claim, records));
  const resources = new ResourceService(store, codec, searches, {
    searchIndexing: options.searchIndexing ?? true,
    derivedIndex: accessIndexEntries,
    onWrite: (type, id, written) => {
      policy.changed(type, id, written);
      principals.changed(type);
    },
  });
  const history = new HistoryService(store, codec, tokens, options);

  const records = new Records(resources, searches, codec);
  const sender = options.notificationSender ?? new LogSender(app.log);
  const participation = new Participation(records, undefined, sender, options.auth.cardReaders);
  const accessLog = new AccessLog(searches, codec, localBase);
  participation.handlers['Patient-access-log'] = (principal, id) => accessLog.forPatient(principal, id!);
  if (options.publicProviders) await participation.providers.ensurePublicProviders(options.baseUrl ?? 'http://localhost/fhir');

  const { auth } = options;
  const verifier = new TokenVerifier(trustedKeys({ local: auth.trustedKeys, ...(auth.remoteJwksUrl && { remoteJwksUrl: auth.remoteJwksUrl }) }), {
    issuers: auth.issuers,
    audience: auth.audience,
    clockToleranceSeconds: 30,
  });
  const outbox = new NotificationOutbox(store, codec, sender, { baseUrl: localBase, log: app.log });
  await auditLog.open();
  if (options.dispatchNotifications ?? true) outbox.start();
  app.addHook('onClose', async () => outbox.stop());
  app.addHook('onClose', async () => auditLog.close());

  const authenticate = async (token: string) => {
    const principal = await principals.get(await verifier.verify(token));
    if (!principal) throw new InvalidToken('The token names a principal that is not registered here');
    return principal;
  };

  // Before the routes are tracked: its catch-all OPTIONS route is no FHIR path to answer 405 on.
  if (options.corsAllowedOrigins?.length) await allowBrowserOrigins(app, options.corsAllowedOrigins);
  const routes = trackRoutes(app);
  // Public and authenticated routes are sibling scopes: no path is exempted by string matching.
  await app.register(async (open) => {
    healthRoutes(open, store);
    metadataRoutes(open, serverCapabilityStatement(options.software, { transactions: store.atomicWriteMany === true, cors: (options.corsAllowedOrigins?.length ?? 0) > 0 }));
    // Standard operations ($everything, $validate, Bulk Data) are defined at their canonical URLs;
    // serving them here too would shadow stored OperationDefinitions with the same ids.
    const ownOperations = ALL_OPERATIONS.filter((spec) => spec.canonical === undefined);
    publicRoutes(open, participation.providers, ownOperations.map((spec) => operationDefinition(spec, options.software.releaseDate)));
    await authRoutes(open, {
      clients: new BackendServices(auth.clients),
      signingKey: auth.signingKey,
      issuer: auth.issuers[0]!,
      audience: auth.audience,
      lifetimeSeconds: auth.tokenLifetimeSeconds,
    });
  });
  await app.register(async (secured) => {
    const recorders = options.recorders ?? [auditLog, outbox];
    installAccessRecording(secured, { policy, recorders });
    requireAuthentication(secured, authenticate);
    operationRoutes(secured, OPERATIONS.filter((spec) => !spec.public), participation);
    historyRoutes(secured, history, resources);
    instanceRoutes(secured, resources, bothGuards(participationGuard, serverRecordsGuard));
    await searchRoutes(secured, searches);
    const bundles = new BundleProcessor({ store, codec, resources, searches, history });
    bundleRoutes(secured, bundles, { guard: bothGuards(participationGuard, serverRecordsGuard), bodyLimit: options.bundleBodyLimit ?? options.bodyLimit });
    const bulk = openBulkData(options.bulk ?? {}, {
      store, codec, searches, resources, recorders, localBase, log: app.log,
      viewFor: (principal) => policy.viewFor(principal),
      currentPrincipal: async (principal) => {
        const claim = claimFromToken(subjectOfPrincipal(principal), principal.kind === 'system' ? principal.scopes.join(' ') : undefined, principal.kind === 'system' && principal.seesNonParticipating);
        return claim && (await principals.get(claim));
      },
      guard: bothGuards(participationGuard, serverRecordsGuard),
    });
    await bulk.routes(secured);
    app.addHook('onClose', bulk.close);
    everythingRoutes(secured, new EverythingService(store, codec, tokens, options, resources));
    validateRoutes(secured, new ValidateOperation(store, codec), bothGuards(participationGuard, serverRecordsGuard));
  });
  // A wrong method on a known path is a 405 for anyone: it says nothing about any record.
  await app.register(async (rest) => methodNotAllowedRoutes(rest, routes));
  return app;
}
