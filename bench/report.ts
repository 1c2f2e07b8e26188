import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeCalibration } from './calibration.js';
import type { ScenarioReport } from './scenario.js';
import { repoRoot } from './server-process.js';

/** Printing a scenario's results and writing them to .bench/<scenario>.json. */

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function table(header: string[], rows: string[][], rightAlignFrom = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i >= rightAlignFrom ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function formatReport(report: ScenarioReport): string {
  const out: string[] = [];
  const s = report.settings;
  out.push(
    `== ${report.scenario}: ${report.description}`,
    `   ${s.connections} connections, ${s.seconds} s per run after ${s.warmupSeconds} s warm-up; ` +
      `${report.environment.cpus} CPUs (${report.environment.cpuModel}), node ${report.environment.node}; server log: ${s.serverLog}`,
  );
  const calibration = report.environment.calibration;
  if (calibration) out.push(`   machine speed (calibration.ts): before ${describeCalibration(calibration.before)}; after ${describeCalibration(calibration.after)}`);
  // Scalars only: structured set-up details are in the JSON file (and the scenario's notes).
  const setup = Object.entries(report.setup)
    .filter(([, v]) => v === null || typeof v !== 'object')
    .map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v, Number.isInteger(v) ? 0 : 1) : String(v)}`)
    .join(', ');
  if (setup) out.push(`   setup: ${setup}`);
  out.push('');
  out.push(
    table(
      ['run', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'requests', 'non-2xx', 'errors', 'srv CPU', 'req/s/core', 'gen CPU', 'other CPU', 'RSS MB'],
      report.runs.map((r) => [
        r.name,
        fmt(r.rps),
        fmt(r.latencyMs.p50),
        fmt(r.latencyMs.p99),
        fmt(r.latencyMs.max),
        fmt(r.requests),
        fmt(r.non2xx),
        fmt(r.errors),
        fmt(r.server.cpuCores, 2),
        fmt(r.server.rpsPerCore),
        fmt(r.loadGeneratorCpuCores, 2),
        fmt(r.otherCpuCores, 2),
        fmt(r.server.peakRssMB),
      ]),
    ),
  );
  out.push(
    '',
    '   CPU columns are cores busy: the server process, this load generator, and everything else on the machine;',
    '   req/s/core = req/s per server core used (the Node server is single-threaded: ~its ceiling on an idle core).',
  );
  out.push(`   peak server RSS over the whole run: ${fmt(report.server.peakRssMB, 1)} MB; request log written: ${fmt(report.server.logBytes / 1024 / 1024, 1)} MB`);
  if (report.notes?.length) out.push('', ...report.notes);
  if (report.targets.length) {
    out.push('');
    out.push(
      table(
        ['target', 'limit', 'measured', 'result'],
        report.targets.map((t) => [
          t.label,
          `${t.op === '>=' ? '≥' : '≤'} ${fmt(t.limit)} ${t.unit}`,
          `${fmt(t.actual, t.actual < 100 && !Number.isInteger(t.actual) ? 1 : 0)} ${t.unit}`,
          t.pass ? 'PASS' : 'FAIL',
        ]),
      ),
    );
  }
  for (const w of report.warnings) out.push(`WARNING: ${w}`);
  if (report.error) out.push(`ERROR: the scenario broke off: ${report.error}`);
  return out.join('\n');
}

/** Writes .bench/<scenario>.json (a report, or a failure record) and returns its path. */
export function writeReport(scenario: string, report: ScenarioReport | { scenario: string; failed: true; error: string; at: string }): string {
  const dir = join(repoRoot, '.bench');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${scenario}.json`);
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
  return path;
}
