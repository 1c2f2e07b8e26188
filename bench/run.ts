import { access } from './access.js';
import { calibrate } from './calibration.js';
import { bundles } from './bundles.js';
import { core } from './core.js';
import { exportScenario } from './export.js';
import { formatReport, writeReport } from './report.js';
import { settingsFromEnv, type Scenario } from './scenario.js';
import { search } from './search.js';
import { buildServer } from './server-process.js';

/**
 * npm run bench [-- scenario ...]   (default: all scenarios)
 *
 * Builds the server once, then runs each selected scenario against its own server process and
 * writes .bench/<scenario>.json, with the machine's speed before and after it (calibration.ts).
 * Exits 0 when every benchmark ran, whatever the targets say; 1 when a benchmark could not run
 * or its measurement is broken (server died, socket errors); 2 on the overall time limit.
 *
 * Environment: BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (2), BENCH_CONNECTIONS (32),
 * BENCH_PATIENTS (10000), BENCH_PRELOAD_CONCURRENCY (16), BENCH_SERVER_LOG (file|null),
 * BENCH_KEEP=1 (keep temp dir), BENCH_SKIP_BUILD=1, BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof
 * --cpu-prof-dir=/tmp/prof"), BENCH_ONLY (runs to do, e.g. "read,vread"; for search the shapes
 * token,reference,date,name,chain,include and/or indexing), BENCH_TIMEOUT_SECONDS (overall limit).
 * search: BENCH_RESOURCES (100000; 500 at least), BENCH_INGEST_CONCURRENCY (32),
 * BENCH_SEARCH_CONNECTIONS (8), BENCH_INDEX_BATCH (5000). It takes about 15-20 minutes at the
 * defaults on 2 cores (BENCH_RESOURCES=5000 BENCH_SECONDS=3: about 4); see search.ts.
 * access (`npm run bench -- access`): BENCH_ACCESS_RESOURCES (100000), BENCH_ACCESS_HCPS (20),
 * BENCH_ACCESS_SEARCH_CONNECTIONS (16), BENCH_ACCESS_ROUNDS (2), BENCH_ACCESS_LOAD_LIMIT_SECONDS
 * (600), BENCH_ACCESS_PROFILE_DIR (CPU profiles per principal), BENCH_ONLY for its runs
 * (read,patient,code,condition,sorted,name). About 15 minutes at the defaults; see access.ts.
 * bundles (`npm run bench -- bundles`): BENCH_BUNDLE_RESOURCES (100000), BENCH_BUNDLE_ENTRIES (500),
 * BENCH_BUNDLE_CONCURRENCY (2); then one 10,000-entry transaction and batch (BENCH_BUNDLE_LARGE=0: not);
 * see bundles.ts.
 * export (`npm run bench -- export`): BENCH_EXPORT_RESOURCES (100000); see export.ts.
 */

const SCENARIOS: Scenario[] = [core, search, access, bundles, exportScenario];

function select(args: string[]): Scenario[] {
  const names = args.filter((a) => a !== '--');
  if (names.length === 0 || names.includes('all')) return SCENARIOS;
  return names.map((name) => {
    const scenario = SCENARIOS.find((s) => s.name === name);
    if (!scenario) throw new Error(`unknown scenario '${name}' (known: ${SCENARIOS.map((s) => s.name).join(', ')}, all)`);
    return scenario;
  });
}

async function main(): Promise<number> {
  const settings = settingsFromEnv();
  const scenarios = select(process.argv.slice(2));

  // Everything stops by itself: a generous overall limit, after which the exit hook kills servers.
  const perScenario = 180 + 8 * (settings.seconds + settings.warmupSeconds + 5);
  const budget = scenarios.reduce((sum, s) => sum + (s.timeLimitSeconds?.(settings) ?? perScenario), 0);
  const limit = Number(process.env.BENCH_TIMEOUT_SECONDS) || 300 + budget;
  setTimeout(() => {
    console.error(`\nbench: overall time limit of ${limit} s reached; stopping`);
    process.exit(2);
  }, limit * 1000).unref();
  // `on`, not `once`: with Ctrl-C the signal arrives more than once (from the terminal and
  // relayed by npm/tsx), and a signal without a listener would kill us before the exit hook
  // has stopped the server and removed its temp directory.
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));

  if (process.env.BENCH_SKIP_BUILD !== '1') {
    console.log('bench: building the server (npm run build)');
    buildServer();
  }

  let exitCode = 0;
  for (const scenario of scenarios) {
    console.log(`\nbench: ${scenario.name}`);
    try {
      // The machine's speed is context for the figures, not one of them: a failure to take it is no reason to lose a run.
      const before = await calibrate().catch(() => undefined);
      const report = await scenario.run(settings);
      const after = before && (await calibrate().catch(() => undefined));
      if (before && after) report.environment.calibration = { before, after };
      console.log(`\n${formatReport(report)}`);
      console.log(`\n   results: ${writeReport(scenario.name, report)}`);
      if (report.failed) {
        console.error(`bench: ${scenario.name}: the benchmark itself failed (${report.error ?? 'connection errors during the runs'})`);
        exitCode = 1;
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      console.error(`\nbench: ${scenario.name} failed: ${message}`);
      writeReport(scenario.name, { scenario: scenario.name, failed: true, error: message, at: new Date().toISOString() });
      exitCode = 1;
    }
  }
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
