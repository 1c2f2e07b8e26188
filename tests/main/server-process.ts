import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateDevKey } from '../../src/auth/keys.js';
import { issueToken } from '../../src/auth/tokens.js';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from '../../src/config.js';

/**
 * The real entry point as a child process, for the suites that kill it (`kill -9`) and start it
 * again on the same data. Each suite has its own temp folder with the development key the server
 * makes on its first start, and names its store in `env`.
 */

export interface RunningServer {
  child: ChildProcess;
  /** http://127.0.0.1:PORT/fhir */
  base: string;
}

const root = new URL('../..', import.meta.url).pathname;

/** Settings the server would take from the test runner's environment and that must come from the suite. */
const OWN_SETTINGS = /^(AUTH_|EHEALTH_|MONGODB_|SQLITE_|BULK_)/;

export class ServerProcess {
  readonly tempDir: string;
  private readonly devKeyFile: string;

  constructor(name: string) {
    this.tempDir = mkdtempSync(join(tmpdir(), `fhir-${name}-`));
    this.devKeyFile = join(this.tempDir, 'dev-signing-key.json');
  }

  /** Starts the server with these settings and waits (60 s at most) until it answers. */
  async start(env: Record<string, string>): Promise<RunningServer> {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}/fhir`;
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !OWN_SETTINGS.test(k)));
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: root,
      env: { ...inherited, BASE_URL: base, ...env, AUTH_DEV_KEY_FILE: this.devKeyFile, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
      if (await fetch(`${base}/metadata`).then((r) => r.ok, () => false)) return { child, base };
      await new Promise((r) => setTimeout(r, 200));
    }
    child.kill('SIGKILL');
    throw new Error('server did not start within 60 s');
  }

  /** Headers of a backend client (allowed everything unless scopes say less), signed with the key the server trusts. */
  async bearer(clientId: string, scopes: string[] = ['system/*.*']): Promise<Record<string, string>> {
    const key = await loadOrCreateDevKey(this.devKeyFile);
    const token = await issueToken({ kind: 'system', clientId, scopes }, { key, issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, lifetimeSeconds: 600 });
    return { authorization: `Bearer ${token}` };
  }

  /** Headers of an auditor (the only principal that reads the audit trail), signed with the key the server trusts. */
  async auditor(staffId: string): Promise<Record<string, string>> {
    const key = await loadOrCreateDevKey(this.devKeyFile);
    const token = await issueToken({ kind: 'auditor', staffId }, { key, issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, lifetimeSeconds: 600 });
    return { authorization: `Bearer ${token}` };
  }
}

/** `kill -9`, and waits until the process is gone. */
export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
