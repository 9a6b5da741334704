// The test command's install of the real parts (scripts/test-deps.mjs): an `apt-get update` that reports a failing
// index (a mirror mid-sync, a foreign architecture's list) does not stop the install, and only what is still missing
// afterwards is named. apt-get here is a stand-in on PATH, since a real apt cannot be made to fail one index on cue:
// its update exits 100, its install makes the commands of the packages it knows.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'test-deps.mjs');

(process.getuid?.() === 0 ? test : test.skip)(
  'a failed apt-get update still installs what the lists have; only the packages still missing are named',
  () => {
    const bin = mkdtempSync(path.join(tmpdir(), 'hoist-apt-'));
    try {
      writeFileSync(
        path.join(bin, 'apt-get'),
        `#!/bin/sh
echo "$*" >> "${bin}/calls"
case "$1" in update) echo "E: Failed to fetch .../binary-arm64/Packages  File has unexpected size" >&2; exit 100;; esac
for a in "$@"; do [ "$a" = pkg-gone ] && { echo "E: Unable to locate package pkg-gone" >&2; exit 100; }; done
for a in "$@"; do case "$a" in pkg-*) printf '#!/bin/sh\\n' > "${bin}/hoist-fake-\${a#pkg-}"; chmod 755 "${bin}/hoist-fake-\${a#pkg-}";; esac; done
`,
      );
      chmodSync(path.join(bin, 'apt-get'), 0o755);
      const code = `import(${JSON.stringify(script)}).then((m) => m.installTestDeps({ 'hoist-fake-a': 'pkg-a', 'hoist-fake-gone': 'pkg-gone', 'hoist-fake-b': 'pkg-b' }))`;
      const r = spawnSync(process.execPath, ['-e', code], {
        encoding: 'utf8',
        env: { ...process.env, PATH: `${bin}:/usr/bin:/bin` },
      });
      expect(r.status).toBe(0);
      expect(existsSync(path.join(bin, 'hoist-fake-a')) && existsSync(path.join(bin, 'hoist-fake-b'))).toBe(true);
      expect(r.stdout).toContain('NOTICE: apt-get update reported a failure; installing from the lists it has');
      expect(r.stdout).toContain('NOTICE: apt-get could not install pkg-gone: the tests that need them are skipped');
      expect(r.stdout).not.toMatch(/could not install .*pkg-a/);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  },
);
