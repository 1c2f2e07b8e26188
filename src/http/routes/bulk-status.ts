import { createReadStream, existsSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authorize } from '../../access/rights.js';
import type { BulkJobs, Job } from '../../fhir/bulk/bulk-jobs.js';
import { NDJSON } from '../../fhir/bulk/export-request.js';
import { FhirError, issue, notFound, operationOutcome } from '../../fhir/outcome.js';
import { baseUrl } from '../request.js';
import { sendJson } from '../respond.js';
import { ownerOf } from './bulk-export.js';

/**
 * The status URL of a bulk job (poll, cancel) and its files. Both belong to the principal
 * that started the job: anyone else is told there is no such job, not that it is someone else's.
 */

const RETRY_AFTER_SECONDS = 2;

function jobOf(request: FastifyRequest<{ Params: { job: string } }>, jobs: BulkJobs): Job {
  const job = jobs.find(request.params.job, ownerOf(request.principal));
  if (!job) throw notFound('There is no such bulk job (it may have expired or been cancelled)');
  // The owner's rights as they are now: a deactivated account, a suspended HCP or a narrower
  // token no longer reads what it exported (or the errors of what it imported).
  if (job.plan.kind === 'export') for (const step of job.plan.steps) authorize(request.principal, 'search', { resourceType: step.type });
  else for (const input of job.plan.inputs ?? []) if (input.type) authorize(request.principal, 'write', { resourceType: input.type });
  return job;
}

function progress(job: Job): string {
  const { state, plan } = job;
  if (state.status === 'queued') return 'queued';
  if (plan.kind === 'import') {
    const written = Object.values(state.imported ?? {}).reduce((n, c) => n + c, 0);
    return `input ${Math.min(state.step + 1, plan.inputs?.length ?? 0)} of ${plan.inputs?.length ?? 0}, line ${state.line ?? 0}; ${written} resources written, ${state.unchanged ?? 0} unchanged, ${state.errorCount ?? 0} errors`;
  }
  const step = plan.steps[state.step];
  const done = state.outputs.reduce((n, o) => n + o.count, 0) + state.count;
  return `${Math.min(state.step + 1, plan.steps.length)} of ${plan.steps.length} types${step ? ` (${step.type})` : ''}, ${done} resources`;
}

/** The completion manifest (Bulk Data IG v2). */
function manifest(job: Job, base: string) {
  const url = (file: string) => `${base}/$bulk-file/${job.id}/${file}`;
  return {
    transactionTime: new Date(job.plan.transactionTime).toISOString(),
    request: job.plan.request,
    requiresAccessToken: true,
    output: job.state.outputs.map((o) => ({ type: o.type, ...((o.file ?? o.url) && { url: o.file ? url(o.file) : o.url }), count: o.count })),
    error: job.state.errors.map((o) => ({ type: o.type, url: url(o.file!), count: o.count })),
  };
}

export function bulkStatusRoutes(app: FastifyInstance, jobs: BulkJobs): void {
  app.get<{ Params: { job: string } }>('/fhir/$bulk-status/:job', async (request, reply) => {
    const job = jobOf(request, jobs);
    const { state } = job;
    if (state.status === 'queued' || state.status === 'running') {
      reply.header('X-Progress', progress(job)).header('Retry-After', String(RETRY_AFTER_SECONDS));
      return reply.code(202).send();
    }
    if (state.status === 'failed') throw FhirError.of(500, 'exception', state.failure ?? 'The job failed');
    reply.header('Expires', new Date(state.expiresAt!).toUTCString());
    return reply.code(200).type('application/json; charset=utf-8').send(JSON.stringify(manifest(job, baseUrl(request))));
  });

  app.delete<{ Params: { job: string } }>('/fhir/$bulk-status/:job', async (request, reply) => {
    if (!(await jobs.cancel(request.params.job, ownerOf(request.principal)))) throw notFound('There is no such bulk job (it may have expired or been cancelled)');
    return sendJson(request, reply, 202, operationOutcome([issue('information', 'informational', 'The job was cancelled and its files removed')]));
  });

  app.get<{ Params: { job: string; file: string } }>('/fhir/$bulk-file/:job/:file', async (request: FastifyRequest<{ Params: { job: string; file: string } }>, reply: FastifyReply) => {
    const job = jobOf(request, jobs);
    const listed = [...job.state.outputs, ...job.state.errors].some((o) => o.file === request.params.file);
    const path = listed && job.state.status === 'done' ? jobs.filePath(job.id, request.params.file) : undefined;
    if (!path || !existsSync(path)) throw notFound('There is no such file in this bulk job');
    return reply.code(200).type(NDJSON).send(createReadStream(path));
  });
}
