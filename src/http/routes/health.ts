import type { FastifyInstance } from 'fastify';
import type { ResourceStore } from '../../store/port.js';

/**
 * For load balancers and container runtimes: 200 while the store answers a read, 503 when it
 * fails or takes longer than HEALTH_TIMEOUT_MS. No detail leaves: the server's log has it.
 * Outside /fhir, public, and not in the audit trail (it reads no record).
 */

const HEALTH_TIMEOUT_MS = 2_000;
/** An id no resource can have (ids have no spaces): the read finds nothing, cheaply. */
const NO_SUCH_ID = 'health check';

export function healthRoutes(app: FastifyInstance, store: Pick<ResourceStore, 'readCurrent'>): void {
  app.get('/healthz', async (request, reply) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        store.readCurrent('Patient', NO_SUCH_ID),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the store did not answer within ${HEALTH_TIMEOUT_MS} ms`)), HEALTH_TIMEOUT_MS);
        }),
      ]);
      return reply.code(200).type('application/json').send('{"status":"ok"}');
    } catch (error) {
      request.log.warn({ reason: error instanceof Error ? error.message : String(error) }, 'health check failed');
      return reply.code(503).type('application/json').send('{"status":"unavailable"}');
    } finally {
      clearTimeout(timer);
    }
  });
}
