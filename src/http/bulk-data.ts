import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { AccessRecorder } from '../access/events.js';
import type { AccessView } from '../access/policy.js';
import { authorize } from '../access/rights.js';
import type { Principal } from '../auth/principal.js';
import { BulkJobs, type JobLog } from '../fhir/bulk/bulk-jobs.js';
import { runExport } from '../fhir/bulk/export-runner.js';
import { runImport } from '../fhir/bulk/import-runner.js';
import { JobFiles } from '../fhir/bulk/job-files.js';
import { FhirError } from '../fhir/outcome.js';
import { bothGuards, type ResourceService, type WriteGuard } from '../fhir/resource-service.js';
import type { SearchService } from '../fhir/search/search-service.js';
import type { BodyCodec } from '../store/codec.js';
import type { ResourceStore } from '../store/port.js';
import { bulkAuditing } from './bulk-audit.js';
import { bulkExportRoutes } from './routes/bulk-export.js';
import { bulkImportRoutes } from './routes/bulk-import.js';
import { bulkStatusRoutes } from './routes/bulk-status.js';

/** Bulk Data: the job queue (resumed at once) and the routes of the authenticated scope. */

export interface BulkDataOptions {
  /** Where jobs and their files are kept; a fresh temporary folder when omitted (tests). */
  dir?: string;
  /** How long a finished job's files stay available. */
  retentionMs?: number;
  /** URL prefixes $import may fetch from; nothing else is ever fetched. */
  importAllowedUrls?: string[];
  /** Largest NDJSON body $import accepts (streamed to disk). */
  uploadLimitBytes?: number;
}

export const DEFAULT_BULK_RETENTION_MS = 24 * 3_600_000;
export const DEFAULT_UPLOAD_LIMIT_BYTES = 1024 * 1024 * 1024;

export interface BulkDataDeps {
  store: ResourceStore;
  codec: BodyCodec;
  searches: SearchService;
  resources: ResourceService;
  recorders: AccessRecorder[];
  localBase: string;
  log: JobLog;
  /** What a principal may see and change now (an import writes under its starter's view). */
  viewFor: (principal: Principal) => Promise<AccessView>;
  /** The principal as the participation records describe it now; undefined when no longer registered. */
  currentPrincipal: (principal: Principal) => Promise<Principal | undefined>;
  /** The guard every REST write passes besides the caller's own. */
  guard?: WriteGuard;
}

export interface BulkData {
  jobs: BulkJobs;
  routes: (scope: FastifyInstance) => Promise<void>;
  /** Stops the running job at a checkpoint (it resumes on the next start). */
  close: () => Promise<void>;
}

export function openBulkData(options: BulkDataOptions, deps: BulkDataDeps): BulkData {
  const temporary = options.dir === undefined;
  const files = new JobFiles(options.dir ?? join(tmpdir(), `ehealth-bulk-${randomUUID()}`));
  const jobs = new BulkJobs(files, {
    runners: {
      export: (id, plan, state, control) => runExport(id, plan, state, files, deps.store, deps.codec, control),
      import: (id, plan, state, control) => runImport(id, plan, state, files, { ...deps, writerFor: (p) => importWriter(p.context?.principal as Principal, deps) }, control, (err) => deps.log.error({ err, job: id }, 'an import line failed unexpectedly')),
    },
    retentionMs: options.retentionMs ?? DEFAULT_BULK_RETENTION_MS,
    log: deps.log,
    ...bulkAuditing(deps.recorders, deps.localBase),
  });
  const uploadDir = join(files.dir, 'uploads');
  // Uploads cut off by a stop belong to no job.
  rmSync(uploadDir, { recursive: true, force: true });
  jobs.open();
  return {
    jobs,
    routes: async (scope) => {
      bulkExportRoutes(scope, { jobs, searches: deps.searches, resources: deps.resources });
      bulkStatusRoutes(scope, jobs);
      await bulkImportRoutes(scope, { jobs, uploadDir, uploadLimitBytes: options.uploadLimitBytes ?? DEFAULT_UPLOAD_LIMIT_BYTES, allowedUrls: options.importAllowedUrls ?? [] });
    },
    close: async () => {
      await jobs.close();
      if (temporary) rmSync(files.dir, { recursive: true, force: true });
    },
  };
}

/** The principal's rights to write, as its REST writes would have them now. */
/** The starter's rights now, not as they were at the kick-off: the job outlives the request (and restarts). */
async function importWriter(started: Principal, deps: BulkDataDeps) {
  const principal = await deps.currentPrincipal(started);
  if (!principal) throw FhirError.of(403, 'forbidden', 'The principal that started this import is no longer registered');
  const view = await deps.viewFor(principal);
  const guard = bothGuards(deps.guard, view.guard);
  return { authorize: (resourceType: string) => authorize(principal, 'write', { resourceType }), ...(guard && { guard }) };
}
