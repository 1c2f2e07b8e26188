import { randomUUID } from 'node:crypto';
import { FHIR_JSON } from './client.js';
import { round } from './load.js';
import { generatePatient } from './patients.js';
import { RESOURCE_TYPES, buildResource, generatePopulation, type IdTable, type Population, type PopulationType } from './population.js';
import { environment, envInt, target, type Scenario, type ScenarioReport } from './scenario.js';
import { MB, threadCpuSeconds, withServer, type ServerProcess } from './server-process.js';

/**
 * Loading by transaction Bundles: a generated population (BENCH_BUNDLE_RESOURCES, default
 * 100,000) sent as patient bundles of about BENCH_BUNDLE_ENTRIES (500) entries, each patient with
 * its whole record and references between them as urn:uuid placeholders, BENCH_BUNDLE_CONCURRENCY
 * (2) at a time; then one 10,000-entry transaction and one 10,000-entry batch, for their time and
 * the server's memory (BENCH_BUNDLE_LARGE=0 leaves those two out). The ingest rate counts the directory (Organizations, Practitioners) and the
 * patients' bundles; the bundles are built before the clock starts.
 */

const DESCRIPTION = 'Transaction bundles of patient records (POST /fhir), and one 10,000-entry transaction and batch';
const TARGETS = { resourcesPerSecond: 5000, rssMB: 500 };
const LARGE = 10_000;

type Entry = { fullUrl?: string; request: { method: string; url: string }; resource: Record<string, unknown> };

/** Placeholder ids in the id table become urn:uuid references once the resource is built. */
const PLACEHOLDER = '@';

function placeholdersToUrns(value: unknown): void {
  if (Array.isArray(value)) for (const item of value) placeholdersToUrns(item);
  else if (typeof value === 'object' && value !== null) {
    const object = value as Record<string, unknown>;
    for (const [name, child] of Object.entries(object)) {
      if (name === 'reference' && typeof child === 'string' && child.includes(`/${PLACEHOLDER}`)) object[name] = `urn:uuid:${child.split(PLACEHOLDER)[1]!}`;
      else if (typeof child === 'object') placeholdersToUrns(child);
    }
  }
}

async function post(server: ServerProcess, body: string): Promise<{ status: number; entries: { response: { status: string; location?: string } }[]; text: string }> {
  const res = await fetch(server.baseUrl, { method: 'POST', headers: { 'content-type': FHIR_JSON, accept: FHIR_JSON, ...server.authHeaders }, body, signal: AbortSignal.timeout(600_000) });
  const text = await res.text();
  const entries = res.ok ? ((JSON.parse(text) as { entry?: { response: { status: string; location?: string } }[] }).entry ?? []) : [];
  return { status: res.status, entries, text: res.ok ? '' : text.slice(0, 600) };
}

/** The items of each patient's record, patient first, encounters before what refers to them. */
function recordsByPatient(population: Population): { type: PopulationType; index: number }[][] {
  const records = population.patients.map((_, index) => [{ type: 'Patient' as PopulationType, index }]);
  for (const type of RESOURCE_TYPES.slice(3)) {
    for (const fact of population.clinical[type as Exclude<PopulationType, 'Organization' | 'Practitioner' | 'Patient'>]) records[fact.patient]!.push({ type, index: fact.index });
  }
  return records;
}

/** Builds one transaction from whole patient records; Patients and Encounters get placeholders. */
function patientBundle(population: Population, ids: IdTable, records: { type: PopulationType; index: number }[][]): string {
  const entry: Entry[] = [];
  for (const record of records) {
    for (const { type, index } of record) if (type === 'Patient' || type === 'Encounter') ids[type][index] = `${PLACEHOLDER}${randomUUID()}`;
    for (const { type, index } of record) {
      const resource = buildResource(population, type, index, ids) as unknown as Record<string, unknown>;
      placeholdersToUrns(resource);
      const own = ids[type][index];
      entry.push({ ...(own?.startsWith(PLACEHOLDER) && { fullUrl: `urn:uuid:${own.slice(1)}` }), request: { method: 'POST', url: type }, resource });
    }
  }
  return JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry });
}

