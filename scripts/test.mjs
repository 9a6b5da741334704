// `npm test`: jest over __tests__ as ES modules, then one plain summary line ("tests: N passed, N failed, N skipped")
// that CI and people can read at a glance.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fetchArm64Busybox, fetchDocker26, installTestDeps } from './test-deps.mjs';

installTestDeps();
fetchDocker26();
fetchArm64Busybox();

const require = createRequire(import.meta.url);
const jest = path.join(path.dirname(require.resolve('jest/package.json')), 'bin', 'jest.js');
const results = '.jest-results.json';
rmSync(results, { force: true });
const args = [
  '--experimental-vm-modules',
  '--no-warnings=ExperimentalWarning',
  jest,
  '--json',
  `--outputFile=${results}`,
  // Two files at once: most of a file's time is spent waiting (on registries, dockerd, runc), and jest's default on
  // a 2-core machine is one worker. `npm test -- --maxWorkers=1` (or -i) runs them one by one.
  ...(process.argv.slice(2).some((a) => /^(--maxWorkers|-w|-i|--runInBand)/.test(a)) ? [] : ['--maxWorkers=2']),
  ...process.argv.slice(2),
];
// The suite's temp dirs under one of its own, removed at the end: a test that fails midway leaves nothing in /tmp.
// Open to all as /tmp is (the sudo tests run hoist as another user).
const tmp = mkdtempSync(path.join(tmpdir(), 'hoist-tests-'));
chmodSync(tmp, 0o1777);
// HOIST_TEST_SHARED: what test files may share within the run (docker's images of the differential cases);
// HOIST_TEST_STARTED: the run's start, from which a file a step wrote counts as new; HOIST_ALWAYS_RESOLVE: the tests
// push new images under old tags and build on them at once, as CI does (a developer's rebuild would reuse a base).
const run = spawnSync(process.execPath, args, {
  stdio: 'inherit',
  env: {
    ...process.env,
    TMPDIR: tmp,
    HOIST_TEST_SHARED: tmp,
    HOIST_TEST_STARTED: String(Date.now()),
    HOIST_ALWAYS_RESOLVE: '1',
  },
});
spawnSync('sh', ['-c', `grep -o ' ${tmp}[^ ]*' /proc/mounts | sort -r | xargs -r umount -l`]);
rmSync(tmp, { recursive: true, force: true });
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
