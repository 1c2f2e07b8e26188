import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

/**
 * What request logs may hold: method, path and the *names* of query parameters, never their
 * values (searches carry names and identity numbers), never bodies or headers.
 */
export const requestSerializers = {
  req(request: { method: string; url: string; ip: string }) {
    const at = request.url.indexOf('?');
    if (at < 0) return { method: request.method, path: request.url, remoteAddress: request.ip };
    const params = new Set(new URLSearchParams(request.url.slice(at + 1)).keys());
    return { method: request.method, path: request.url.slice(0, at), params: [...params].join(','), remoteAddress: request.ip };
  },
  res(reply: { statusCode: number }) {
    return { statusCode: reply.statusCode };
  },
};

/** One line per request, written when it completes, instead of Fastify's two. */
export class OneLineRequestLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null, request: FastifyRequest, reply: FastifyReply): void {
    const fields = { req: request, res: reply, ms: Math.round(reply.elapsedTime * 10) / 10 };
    if (error) reply.log.error({ ...fields, err: error }, 'request failed');
    else reply.log.info(fields, 'request');
  }
}
