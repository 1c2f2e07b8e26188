// Prints the last line of a CI run, "N passed, N failed[, N skipped]", from vitest's JSON
// report, and exits non-zero when a test failed or the report is missing.
import { readFileSync } from 'node:fs';

const [reportPath] = process.argv.slice(2);
let report;
try {
  report = JSON.parse(readFileSync(reportPath, 'utf8'));
} catch {
  console.log('the test runner wrote no report');
  process.exit(1);
}

const skipped = report.numPendingTests + report.numTodoTests;
let line = `${report.numPassedTests} passed, ${report.numFailedTests} failed`;
if (skipped > 0) line += `, ${skipped} skipped`;
// A file that fails to load, or a failing hook, fails its suite without failing a test.
const brokenSuites = report.numFailedTests === 0 && report.numFailedTestSuites > 0;
if (brokenSuites) console.log(`${report.numFailedTestSuites} suite(s) failed outside any test`);
console.log(line);
process.exit(report.numFailedTests > 0 || brokenSuites ? 1 : 0);
