import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type autocannon from 'autocannon';
import type { Bundle, BundleEntry } from 'fhir/r4.js';
import { FHIR_JSON } from './client.js';
import { ingest, type IngestResult } from './ingest.js';
import { anomalies, round, runLoad, type LoadResult } from './load.js';
import { Rng, fnv1a, generatePatient } from './patients.js';
import {
  OBSERVATION_KINDS,
  RESOURCE_TYPES,
  buildResource,
  generatePopulation,
  type ClinicalFact,
  type IdTable,
  type Population,
  type PopulationType,
} from './population.js';
import { fmt, table } from './report.js';
import { environment, envInt, target, type BenchSettings, type Scenario, type Target } from './scenario.js';
import { MB, ServerProcess, systemBusySeconds, threadCpuSeconds, type ServerProcessOptions } from './server-process.js';

/**
 * Search over a realistic EHR population (BENCH_RESOURCES, default 100,000 resources: 1,000
 * Patients, 20 Organizations, 200 Practitioners, and their Encounters, Observations,
 * Conditions, ...; see population.ts) loaded through the API, then:
 *
 *  - six search shapes (token, reference, date range, string prefix, chain, _include), each with
 *    a random value per request from the population (values that give a full 20-entry page where
 *    the data allows), at 1 connection (latency), at BENCH_SEARCH_CONNECTIONS (8; throughput),
 *    and at 1 connection with _total=none (what the exact total costs);
 *  - answers checked on a sample against the generator's facts (totals, every match, full
 *    result sets by paging);
 *  - what search indexing costs on create, against two fresh servers, default and
 *    SEARCH_INDEXING=off, given the same Observations: the time of a create, one at a time
 *    (BENCH_INDEX_SEQUENTIAL_BATCH, 2,000, twice; the target), then the throughput at
 *    saturation (BENCH_INDEX_BATCH, 5,000, twice, at 32 connections; reported).
 *
 * Runtime at the defaults on 2 cores: about 15-20 minutes (ingest 5-6 at ~300 creates/s, each
 * shape's probes, checks and 3 runs of 2 + 10 s, the indexing phase 1-2); it always ends by itself:
 * a probe request is abandoned after 15 s (the wedged server is restarted on the same database),
 * slow shapes are not load-tested, and run.ts stops everything at timeLimitSeconds (about an hour
 * at the defaults). BENCH_RESOURCES=5000 BENCH_SECONDS=3 BENCH_WARMUP_SECONDS=1 runs it in about 4
 * minutes. BENCH_ONLY=token,reference,date,name,chain,include,indexing picks shapes and/or the
 * indexing phase. BENCH_KEEP=1 keeps (and prints the path of) the loaded database, e.g. for
 * EXPLAIN QUERY PLAN.
 */

const DESCRIPTION = 'Searches over a generated EHR population loaded through the API; indexing cost on create';

const TARGETS = { p50Ms: 10, p99Ms: 50, indexingOverheadPct: 50 };
const PAGE = 20;
/** Observations a date-range window should hold on average: a modest number, more than a page. */
const DATE_WINDOW_MATCHES = 30;
const DAY = 86_400_000;
const LOINC = 'http://loinc.org';
const INDEX_WARMUP = 1000;
const INDEX_ROUNDS = 2;
const INDEX_CONNECTIONS = 32;
/** A probe request slower than this is not load-tested (its load runs would only queue up behind it). */
const SLOW_MS = 2000;
/** A probe request is abandoned after this (and the wedged server restarted). */
const PROBE_TIMEOUT_MS = 15_000;
/** How long to wait for a server to finish leftover requests between runs. */
const SETTLE_CAP_MS = 60_000;
/** First pages checked per shape beyond the probes. */
const CHECKED_PAGES = 6;
/** Full result sets are checked by paging only when a page takes less than this. */
const FULL_SET_MAX_MS = 500;

const SHAPE_NAMES = ['token', 'reference', 'date', 'name', 'chain', 'include'] as const;
type ShapeName = (typeof SHAPE_NAMES)[number];

type Json = Record<string, unknown>;

/** One search value and what its answer must be. */
interface Probe {
  /** The query string (without _total). */
  query: string;
  /** Exact number of matches. */
  total: number;
  /** Whether a returned match is a right one. */
  matches(resource: Json): boolean;
  /** The ids of all matches, for full-set checks by paging. */
  ids(): string[];
  /** What an _include must add (Type/id). */
  included?: string[];
}

interface Shape {
  name: ShapeName;
  type: string;
  example: string;
  /** Distinct values the population offers. */
  candidates: number;
  /** The values requests pick from: those with a full page where the data allows. */
  pool: Probe[];
}

