import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FhirResource } from 'fhir/r4.js';
import { accessIndexEntries, SHARABLE_TYPE_PARAM } from '../src/access/records-of.js';
import { patientCompartmentParams } from '../src/fhir/search/compartments.js';
import { indexResource } from '../src/fhir/search/indexer.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { round } from './load.js';
import { RESOURCE_TYPES, buildResource, generatePopulation, type IdTable } from './population.js';
import { table } from './report.js';
import { environment, envInt, target, type Scenario, type ScenarioReport } from './scenario.js';
import { MB, withServer, type ServerProcess } from './server-process.js';

/**
 * Bulk Data $export of the search benchmark's population (BENCH_EXPORT_RESOURCES, default
 * 100,000, the same generator): written straight into the embedded store's file before the
 * server starts (loading through the API is what the ingest benchmarks measure), then a system
 * export and a Patient-level export, each from kick-off to completion manifest, with the
 * server's peak RSS meanwhile; the files are downloaded and their counts checked against the
 * population. A few minutes at the defaults, most of it writing the store.
 */

const DESCRIPTION = 'Bulk Data $export of a generated EHR population: resources/s from kick-off to manifest, and server RSS';
const TARGETS = { resourcesPerSecond: 20_000, rssMB: 500 };
const WRITE_BATCH = 5_000;

interface Manifest {
  output: { type: string; url: string; count: number }[];
}

/**
 * The index entries an export selects by: the Patient compartment's references (Patient-level
 * exports) and the sharable type (HCProf accounts). Storing every search parameter's entries of
 * 100,000 resources takes the embedded store many minutes on two busy cores, and an export reads
 * none of them.
 */
function compartmentIndex(resource: FhirResource) {
  const wanted = new Set(patientCompartmentParams(resource.resourceType));
  const { entries, patients } = indexResource(resource as unknown as Record<string, unknown> & { resourceType: string }, { localBase: 'http://127.0.0.1/fhir', derived: accessIndexEntries });
  return { entries: entries.filter((e) => wanted.has(e.param) || e.param === SHARABLE_TYPE_PARAM), sortKeys: {}, patients };
}

/** Every resource with a fixed id (`type-index`), a batch per transaction. */
export async function preload(path: string, total: number): Promise<{ counts: Record<string, number>; seconds: number }> {
  const started = performance.now();
  const population = generatePopulation(total);
  const ids = Object.fromEntries(RESOURCE_TYPES.map((t) => [t, Array.from({ length: population.counts[t] }, (_, i) => `${t.toLowerCase()}-${i}`)])) as IdTable;
  const store = new SqliteStore({ path });
  const counts: Record<string, number> = {};
  let batch: Parameters<SqliteStore['writeMany']>[0] = [];
  for (const phase of population.phases) {
    for (const { type, index } of phase.items) {
      const resource = { ...buildResource(population, type, index, ids), id: ids[type][index]! };
      batch.push({
        resourceType: type,
        id: resource.id,
        renderBody: (versionId, lastUpdated) => JSON.stringify({ ...resource, meta: { versionId: String(versionId), lastUpdated: new Date(lastUpdated).toISOString() } }),
        index: compartmentIndex(resource),
      });
      counts[type] = (counts[type] ?? 0) + 1;
      if (batch.length >= WRITE_BATCH) {
        await store.writeMany(batch);
        batch = [];
      }
    }
  }
  if (batch.length) await store.writeMany(batch);
  await store.close();
  return { counts, seconds: (performance.now() - started) / 1000 };
}

