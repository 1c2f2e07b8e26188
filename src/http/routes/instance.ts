import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { JsonResource } from '../../fhir/resource-input.js';
import { bothGuards, type ResourceService, type VersionedResource, type WriteGuard } from '../../fhir/resource-service.js';
import { parseIfMatch } from '../../fhir/versioning.js';
import { noteTouched } from '../access.js';
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

/**
 * `guard` checks every write made through these routes against the version it replaces; the
 * request's access view adds its own checks, and decides what reads and conditions may see.
 */
export function instanceRoutes(app: FastifyInstance, resources: ResourceService, guard?: WriteGuard): void {
  const guardFor = (request: FastifyRequest) => bothGuards(guard, request.view.guard);
  const conditional = (request: FastifyRequest, query: string) => ({ query, baseUrl: baseUrl(request), visibility: request.view.visibility });
  const touch = (request: FastifyRequest, result: VersionedResource) => {
    if (result.json !== undefined) noteTouched(request, [result.parsed ?? (JSON.parse(result.json) as JsonResource)], baseUrl(request));
    return result;
  };

  app.get<{ Params: InstanceParams }>('/fhir/:type/:id', async (request, reply) => {
    const result = await resources.read(request.params.type, request.params.id, request.view.canSee);
    return sendRead(request, reply, touch(request, result));
  });

  app.get<{ Params: VersionParams }>('/fhir/:type/:id/_history/:vid', async (request, reply) => {
    const { type, id, vid } = request.params;
    return sendRead(request, reply, touch(request, await resources.vread(type, id, vid, request.view.canSee)));
  });

  app.post<{ Params: TypeParams }>('/fhir/:type', async (request, reply) => {
    const ifNoneExist = header(request, 'if-none-exist');
    const result = await resources.create(request.params.type, request.body, baseUrl(request), ifNoneExist === undefined ? undefined : conditional(request, ifNoneExist), guardFor(request));
    const message = result.status === 201 ? 'Created' : 'A resource matching If-None-Exist already exists; nothing was created';
    return sendWrite(request, reply, touch(request, result), result.status, message);
  });

  app.put<{ Params: InstanceParams }>('/fhir/:type/:id', async (request, reply) => {
    const { type, id } = request.params;
    const result = await resources.update(type, id, request.body, baseUrl(request), parseIfMatch(header(request, 'if-match')), guardFor(request));
    return sendWrite(request, reply, touch(request, result), result.status, result.status === 201 ? 'Created' : 'Updated');
  });

  app.put<{ Params: TypeParams }>('/fhir/:type', async (request, reply) => {
    const ifMatch = parseIfMatch(header(request, 'if-match'));
    const result = await resources.conditionalUpdate(request.params.type, conditional(request, rawQuery(request)), request.body, ifMatch, guardFor(request));
    return sendWrite(request, reply, touch(request, result), result.status, result.status === 201 ? 'Created' : 'Updated');
  });

  app.patch<{ Params: InstanceParams }>('/fhir/:type/:id', async (request, reply) => {
    const { type, id } = request.params;
    const result = await resources.patch(type, id, request.body, baseUrl(request), parseIfMatch(header(request, 'if-match')), guardFor(request), request.view.canSee);
    return sendWrite(request, reply, touch(request, result), 200, 'Patched');
  });

  app.delete<{ Params: InstanceParams }>('/fhir/:type/:id', async (request, reply) => {
    const { type, id } = request.params;
    const result = await resources.delete(type, id, parseIfMatch(header(request, 'if-match')), guardFor(request));
    return sendDeleted(request, reply, result.stored?.versionId, result.stored ? 'Deleted' : 'Nothing to delete');
  });

  app.delete<{ Params: TypeParams }>('/fhir/:type', async (request, reply) => {
    const result = await resources.conditionalDelete(request.params.type, conditional(request, rawQuery(request)), guardFor(request));
    return sendDeleted(request, reply, result.stored?.versionId, result.stored ? 'Deleted' : 'No resource matched; nothing was deleted');
  });
}
