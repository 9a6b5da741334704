// Debian's minbase (debootstrap --variant=minbase bookworm from Debian's mirror, the only distribution this machine
// can reach) as a tar, made once and kept in node_modules/.cache for every test file that needs a Debian base.
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './tools.js';

const cache = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'node_modules',
  '.cache',
  'hoist-debian',
);

/** The tar of a minbase bookworm root (numeric owners, xattrs kept). Two test files at once: each may make it, the last rename wins. */
export function debianTar(): string {
  const tar = path.join(cache, 'bookworm-minbase.tar');
  if (existsSync(tar)) return tar;
  mkdirSync(cache, { recursive: true });
  const work = mkdtempSync(path.join(cache, 'make-'));
  try {
    const root = path.join(work, 'rootfs');
    run('debootstrap', ['--variant=minbase', 'bookworm', root, 'http://deb.debian.org/debian']);
    run('tar', ['--numeric-owner', '--xattrs', '-C', root, '-cf', path.join(work, 'debian.tar'), '.']);
    renameSync(path.join(work, 'debian.tar'), tar);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return tar;
}
