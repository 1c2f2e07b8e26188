import type { FastifyInstance } from 'fastify';
import { nestsDeeperThan, tooDeeplyNested } from '../fhir/json-depth.js';
import { FhirError } from '../fhir/outcome.js';
import { header } from './request.js';

/**
 * The one parser of JSON request bodies (resources, Bundles, Parameters, JSON Patch). FHIR JSON
 * is UTF-8: another charset is refused (415) and bytes that are not UTF-8 are a 400, where
 * decoding them leniently would store U+FFFD in place of the client's characters. The body is
 * decoded once, from the Buffer Fastify collected, so a large Bundle is not copied again. What
 * parses is then refused when it nests deeper than every later walk over it can take.
 */

const UTF8_LABELS = new Set(['utf-8', 'utf8']);

// ignoreBOM keeps a byte-order mark in the text, where JSON.parse refuses it as it always has.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The charset parameter of a Content-Type, lower-cased and unquoted; undefined when absent. */
function charsetOf(contentType: string | undefined): string | undefined {
  for (const parameter of (contentType ?? '').split(';').slice(1)) {
    const at = parameter.indexOf('=');
    if (at < 0 || parameter.slice(0, at).trim().toLowerCase() !== 'charset') continue;
    return parameter.slice(at + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
  }
  return undefined;
}

export function installJsonBodyParser(app: FastifyInstance, mediaTypes: string[]): void {
  // Fastify's own parser, kept for its refusal of __proto__ and constructor.prototype keys.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser(mediaTypes, { parseAs: 'buffer' }, (request, body, done) => {
    const charset = charsetOf(header(request, 'content-type'));
    if (charset !== undefined && !UTF8_LABELS.has(charset)) {
      done(FhirError.of(415, 'not-supported', `FHIR JSON is UTF-8: charset '${charset.slice(0, 40)}' is not supported`), undefined);
      return;
    }
    let text: string;
    try {
      text = strictUtf8.decode(body as Buffer);
    } catch {
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
