import { FHIR_JSON, createdFrom } from './client.js';
import { MissingReferenceError, RESOURCE_TYPES, buildResource, type IdTable, type Population, type PopulationType } from './population.js';

/**
 * Loads a generated population through the FHIR API: one POST per resource (server-assigned
 * ids), `concurrency` at a time, phase by phase so that every reference points at a resource
 * the server has already created (and whose id it returned).
 */

export interface IngestPhase {
  label: string;
  resources: number;
  seconds: number;
  perSecond: number;
}

export interface IngestResult {
  ids: IdTable;
  created: number;
  createdByType: Record<PopulationType, number>;
  /** Creates answered with anything but 201, or not answered at all. */
  failed: number;
  /** Resources not sent because something they refer to failed. */
  skipped: number;
  /** The first few failures: status and body. */
  firstFailures: string[];
  seconds: number;
  phases: IngestPhase[];
}

export interface IngestOptions {
  concurrency: number;
  /** Extra headers of every create, e.g. authorization. */
  headers?: Record<string, string>;
  /** Stop early after this many failures (the data set is broken; no point loading the rest). */
  maxFailures?: number;
  onProgress?: (created: number, total: number) => void;
}

const MAX_REPORTED = 5;

export async function ingest(baseUrl: string, population: Population, options: IngestOptions): Promise<IngestResult> {
  const ids = Object.fromEntries(RESOURCE_TYPES.map((t) => [t, new Array<string | undefined>(population.counts[t])])) as IdTable;
  const createdByType = Object.fromEntries(RESOURCE_TYPES.map((t) => [t, 0])) as Record<PopulationType, number>;
  const total = population.phases.reduce((n, p) => n + p.items.length, 0);
  const maxFailures = options.maxFailures ?? Math.max(50, Math.ceil(total * 0.01));
  const result: IngestResult = { ids, created: 0, createdByType, failed: 0, skipped: 0, firstFailures: [], seconds: 0, phases: [] };
  const fail = (message: string) => {
    result.failed++;
    if (result.firstFailures.length < MAX_REPORTED) result.firstFailures.push(message);
  };
  const started = performance.now();

  for (const phase of population.phases) {
    const phaseStarted = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < phase.items.length && result.failed < maxFailures) {
        const { type, index } = phase.items[next++]!;
        let body: string;
        try {
          body = JSON.stringify(buildResource(population, type, index, ids));
        } catch (err) {
          if (err instanceof MissingReferenceError) {
            result.skipped++;
            continue;
          }
          throw err;
        }
        try {
          const res = await fetch(`${baseUrl}/${type}`, {
            method: 'POST',
            headers: { accept: FHIR_JSON, 'content-type': FHIR_JSON, ...options.headers },
            body,
            signal: AbortSignal.timeout(30_000),
          });
          const text = await res.text();
          if (res.status !== 201) {
            fail(`POST ${type} (#${index}) answered ${res.status}: ${text.slice(0, 600)}`);
            continue;
          }
          ids[type][index] = createdFrom(res.headers, res.headers.has('location') ? undefined : (JSON.parse(text) as unknown)).id;
          result.created++;
          createdByType[type]++;
          if (options.onProgress && result.created % 10_000 === 0) options.onProgress(result.created, total);
        } catch (err) {
          fail(`POST ${type} (#${index}) failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency, phase.items.length) }, () => worker()));
    const seconds = (performance.now() - phaseStarted) / 1000;
    result.phases.push({ label: phase.label, resources: phase.items.length, seconds, perSecond: seconds > 0 ? phase.items.length / seconds : 0 });
    if (result.failed >= maxFailures) break;
  }
  result.seconds = (performance.now() - started) / 1000;
  return result;
}
