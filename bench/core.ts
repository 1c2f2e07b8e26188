import type { Patient } from 'fhir/r4.js';
import type autocannon from 'autocannon';
import { FHIR_JSON, createAll, fhirRequest, type Created } from './client.js';
import { anomalies, round, runLoad, type LoadResult } from './load.js';
import { Rng, generatePatient, revisedPatient } from './patients.js';
import { environment, envInt, target, type BenchSettings, type Scenario, type ScenarioReport } from './scenario.js';
import { MB, withServer, type ServerProcess } from './server-process.js';

/**
 * The core interactions on Patient: read, create, update and vread against a store preloaded
 * with BENCH_PATIENTS (default 10,000) generated patients.
 */

const DESCRIPTION = 'Patient read / create / update / vread on a preloaded store';

const TARGETS = {
  readRps: 5000,
  readP99Ms: 25,
  createRps: 1000,
  rssMB: 300,
};

const READ_HEADERS = { accept: FHIR_JSON };
const WRITE_HEADERS = { accept: FHIR_JSON, 'content-type': FHIR_JSON };

type StoredPatient = Patient & { id: string };

async function preload(server: ServerProcess, count: number, concurrency: number) {
  process.stdout.write(`   preloading ${count.toLocaleString('en-US')} patients (${concurrency} in parallel) ...`);
  const result = await createAll(server.baseUrl, 'Patient', count, (i) => generatePatient(i), {
    concurrency,
    headers: server.authHeaders,
    onProgress: (done) => process.stdout.write(done % 5000 === 0 ? ` ${done}` : ''),
  });
  process.stdout.write(` done in ${result.seconds.toFixed(1)} s\n`);
  return result;
}

/** A read and a vread of one preloaded patient answer what was created: the runs measure real work. */
async function sanityCheck(server: ServerProcess, created: Created, expected: Patient): Promise<void> {
  const read = (await fhirRequest('GET', `${server.baseUrl}/Patient/${created.id}`, undefined, [200], server.authHeaders)).json as StoredPatient;
  const vread = (await fhirRequest('GET', `${server.baseUrl}/Patient/${created.id}/_history/${created.versionId}`, undefined, [200], server.authHeaders))
    .json as StoredPatient;
  for (const got of [read, vread]) {
    if (got.id !== created.id || got.resourceType !== 'Patient' || got.birthDate !== expected.birthDate) {
      throw new Error(`sanity check failed: Patient/${created.id} came back as ${JSON.stringify(got).slice(0, 300)}`);
    }
  }
}

function runs(server: ServerProcess, settings: BenchSettings, created: Created[], patients: StoredPatient[]) {
  const common = { server, connections: settings.connections, seconds: settings.seconds, warmupSeconds: settings.warmupSeconds };
  const pick = new Rng(7);
  const randomIndex = () => Math.floor(pick.float() * created.length);

  const read: autocannon.Request = {
    method: 'GET',
    headers: READ_HEADERS,
    setupRequest: (req) => {
      req.path = `/fhir/Patient/${created[randomIndex()]!.id}`;
      return req;
    },
  };

  // New patients continue the generator's sequence after the preloaded ones.
  let nextNew = created.length;
  const create: autocannon.Request = {
    method: 'POST',
    path: '/fhir/Patient',
    headers: WRITE_HEADERS,
    setupRequest: (req) => {
      req.body = JSON.stringify(generatePatient(nextNew++));
      return req;
    },
  };

  let revision = 0;
  const update: autocannon.Request = {
    method: 'PUT',
    headers: WRITE_HEADERS,
    setupRequest: (req) => {
      const patient = patients[randomIndex()]!;
      req.path = `/fhir/Patient/${patient.id}`;
      req.body = JSON.stringify(revisedPatient(patient, ++revision));
      return req;
    },
  };

  const vread: autocannon.Request = {
    method: 'GET',
    headers: READ_HEADERS,
    setupRequest: (req) => {
      const c = created[randomIndex()]!;
      req.path = `/fhir/Patient/${c.id}/_history/${c.versionId}`;
      return req;
    },
  };

  return [
    { ...common, name: 'read', requests: [read] },
    { ...common, name: 'create', requests: [create] },
    { ...common, name: 'update', requests: [update] },
    { ...common, name: 'vread', requests: [vread] },
  ];
}

export const core: Scenario = {
  name: 'core',
  description: DESCRIPTION,
  async run(settings) {
    const startedAt = new Date().toISOString();
    const patientCount = envInt('BENCH_PATIENTS', 10_000);
    const preloadConcurrency = envInt('BENCH_PRELOAD_CONCURRENCY', 16);

    return await withServer(
      { log: settings.serverLog, keep: settings.keep, nodeArgs: settings.serverNodeArgs },
      async (server): Promise<ScenarioReport> => {
        const loaded = await preload(server, patientCount, preloadConcurrency);
        const { created } = loaded;
        const patients = created.map((c, i) => ({ ...generatePatient(i), id: c.id }));
        await sanityCheck(server, created[0]!, patients[0]!);
        const afterPreload = server.sampler.overall();

        const results: LoadResult[] = [];
        let error: string | undefined;
        try {
          const only = (process.env.BENCH_ONLY ?? '').split(',').filter(Boolean);
          for (const options of runs(server, settings, created, patients)) {
            if (only.length && !only.includes(options.name)) continue;
            process.stdout.write(`   ${options.name}: ${settings.warmupSeconds} s warm-up + ${settings.seconds} s ...`);
            const result = await runLoad(options);
            process.stdout.write(` ${Math.round(result.rps).toLocaleString('en-US')} req/s\n`);
            results.push(result);
          }
        } catch (err) {
          // Keep what was measured so far; the report says the scenario failed and why.
          error = err instanceof Error ? err.message : String(err);
          process.stdout.write(' failed\n');
        }

        const overall = server.sampler.overall();
        const peakRssMB = round(overall.peakRssBytes / MB, 1);
        const byName = (name: string) => results.find((r) => r.name === name);
        const warnings = results.flatMap(anomalies);
        const read = byName('read');
        const create = byName('create');
        return {
          scenario: 'core',
          description: DESCRIPTION,
          startedAt,
          finishedAt: new Date().toISOString(),
          settings: { ...settings, patients: patientCount, preloadConcurrency },
          environment: environment(),
          setup: {
            patients: patientCount,
            preloadSeconds: round(loaded.seconds, 1),
            preloadCreatesPerSecond: round(patientCount / loaded.seconds),
            rssWhenReadyMB: round(server.readyRssBytes / MB, 1),
            peakRssDuringPreloadMB: round(afterPreload.peakRssBytes / MB, 1),
          },
          runs: results,
          server: { peakRssMB, logBytes: server.logBytes() },
          targets: [
            ...(read
              ? [
                  target('read throughput', round(read.rps), '>=', TARGETS.readRps, 'req/s'),
                  target('read p99 latency', read.latencyMs.p99, '<=', TARGETS.readP99Ms, 'ms'),
                ]
              : []),
            ...(create ? [target('create throughput', round(create.rps), '>=', TARGETS.createRps, 'req/s')] : []),
            target('peak server RSS', peakRssMB, '<=', TARGETS.rssMB, 'MB'),
          ],
          warnings,
          failed: error !== undefined || results.some((r) => r.errors > 0 || (r.warmup?.errors ?? 0) > 0),
          ...(error !== undefined && { error }),
        };
      },
    );
  },
};
