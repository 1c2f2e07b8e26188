import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killHard, ServerProcess } from './server-process.js';

/**
 * A server killed (`kill -9`) while it processes a large transaction leaves nothing of it
 * after a restart: all of the transaction's resources are there (it had committed), or none.
 * The embedded store only: the MongoDB adapter refuses transactions where it cannot make them atomic.
 */

const servers = new ServerProcess('transaction-crash');
const tempDir = servers.tempDir;
const ENTRIES = 6_000;
const startServer = () => servers.start({ SQLITE_PATH: join(tempDir, 'fhir.sqlite') });
const bearer = () => servers.bearer('crash-test');

/** Half patients, half observations pointing at them through placeholders; every resource carries the run's marker. */
function transaction(marker: string): string {
  const entry: unknown[] = [];
  for (let i = 0; i < ENTRIES / 2; i++) {
    const fullUrl = `urn:uuid:20000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    const identifier = [{ system: marker, value: String(i) }];
    entry.push({ fullUrl, request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', identifier, name: [{ family: 'Chan' }] } });
    entry.push({ request: { method: 'POST', url: 'Observation' }, resource: { resourceType: 'Observation', identifier, status: 'final', code: { text: 'pulse' }, subject: { reference: fullUrl } } });
  }
  return JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry });
}

afterAll(() => rmSync(tempDir, { recursive: true, force: true }));

describe('a transaction interrupted by kill -9 (sqlite)', () => {
  it('leaves all of it or none of it after a restart', { timeout: 300_000 }, async () => {
    const auth = await bearer();
    let interrupted = 0;
    // Kill at several points of the processing: early, in the middle, near the end.
    for (const [run, delay] of [400, 1500, 3000].entries()) {
      const marker = `http://crash.test/run-${run}`;
      const server = await startServer();
      const answer = fetch(`${server.base}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/fhir+json' }, body: transaction(marker) }).then(
        (res) => res.status,
        () => 'no answer' as const,
      );
      await Promise.race([answer, new Promise((r) => setTimeout(r, delay))]);
      await killHard(server.child);
      const status = await answer;
      if (status === 'no answer') interrupted++;

      const restarted = await startServer();
      try {
        const count = async (type: string) => {
          const res = await fetch(`${restarted.base}/${type}?identifier=${encodeURIComponent(`${marker}|`)}&_summary=count`, { headers: auth });
          return ((await res.json()) as { total: number }).total;
        };
        const [patients, observations] = [await count('Patient'), await count('Observation')];
        console.info(`killed after ${delay} ms: ${status === 'no answer' ? 'no answer' : `answered ${status}`}; ${patients} patients and ${observations} observations after the restart`);
        expect([0, ENTRIES / 2], `run ${run}: ${patients} patients after ${status}`).toContain(patients);
        expect(observations).toBe(patients);
        if (status === 200) expect(patients).toBe(ENTRIES / 2);
      } finally {
        await killHard(restarted.child);
      }
    }
    // At least one kill must really have landed while the transaction was being processed.
    expect(interrupted).toBeGreaterThan(0);
  });
});
