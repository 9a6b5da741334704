// scripts/release.mjs on a clone of this repository: the version set in package.json, its lock and src/version.ts,
// CHANGELOG.md's Unreleased section become the version's (dated), dist/ rebuilt, one commit and an annotated tag;
// and what it refuses: a dirty tree, a version tagged already, an empty Unreleased section, a word it does not know.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('scripts/release.mjs', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-release-'));
  const clone = path.join(work, 'hoist');
  const git = (...args: string[]) => execFileSync('git', args, { cwd: clone, encoding: 'utf8' }).trim();
  const release = (...args: string[]) =>
    spawnSync(process.execPath, ['scripts/release.mjs', ...args], { cwd: clone, encoding: 'utf8' });
  beforeAll(() => {
    execFileSync('git', ['clone', '-q', root, clone]);
    git('config', 'user.email', 'release@example.com');
    git('config', 'user.name', 'release test');
    symlinkSync(path.join(root, 'node_modules'), path.join(clone, 'node_modules'));
    writeFileSync(path.join(clone, '.git', 'info', 'exclude'), 'node_modules\n');
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test('a minor release: version, changelog, dist rebuilt, commit and tag', () => {
    const before = JSON.parse(readFileSync(path.join(clone, 'package.json'), 'utf8')) as { version: string };
    const [major, minor] = before.version.split('.').map(Number);
    const next = `${major}.${minor + 1}.0`;
    const unreleased = readFileSync(path.join(clone, 'CHANGELOG.md'), 'utf8')
      .split('\n## Unreleased\n')[1]
      .split('\n## ')[0]
      .trim();
    rmSync(path.join(clone, 'dist', 'cli.bundle.js'));
    git('commit', '-qam', 'dist/ out of date');
    const r = release('minor');
    expect(r.stderr).not.toMatch(/release:/);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`v${next} committed and tagged; push it with: git push origin HEAD v${next}`);
    expect((JSON.parse(readFileSync(path.join(clone, 'package.json'), 'utf8')) as { version: string }).version).toBe(
      next,
    );
    const lock = JSON.parse(readFileSync(path.join(clone, 'package-lock.json'), 'utf8')) as {
      version: string;
      packages: Record<string, { version: string }>;
    };
    expect([lock.version, lock.packages[''].version]).toEqual([next, next]);
    expect(readFileSync(path.join(clone, 'src', 'version.ts'), 'utf8')).toContain(`export const version = '${next}';`);
    const changelog = readFileSync(path.join(clone, 'CHANGELOG.md'), 'utf8');
    expect(changelog).toContain(
      `\n## Unreleased\n\n## ${next} — ${new Date().toISOString().slice(0, 10)}\n\n${unreleased}\n`,
    );
    // dist/ rebuilt from the source, and the bundle reports the new version
    expect(
      execFileSync(process.execPath, [path.join(clone, 'dist', 'cli.js'), '--version'], { encoding: 'utf8' }),
    ).toContain(next);
    expect(git('status', '--porcelain')).toBe('');
    expect(git('log', '-1', '--format=%s')).toBe(`Release v${next}`);
    expect(git('tag', '--list', `v${next}`)).toBe(`v${next}`);
    expect(git('cat-file', '-t', `v${next}`)).toBe('tag');
    expect(git('tag', '-l', '--format=%(contents)', `v${next}`)).toContain(unreleased.split('\n')[0]);
  }, 180_000);

  test('refused: an empty Unreleased section, a version tagged already, a dirty tree, a word it does not know', () => {
    expect(release('patch', '--no-build').stderr).toBe(
      'release: the Unreleased section of CHANGELOG.md is empty: say what this release brings\n',
    );
    const version = (JSON.parse(readFileSync(path.join(clone, 'package.json'), 'utf8')) as { version: string }).version;
    expect(release(version, '--no-build').stderr).toBe(`release: v${version} is tagged already\n`);
    writeFileSync(path.join(clone, 'README.md'), 'changed\n');
    expect(release('patch', '--no-build').stderr).toBe(
      'release: the tree has uncommitted changes: commit or stash them first\n',
    );
    git('checkout', '--', 'README.md');
    const bad = release('next');
    expect([bad.status, bad.stderr]).toEqual([1, 'release: next: expected a version (1.2.3) or major, minor, patch\n']);
  });
});
