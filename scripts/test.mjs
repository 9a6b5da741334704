// `npm test`: jest over __tests__ as ES modules, then one plain summary line ("tests: N passed, N failed, N skipped")
// that CI and people can read at a glance.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
const user = process.argv.slice(2);
const base = ['--experimental-vm-modules', '--no-warnings=ExperimentalWarning', jest, '--json'];
// Two files at once: most of a file's time is spent waiting (on registries, dockerd, runc), and jest's default on a
// 2-core machine is one worker. The files whose tests count the machine's processes or kill builds at a moment they
// watch for then run alone, after the rest (`alone`). Given arguments (`npm test -- PATH`, `-i`…), one jest run.
const alone = ['__tests__/exec/no-mount-race.test.ts', '__tests__/security/reliability.test.ts'];
const workers = user.some((a) => /^(--maxWorkers|-w|-i|--runInBand)/.test(a)) ? [] : ['--maxWorkers=2'];
const runs =
  user.length > 0
    ? [[...workers, ...user]]
    : [
        ['--maxWorkers=2', ...alone.map((f) => `--testPathIgnorePatterns=${f.replace(/\./g, '\\.')}$`)],
        ['--runInBand', ...alone],
      ];
// The suite's temp dirs under one of its own, removed at the end: a test that fails midway leaves nothing in /tmp.
// Open to all as /tmp is (the sudo tests run hoist as another user).
const tmp = mkdtempSync(path.join(tmpdir(), 'hoist-tests-'));
chmodSync(tmp, 0o1777);
// HOIST_TEST_SHARED: what test files may share within the run (docker's images of the differential cases);
// HOIST_TEST_STARTED: the run's start, from which a file a step wrote counts as new; HOIST_ALWAYS_RESOLVE: the tests
// push new images under old tags and build on them at once, as CI does (a developer's rebuild would reuse a base).
const env = {
  ...process.env,
  TMPDIR: tmp,
  HOIST_TEST_SHARED: tmp,
  HOIST_TEST_STARTED: String(Date.now()),
  HOIST_ALWAYS_RESOLVE: '1',
};
const statuses = runs.map((args, i) => {
  const out = `${results}.${i}`;
  rmSync(out, { force: true });
  return {
    out,
    status: spawnSync(process.execPath, [...base, `--outputFile=${out}`, ...args], { stdio: 'inherit', env }).status,
  };
});
spawnSync('sh', ['-c', `grep -o ' ${tmp}[^ ]*' /proc/mounts | sort -r | xargs -r umount -l`]);
rmSync(tmp, { recursive: true, force: true });
let code = statuses.some((r) => r.status !== 0) ? 1 : 0;
const merged = { numPassedTests: 0, numFailedTests: 0, numPendingTests: 0, numTodoTests: 0, testResults: [] };
for (const { out } of statuses) {
  try {
    const r = JSON.parse(readFileSync(out, 'utf8'));
    for (const k of ['numPassedTests', 'numFailedTests', 'numPendingTests', 'numTodoTests']) merged[k] += r[k];
    merged.testResults.push(...r.testResults);
    if (r.numFailedTestSuites > 0 || r.numRuntimeErrorTestSuites > 0) code = 1;
  } catch {
    merged.numFailedTests += 1; // no results: jest itself failed
    code = 1;
  }
  rmSync(out, { force: true });
}
writeFileSync(results, JSON.stringify(merged));
const skipped = merged.numPendingTests + merged.numTodoTests;
console.log(`tests: ${merged.numPassedTests} passed, ${merged.numFailedTests} failed, ${skipped} skipped`);
process.exit(code);
