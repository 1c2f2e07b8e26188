import autocannon from 'autocannon';
import { MB, systemBusySeconds, type ServerProcess } from './server-process.js';

/** One measured load run with autocannon against the server process, summarized. */

export interface LoadOptions {
  /** Name of the run in reports, e.g. 'read'. */
  name: string;
  server: ServerProcess;
  connections: number;
  seconds: number;
  /** A warm-up with the same requests before measuring; 0 for none. */
  warmupSeconds: number;
  /** The request sequence each connection loops over (see autocannon's `requests`). */
  requests: autocannon.Request[];
  /**
   * Measure a fixed batch of this many requests instead of `seconds` (the warm-up still runs
   * for `warmupSeconds`); req/s is then the batch over its elapsed time.
   */
  amount?: number;
  /** Defaults for every request, e.g. the method or headers (the server's `authorization` is always added). */
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface LoadResult {
  name: string;
  connections: number;
  seconds: number;
  /** Responses received while measuring (any status). */
  requests: number;
  /** Mean requests per second (autocannon's per-second samples). */
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  warmup: { seconds: number; requests: number; non2xx: number; errors: number; statusCodes: Record<string, number> } | undefined;
  /**
   * Server process during the measured part (warm-up excluded). `rpsPerCore` is req/s divided by
   * the server's CPU use: what one fully available core would serve, which (unlike req/s) holds
   * up when other processes compete for the machine.
   */
  server: { peakRssMB: number; peakAnonRssMB: number; cpuCores: number; cpuSeconds: number; rpsPerCore: number };
  /** This (load generator) process's CPU use during the measured part; 1.0 is one core. */
  loadGeneratorCpuCores: number;
  /** CPU used by anything else on the machine meanwhile (other processes competing for cores). */
  otherCpuCores: number;
}

function statusCodes(result: autocannon.Result): Record<string, number> {
  return Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => [code, Number(count)]));
}

/** An autocannon run, and when its last response arrived (autocannon itself ends runs only on whole seconds). */
async function cannon(options: LoadOptions, seconds: number, connections: number, amount?: number): Promise<{ result: autocannon.Result; lastResponseAt: number }> {
  let lastResponseAt = 0;
  const instance = autocannon({
    url: options.server.origin,
    connections,
    ...(amount ? { amount } : { duration: seconds }),
    timeout: 10,
    ...(options.method && { method: options.method }),
    headers: { ...options.headers, authorization: options.server.authorization },
    ...(options.body !== undefined && { body: options.body }),
    requests: options.requests,
  });
  instance.on('response', () => {
    lastResponseAt = performance.now();
  });
  return { result: await instance, lastResponseAt };
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { server } = options;
  server.assertAlive();
  let warmup: LoadResult['warmup'];
  if (options.warmupSeconds > 0) {
    const { result: w } = await cannon(options, options.warmupSeconds, options.connections);
    warmup = { seconds: w.duration, requests: w.requests.total, non2xx: w.non2xx, errors: w.errors, statusCodes: statusCodes(w) };
    server.assertAlive();
  }
  const closeWindow = server.sampler.begin();
  const cpuBefore = process.cpuUsage();
  const systemBefore = systemBusySeconds();
  const wallBefore = performance.now();
  const { result: r, lastResponseAt } = await cannon(options, options.seconds, options.connections, options.amount);
  const cpu = process.cpuUsage(cpuBefore);
  const systemBusy = systemBusySeconds() - systemBefore;
  const wall = (performance.now() - wallBefore) / 1000;
  // A fixed batch lasts until its last response, not until autocannon's next whole second.
  const batchSeconds = options.amount && lastResponseAt > wallBefore ? (lastResponseAt - wallBefore) / 1000 : r.duration;
  const window = closeWindow();
  const generatorCores = (cpu.user + cpu.system) / 1e6 / wall;
  const otherCores = Math.max(0, systemBusy / wall - window.cpuCores - generatorCores);
  server.assertAlive();
  return {
    name: options.name,
    connections: options.connections,
    seconds: options.amount ? round(batchSeconds, 3) : r.duration,
    requests: r.requests.total,
    rps: options.amount ? (batchSeconds > 0 ? r.requests.total / batchSeconds : 0) : r.requests.average,
    latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, mean: r.latency.average },
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes: statusCodes(r),
    warmup,
    server: {
      peakRssMB: round(window.peakRssBytes / MB, 1),
      peakAnonRssMB: round(window.peakAnonBytes / MB, 1),
      cpuCores: round(window.cpuCores, 2),
      cpuSeconds: round(window.cpuSeconds, 2),
      rpsPerCore: window.cpuSeconds > 0 ? round(r.requests.total / window.cpuSeconds) : 0,
    },
    loadGeneratorCpuCores: round(generatorCores, 2),
    otherCpuCores: round(otherCores, 2),
  };
}

export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Warnings a run deserves: non-2xx answers, socket errors, timeouts (measured or warm-up). */
export function anomalies(run: LoadResult): string[] {
  const out: string[] = [];
  const codes = (c: Record<string, number>) =>
    Object.entries(c)
      .filter(([code]) => !code.startsWith('2'))
      .map(([code, n]) => `${n}×${code}`)
      .join(', ');
  if (run.non2xx > 0) out.push(`${run.name}: ${run.non2xx} non-2xx responses (${codes(run.statusCodes)})`);
  if (run.errors > 0) out.push(`${run.name}: ${run.errors} connection errors (${run.timeouts} timeouts)`);
  if (run.warmup && run.warmup.non2xx > 0) out.push(`${run.name} warm-up: ${run.warmup.non2xx} non-2xx responses (${codes(run.warmup.statusCodes)})`);
  if (run.warmup && run.warmup.errors > 0) out.push(`${run.name} warm-up: ${run.warmup.errors} connection errors`);
  if (run.otherCpuCores >= 0.25) {
    out.push(`${run.name}: other processes used ${run.otherCpuCores} CPU cores during the run; figures are understated`);
  }
  return out;
}
