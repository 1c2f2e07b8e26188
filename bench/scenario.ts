import { cpus, totalmem } from 'node:os';
import type { Calibration } from './calibration.js';
import type { LoadResult } from './load.js';

/** What every benchmark scenario (core, search, bundles, ...) receives and returns. */

export interface BenchSettings {
  /** Measured seconds per load run (BENCH_SECONDS, default 10). */
  seconds: number;
  /** Warm-up seconds before each load run (BENCH_WARMUP_SECONDS, default 2). */
  warmupSeconds: number;
  /** autocannon connections (BENCH_CONNECTIONS, default 32). */
  connections: number;
  /** Where the server's request log goes (BENCH_SERVER_LOG=file|null, default file). */
  serverLog: 'file' | 'null';
  /** Keep the server's temp dir (BENCH_KEEP=1). */
  keep: boolean;
  /** Extra node arguments for the server (BENCH_SERVER_NODE_ARGS, space-separated), e.g. --cpu-prof. */
  serverNodeArgs: string[];
}

function positive(name: string, fallback: number, allowZero = false): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) throw new Error(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`);
  return n;
}

export function settingsFromEnv(): BenchSettings {
  const log = process.env.BENCH_SERVER_LOG ?? 'file';
  if (log !== 'file' && log !== 'null') throw new Error('BENCH_SERVER_LOG must be file or null');
  return {
    seconds: positive('BENCH_SECONDS', 10),
    warmupSeconds: positive('BENCH_WARMUP_SECONDS', 2, true),
    connections: Math.round(positive('BENCH_CONNECTIONS', 32)),
    serverLog: log,
    keep: process.env.BENCH_KEEP === '1',
    serverNodeArgs: (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
  };
}

/** An envInt for scenario-specific knobs, e.g. BENCH_PATIENTS. */
export function envInt(name: string, fallback: number): number {
  return Math.round(positive(name, fallback));
}

export interface Target {
  /** e.g. 'read throughput' */
  label: string;
  op: '>=' | '<=';
  limit: number;
  actual: number;
  unit: string;
  pass: boolean;
}

export function target(label: string, actual: number, op: '>=' | '<=', limit: number, unit: string): Target {
  return { label, op, limit, actual, unit, pass: op === '>=' ? actual >= limit : actual <= limit };
}

export interface ScenarioReport {
  scenario: string;
  description: string;
  startedAt: string;
  finishedAt: string;
  settings: BenchSettings & Record<string, unknown>;
  environment: {
    node: string;
    platform: string;
    cpus: number;
    cpuModel: string;
    totalMemoryGB: number;
    /** This machine's speed before and after the scenario (see calibration.ts); added by run.ts. */
    calibration?: { before: Calibration; after: Calibration };
  };
  /** Set-up work done before the load runs (e.g. preloading), free-form per scenario. */
  setup: Record<string, unknown>;
  runs: LoadResult[];
  server: { peakRssMB: number; logBytes: number };
  targets: Target[];
  warnings: string[];
  /** True when the measurement itself is not trustworthy (socket errors, timeouts, a run that broke off). */
  failed: boolean;
  /** Why the scenario broke off, when it did; `runs` then holds what was measured before. */
  error?: string;
  /** Scenario-specific findings printed after the runs (extra tables, match counts, ...). */
  notes?: string[];
}

export interface Scenario {
  name: string;
  description: string;
  run(settings: BenchSettings): Promise<ScenarioReport>;
  /** Seconds the scenario may take at most with these settings (run.ts's overall time limit); a default when absent. */
  timeLimitSeconds?(settings: BenchSettings): number;
}

export function environment(): ScenarioReport['environment'] {
  const list = cpus();
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    totalMemoryGB: Math.round(totalmem() / 1024 ** 3),
  };
}
