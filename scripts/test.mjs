// `npm test`: jest over __tests__ as ES modules, then one plain summary line ("tests: N passed, N failed, N skipped")
// that CI and people can read at a glance.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { installTestDeps } from './test-deps.mjs';

installTestDeps();

const require = createRequire(import.meta.url);
const jest = path.join(path.dirname(require.resolve('jest/package.json')), 'bin', 'jest.js');
const results = '.jest-results.json';
rmSync(results, { force: true });
const args = ['--experimental-vm-modules', '--no-warnings=ExperimentalWarning', jest, '--json', `--outputFile=${results}`,
  ...process.argv.slice(2)];
const run = spawnSync(process.execPath, args, { stdio: 'inherit' });
let code = run.status ?? 1;
try {
  const r = JSON.parse(readFileSync(results, 'utf8'));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  if (r.numFailedTestSuites > 0 || r.numRuntimeErrorTestSuites > 0) code = code || 1;
} catch {
  console.log('tests: 0 passed, 1 failed');
  code = code || 1;
}
process.exit(code);
