// What the hostile-input suites share: the hoist command (dist/cli.js) as a child with a time limit, so that a hang
// is seen even when it would block the event loop, and fingerprints of directories an attacker aims at.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js');

export interface Run {
  code: number | null;
  out: string;
  err: string;
  hung: boolean;
  ms: number;
}

/** dist/cli.js with `args`, killed after `limitMs` (then `hung`). */
export function hoistChild(
  args: string[],
  options: { input?: string; limitMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [cli, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => void (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
    child.stdin.end(options.input ?? '');
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, options.limitMs ?? 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err, hung, ms: Date.now() - started });
    });
  });
}

/** A tree summarised path by path (type, mode, size, content hash, link target, mtime), to see any change. */
export function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (rel: string) => {
    const p = path.join(dir, rel);
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) return;
    let what = `${st.mode.toString(8)}:${st.uid}:${st.gid}:${st.mtimeMs}`;
    if (st.isFile()) what += `:${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
    if (st.isSymbolicLink()) what += `:${readlinkSync(p)}`;
    out[rel || '.'] = what;
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) visit(rel ? `${rel}/${n}` : n);
  };
  visit('');
  return out;
}

/** Whether a run ended badly in a way no input excuses: hung, killed, a stack trace, or a failure with no message. */
export function runFault(r: Run): string | undefined {
  if (r.hung) return 'hung';
  if (r.code !== 0 && r.code !== 1) return `exit code ${r.code}`;
  if (/internal error|\n\s+at .+:\d+:\d+\)?/.test(r.err)) return 'a stack trace';
  if (r.code === 1 && r.err.trim() === '') return 'failed without a message';
  return undefined;
}

/**
 * The "host" the inputs aim at, `work/host`: files an attacker wants to read or change (secret.txt holds `marker`,
 * which must never show in an output or a log), named by absolute paths in the inputs; `before` is its
 * fingerprint, to compare with after every run.
 */
export function makeHost(
  work: string,
  extra: Record<string, string> = {},
): { host: string; marker: string; before: Record<string, string> } {
  const host = path.join(work, 'host');
  const marker = `HOST-CANARY-${randomBytes(8).toString('hex')}`;
  mkdirSync(path.join(host, 'dir'), { recursive: true });
  writeFileSync(path.join(host, 'secret.txt'), `${marker}\n`);
  writeFileSync(path.join(host, 'victim.txt'), 'victim\n');
  writeFileSync(path.join(host, 'dir', 'inner.txt'), 'inner\n');
  for (const [name, text] of Object.entries(extra))
    writeFileSync(path.join(host, name), text.replaceAll('{{MARKER}}', marker));
  return { host, marker, before: fingerprint(host) };
}

export type ContextFiles = Record<string, string | Buffer | { symlink: string }>;

/** Writes `files` (contents, or symlinks to what they name) into the directory `dir`, made first. */
export function writeFiles(dir: string, files: ContextFiles): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, spec] of Object.entries(files)) {
    const p = path.join(dir, name);
    mkdirSync(path.dirname(p), { recursive: true });
    if (typeof spec === 'object' && !Buffer.isBuffer(spec)) symlinkSync(spec.symlink, p);
    else writeFileSync(p, spec);
  }
  return dir;
}
