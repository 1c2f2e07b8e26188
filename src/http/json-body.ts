import type { FastifyInstance, FastifyRequest } from 'fastify';
import { nestsDeeperThan, tooDeeplyNested } from '../fhir/json-depth.js';
import { FhirError } from '../fhir/outcome.js';
import { decodeUtf8 } from '../fhir/utf8.js';
import { header } from './request.js';

/**
 * The one parser of JSON request bodies (resources, Bundles, Parameters, JSON Patch). FHIR JSON
 * is UTF-8: another charset is refused (415) and bytes that are not UTF-8 are a 400, where
 * decoding them leniently would store U+FFFD in place of the client's characters. The body is
 * decoded once, from the Buffer Fastify collected, so a large Bundle is not copied again. What
 * parses is then refused when it nests deeper than every later walk over it can take.
 */

const UTF8_LABELS = new Set(['utf-8', 'utf8']);

/** The charset parameter of a Content-Type, lower-cased and unquoted; undefined when absent. */
function charsetOf(contentType: string | undefined): string | undefined {
  for (const parameter of (contentType ?? '').split(';').slice(1)) {
    const at = parameter.indexOf('=');
    if (at < 0 || parameter.slice(0, at).trim().toLowerCase() !== 'charset') continue;
    return parameter.slice(at + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
  }
  return undefined;
}

/** A 415 for a body declared in a charset other than UTF-8 (`what`: FHIR JSON, NDJSON). */
export function nonUtf8Charset(request: FastifyRequest, what: string): FhirError | undefined {
  const charset = charsetOf(header(request, 'content-type'));
  if (charset === undefined || UTF8_LABELS.has(charset)) return undefined;
  return FhirError.of(415, 'not-supported', `${what} is UTF-8: charset '${charset.slice(0, 40)}' is not supported`);
}

export function installJsonBodyParser(app: FastifyInstance, mediaTypes: string[]): void {
  // Fastify's own parser, kept for its refusal of __proto__ and constructor.prototype keys.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser(mediaTypes, { parseAs: 'buffer' }, (request, body, done) => {
    const refused = nonUtf8Charset(request, 'FHIR JSON');
    if (refused) {
      done(refused, undefined);
      return;
    }
    const text = decodeUtf8(body as Buffer);
    if (text === undefined) {
      done(FhirError.of(400, 'invalid', 'The request body is not valid UTF-8, which FHIR JSON must be'), undefined);
      return;
    }
    parseJson(request, text, (error, parsed) => {
      if (error) done(error, undefined);
      else if (nestsDeeperThan(parsed)) done(tooDeeplyNested('The request body'), undefined);
      else done(null, parsed);
    });
  });
}
