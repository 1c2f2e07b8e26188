import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authorize, requireSomeWriteRight } from '../../access/rights.js';
import type { BulkJobs } from '../../fhir/bulk/bulk-jobs.js';
import { parseImportManifest } from '../../fhir/bulk/import-request.js';
import type { ImportInput } from '../../fhir/bulk/job-files.js';
import { FhirError } from '../../fhir/outcome.js';
import { nonUtf8Charset } from '../json-body.js';
import { baseUrl } from '../request.js';
import { accepted, ownerOf, requireRespondAsync } from './bulk-export.js';

/**
 * Bulk import kick-off, `POST /fhir/$import`: a Parameters manifest of NDJSON URLs (allowed
 * locations only), or the NDJSON itself as the body, streamed to the job's folder rather than
 * held in memory. The route holds `$`, so it authorises the caller itself; each line is then
 * written under the same principal's rights (see import-runner.ts).
 */

export interface ImportRouteOptions {
  jobs: BulkJobs;
  /** Where uploads are written while they arrive. */
  uploadDir: string;
  uploadLimitBytes: number;
  allowedUrls: readonly string[];
}

const NDJSON_TYPES = ['application/fhir+ndjson', 'application/ndjson', 'application/x-ndjson'];
const UPLOADED = 'input-1.ndjson';

interface Upload {
  uploaded: string;
}

export async function bulkImportRoutes(app: FastifyInstance, options: ImportRouteOptions): Promise<void> {
  // NDJSON bodies exist only here, so the parser lives only in this scope.
  await app.register(async (scope) => {
    scope.addContentTypeParser(NDJSON_TYPES, (request, payload, done) => {
      // Its bytes are checked line by line as the import reads them (see import-runner.ts).
      const refused = nonUtf8Charset(request, 'NDJSON');
      if (refused) {
        done(refused, undefined);
        return;
      }
      mkdirSync(options.uploadDir, { recursive: true });
      const path = join(options.uploadDir, `${randomUUID()}.ndjson`);
      let bytes = 0;
      const limit = new Transform({
        transform(chunk: Buffer, _encoding, next) {
          bytes += chunk.length;
          if (bytes > options.uploadLimitBytes) next(FhirError.of(413, 'too-costly', `An uploaded import may hold at most ${options.uploadLimitBytes} bytes; put larger files where the server may fetch them`));
          else next(null, chunk);
        },
      });
      pipeline(payload, limit, createWriteStream(path)).then(
        () => done(null, { uploaded: path } satisfies Upload),
        (error: unknown) => {
          rmSync(path, { force: true });
          done(error instanceof FhirError ? error : FhirError.of(400, 'incomplete', 'The upload did not arrive whole'), undefined);
        },
      );
    });

    scope.post('/fhir/$import', async (request: FastifyRequest, reply: FastifyReply) => {
      const body = request.body as Upload | unknown;
      const upload = body && typeof body === 'object' && 'uploaded' in body ? (body as Upload).uploaded : undefined;
      try {
        requireRespondAsync(request);
        const { principal } = request;
        let inputs: ImportInput[];
        if (upload) inputs = [{ file: UPLOADED }];
        else {
          inputs = parseImportManifest(body, options.allowedUrls);
          for (const input of inputs) if (input.type) authorize(principal, 'write', { resourceType: input.type });
        }
        if (principal.kind !== 'system' && principal.kind !== 'account') throw FhirError.of(403, 'forbidden', 'Imports load health records: backend clients and HCProf accounts only');
        requireSomeWriteRight(principal);
        const id = options.jobs.submit(
          {
            kind: 'import',
            owner: ownerOf(principal),
            request: `${baseUrl(request)}/$import`,
            transactionTime: Date.now(),
            steps: [],
            inputs,
            baseUrl: baseUrl(request),
            context: { principal, clientAddress: request.ip, method: request.method, url: request.url },
          },
          (folder) => upload && renameSync(upload, join(folder, UPLOADED)),
        );
        return accepted(request, reply, id, 'The import');
      } finally {
        if (upload) rmSync(upload, { force: true });
      }
    });
  });
}
