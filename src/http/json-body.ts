import type { FastifyInstance } from 'fastify';
import { nestsDeeperThan, tooDeeplyNested } from '../fhir/json-depth.js';

/**
 * The one parser of JSON request bodies (resources, Bundles, Parameters, JSON Patch). What
 * parses is refused when it nests deeper than every later walk over it can take.
 */

export function installJsonBodyParser(app: FastifyInstance, mediaTypes: string[]): void {
  // Fastify's own parser, kept for its refusal of __proto__ and constructor.prototype keys.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser(mediaTypes, { parseAs: 'string' }, (request, body, done) => {
    parseJson(request, body as string, (error, parsed) => {
      if (error) done(error, undefined);
      else if (nestsDeeperThan(parsed)) done(tooDeeplyNested('The request body'), undefined);
      else done(null, parsed);
    });
  });
}
