import type { FastifyInstance } from 'fastify';
import type { CapabilityStatement } from 'fhir/r4.js';
import { sendJson } from '../respond.js';

export function metadataRoutes(app: FastifyInstance, capability: CapabilityStatement): void {
  app.get('/fhir/metadata', async (request, reply) => sendJson(request, reply, 200, capability));
}
