import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { AccessRecorder } from '../access/events.js';
import { BulkJobs, type JobLog } from '../fhir/bulk/bulk-jobs.js';
import { runExport } from '../fhir/bulk/export-runner.js';
import { JobFiles } from '../fhir/bulk/job-files.js';
import type { ResourceService } from '../fhir/resource-service.js';
import type { SearchService } from '../fhir/search/search-service.js';
import type { BodyCodec } from '../store/codec.js';
import type { ResourceStore } from '../store/port.js';
import { bulkAuditing } from './bulk-audit.js';
import { bulkExportRoutes } from './routes/bulk-export.js';
import { bulkStatusRoutes } from './routes/bulk-status.js';

/** Bulk Data: the job queue (resumed at once) and the routes of the authenticated scope. */

export interface BulkDataOptions {
  /** Where jobs and their files are kept; a fresh temporary folder when omitted (tests). */
  dir?: string;
  /** How long a finished job's files stay available. */
  retentionMs?: number;
}

export const DEFAULT_BULK_RETENTION_MS = 24 * 3_600_000;

export interface BulkDataDeps {
  store: ResourceStore;
  codec: BodyCodec;
  searches: SearchService;
  resources: ResourceService;
  recorders: AccessRecorder[];
  localBase: string;
  log: JobLog;
}

export interface BulkData {
  jobs: BulkJobs;
  routes: (scope: FastifyInstance) => void;
  /** Stops the running job at a checkpoint (it resumes on the next start). */
  close: () => Promise<void>;
}

export function openBulkData(options: BulkDataOptions, deps: BulkDataDeps): BulkData {
  const temporary = options.dir === undefined;
  const files = new JobFiles(options.dir ?? join(tmpdir(), `ehealth-bulk-${randomUUID()}`));
  const jobs = new BulkJobs(files, {
    runners: { export: (id, plan, state, control) => runExport(id, plan, state, files, deps.store, deps.codec, control) },
    retentionMs: options.retentionMs ?? DEFAULT_BULK_RETENTION_MS,
    log: deps.log,
    ...bulkAuditing(deps.recorders, deps.localBase),
  });
  jobs.open();
  return {
    jobs,
    routes: (scope) => {
      bulkExportRoutes(scope, { jobs, searches: deps.searches, resources: deps.resources });
      bulkStatusRoutes(scope, jobs);
    },
    close: async () => {
      await jobs.close();
      if (temporary) rmSync(files.dir, { recursive: true, force: true });
    },
  };
}
