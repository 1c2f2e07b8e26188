import type { FastifyInstance } from 'fastify';
import type { ResourceService, WriteGuard } from '../../fhir/resource-service.js';
import { parseIfMatch } from '../../fhir/versioning.js';
import { baseUrl, header, rawQuery } from '../request.js';
import { sendDeleted, sendRead, sendWrite } from '../respond.js';

/** read, vread, create, update, patch, delete and their conditional forms. */

interface TypeParams {
  type: string;
}
interface InstanceParams extends TypeParams {
  id: string;
}
interface VersionParams extends InstanceParams {
  vid: string;
}

/** `guard` checks every write made through these routes against the version it replaces. */
export function instanceRoutes(app: FastifyInstance, resources: ResourceService, guard?: WriteGuard): void {
  app.get<{ Params: InstanceParams }>('/fhir/:type/:id', async (request, reply) => {
    const result = await resources.read(request.params.type, request.params.id);
    return sendRead(request, reply, result);
  });

  app.get<{ Params: VersionParams }>('/fhir/:type/:id/_history/:vid', async (request, reply) => {
    const { type, id, vid } = request.params;
    return sendRead(request, reply, await resources.vread(type, id, vid));
  });

  app.post<{ Params: TypeParams }>('/fhir/:type', async (request, reply) => {
    const ifNoneExist = header(request, 'if-none-exist');
    const base = baseUrl(request);
    const result = await resources.create(request.params.type, request.body, base, ifNoneExist === undefined ? undefined : { query: ifNoneExist, baseUrl: base }, guard);
    const message = result.status === 201 ? 'Created' : 'A resource matching If-None-Exist already exists; nothing was created';
    return sendWrite(request, reply, result, result.status, message);
  });

  app.put<{ Params: InstanceParams }>('/fhir/:type/:id', async (request, reply) => {
    const { type, id } = request.params;
    const result = await resources.update(type, id, request.body, baseUrl(request), parseIfMatch(header(request, 'if-match')), guard);
    return sendWrite(request, reply, result, result.status, result.status === 201 ? 'Created' : 'Updated');
  });

  app.put<{ Params: TypeParams }>('/fhir/:type', async (request, reply) => {
    const ifMatch = parseIfMatch(header(request, 'if-match'));
    const result = await resources.conditionalUpdate(request.params.type, { query: rawQuery(request), baseUrl: baseUrl(request) }, request.body, ifMatch, guard);
    return sendWrite(request, reply, result, result.status, result.status === 201 ? 'Created' : 'Updated');
  });

  app.patch<{ Params: InstanceParams }>('/fhir/:type/:id', async (request, reply) => {
    const { type, id } = request.params;
    const result = await resources.patch(type, id, request.body, baseUrl(request), parseIfMatch(header(request, 'if-match')), guard);
    return sendWrite(request, reply, result, 200, 'Patched');
  });

  app.delete<{ Params: InstanceParams }>('/fhir/:type/:id', async (request, reply) => {
    const { type, id } = request.params;
    const result = await resources.delete(type, id, parseIfMatch(header(request, 'if-match')));
    return sendDeleted(request, reply, result.stored?.versionId, result.stored ? 'Deleted' : 'Nothing to delete');
  });

  app.delete<{ Params: TypeParams }>('/fhir/:type', async (request, reply) => {
    const result = await resources.conditionalDelete(request.params.type, { query: rawQuery(request), baseUrl: baseUrl(request) });
    return sendDeleted(request, reply, result.stored?.versionId, result.stored ? 'Deleted' : 'No resource matched; nothing was deleted');
  });
}
