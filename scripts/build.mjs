// `npm run build`: compile src/ to lib/ with tsc, then bundle with ncc into dist/index.js (the Action) and
// dist/cli.js (the hoist command, executable, with a shebang). dist/ is committed; rebuild it with every change.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const bin = (pkg, file) => path.join(path.dirname(require.resolve(`${pkg}/package.json`)), file);

rmSync('lib', { recursive: true, force: true });
execFileSync(process.execPath, [bin('typescript', 'bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
mkdirSync('dist', { recursive: true });

function bundle(entry, out, shebang) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'hoist-ncc-'));
  try {
    execFileSync(process.execPath, [bin('@vercel/ncc', 'dist/ncc/cli.js'), 'build', entry, '-o', tmp, '--quiet', '--target', 'es2022'],
      { stdio: 'inherit' });
    const files = readdirSync(tmp).filter((f) => f !== 'index.js' && f !== 'package.json' && !f.endsWith('.d.ts'));
    if (files.length > 0) throw new Error(`ncc emitted extra files for ${entry}: ${files.join(', ')}; dist/ must stay single-file`);
    let code = readFileSync(path.join(tmp, 'index.js'), 'utf8');
    if (shebang) code = '#!/usr/bin/env node\n' + code.replace(/^#!.*\n/, '');
    writeFileSync(out, code);
    if (shebang) chmodSync(out, 0o755);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

bundle('lib/action/main.js', 'dist/index.js', false);
bundle('lib/cli/bin.js', 'dist/cli.js', true);
writeFileSync('dist/package.json', JSON.stringify({ type: 'module' }, null, 2) + '\n');
console.log('built dist/index.js and dist/cli.js');
