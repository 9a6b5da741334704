// `npm run build`: compile src/ to lib/ with tsc, then bundle with ncc into dist/index.js (the Action) and
// dist/cli.js (the hoist command, executable, with a shebang). dist/ is committed; rebuild it with every change.
// Each is a small entry that turns on V8's compile cache (Node >= 22.1: `module.enableCompileCache`, in the user's
// ~/.cache/hoist-compile-cache, or HOIST_COMPILE_CACHE) and then imports the bundle itself, `<name>.bundle.js`: a
// start with the cache compiles none of the bundle's 1.6 MB again (`hoist --version` on Node 24: 0.12 s -> 0.07 s).
// On Node 20 the entry only imports the bundle.
// What a bundle imports with `import()` (the Actions cache client, 3.5 MB that only type=gha needs) stays a chunk of
// its own beside it, `<id>.<bundle>.js`, loaded when first used: every other run starts without parsing it.
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

for (const f of readdirSync('dist')) if (/^\d+\.[a-z]+\.js$/.test(f)) rmSync(path.join('dist', f));

function bundle(entry, out, shebang) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'hoist-ncc-'));
  try {
    execFileSync(
      process.execPath,
      [bin('@vercel/ncc', 'dist/ncc/cli.js'), 'build', entry, '-o', tmp, '--quiet', '--target', 'es2022'],
      { stdio: 'inherit' },
    );
    const name = path.basename(out, '.js');
    const chunks = [];
    for (const f of readdirSync(tmp)) {
      if (f === 'index.js' || f === 'package.json' || f.endsWith('.d.ts')) continue;
      const m = /^(\d+)\.index\.js$/.exec(f);
      if (!m) throw new Error(`ncc emitted an unexpected file for ${entry}: ${f}`);
      chunks.push(m[1]);
    }
    let code = readFileSync(path.join(tmp, 'index.js'), 'utf8');
    if (chunks.length > 0) {
      // webpack names chunks after the entry (index.js); both bundles share dist/, so they are renamed after theirs.
      const loader = 'return "" + chunkId + ".index.js";';
      if (code.split(loader).length !== 2)
        throw new Error(`ncc's chunk loader for ${entry} is not the one expected; check scripts/build.mjs`);
      code = code.replace(loader, `return "" + chunkId + ".${name}.js";`);
      for (const id of chunks)
        writeFileSync(path.join(path.dirname(out), `${id}.${name}.js`), readFileSync(path.join(tmp, `${id}.index.js`)));
    }
    const bundled = `${name}.bundle.js`;
    writeFileSync(path.join(path.dirname(out), bundled), code.replace(/^#!.*\n/, ''));
    writeFileSync(out, `${shebang ? '#!/usr/bin/env node\n' : ''}${entryOf(bundled)}`);
    if (shebang) chmodSync(out, 0o755);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The entry beside a bundle: the compile cache on where Node has one, then the bundle. */
function entryOf(bundled) {
  return `// Built by scripts/build.mjs: V8's compile cache (Node >= 22.1) for ${bundled}, then ${bundled} itself.
import module from 'node:module';
import os from 'node:os';
import path from 'node:path';

try {
  module.enableCompileCache?.(process.env.HOIST_COMPILE_CACHE || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'hoist-compile-cache'));
} catch {
  // no cache: the bundle is compiled as it is without one
}
await import('./${bundled}');
`;
}

bundle('lib/action/main.js', 'dist/index.js', false);
bundle('lib/cli/bin.js', 'dist/cli.js', true);
writeFileSync('dist/package.json', `${JSON.stringify({ type: 'module' }, null, 2)}\n`);
console.log('built dist/index.js and dist/cli.js');
