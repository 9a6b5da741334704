#!/usr/bin/env node
// Cuts a release locally: `node scripts/release.mjs VERSION|major|minor|patch [--no-build]`.
// The tree must be clean. It sets the version in package.json (and package-lock.json) and src/version.ts, turns
// CHANGELOG.md's "## Unreleased" section into "## VERSION — DATE" (an empty Unreleased above it), rebuilds dist/
// (npm run build: what runs is what was reviewed), commits "Release vVERSION" and tags vVERSION. Nothing is pushed:
// `git push origin main vVERSION` starts .github/workflows/release.yml.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const git = (...args) => execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();
const fail = (message) => {
  process.stderr.write(`release: ${message}\n`);
  process.exit(1);
};

const [what, ...flags] = process.argv.slice(2);
if (!what) fail('usage: node scripts/release.mjs VERSION|major|minor|patch [--no-build]');
const pkgFile = path.join(root, 'package.json');
const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
const current = pkg.version.split('.').map(Number);
const semver = /^(\d+)\.(\d+)\.(\d+)$/;
let next;
if (what === 'major') next = `${current[0] + 1}.0.0`;
else if (what === 'minor') next = `${current[0]}.${current[1] + 1}.0`;
else if (what === 'patch') next = `${current[0]}.${current[1]}.${current[2] + 1}`;
else if (semver.test(what.replace(/^v/, ''))) next = what.replace(/^v/, '');
else fail(`${what}: expected a version (1.2.3) or major, minor, patch`);
if (git('status', '--porcelain') !== '') fail('the tree has uncommitted changes: commit or stash them first');
if (git('tag', '--list', `v${next}`) !== '') fail(`v${next} is tagged already`);

const changelogFile = path.join(root, 'CHANGELOG.md');
const changelog = readFileSync(changelogFile, 'utf8');
const start = changelog.indexOf('\n## Unreleased\n');
if (start < 0) fail('CHANGELOG.md has no "## Unreleased" section');
const bodyStart = start + '\n## Unreleased\n'.length;
const end = changelog.indexOf('\n## ', bodyStart);
const body = changelog.slice(bodyStart, end < 0 ? undefined : end).trim();
if (body === '') fail('the Unreleased section of CHANGELOG.md is empty: say what this release brings');
const date = new Date().toISOString().slice(0, 10);
writeFileSync(
  changelogFile,
  `${changelog.slice(0, start)}\n## Unreleased\n\n## ${next} — ${date}\n\n${body}\n${end < 0 ? '' : changelog.slice(end)}`,
);

pkg.version = next;
writeFileSync(pkgFile, `${JSON.stringify(pkg, null, 2)}\n`);
const lockFile = path.join(root, 'package-lock.json');
const lock = JSON.parse(readFileSync(lockFile, 'utf8'));
lock.version = next;
if (lock.packages?.['']) lock.packages[''].version = next;
writeFileSync(lockFile, `${JSON.stringify(lock, null, 2)}\n`);
const versionFile = path.join(root, 'src', 'version.ts');
writeFileSync(
  versionFile,
  readFileSync(versionFile, 'utf8').replace(/export const version = '[^']*';/, `export const version = '${next}';`),
);

if (!flags.includes('--no-build'))
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
git('add', '-A');
git('commit', '-q', '-m', `Release v${next}`);
git('tag', '-a', '--cleanup=verbatim', `v${next}`, '-m', `hoist ${next}\n\n${body}`);
process.stdout.write(`v${next} committed and tagged; push it with: git push origin HEAD v${next}\n`);