/** Case- and accent-insensitive form, as FHIR string search compares (mirrors the server's fold). */
function fold(text: string): string {
  return text.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

const enc = encodeURIComponent;

function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function choosePool(candidates: Probe[]): Probe[] {
  const full = candidates.filter((p) => p.total >= PAGE);
  return full.length ? full : candidates.filter((p) => p.total > 0);
}

/** The search shapes, with the exact answers the population implies. */
function buildShapes(population: Population, ids: IdTable): Shape[] {
  const observations = population.clinical.Observation.filter((f) => ids.Observation[f.index] !== undefined);
  const obsId = (f: ClinicalFact) => ids.Observation[f.index]!;
  const patientRef = (p: number) => `Patient/${ids.Patient[p]}`;
  const createdPatients = population.patients.flatMap((_, p) => (ids.Patient[p] === undefined ? [] : [p]));

  const byPatient = new Map<number, ClinicalFact[]>();
  for (const f of observations) byPatient.set(f.patient, [...(byPatient.get(f.patient) ?? []), f]);
  const subjectRef = (r: Json) => (r.subject as { reference?: string } | undefined)?.reference;

  // Name strings as the `name` parameter indexes them: text, family, given, prefix, suffix.
  const names = new Map<number, { strings: string[]; families: string[] }>();
  for (const p of createdPatients) {
    const patient = generatePatient(p, { seed: population.seed });
    const strings: string[] = [];
    const families: string[] = [];
    for (const n of patient.name ?? []) {
      for (const s of [n.text, n.family, ...(n.given ?? []), ...(n.prefix ?? []), ...(n.suffix ?? [])]) if (s) strings.push(fold(s));
      if (n.family) families.push(n.family);
    }
    names.set(p, { strings, families });
  }
  const patientsStartingWith = (prefix: string) => {
    const folded = fold(prefix);
    return createdPatients.filter((p) => names.get(p)!.strings.some((s) => s.startsWith(folded)));
  };
  const nameStrings = (r: Json) =>
    ((r.name ?? []) as Json[]).flatMap((n) => [n.text, n.family, ...((n.given as unknown[]) ?? []), ...((n.prefix as unknown[]) ?? [])].filter((s): s is string => typeof s === 'string').map(fold));

  // token: Observation?code=http://loinc.org|<code>
  const token: Probe[] = OBSERVATION_KINDS.map((kind, k) => {
    const facts = observations.filter((f) => f.item === k);
    return {
      query: `code=${enc(`${LOINC}|${kind.code}`)}`,
      total: facts.length,
      matches: (r) => ((r.code as Json | undefined)?.coding as Json[] | undefined ?? []).some((c) => c.system === LOINC && c.code === kind.code),
      ids: () => facts.map(obsId),
    };
  });

  // reference: Observation?subject=Patient/<id>
  const reference: Probe[] = createdPatients.map((p) => {
    const facts = byPatient.get(p) ?? [];
    const ref = patientRef(p);
    return { query: `subject=${enc(ref)}`, total: facts.length, matches: (r) => subjectRef(r) === ref, ids: () => facts.map(obsId) };
  });

  // date: Observation?date=ge<d1>&date=lt<d2>, windows of whole (UTC) days holding ~30 on average
  const date: Probe[] = [];
  let width = 1;
  if (observations.length) {
    const days = observations.map((f) => Math.floor(f.at / DAY));
    const first = Math.min(...days);
    const last = Math.max(...days);
    const perDay = new Array<number>(last - first + 1).fill(0);
    for (const d of days) perDay[d - first]!++;
    width = Math.max(1, Math.round(DATE_WINDOW_MATCHES / (observations.length / perDay.length)));
    for (let d = first; d + width - 1 <= last; d++) {
      let total = 0;
      for (let i = 0; i < width; i++) total += perDay[d - first + i]!;
      const from = d * DAY;
      const to = (d + width) * DAY;
      date.push({
        query: `date=ge${isoDay(from)}&date=lt${isoDay(to)}`,
        total,
        matches: (r) => {
          const t = Date.parse(String(r.effectiveDateTime));
          return t >= from && t < to;
        },
        ids: () => observations.filter((f) => f.at >= from && f.at < to).map(obsId),
      });
    }
  }

  // name: Patient?name=<prefix>: the first three letters of family names, as written (with
  // accents and capitals) and folded; Chinese family names are one character.
  const prefixes = new Map<string, Set<string>>();
  for (const p of createdPatients) {
    for (const family of names.get(p)!.families) {
      const prefix = [...family].slice(0, 3).join('');
      const key = fold(prefix);
      prefixes.set(key, (prefixes.get(key) ?? new Set()).add(prefix).add(key));
    }
  }
  const name: Probe[] = [...prefixes].flatMap(([key, spellings]) => {
    const matching = patientsStartingWith(key);
    return [...spellings].map((spelling) => ({
      query: `name=${enc(spelling)}`,
      total: matching.length,
      matches: (r: Json) => nameStrings(r).some((s) => s.startsWith(key)),
      ids: () => matching.map((p) => ids.Patient[p]!),
    }));
  });

  // chain: Observation?subject:Patient.name=<family name>
  const families = new Set([...names.values()].flatMap((n) => n.families));
  const chain: Probe[] = [...families].map((family) => {
    const matching = patientsStartingWith(family);
    const refs = new Set(matching.map(patientRef));
    const facts = matching.flatMap((p) => byPatient.get(p) ?? []);
    return {
      query: `subject:Patient.name=${enc(family)}`,
      total: facts.length,
      matches: (r) => refs.has(subjectRef(r) ?? ''),
      ids: () => facts.map(obsId),
    };
  });

  // include: Observation?subject=Patient/<id>&_include=Observation:subject
  const include: Probe[] = reference.map((probe, i) => ({
    ...probe,
    query: `${probe.query}&_include=${enc('Observation:subject')}`,
    included: [patientRef(createdPatients[i]!)],
  }));

  const shape = (name: ShapeName, type: string, example: string, candidates: Probe[]): Shape => ({ name, type, example, candidates: candidates.length, pool: choosePool(candidates) });
  return [
    shape('token', 'Observation', 'Observation?code=http://loinc.org|<code>', token),
    shape('reference', 'Observation', 'Observation?subject=Patient/<id>', reference),
    shape('date', 'Observation', `Observation?date=ge<day>&date=lt<day+${width}>`, date),
    shape('name', 'Patient', 'Patient?name=<prefix>', name),
    shape('chain', 'Observation', 'Observation?subject:Patient.name=<family>', chain),
    shape('include', 'Observation', 'Observation?subject=Patient/<id>&_include=Observation:subject', include),
  ];
}

// ---------------------------------------------------------------------------------------------
// The server on the population's database. SQLite queries run synchronously in the server's
// only thread, so one pathological query wedges it until the query ends (perhaps hours); then
// the process is killed and a new one serves the same file.

class LiveServer {
  readonly restarts: string[] = [];
  private peakRssBytes = 0;
  private peakAnonBytes = 0;
  private logBytes = 0;

  private constructor(
    public server: ServerProcess,
    private readonly options: ServerProcessOptions,
    readonly dir: string,
  ) {}

  static async start(options: ServerProcessOptions): Promise<LiveServer> {
    // The first server's directory holds the database: kept when it stops, removed in close().
    const server = await ServerProcess.start({ ...options, keep: true });
    const live = new LiveServer(server, options, server.dir);
    if (!options.keep) process.once('exit', () => rmSync(live.dir, { recursive: true, force: true }));
    return live;
  }

  get dbPath(): string {
    return join(this.dir, 'fhir.sqlite');
  }

  private account(): void {
    const overall = this.server.sampler.overall();
    this.peakRssBytes = Math.max(this.peakRssBytes, overall.peakRssBytes);
    this.peakAnonBytes = Math.max(this.peakAnonBytes, overall.peakAnonBytes);
    this.logBytes += this.server.logBytes();
  }

  async restart(reason: string): Promise<void> {
    process.stdout.write(` [restarting the server: ${reason}]`);
    this.account();
    await this.server.stop(2000);
    this.server = await ServerProcess.start({ ...this.options, sqlitePath: this.dbPath });
    this.restarts.push(reason);
  }

  async close(): Promise<void> {
    this.account();
    await this.server.stop();
    if (!this.options.keep) rmSync(this.dir, { recursive: true, force: true });
  }

  get peakRssMB(): number {
    return round(Math.max(this.peakRssBytes, this.server.sampler.overall().peakRssBytes) / MB, 1);
  }

  get peakAnonRssMB(): number {
    return round(Math.max(this.peakAnonBytes, this.server.sampler.overall().peakAnonBytes) / MB, 1);
  }

  get totalLogBytes(): number {
    return this.logBytes + this.server.logBytes();
  }
}

/** Waits until the server answers a trivial request quickly again (leftover requests done); false after `capMs`. */
async function settle(live: LiveServer, capMs = SETTLE_CAP_MS): Promise<boolean> {
  const deadline = Date.now() + capMs;
  let quick = 0;
  while (Date.now() < deadline) {
    const started = performance.now();
    try {
      const res = await fetch(`${live.server.baseUrl}/Organization/settle-check`, { headers: live.server.authHeaders, signal: AbortSignal.timeout(Math.max(500, deadline - Date.now())) });
      await res.arrayBuffer();
    } catch {
      live.server.assertAlive();
      continue;
    }
    if (performance.now() - started < 100) {
      if (++quick >= 2) return true;
    } else {
      quick = 0;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

interface Timed {
  ms: number;
  timedOut: boolean;
  bundle?: Bundle;
  error?: string;
}

async function timedGet(live: LiveServer, path: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<Timed> {
  const started = performance.now();
  try {
    const res = await fetch(`${live.server.baseUrl}${path}`, { headers: { accept: FHIR_JSON, ...live.server.authHeaders }, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    const ms = performance.now() - started;
    if (res.status !== 200) return { ms, timedOut: false, error: `GET ${path} answered ${res.status}: ${text.slice(0, 300)}` };
    return { ms, timedOut: false, bundle: JSON.parse(text) as Bundle };
  } catch (err) {
    const ms = performance.now() - started;
    if (err instanceof Error && err.name === 'TimeoutError') return { ms, timedOut: true };
    return { ms, timedOut: false, error: `GET ${path} failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

// ---------------------------------------------------------------------------------------------
// Checking answers.

const mode = (m: 'match' | 'include') => (e: BundleEntry) => e.search?.mode === m;
const key = (r: Json) => `${String(r.resourceType)}/${String(r.id)}`;
const pathOf = (shape: Shape, probe: Probe, withTotal: boolean) => `/${shape.type}?${probe.query}${withTotal ? '' : '&_total=none'}`;

/** What is wrong with one page answer (empty when right). */
function checkPage(shape: Shape, probe: Probe, bundle: Bundle, withTotal: boolean): string[] {
  const problems: string[] = [];
  const where = pathOf(shape, probe, withTotal).slice(1);
  if (bundle.resourceType !== 'Bundle' || bundle.type !== 'searchset') return [`${where}: not a searchset Bundle`];
  if (withTotal && bundle.total !== probe.total) problems.push(`${where}: total ${bundle.total}, expected ${probe.total}`);
  if (!withTotal && bundle.total !== undefined) problems.push(`${where}: total ${bundle.total} given with _total=none`);
  const entries = bundle.entry ?? [];
  const matches = entries.filter(mode('match')).map((e) => e.resource as unknown as Json);
  if (matches.length !== Math.min(PAGE, probe.total)) problems.push(`${where}: ${matches.length} matches on the first page, expected ${Math.min(PAGE, probe.total)}`);
  const wrong = matches.filter((r) => r.resourceType !== shape.type || !probe.matches(r));
  if (wrong.length) problems.push(`${where}: ${wrong.length} entries that do not match, e.g. ${JSON.stringify(wrong[0]).slice(0, 200)}`);
  const hasNext = (bundle.link ?? []).some((l) => l.relation === 'next');
  if (probe.total > PAGE && !hasNext) problems.push(`${where}: no next link with ${probe.total} matches`);
  if (probe.included) {
    const got = entries.filter(mode('include')).map((e) => key(e.resource as unknown as Json)).sort();
    if (JSON.stringify(got) !== JSON.stringify([...probe.included].sort())) problems.push(`${where}: included ${JSON.stringify(got)}, expected ${JSON.stringify(probe.included)}`);
  }
  return problems;
}

/** Pages through the whole result (large pages, no total) and compares the set of ids with the expected one. */
async function checkFullSet(live: LiveServer, shape: Shape, probe: Probe): Promise<string[]> {
  const where = `${shape.type}?${probe.query}`;
  const got: string[] = [];
  let path: string | undefined = `/${shape.type}?${probe.query}&_total=none&_count=500`;
  for (let pages = 0; path && pages < 40; pages++) {
    const answer = await timedGet(live, path);
    if (!answer.bundle) return [`${where}: paging: ${answer.timedOut ? 'a page timed out' : answer.error}`];
    for (const e of (answer.bundle.entry ?? []).filter(mode('match'))) got.push(String((e.resource as unknown as Json).id));
    const next = (answer.bundle.link ?? []).find((l) => l.relation === 'next')?.url;
    path = next ? next.slice(next.indexOf('/fhir/') + '/fhir'.length) : undefined;
  }
  if (path) return [`${where}: more than 40 pages of 500`];
  const expected = new Set(probe.ids());
  const seen = new Set(got);
  const missing = [...expected].filter((id) => !seen.has(id));
  const extra = [...seen].filter((id) => !expected.has(id));
  const problems: string[] = [];
  if (got.length !== seen.size) problems.push(`${where}: ${got.length - seen.size} duplicates across pages`);
  if (missing.length || extra.length) problems.push(`${where}: paging through all results: ${missing.length} missing, ${extra.length} unexpected (of ${expected.size})`);
  return problems;
}

/** Resources of each type the server holds before loading (it creates some itself, e.g. the public providers). */
async function presentBefore(live: LiveServer): Promise<Record<PopulationType, number>> {
  const counts = {} as Record<PopulationType, number>;
  for (const type of RESOURCE_TYPES) {
    const answer = await timedGet(live, `/${type}?_summary=count`);
    if (answer.bundle?.total === undefined) throw new Error(`${type}?_summary=count before loading: ${answer.error ?? (answer.timedOut ? 'timed out' : 'no total')}`);
    counts[type] = answer.bundle.total;
  }
  return counts;
}

async function checkTypeTotals(
  live: LiveServer,
  before: Record<PopulationType, number>,
  created: IngestResult,
): Promise<{ totals: Record<string, { expected: number; got: number | undefined }>; problems: string[] }> {
  const totals: Record<string, { expected: number; got: number | undefined }> = {};
  const problems: string[] = [];
  for (const type of RESOURCE_TYPES) {
    const answer = await timedGet(live, `/${type}?_summary=count`);
    const expected = before[type] + created.createdByType[type];
    totals[type] = { expected, got: answer.bundle?.total };
    if (answer.bundle?.total !== expected) {
      const present = before[type] ? ` + ${before[type]} present before loading` : '';
      problems.push(`${type}?_summary=count: ${answer.bundle ? `total ${answer.bundle.total}` : (answer.error ?? 'timed out')}, created ${created.createdByType[type]}${present}`);
    }
    if (answer.timedOut) await live.restart(`${type}?_summary=count timed out`);
  }
  return { totals, problems };
}

// ---------------------------------------------------------------------------------------------
// Measuring one shape: probe, check, load.

interface VariantProbe {
  /** One request's latency, ms (the timeout when it timed out). */
  ms: number;
  timedOut: boolean;
  /** Too slow to load-test (or failed): no load runs for this variant. */
  slow: boolean;
  error?: string;
}

interface ShapeResult {
  name: ShapeName;
  probes: { total: VariantProbe; noTotal: VariantProbe };
  pagesChecked: number;
  fullSetsChecked: number;
  /** Wrong answers. */
  problems: string[];
  /** What could not be checked or measured, and why. */
  notMeasured: string[];
  runs: LoadResult[];
}

function searchRequest(shape: Shape, seed: string, extra: string): autocannon.Request {
  const rng = new Rng(fnv1a(seed));
  return {
    method: 'GET',
    headers: { accept: FHIR_JSON },
    setupRequest: (req) => {
      const probe = shape.pool[Math.floor(rng.float() * shape.pool.length)]!;
      req.path = `/fhir/${shape.type}?${probe.query}${extra}`;
      return req;
    },
  };
}

const runName = (shape: string, connections: number, noTotal = false) => `${shape} @${connections}${noTotal ? ' _total=none' : ''}`;

async function measureShape(live: LiveServer, settings: BenchSettings, shape: Shape, connections: number): Promise<ShapeResult> {
  const result: ShapeResult = {
    name: shape.name,
    probes: { total: { ms: 0, timedOut: false, slow: true }, noTotal: { ms: 0, timedOut: false, slow: true } },
    pagesChecked: 0,
    fullSetsChecked: 0,
    problems: [],
    notMeasured: [],
    runs: [],
  };
  const rng = new Rng(fnv1a(`check ${shape.name}`));
  process.stdout.write(`   ${shape.name}: probing`);
  if (!(await settle(live))) await live.restart('busy before probing');

  // One request each way first: a pathological query must not meet 8 connections.
  for (const withTotal of [false, true]) {
    const probe = rng.pick(shape.pool);
    const answer = await timedGet(live, pathOf(shape, probe, withTotal));
    const variant: VariantProbe = { ms: round(answer.ms, 1), timedOut: answer.timedOut, slow: answer.timedOut || !!answer.error || answer.ms > SLOW_MS };
    if (answer.error) variant.error = answer.error;
    result.probes[withTotal ? 'total' : 'noTotal'] = variant;
    process.stdout.write(` ${withTotal ? 'with' : 'without'} total ${answer.timedOut ? `> ${PROBE_TIMEOUT_MS} ms (timed out)` : `${Math.round(answer.ms)} ms`};`);
    if (answer.bundle) {
      result.problems.push(...checkPage(shape, probe, answer.bundle, withTotal));
      result.pagesChecked++;
    } else if (answer.error) {
      result.problems.push(answer.error);
    }
    if (answer.timedOut) await live.restart(`${pathOf(shape, probe, withTotal).slice(1)} took over ${PROBE_TIMEOUT_MS / 1000} s`);
    if (variant.slow) result.notMeasured.push(`${withTotal ? 'with' : 'without'} total: one request took ${answer.timedOut ? `over ${PROBE_TIMEOUT_MS} ms` : `${Math.round(answer.ms)} ms`}; not load-tested`);
  }

  // More first pages, and whole result sets by paging, where the queries are fast enough.
  const fast = (['total', 'noTotal'] as const).filter((v) => !result.probes[v].slow);
  for (let i = 0; i < CHECKED_PAGES && fast.length; i++) {
    const withTotal = fast[i % fast.length] === 'total';
    const probe = rng.pick(shape.pool);
    const answer = await timedGet(live, pathOf(shape, probe, withTotal));
    if (!answer.bundle) {
      result.problems.push(answer.error ?? `${pathOf(shape, probe, withTotal).slice(1)} timed out`);
      if (answer.timedOut) await live.restart('a check timed out');
      break;
    }
    result.problems.push(...checkPage(shape, probe, answer.bundle, withTotal));
    result.pagesChecked++;
  }
  const fullSets = shape.name === 'include' ? 0 : shape.name === 'token' ? 1 : 2;
  if (!result.probes.noTotal.slow && result.probes.noTotal.ms < FULL_SET_MAX_MS) {
    for (let i = 0; i < fullSets; i++) {
      result.problems.push(...(await checkFullSet(live, shape, rng.pick(shape.pool))));
      result.fullSetsChecked++;
    }
  } else if (fullSets) {
    result.notMeasured.push('full result sets not checked (too slow)');
  }
  process.stdout.write(` checked ${result.pagesChecked} pages, ${result.fullSetsChecked} full sets${result.problems.length ? `: ${result.problems.length} PROBLEMS` : ''}\n`);

  const plan = [
    { name: runName(shape.name, 1), connections: 1, extra: '', variant: 'total' as const },
    { name: runName(shape.name, connections), connections, extra: '', variant: 'total' as const },
    { name: runName(shape.name, 1, true), connections: 1, extra: '&_total=none', variant: 'noTotal' as const },
  ];
  for (const p of plan) {
    if (result.probes[p.variant].slow) continue;
    if (!(await settle(live))) await live.restart('still busy with earlier requests');
    process.stdout.write(`   ${p.name}: ${settings.warmupSeconds} s warm-up + ${settings.seconds} s ...`);
    const run = await runLoad({
      name: p.name,
      server: live.server,
      connections: p.connections,
      seconds: settings.seconds,
      warmupSeconds: settings.warmupSeconds,
      requests: [searchRequest(shape, p.name, p.extra)],
    });
    process.stdout.write(` ${fmt(run.rps)} req/s, p50 ${run.latencyMs.p50} ms, p99 ${run.latencyMs.p99} ms\n`);
    result.runs.push(run);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Indexing overhead.

interface IndexingMode {
  mode: 'on' | 'off';
  creates: number;
  seconds: number;
  createsPerSecond: number;
  /** Mean wall time per create at the phase's connections, ms (1000 × connections / creates per second). */
  msPerCreate: number;
  p50Ms: number;
  p99Ms: number;
  /** Server CPU per create, ms. */
  cpuMsPerCreate: number;
  /** The same by thread (see threadCpuSeconds), microseconds per create, busiest first. */
  threadUsPerCreate: Record<string, number>;
  peakRssMB: number;
}

/** One way of sending the creates: one at a time (each create's own time), or many at once (throughput). */
interface IndexingPhase {
  name: 'create time' | 'saturation';
  connections: number;
  batch: number;
  rounds: number;
  modes: IndexingMode[];
  /** Extra time per create with indexing, percent: at 1 connection each create's own time, at many the inverse of throughput. */
  overheadPct: number;
  /** The same from the server's CPU time per create. */
  cpuOverheadPct: number;
  /** The same from p50 latency. */
  p50OverheadPct: number;
}

/** Adds each thread group's CPU seconds between two readings to `into`. */
function addThreadCpu(into: Map<string, number>, before: Map<string, number>, after: Map<string, number>): void {
  for (const [name, seconds] of after) into.set(name, (into.get(name) ?? 0) + seconds - (before.get(name) ?? 0));
}

/** Ids in the shape the server assigns, for references in the batch (the targets need not exist: indexing does not resolve them). */
function syntheticIds(population: Population): IdTable {
  const id = (type: string, i: number) => `${(fnv1a(type) >>> 0).toString(16).padStart(8, '0')}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
  return Object.fromEntries(RESOURCE_TYPES.map((t) => [t, Array.from({ length: population.counts[t] }, (_, i) => id(t, i))])) as IdTable;
}

interface IndexingServer {
  mode: 'on' | 'off';
  server: ServerProcess;
  next: number;
}

/**
 * Two fresh servers, indexing on and off, given the same Observations in the same order: first
 * one at a time (what a create costs a clinic system, measured as the issue's other times are,
 * at 1 connection), then many at once (what indexing costs the server's throughput when it is
 * saturated).
 */
async function indexingOverhead(settings: BenchSettings, population: Population, sequentialBatch: number, batch: number): Promise<{ phases: IndexingPhase[]; runs: LoadResult[] }> {
  const ids = syntheticIds(population);
  const facts = population.clinical.Observation;
  const needed = INDEX_WARMUP + INDEX_ROUNDS * (sequentialBatch + batch);
  const bodies = Array.from({ length: needed }, (_, i) => JSON.stringify(buildResource(population, 'Observation', facts[i % facts.length]!.index, ids)));
  const options = { log: settings.serverLog, keep: settings.keep, nodeArgs: settings.serverNodeArgs };
  const servers: IndexingServer[] = [];
  const runs: LoadResult[] = [];
  try {
    servers.push({ mode: 'on', server: await ServerProcess.start(options), next: 0 });
    servers.push({ mode: 'off', server: await ServerProcess.start({ ...options, env: { SEARCH_INDEXING: 'off' } }), next: 0 });
    const batchRun = (s: IndexingServer, name: string, amount: number, connections: number) =>
      runLoad({ name, server: s.server, connections, seconds: settings.seconds, warmupSeconds: 0, amount, requests: [createRequest(s, bodies)] });
    for (const s of servers) {
      process.stdout.write(`   indexing ${s.mode}: warm-up, ${INDEX_WARMUP} Observations ...`);
      await batchRun(s, `warm-up ${s.mode}`, INDEX_WARMUP, INDEX_CONNECTIONS);
      process.stdout.write(' done\n');
    }
    const phases: IndexingPhase[] = [];
    for (const [name, connections, amount] of [
      ['create time', 1, sequentialBatch],
      ['saturation', INDEX_CONNECTIONS, batch],
    ] as const) {
      const threadCpu = { on: new Map<string, number>(), off: new Map<string, number>() };
      const mine: LoadResult[] = [];
      // Alternate the order between rounds, so drift in machine load does not favour one side.
      for (let round = 0; round < INDEX_ROUNDS; round++) {
        for (const s of round % 2 === 0 ? servers : [...servers].reverse()) {
          const runName = `create Observation, indexing ${s.mode}, ${connections} conn. #${round + 1}`;
          process.stdout.write(`   ${runName}: ${amount} ...`);
          const threadsBefore = threadCpuSeconds(s.server.pid);
          const r = await batchRun(s, runName, amount, connections);
          addThreadCpu(threadCpu[s.mode], threadsBefore, threadCpuSeconds(s.server.pid));
          process.stdout.write(` ${fmt(r.rps)} creates/s, p50 ${r.latencyMs.p50} ms\n`);
          mine.push(r);
        }
      }
      runs.push(...mine);
      phases.push(phaseResult(name, connections, amount, mine, threadCpu));
    }
    return { phases, runs };
  } finally {
    for (const s of servers) await s.server.stop();
  }
}

/** POST /fhir/Observation with the server's next body: each server gets the same bodies in the same order. */
function createRequest(s: IndexingServer, bodies: string[]): autocannon.Request {
  return {
    method: 'POST',
    path: '/fhir/Observation',
    headers: { accept: FHIR_JSON, 'content-type': FHIR_JSON },
    setupRequest: (req) => {
      req.body = bodies[s.next++ % bodies.length]!;
      return req;
    },
  };
}

function phaseResult(name: IndexingPhase['name'], connections: number, batch: number, runs: LoadResult[], threadCpu: Record<'on' | 'off', Map<string, number>>): IndexingPhase {
  const modes = (['on', 'off'] as const).map((m): IndexingMode => {
    const mine = runs.filter((r) => r.name.includes(`indexing ${m},`));
    const creates = mine.reduce((n, r) => n + r.requests, 0);
    const seconds = mine.reduce((n, r) => n + r.seconds, 0);
    const cpuSeconds = mine.reduce((n, r) => n + r.server.cpuSeconds, 0);
    return {
      mode: m,
      creates,
      seconds: round(seconds, 2),
      createsPerSecond: round(creates / seconds),
      msPerCreate: round((seconds * 1000 * connections) / creates, 3),
      p50Ms: median(mine.map((r) => r.latencyMs.p50)),
      p99Ms: median(mine.map((r) => r.latencyMs.p99)),
      cpuMsPerCreate: round((cpuSeconds * 1000) / creates, 3),
      threadUsPerCreate: Object.fromEntries([...threadCpu[m]].sort((a, b) => b[1] - a[1]).map(([thread, seconds]) => [thread, round((seconds * 1e6) / creates)])),
      peakRssMB: Math.max(...mine.map((r) => r.server.peakRssMB)),
    };
  });
  const [on, off] = modes as [IndexingMode, IndexingMode];
  const pct = (a: number, b: number) => (b > 0 ? round((a / b - 1) * 100, 1) : 0);
  return {
    name,
    connections,
    batch,
    rounds: INDEX_ROUNDS,
    modes,
    overheadPct: pct(on.msPerCreate, off.msPerCreate),
    cpuOverheadPct: pct(on.cpuMsPerCreate, off.cpuMsPerCreate),
    p50OverheadPct: pct(on.p50Ms, off.p50Ms),
  };
}


// ---------------------------------------------------------------------------------------------
// The scenario.

function fileSizeMB(path: string): number {
  try {
    return statSync(path).size / MB;
  } catch {
    return 0;
  }
}

function matchStats(shape: Shape) {
  const totals = shape.pool.map((p) => p.total);
  return {
    shape: shape.name,
    example: shape.example,
    candidates: shape.candidates,
    pool: shape.pool.length,
    min: totals.length ? Math.min(...totals) : 0,
    median: median(totals),
    max: totals.length ? Math.max(...totals) : 0,
    fullPagePct: totals.length ? round((100 * totals.filter((t) => t >= PAGE).length) / totals.length) : 0,
  };
}

interface MainPhase {
  setup: Record<string, unknown>;
  runs: LoadResult[];
  notes: string[];
  targets: Target[];
  /** Wrong answers. */
  problems: string[];
  notMeasured: string[];
  ingestFailed: number;
  ingestSkipped: number;
  /** CPU cores other processes used during the ingest. */
  ingestOtherCores: number;
  peakRssMB: number;
  peakAnonRssMB: number;
  logBytes: number;
}

async function mainPhase(settings: BenchSettings, population: Population, only: string[], connections: number, ingestConcurrency: number): Promise<MainPhase> {
  const live = await LiveServer.start({ log: settings.serverLog, keep: settings.keep, nodeArgs: settings.serverNodeArgs });
  try {
    const server = live.server;
    const before = await presentBefore(live);
    const total = population.phases.reduce((n, p) => n + p.items.length, 0);
    process.stdout.write(`   loading ${fmt(total)} resources (${ingestConcurrency} in parallel) ...`);
    const closeWindow = server.sampler.begin();
    const busyBefore = systemBusySeconds();
    const cpuBefore = process.cpuUsage();
    const loaded = await ingest(server.baseUrl, population, {
      concurrency: ingestConcurrency,
      headers: server.authHeaders,
      onProgress: (done) => process.stdout.write(` ${fmt(done)}`),
    });
    const window = closeWindow();
    const cpu = process.cpuUsage(cpuBefore);
    const loaderCores = (cpu.user + cpu.system) / 1e6 / loaded.seconds;
    const otherCores = Math.max(0, (systemBusySeconds() - busyBefore) / loaded.seconds - window.cpuCores - loaderCores);
    process.stdout.write(` done in ${loaded.seconds.toFixed(1)} s (${fmt(loaded.created / loaded.seconds)}/s)\n`);
    server.assertAlive();
    if (loaded.skipped && !loaded.failed) console.error(`   ${loaded.skipped} resources skipped: they refer to resources that were not created`);
    if (loaded.failed) {
      console.error(`   ${loaded.failed} creates failed (${loaded.skipped} skipped as they refer to failed ones); the first:`);
      for (const f of loaded.firstFailures) console.error(`     ${f}`);
    }
    const dbMB = fileSizeMB(live.dbPath) + fileSizeMB(`${live.dbPath}-wal`);
    if (settings.keep) console.log(`   database (kept): ${live.dbPath}`);

    const typeTotals = await checkTypeTotals(live, before, loaded);
    const shapes = buildShapes(population, loaded.ids).filter((s) => s.pool.length && (only.length === 0 || only.includes(s.name)));
    const results: ShapeResult[] = [];
    for (const shape of shapes) results.push(await measureShape(live, settings, shape, connections));

    const runs = results.flatMap((r) => r.runs);
    const problems = [...typeTotals.problems, ...results.flatMap((r) => r.problems)];
    const notMeasured = results.flatMap((r) => r.notMeasured.map((m) => `${r.name}: ${m}`));
    const stats = shapes.map(matchStats);
    const byName = (name: string) => runs.find((r) => r.name === name);
    const targets: Target[] = [];
    for (const r of results) {
      const one = byName(runName(r.name, 1));
      // Too slow to load: the one probe request stands for both percentiles.
      const p50 = one ? one.latencyMs.p50 : Math.round(r.probes.total.ms);
      const p99 = one ? one.latencyMs.p99 : Math.round(r.probes.total.ms);
      const suffix = one ? '' : r.probes.total.timedOut ? ' [timed out: > value]' : ' [one request]';
      targets.push(target(`${r.name} p50 (1 connection)${suffix}`, p50, '<=', TARGETS.p50Ms, 'ms'));
      targets.push(target(`${r.name} p99 (1 connection)${suffix}`, p99, '<=', TARGETS.p99Ms, 'ms'));
    }
    const pagesChecked = results.reduce((n, r) => n + r.pagesChecked, 0);
    const fullSetsChecked = results.reduce((n, r) => n + r.fullSetsChecked, 0);
    const ms = (r: LoadResult | undefined, k: 'p50' | 'p99' | 'mean') => (r ? fmt(r.latencyMs[k], k === 'mean' ? 2 : 0) : '-');
    const probeMs = (v: VariantProbe) => (v.timedOut ? `>${fmt(PROBE_TIMEOUT_MS)}` : fmt(v.ms));
    const notes = [
      table(
        ['type', 'planned', 'created'],
        RESOURCE_TYPES.map((t) => [t, fmt(population.counts[t]), fmt(loaded.createdByType[t])]),
      ),
      '',
      table(
        ['ingest phase', 'resources', 'seconds', 'per second'],
        loaded.phases.map((p) => [p.label, fmt(p.resources), fmt(p.seconds, 1), fmt(p.perSecond)]),
      ),
      `   ingest: ${fmt(loaded.created)} created in ${fmt(loaded.seconds, 1)} s = ${fmt(loaded.created / loaded.seconds)}/s at ${ingestConcurrency} in parallel; ` +
        `server peak RSS ${fmt(window.peakRssBytes / MB, 1)} MB (anonymous ${fmt(window.peakAnonBytes / MB, 1)} MB; the rest is the memory-mapped database), server CPU ${fmt(window.cpuCores, 2)} cores, loader ${fmt(loaderCores, 2)}, other ${fmt(otherCores, 2)}; database ${fmt(dbMB)} MB`,
      '',
      table(
        ['shape', 'query', 'values', 'pool', 'matches min', 'median', 'max', 'full page'],
        stats.map((s) => [s.shape, s.example, fmt(s.candidates), fmt(s.pool), fmt(s.min), fmt(s.median), fmt(s.max), `${s.fullPagePct}%`]),
        2,
      ),
      '   values: distinct search values the data offers; pool: those requests pick from at random (a full 20-entry page where the data allows).',
      `   answers checked: ${pagesChecked} first pages (total, every match, next link, includes), ${fullSetsChecked} full result sets by paging, ` +
        `totals of all ${RESOURCE_TYPES.length} types: ${problems.length ? `${problems.length} PROBLEMS` : 'all right'}`,
      '',
      table(
        ['shape', 'probe ms', 'probe no total', 'p50 @1', 'p99 @1', `req/s @${connections}`, `p50 @${connections}`, `p99 @${connections}`, 'p50 no total', 'p99 no total', 'mean @1', 'mean no total'],
        results.map((r) => {
          const one = byName(runName(r.name, 1));
          const many = byName(runName(r.name, connections));
          const none = byName(runName(r.name, 1, true));
          return [r.name, probeMs(r.probes.total), probeMs(r.probes.noTotal), ms(one, 'p50'), ms(one, 'p99'), many ? fmt(many.rps) : '-', ms(many, 'p50'), ms(many, 'p99'), ms(none, 'p50'), ms(none, 'p99'), ms(one, 'mean'), ms(none, 'mean')];
        }),
      ),
      `   latencies in ms (autocannon records whole milliseconds); "no total" = the same searches with _total=none; probe = one request before loading ` +
        `(over ${fmt(SLOW_MS)} ms: not load-tested).`,
      ...(live.restarts.length ? [`   the server was restarted ${live.restarts.length} times (a query wedged it): ${live.restarts.join('; ')}`] : []),
    ];
    const result: MainPhase = {
      setup: {
        resources: total,
        created: loaded.created,
        ingestFailed: loaded.failed,
        ingestSkipped: loaded.skipped,
        ingestSeconds: round(loaded.seconds, 1),
        ingestPerSecond: round(loaded.created / loaded.seconds),
        ingestConcurrency,
        ingestPeakRssMB: round(window.peakRssBytes / MB, 1),
        ingestPeakAnonRssMB: round(window.peakAnonBytes / MB, 1),
        ingestServerCpuCores: round(window.cpuCores, 2),
        ingestLoaderCpuCores: round(loaderCores, 2),
        ingestOtherCpuCores: round(otherCores, 2),
        rssWhenReadyMB: round(server.readyRssBytes / MB, 1),
        databaseMB: round(dbMB, 1),
        serverRestarts: live.restarts.length,
        counts: population.counts,
        createdByType: loaded.createdByType,
        ingestPhases: loaded.phases.map((p) => ({ ...p, seconds: round(p.seconds, 2), perSecond: round(p.perSecond) })),
        firstIngestFailures: loaded.firstFailures,
        matchCounts: stats,
        typeTotals: typeTotals.totals,
        shapes: results.map(({ runs: _runs, ...rest }) => rest),
        restarts: live.restarts,
      },
      runs,
      notes,
      targets,
      problems,
      notMeasured,
      ingestFailed: loaded.failed,
      ingestSkipped: loaded.skipped,
      ingestOtherCores: otherCores,
      peakRssMB: live.peakRssMB,
      peakAnonRssMB: live.peakAnonRssMB,
      logBytes: live.totalLogBytes,
    };
    return result;
  } finally {
    await live.close();
  }
}

function settingsOf() {
  return {
    resources: envInt('BENCH_RESOURCES', 100_000),
    ingestConcurrency: envInt('BENCH_INGEST_CONCURRENCY', 32),
    searchConnections: envInt('BENCH_SEARCH_CONNECTIONS', 8),
    indexBatch: envInt('BENCH_INDEX_BATCH', 5000),
    indexSequentialBatch: envInt('BENCH_INDEX_SEQUENTIAL_BATCH', 2000),
    only: (process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean),
  };
}

export const search: Scenario = {
  name: 'search',
  description: DESCRIPTION,
  timeLimitSeconds(settings) {
    const s = settingsOf();
    const perRun = settings.seconds + settings.warmupSeconds + 10;
    // Ingest at a pessimistic 100/s; per shape its probes (and restarts), checks and runs; the indexing batches at 100/s.
    const perShape = 2 * (PROBE_TIMEOUT_MS / 1000 + 15) + 60 + 3 * (perRun + SETTLE_CAP_MS / 1000);
    return 300 + s.resources / 100 + SHAPE_NAMES.length * perShape + (2 * INDEX_WARMUP + 2 * INDEX_ROUNDS * (s.indexSequentialBatch + s.indexBatch)) / 100;
  },
  async run(settings) {
    const startedAt = new Date().toISOString();
    const s = settingsOf();
    const unknown = s.only.filter((o) => !(SHAPE_NAMES as readonly string[]).includes(o) && o !== 'indexing');
    if (unknown.length) throw new Error(`BENCH_ONLY: unknown '${unknown.join(', ')}' (known: ${SHAPE_NAMES.join(', ')}, indexing)`);
    const shapesWanted = s.only.filter((o) => o !== 'indexing');
    const runMain = s.only.length === 0 || shapesWanted.length > 0;
    const runIndexing = s.only.length === 0 || s.only.includes('indexing');

    const population = generatePopulation(s.resources);
    console.log(
      `   population: ${Object.entries(population.counts)
        .map(([t, n]) => `${fmt(n)} ${t}`)
        .join(', ')}`,
    );

    const runs: LoadResult[] = [];
    const targets: Target[] = [];
    const notes: string[] = [];
    const warnings: string[] = [];
    let setup: Record<string, unknown> = {};
    let error: string | undefined;
    let peakRssMB = 0;
    let logBytes = 0;

    if (runMain) {
      try {
        const main = await mainPhase(settings, population, shapesWanted, s.searchConnections, s.ingestConcurrency);
        setup = { ...main.setup, peakRssMB: main.peakRssMB, peakAnonRssMB: main.peakAnonRssMB };
        runs.push(...main.runs);
        notes.push(
          ...main.notes,
          `   search server peak RSS ${fmt(main.peakRssMB)} MB, of it anonymous (heap, SQLite page cache) ${fmt(main.peakAnonRssMB)} MB: the rest is the database file mapped by SQLite (mmap_size).`,
        );
        targets.push(...main.targets);
        targets.push(target('ingest creates failed (non-2xx) or skipped', main.ingestFailed + main.ingestSkipped, '<=', 0, ''));
        targets.push(target('sampled answers wrong', main.problems.length, '<=', 0, ''));
        warnings.push(...main.problems.slice(0, 10), ...main.notMeasured);
        if (main.ingestOtherCores >= 0.25) {
          warnings.push(`ingest: other processes used ${round(main.ingestOtherCores, 2)} CPU cores meanwhile; the ingest rate is understated`);
        }
        peakRssMB = main.peakRssMB;
        logBytes = main.logBytes;
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
    }

    if (runIndexing && error === undefined) {
      try {
        const { phases, runs: indexRuns } = await indexingOverhead(settings, population, s.indexSequentialBatch, s.indexBatch);
        runs.push(...indexRuns);
        setup = { ...setup, indexing: phases };
        const [createTime, saturation] = phases as [IndexingPhase, IndexingPhase];
        targets.push(target('indexing overhead on create time', createTime.overheadPct, '<=', TARGETS.indexingOverheadPct, '%'));
        for (const phase of phases) {
          notes.push(
            '',
            table(
              [`indexing, ${phase.name}`, 'creates', 'creates/s', 'ms/create', 'p50 ms', 'p99 ms', 'server CPU ms/create', 'peak RSS MB'],
              phase.modes.map((m) => [m.mode, fmt(m.creates), fmt(m.createsPerSecond), fmt(m.msPerCreate, 2), fmt(m.p50Ms), fmt(m.p99Ms), fmt(m.cpuMsPerCreate, 2), fmt(m.peakRssMB)]),
            ),
            `   ${phase.rounds} × ${fmt(phase.batch)} Observations per server at ${phase.connections} connection${phase.connections === 1 ? '' : 's'}, alternating servers; ` +
              `indexing adds ${phase.overheadPct}% to ${phase.connections === 1 ? 'the time of a create' : 'the time per create (the inverse of throughput)'}, ${phase.cpuOverheadPct}% to server CPU per create, ${phase.p50OverheadPct}% to p50.`,
            ...phase.modes.map((m) => `   server CPU per create by thread, indexing ${m.mode} (us): ${Object.entries(m.threadUsPerCreate).map(([name, us]) => `${name} ${fmt(us)}`).join(', ')}`),
          );
        }
        notes.push(
          '   (main: requests; fhir-writer: commits handed over; fhir-audit: the audit trail; fhir-checkpoint: the WAL into the file; node: garbage collection, compilers, I/O pool)',
          `   The target is on the time of a create (1 connection, as every other time here); at saturation (${saturation.connections} connections) indexing costs ${saturation.overheadPct}% of throughput, reported, not a target.`,
        );
        const result = { modes: phases.flatMap((phase) => phase.modes) };
        peakRssMB = Math.max(peakRssMB, ...result.modes.map((m) => m.peakRssMB));
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
    }
    warnings.push(...runs.flatMap(anomalies));

    return {
      scenario: 'search',
      description: DESCRIPTION,
      startedAt,
      finishedAt: new Date().toISOString(),
      settings: { ...settings, ...s },
      environment: environment(),
      setup,
      runs,
      server: { peakRssMB, logBytes },
      targets,
      warnings,
      notes,
      failed: error !== undefined || runs.some((r) => r.errors > 0 || (r.warmup?.errors ?? 0) > 0),
      ...(error !== undefined && { error }),
    };
  },
};
