import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FhirError, issue, operationOutcome, type IssueCode } from '../fhir/outcome.js';
import { sendOutcome } from './respond.js';

/**
 * Every failure leaves as an OperationOutcome. Messages written for clients (FhirError, and
 * Fastify's own 4xx about the request's shape) pass through; anything else is logged here
 * and answered with a generic 500, so no stack, SQL or driver text reaches the client.
 */

const CODE_BY_STATUS: Record<number, IssueCode> = {
  400: 'invalid',
  404: 'not-found',
  405: 'not-supported',
  406: 'not-supported',
  413: 'too-long',
  415: 'not-supported',
};

/** Fastify errors about the request itself, answered with a message of our own. */
const FASTIFY_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'The request body is larger than this server accepts',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'Unsupported Content-Type: send application/fhir+json (or application/json-patch+json for PATCH)',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'The request body is empty',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'Content-Length does not match the body',
  FST_ERR_CTP_EMPTY_TYPE: 'The Content-Type header is empty',
  FST_ERR_CTP_INVALID_TYPE: 'The Content-Type header is not valid',
  FST_ERR_CTP_INVALID_JSON_BODY: 'The request body is not valid JSON',
};

function isFastifyError(error: unknown): error is FastifyError {
  return typeof error === 'object' && error !== null && 'code' in error && 'statusCode' in error;
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof FhirError) return sendOutcome(request, reply, error.status, error.outcome);
    if (isFastifyError(error) && error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      // JSON syntax errors carry no code of their own, and their text may quote the body.
      const message = FASTIFY_MESSAGES[error.code] ?? (error instanceof SyntaxError ? 'The request body is not valid JSON' : 'The request is not valid');
      const code = CODE_BY_STATUS[error.statusCode] ?? 'invalid';
      return sendOutcome(request, reply, error.statusCode, operationOutcome([issue('error', code, message)]));
    }
    request.log.error({ err: error }, 'request failed');
    return sendOutcome(request, reply, 500, operationOutcome([issue('fatal', 'exception', 'The server could not complete the request')]));
  });

  app.setNotFoundHandler((request, reply) =>
    sendOutcome(request, reply, 404, operationOutcome([issue('error', 'not-found', `No FHIR endpoint at ${request.method} ${request.url.split('?')[0]}`)])),
  );
}