/** Organizations, then practitioners: one transaction each, their ids read from the answer. */
async function loadDirectory(server: ServerProcess, population: Population, ids: IdTable): Promise<number> {
  let created = 0;
  for (const type of ['Organization', 'Practitioner'] as const) {
    const items = population.phases.find((p) => p.items[0]?.type === type)!.items;
    const body = JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: items.map(({ index }) => ({ request: { method: 'POST', url: type }, resource: buildResource(population, type, index, ids) })) });
    const answer = await post(server, body);
    if (answer.status !== 200) throw new Error(`loading ${type} answered ${answer.status}: ${answer.text}`);
    answer.entries.forEach((e, i) => (ids[type][items[i]!.index] = e.response.location!.split('/')[1]));
    created += items.length;
  }
  return created;
}

function largeBundle(type: 'transaction' | 'batch', offset: number): string {
  const entry: Entry[] = [];
  for (let i = 0; i < LARGE / 2; i++) {
    const fullUrl = `urn:uuid:${randomUUID()}`;
    entry.push({ fullUrl, request: { method: 'POST', url: 'Patient' }, resource: generatePatient(offset + i) as unknown as Record<string, unknown> });
    const subject = type === 'transaction' ? fullUrl : `Patient?identifier=none`;
    entry.push({
      request: { method: 'POST', url: 'Observation' },
      resource: { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] }, ...(type === 'transaction' && { subject: { reference: subject } }), valueQuantity: { value: 60 + (i % 40), unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' } },
    });
  }
  return JSON.stringify({ resourceType: 'Bundle', type, entry });
}

