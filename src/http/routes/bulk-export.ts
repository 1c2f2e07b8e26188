import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Group } from 'fhir/r4.js';
import { authorize, refuseCrossTypeSearch, typesAcrossAll } from '../../access/rights.js';
import { withheldPatients } from '../../access/client-view.js';
import { subjectOfPrincipal } from '../../auth/principal.js';
import type { BulkJobs } from '../../fhir/bulk/bulk-jobs.js';
import { exportSteps, filterPairs } from '../../fhir/bulk/export-plan.js';
import { pairsFromParameters, parseExportRequest, typesOf, type ExportLevel } from '../../fhir/bulk/export-request.js';
import { badRequest, issue, operationOutcome } from '../../fhir/outcome.js';
import { requireValidId } from '../../fhir/resource-input.js';
import type { ResourceService } from '../../fhir/resource-service.js';
import type { SearchService } from '../../fhir/search/search-service.js';
import { baseUrl, header, rawQuery } from '../request.js';
import { sendJson } from '../respond.js';

/**
 * Bulk Data export kick-off (IG v2) at system, Patient and Group level, GET or POST. The
 * routes hold `$`, so the REST gate leaves them alone: each type is authorised here as a search
 * by the same principal would be, and the caller's view is compiled into the job's queries.
 */

/** Jobs and their files belong to the `sub` of the principal that started them. */
export const ownerOf = subjectOfPrincipal;

export const statusUrl = (base: string, id: string) => `${base}/$bulk-status/${id}`;

/** Whose compartments a Group export covers: its active Patient members (and only those a POST names, if it does). */
function groupPatients(group: Group, named: string[] | undefined): string[] {
  const members = (group.member ?? [])
    .filter((m) => !m.inactive)
    .map((m) => /^(?:.*\/)?Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(m.entity.reference ?? '')?.[1])
    .filter((id): id is string => id !== undefined);
  return named ? members.filter((id) => named.includes(id)) : [...new Set(members)];
}

export function requireRespondAsync(request: FastifyRequest): void {
  if (!/(^|[\s,;])respond-async($|[\s,;])/i.test(header(request, 'prefer') ?? '')) {
    throw badRequest('Bulk Data requests are asynchronous: send the header Prefer: respond-async');
  }
}

export function accepted(request: FastifyRequest, reply: FastifyReply, id: string, what: string): FastifyReply {
  reply.header('Content-Location', statusUrl(baseUrl(request), id));
  return sendJson(request, reply, 202, operationOutcome([issue('information', 'informational', `${what} started; poll the Content-Location URL for its progress`)]));
}

export function bulkExportRoutes(app: FastifyInstance, deps: { jobs: BulkJobs; searches: SearchService; resources: ResourceService }): void {
  const kickOff = (level: ExportLevel) => async (request: FastifyRequest<{ Params: { id?: string } }>, reply: FastifyReply) => {
    requireRespondAsync(request);
    const query = [...new URLSearchParams(rawQuery(request))].filter(([n]) => n !== '_format' && n !== '_pretty');
    const pairs = request.method === 'POST' ? [...query, ...pairsFromParameters(request.body)] : query;
    const exportRequest = parseExportRequest(level, pairs);
    const { principal, view } = request;
    // Without _type, the types of the level the caller may read (see typesAcrossAll).
    const acrossAll = new Set(typesAcrossAll(principal));
    const types = exportRequest.types ? typesOf(exportRequest) : typesOf(exportRequest).filter((type) => acrossAll.has(type));
    for (const type of types) authorize(principal, 'search', { resourceType: type });
    refuseCrossTypeSearch(principal, filterPairs(exportRequest));

    let patients = exportRequest.patients;
    if (level === 'group') {
      const id = request.params.id!;
      requireValidId(id);
      authorize(principal, 'read', { resourceType: 'Group', id });
      const group = await deps.resources.read('Group', id, view.canSee);
      patients = groupPatients(JSON.parse(group.json!) as Group, patients);
    }
    const base = baseUrl(request);
    const transactionTime = Date.now();
    const withheld = principal.kind === 'system' && !principal.seesNonParticipating ? await withheldPatients(deps.searches) : [];
    const steps = await exportSteps(deps.searches, { request: exportRequest, types, ...(patients && { patients }), withheld, baseUrl: base, visibility: view.visibility });
    const id = deps.jobs.submit({
      kind: 'export',
      owner: ownerOf(principal),
      request: `${base}${request.url.replace(/^\/fhir/, '')}`,
      transactionTime,
      steps,
      context: { principal, clientAddress: request.ip, method: request.method, url: request.url, ...(level !== 'system' && { resourceType: level === 'group' ? 'Group' : 'Patient' }), ...(request.params.id && { id: request.params.id }) },
    });
    return accepted(request, reply, id, 'The export');
  };
  for (const method of ['GET', 'POST'] as const) {
    app.route({ method, url: '/fhir/$export', handler: kickOff('system') });
    app.route({ method, url: '/fhir/Patient/$export', handler: kickOff('patient') });
    app.route({ method, url: '/fhir/Group/:id/$export', handler: kickOff('group') });
  }
}
