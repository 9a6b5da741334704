// Lint, format and types are part of the suite: `npm test` fails on a Biome finding (lint or layout, biome.jsonc)
// or a type error, so CI enforces them as it enforces the tests. `npm run format` fixes the layout.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAsync } from './helpers/tools.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const biome = require.resolve('@biomejs/biome/bin/biome');
const tsc = require.resolve('typescript/bin/tsc');

/** node with `args` (biome's or tsc's script), its output together. */
async function run(args: string[], cwd = root): Promise<{ code: number | null; out: string }> {
  const r = await runAsync(process.execPath, args, { cwd, env: { ...process.env, NO_COLOR: '1' }, timeoutMs: 170_000 });
  return { code: r.status, out: r.output };
}

test('the tree has no lint finding and is formatted (npm run lint)', async () => {
  const r = await run([biome, 'ci', '--colors=off', '--max-diagnostics=50', '.']);
  if (r.code !== 0) throw new Error(`biome ci found problems (npm run format fixes layout):\n${r.out}`);
  expect(r.out).toMatch(/Checked \d+ files/);
}, 60_000);

test('the lint configuration is live: a finding in a source file fails it', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-lint-'));
  writeFileSync(
    path.join(dir, 'probe.ts'),
    'export function f(a: number) {\n  if (a == 1) debugger;\n  return a;\n}\n',
  );
  const r = await run(
    [biome, 'lint', '--colors=off', `--config-path=${path.join(root, 'biome.jsonc')}`, 'probe.ts'],
    dir,
  );
  expect(r.code).not.toBe(0);
  expect(r.out).toMatch(/noDebugger/);
  expect(r.out).toMatch(/noDoubleEquals/);
}, 60_000);

test('the tree type-checks (npm run typecheck)', async () => {
  const r = await run([tsc, '-p', 'tsconfig.json', '--noEmit']);
  if (r.code !== 0) throw new Error(`tsc found type errors:\n${r.out}`);
}, 180_000);
