import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadOrCreateDevKey } from '../src/auth/keys.js';
import type { PrincipalClaim } from '../src/auth/principal.js';
import { issueToken } from '../src/auth/tokens.js';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from '../src/config.js';

/**
 * The server under test as a separate process: built once, started on a free loopback port with
 * a fresh temporary SQLite file and development signing key, watched (RSS and CPU sampled from
 * /proc), and stopped. Benchmark requests carry `authorization`: a token of a backend client
 * allowed everything, signed with that key.
 */

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** `npm run build`, output to the terminal; throws when the build fails. */
export function buildServer(): void {
  const result = spawnSync('npm', ['run', '--silent', 'build'], { cwd: repoRoot, stdio: 'inherit', timeout: 5 * 60_000 });
  if (result.error) throw new Error(`npm run build could not run: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`npm run build failed (exit ${result.status ?? result.signal})`);
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => (port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

interface ProcSample {
  at: number;
  rssBytes: number;
  /** Anonymous memory (heap, stacks, SQLite's page cache): what RSS holds besides mapped files. */
  anonBytes: number;
  cpuTicks: number;
}

function readProc(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    const anon = /^RssAnon:\s+(\d+)\s+kB/m.exec(status);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    if (!rss?.[1]) return undefined;
    return { at: performance.now(), rssBytes: Number(rss[1]) * 1024, anonBytes: Number(anon?.[1] ?? rss[1]) * 1024, cpuTicks: ticks };
  } catch {
    return undefined; // the process is gone
  }
}

/** CPU time a process has used so far, in seconds (undefined once it is gone). */
export function processCpuSeconds(pid: number): number | undefined {
  const sample = readProc(pid);
  return sample && sample.cpuTicks / CLOCK_TICKS_PER_SECOND;
}

/**
 * CPU time each of a process's threads has used so far, in seconds, summed by the name the
 * operating system shows (the server names its own threads: see src/thread-name.ts): `main`
 * for the request thread, and `node` for the rest (V8's garbage collection and compiler
 * helpers, libuv's pool). Threads that ended are not counted: take it before and after a run,
 * while the threads of interest live.
 */
export function threadCpuSeconds(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return byName; // the process is gone
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const name = Number(tid) === pid ? 'main' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      byName.set(name, (byName.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND);
    } catch {
      // the thread ended meanwhile
    }
  }
  return byName;
}

/** Busy CPU time of the whole machine so far, in seconds (all cores, from /proc/stat). */
export function systemBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [, ...values] = line.trim().split(/\s+/);
    const n = values.map(Number);
    // user nice system idle iowait irq softirq steal ...
    const busy = (n[0] ?? 0) + (n[1] ?? 0) + (n[2] ?? 0) + (n[5] ?? 0) + (n[6] ?? 0) + (n[7] ?? 0);
    return busy / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** What a window of samples says about the server: peak RSS and CPU use over the window. */
export interface ProcWindow {
  peakRssBytes: number;
  /**
   * Peak anonymous RSS: RSS without file-backed pages, e.g. the database file memory-mapped by
   * SQLite (mmap_size), which the kernel can drop at will.
   */
  peakAnonBytes: number;
  /** Server CPU time over wall time; 1.0 is one core fully busy. */
  cpuCores: number;
  /** Server CPU time over the window, seconds. */
  cpuSeconds: number;
  samples: number;
}

/** Samples a process's VmRSS and CPU time every `intervalMs` until stopped. */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number, intervalMs = 250) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): ProcSample | undefined {
    const s = readProc(this.pid);
    if (s) this.samples.push(s);
    return s;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Starts a window now (taking a sample); call the returned function to close it. */
  begin(): () => ProcWindow {
    const first = this.samples.length;
    this.sample();
    return () => {
      this.sample();
      return summarize(this.samples.slice(first));
    };
  }

  overall(): ProcWindow {
    return summarize(this.samples);
  }

}

function summarize(samples: ProcSample[]): ProcWindow {
  let peak = 0;
  let peakAnon = 0;
  for (const s of samples) {
    peak = Math.max(peak, s.rssBytes);
    peakAnon = Math.max(peakAnon, s.anonBytes);
  }
  const a = samples[0];
  const b = samples[samples.length - 1];
  const seconds = a && b ? (b.at - a.at) / 1000 : 0;
  const cpuSeconds = a && b ? (b.cpuTicks - a.cpuTicks) / CLOCK_TICKS_PER_SECOND : 0;
  const cpuCores = seconds > 0 ? cpuSeconds / seconds : 0;
  return { peakRssBytes: peak, peakAnonBytes: peakAnon, cpuCores, cpuSeconds, samples: samples.length };
}

export interface ServerProcessOptions {
  /** Extra environment for the server (after the benchmark's own settings). */
  env?: Record<string, string>;
  /** Arguments for node before the script, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof']. */
  nodeArgs?: string[];
  /** Where the server's stdout/stderr (its request log) goes: a file in the temp dir, or /dev/null. */
  log?: 'file' | 'null';
  /** Keep the temporary directory (database and log) after stop(). */
  keep?: boolean;
  /** An existing database file to serve (e.g. after a restart) instead of a fresh one in the temp dir. */
  sqlitePath?: string;
  startTimeoutMs?: number;
  sampleIntervalMs?: number;
}

// Variables the server reads that must not leak in from the caller's shell (a MONGODB_URI there
// would silently benchmark the wrong store; AUTH_ and EHEALTH_ settings would change whose
// tokens it accepts).
const SERVER_ENV_PREFIXES = ['PORT', 'HOST', 'BASE_URL', 'SQLITE_', 'MONGODB_', 'LOG_LEVEL', 'NODE_OPTIONS', 'AUTH_', 'EHEALTH_'];

/** The benchmark's principal: a backend client that may do everything. */
const BENCH_CLIENT: PrincipalClaim = { kind: 'system', clientId: 'bench', scopes: ['system/*.*'] };
/** Longer than any benchmark run, so the token stays valid (and cached by the server) throughout. */
const TOKEN_LIFETIME_SECONDS = 2 * 60 * 60;

/** An `Authorization` header value the server started with `devKeyFile` accepts. */
async function benchAuthorization(devKeyFile: string): Promise<string> {
  const key = await loadOrCreateDevKey(devKeyFile);
  const token = await issueToken(BENCH_CLIENT, { key, issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, lifetimeSeconds: TOKEN_LIFETIME_SECONDS });
  return `Bearer ${token}`;
}

/** The node flags of package.json's start script (e.g. the heap limit), so the benchmark runs what production runs. */
function startScriptNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const words = pkg.scripts.start!.split(/\s+/);
  return words[0] === 'node' ? words.slice(1).filter((w) => w.startsWith('--')) : [];
}

export class ServerProcess {
  readonly origin: string;
  readonly baseUrl: string;
  readonly sampler: ProcSampler;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;
  private stopped = false;
  /** RSS once the server first answered, before any load, in bytes. */
  readyRssBytes = 0;
  /** The `Authorization` header value of every benchmark request (set once the server is ready). */
  authorization = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly pid: number,
    readonly port: number,
    readonly dir: string,
    readonly logPath: string | undefined,
    private readonly keep: boolean,
    sampleIntervalMs: number,
  ) {
    this.origin = `http://127.0.0.1:${port}`;
    this.baseUrl = `${this.origin}/fhir`;
    this.sampler = new ProcSampler(pid, sampleIntervalMs);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      });
    });
  }

  /** Starts the server as `npm start` does (its node flags included) and waits until it answers /fhir/metadata. */
  static async start(options: ServerProcessOptions = {}): Promise<ServerProcess> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'fhir-bench-'));
    const logPath = options.log === 'null' ? undefined : join(dir, 'server.log');
    const out = openSync(logPath ?? '/dev/null', 'a');
    const devKeyFile = join(dir, 'dev-signing-key.json');
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!SERVER_ENV_PREFIXES.some((p) => k.startsWith(p))) env[k] = v;
    }
    Object.assign(env, {
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      SQLITE_PATH: options.sqlitePath ?? join(dir, 'fhir.sqlite'),
      LOG_LEVEL: 'info',
      AUTH_DEV_KEY_FILE: devKeyFile,
      ...options.env,
    });
    // An absolute script path: the command line is unmistakably this benchmark's server.
    const child = spawn(process.execPath, [...startScriptNodeFlags(), ...(options.nodeArgs ?? []), join(repoRoot, 'dist', 'main.js')], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    if (child.pid === undefined) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error('the server process could not be spawned');
    }
    const server = new ServerProcess(child, child.pid, port, dir, logPath, options.keep ?? false, options.sampleIntervalMs ?? 250);
    liveServers.add(server);
    try {
      await server.waitUntilReady(options.startTimeoutMs ?? 30_000);
      server.readyRssBytes = server.sampler.sample()?.rssBytes ?? 0;
      // The server made the key on start-up; the token is signed with it.
      server.authorization = await benchAuthorization(devKeyFile);
    } catch (err) {
      const tail = server.logTail();
      await server.stop();
      throw new Error(`${(err as Error).message}${tail ? `\n--- server log (tail) ---\n${tail}` : ''}`);
    }
    return server;
  }

  private async waitUntilReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exit) throw new Error(`the server exited during start-up (code ${this.exit.code}, signal ${this.exit.signal})`);
      try {
        const res = await fetch(`${this.baseUrl}/metadata`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`the server did not answer ${this.baseUrl}/metadata within ${timeoutMs / 1000} s`);
  }

  /** Headers for a plain fetch to the server: the benchmark's token. */
  get authHeaders(): Record<string, string> {
    return { authorization: this.authorization };
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** Throws when the server has died (call between phases). */
  assertAlive(): void {
    if (this.exit) {
      const tail = this.logTail();
      throw new Error(
        `the server exited unexpectedly (code ${this.exit.code}, signal ${this.exit.signal})${tail ? `\n--- server log (tail) ---\n${tail}` : ''}`,
      );
    }
  }

  /** The last lines of the server's log, when it goes to a file. */
  logTail(lines = 8): string {
    if (!this.logPath) return '';
    try {
      return readFileSync(this.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  logBytes(): number {
    if (!this.logPath) return 0;
    try {
      return statSync(this.logPath).size;
    } catch {
      return 0;
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; removes the temporary directory unless kept. */
  async stop(graceMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    if (!this.stopped) {
      this.stopped = true;
      this.sampler.sample();
      this.sampler.stop();
      if (!this.exit) {
        this.child.kill('SIGTERM');
        const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
        await this.exited;
        clearTimeout(timer);
      }
      if (!this.keep) rmSync(this.dir, { recursive: true, force: true });
      liveServers.delete(this);
    }
    return this.exit;
  }

  /** Synchronous last resort for process exit: kill without waiting, remove the directory. */
  killNow(): void {
    if (!this.exit) this.child.kill('SIGKILL');
    if (!this.keep) rmSync(this.dir, { recursive: true, force: true });
  }
}

const liveServers = new Set<ServerProcess>();

// Whatever way the benchmark ends, no server is left running and no temp database left behind.
process.once('exit', () => {
  for (const server of liveServers) server.killNow();
});

/** Starts a server, runs `body` against it, and always stops it. */
export async function withServer<T>(options: ServerProcessOptions, body: (server: ServerProcess) => Promise<T>): Promise<T> {
  const server = await ServerProcess.start(options);
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}

export const MB = 1024 * 1024;