async function timedExport(server: ServerProcess, path: string) {
  const finish = server.sampler.begin();
  const started = performance.now();
  const kick = await fetch(`${server.baseUrl}${path}`, { headers: { ...server.authHeaders, prefer: 'respond-async', accept: 'application/fhir+json' } });
  if (kick.status !== 202) throw new Error(`kick-off ${path}: ${kick.status} ${await kick.text()}`);
  const status = kick.headers.get('content-location')!;
  let manifest: Manifest | undefined;
  while (!manifest) {
    const poll = await fetch(status, { headers: server.authHeaders });
    if (poll.status === 200) manifest = (await poll.json()) as Manifest;
    else if (poll.status === 202) await new Promise((r) => setTimeout(r, 50));
    else throw new Error(`polling ${path}: ${poll.status} ${await poll.text()}`);
  }
  const seconds = (performance.now() - started) / 1000;
  const window = finish();
  let lines = 0;
  const downloadStarted = performance.now();
  for (const output of manifest.output) {
    const text = await (await fetch(output.url, { headers: server.authHeaders })).text();
    const n = text.split('\n').filter(Boolean).length;
    if (n !== output.count) throw new Error(`${output.type}: the manifest says ${output.count}, the file holds ${n}`);
    lines += n;
  }
  const count = manifest.output.reduce((n, o) => n + o.count, 0);
  return { path, count, lines, seconds, perSecond: count / seconds, peakRssMB: window.peakRssBytes / MB, cpuCores: window.cpuCores, downloadSeconds: (performance.now() - downloadStarted) / 1000, byType: Object.fromEntries(manifest.output.map((o) => [o.type, o.count])) };
}

export const exportScenario: Scenario = {
  name: 'export',
  description: DESCRIPTION,
  timeLimitSeconds: () => 900,
  async run(settings) {
    const startedAt = new Date().toISOString();
    const total = envInt('BENCH_EXPORT_RESOURCES', 100_000);
    const dir = mkdtempSync(join(tmpdir(), 'fhir-bench-export-'));
    try {
      const sqlitePath = join(dir, 'fhir.sqlite');
      process.stdout.write(`   writing ${total.toLocaleString('en-US')} resources into the store ...`);
      const loaded = await preload(sqlitePath, total);
      process.stdout.write(` ${round(loaded.seconds, 1)} s\n`);
      return await withServer(
        { log: settings.serverLog, keep: settings.keep, nodeArgs: settings.serverNodeArgs, sqlitePath, env: { BULK_DATA_DIR: join(dir, 'bulk'), LOG_LEVEL: 'warn' } },
        async (server): Promise<ScenarioReport> => {
          const runs = [];
          for (const path of ['/$export', '/Patient/$export']) {
            process.stdout.write(`   ${path} ...`);
            const run = await timedExport(server, path);
            process.stdout.write(` ${run.count.toLocaleString('en-US')} resources in ${round(run.seconds, 2)} s: ${Math.round(run.perSecond).toLocaleString('en-US')}/s\n`);
            runs.push(run);
          }
          const system = runs[0]!;
          // The system export holds every stored resource: the population and the server's own (HA, DH).
          const missing = Object.entries(loaded.counts).filter(([type, n]) => (system.byType[type] ?? 0) < n);
          const peakRssMB = round(server.sampler.overall().peakRssBytes / MB, 1);
          const slowest = Math.min(...runs.map((r) => r.perSecond));
          return {
            scenario: 'export',
            description: DESCRIPTION,
            startedAt,
            finishedAt: new Date().toISOString(),
            settings: { ...settings, resources: total },
            environment: environment(),
            setup: { resources: total, writtenInSeconds: round(loaded.seconds, 1), byType: loaded.counts, rssWhenReadyMB: round(server.readyRssBytes / MB, 1) },
            runs: [],
            server: { peakRssMB, logBytes: server.logBytes() },
            targets: [target('export throughput (slowest run)', round(slowest), '>=', TARGETS.resourcesPerSecond, 'resources/s'), target('peak server RSS', peakRssMB, '<=', TARGETS.rssMB, 'MB')],
            warnings: missing.map(([type, n]) => `${type}: ${n} written, ${system.byType[type] ?? 0} exported`),
            failed: missing.length > 0,
            notes: [
              table(
                ['export', 'resources', 'seconds', 'resources/s', 'peak RSS MB', 'CPU cores', 'download s'],
                runs.map((r) => [r.path, r.count.toLocaleString('en-US'), String(round(r.seconds, 2)), Math.round(r.perSecond).toLocaleString('en-US'), String(round(r.peakRssMB, 1)), String(round(r.cpuCores, 2)), String(round(r.downloadSeconds, 2))]),
              ),
            ],
          };
        },
      );
    } finally {
      if (!settings.keep) rmSync(dir, { recursive: true, force: true });
    }
  },
};