export const bundles: Scenario = {
  name: 'bundles',
  description: DESCRIPTION,
  timeLimitSeconds: () => 1800,
  async run(settings) {
    const startedAt = new Date().toISOString();
    const total = envInt('BENCH_BUNDLE_RESOURCES', 100_000);
    const perBundle = envInt('BENCH_BUNDLE_ENTRIES', 500);
    const concurrency = envInt('BENCH_BUNDLE_CONCURRENCY', 2);
    return await withServer({ log: settings.serverLog, keep: settings.keep, nodeArgs: settings.serverNodeArgs }, async (server): Promise<ScenarioReport> => {
      const population = generatePopulation(total);
      const ids = Object.fromEntries(RESOURCE_TYPES.map((t) => [t, new Array<string | undefined>(population.counts[t])])) as IdTable;
      const records = recordsByPatient(population);
      // Whole records, packed into bundles of about perBundle entries (a longer record goes alone).
      const groups: (typeof records)[] = [];
      for (const record of records) {
        const last = groups[groups.length - 1];
        if (last && last.reduce((n, r) => n + r.length, 0) + record.length <= perBundle) last.push(record);
        else groups.push([record]);
      }
      const directoryWindow = server.sampler.begin();
      const directoryStarted = performance.now();
      let created = await loadDirectory(server, population, ids);
      const directorySeconds = (performance.now() - directoryStarted) / 1000;
      const directoryLoad = directoryWindow();
      // Built before the clock runs, as the other scenarios build their requests: on this machine
      // the load generator shares the server's two cores, and building the bundles while loading
      // took about 0.1 of a core from the server (the server's work per bundle is the same).
      const bodies = groups.map((group) => patientBundle(population, ids, group));
      const failures: string[] = [];
      let next = 0;
      const worker = async () => {
        while (next < bodies.length && failures.length < 5) {
          const body = bodies[next]!;
          bodies[next++] = '';
          const answer = await post(server, body);
          if (answer.status !== 200) failures.push(`${answer.status}: ${answer.text}`);
          else created += answer.entries.length;
          if (next % 20 === 0) process.stdout.write(` ${created}`);
        }
      };
      process.stdout.write(`   loading ${total.toLocaleString('en-US')} resources in ${groups.length} transactions ...`);
      const loadWindow = server.sampler.begin();
      const threadsBefore = threadCpuSeconds(server.pid);
      const started = performance.now();
      await Promise.all(Array.from({ length: concurrency }, worker));
      const threadsAfter = threadCpuSeconds(server.pid);
      const bundled = created - (ids.Organization.length + ids.Practitioner.length);
      // The server's CPU per resource loaded by the patients' bundles, by thread, busiest first.
      const threadUsPerResource = Object.fromEntries(
        [...threadsAfter].map(([name, seconds]) => [name, round(((seconds - (threadsBefore.get(name) ?? 0)) * 1e6) / bundled)] as const).sort((a, b) => b[1] - a[1]),
      );
      const seconds = directorySeconds + (performance.now() - started) / 1000;
      const bundleLoad = loadWindow();
      // The directory's two transactions and the patients' bundles, as one load.
      const load = {
        cpuCores: (directoryLoad.cpuCores * directorySeconds + bundleLoad.cpuCores * (seconds - directorySeconds)) / seconds,
        peakRssBytes: Math.max(directoryLoad.peakRssBytes, bundleLoad.peakRssBytes),
      };
      process.stdout.write(` ${Math.round(created / seconds)} resources/s\n`);
      process.stdout.write(`   server CPU per resource by thread (us): ${Object.entries(threadUsPerResource).map(([name, us]) => `${name} ${us}`).join(', ')}\n`);
      server.assertAlive();

      const large: Record<string, { seconds: number; status: number; peakRssMB: number; entries: number }> = {};
      const largeTypes = process.env.BENCH_BUNDLE_LARGE === '0' ? [] : (['transaction', 'batch'] as const);
      for (const [i, type] of largeTypes.entries()) {
        let body: string | undefined = largeBundle(type, 1_000_000 + i * LARGE);
        const window = server.sampler.begin();
        const t0 = performance.now();
        const answer = await post(server, body);
        body = undefined;
        large[type] = { seconds: round((performance.now() - t0) / 1000, 2), status: answer.status, peakRssMB: round(window().peakRssBytes / MB, 1), entries: answer.entries.length };
        process.stdout.write(`   one ${LARGE.toLocaleString('en-US')}-entry ${type}: ${large[type]!.seconds} s, answered ${answer.status}, peak RSS ${large[type]!.peakRssMB} MB\n`);
        if (answer.status !== 200) failures.push(`${type} of ${LARGE}: ${answer.status} ${answer.text}`);
      }
      const overall = server.sampler.overall();
      const perSecond = round(created / seconds);
      const peakRssMB = round(overall.peakRssBytes / MB, 1);
      return {
        scenario: 'bundles',
        description: DESCRIPTION,
        startedAt,
        finishedAt: new Date().toISOString(),
        settings: { ...settings, resources: total, entriesPerBundle: perBundle, concurrency },
        environment: environment(),
        setup: {
          resources: created,
          transactions: groups.length + 2,
          seconds: round(seconds, 1),
          resourcesPerSecond: perSecond,
          serverCpuCores: round(load.cpuCores, 2),
          peakRssDuringLoadMB: round(load.peakRssBytes / MB, 1),
          rssWhenReadyMB: round(server.readyRssBytes / MB, 1),
          threadUsPerResource,
          large,
        },
        runs: [],
        server: { peakRssMB, logBytes: server.logBytes() },
        targets: [
          target('ingest by transaction bundles', perSecond, '>=', TARGETS.resourcesPerSecond, 'resources/s'),
          target('peak server RSS', peakRssMB, '<=', TARGETS.rssMB, 'MB'),
        ],
        warnings: failures,
        failed: failures.length > 0,
        ...(failures.length > 0 && { error: failures[0] }),
        notes: Object.entries(large).map(([type, l]) => `one ${LARGE}-entry ${type}: ${l.seconds} s (${l.entries} entries answered, status ${l.status}), peak server RSS ${l.peakRssMB} MB`),
      };
    });
  },
};
