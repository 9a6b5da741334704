// RUN --mount, as BuildKit reads it (frontend/dockerfile/instructions/commands_runmount.go): type=bind (the
// default; read-only unless rw, and then writes are discarded), cache (a directory kept in the store between
// builds, by id), tmpfs, secret (a file on a tmpfs from --secret, never in a layer) and ssh (the agent socket).
// Mount targets are left out of the layer: what is written there never reaches the image.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { splitCSV } from '../dockerfile/plan.js';
import { ExecError } from './overlay.js';

export type MountSpec =
  | { type: 'bind'; target: string; source: string; from?: string; rw: boolean }
  | { type: 'cache'; target: string; id: string; sharing: 'shared' | 'private' | 'locked'; mode: number; uid: number; gid: number; source: string; from?: string; readonly: boolean; ownerGiven: boolean }
  | { type: 'tmpfs'; target: string; size?: number }
  | { type: 'secret'; target: string; id: string; required: boolean; mode: number; uid: number; gid: number; env?: string }
  | { type: 'ssh'; target: string; id: string; required: boolean; mode: number; uid: number; gid: number };

export interface SecretSource {
  /** a file's path or the value of an environment variable */
  file?: string;
  env?: string;
}

const bool = (v: string | undefined) => v === undefined || v === '' || v === 'true' || v === '1';

export function parseMount(text: string, workdir: string): MountSpec {
  const f = new Map<string, string>();
  for (const field of splitCSV(text)) {
    const eq = field.indexOf('=');
    const k = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    f.set(k, eq < 0 ? '' : field.slice(eq + 1));
  }
  const type = f.get('type') ?? 'bind';
  const rawTarget = f.get('target') ?? f.get('dst') ?? f.get('destination');
  const abs = (t: string) => path.posix.join('/', t.startsWith('/') ? '' : workdir, t);
  const num = (k: string, d: number, base = 10) => (f.has(k) ? parseInt(f.get(k) as string, base) : d);
  switch (type) {
    case 'bind':
      if (!rawTarget) throw new ExecError(`--mount=${text}: a bind mount needs target=`);
      return { type, target: abs(rawTarget), source: f.get('source') ?? f.get('src') ?? '/', from: f.get('from'), rw: f.has('rw') ? bool(f.get('rw')) : f.has('readwrite') ? bool(f.get('readwrite')) : false };
    case 'cache': {
      if (!rawTarget) throw new ExecError(`--mount=${text}: a cache mount needs target=`);
      const sharing = (f.get('sharing') ?? 'shared') as 'shared' | 'private' | 'locked';
      if (!['shared', 'private', 'locked'].includes(sharing)) throw new ExecError(`--mount=${text}: sharing must be shared, private or locked`);
      return { type, target: abs(rawTarget), id: f.get('id') || abs(rawTarget), sharing, mode: num('mode', 0o755, 8), uid: num('uid', 0), gid: num('gid', 0), source: f.get('source') ?? f.get('src') ?? '/', from: f.get('from'), readonly: f.has('ro') || f.has('readonly'), ownerGiven: f.has('uid') || f.has('gid') || f.has('mode') };
    }
    case 'tmpfs':
      if (!rawTarget) throw new ExecError(`--mount=${text}: a tmpfs mount needs target=`);
      return { type, target: abs(rawTarget), size: f.has('size') ? Number(f.get('size')) : undefined };
    case 'secret': {
      const id = f.get('id') || (rawTarget ? path.posix.basename(rawTarget) : '');
      if (!id) throw new ExecError(`--mount=${text}: a secret mount needs id= or target=`);
      const env = f.get('env');
      const target = rawTarget ? abs(rawTarget) : env ? '' : `/run/secrets/${id}`;
      return { type, target, id, required: bool(f.get('required') ?? 'false') && f.has('required'), mode: num('mode', 0o400, 8), uid: num('uid', 0), gid: num('gid', 0), env };
    }
    case 'ssh': {
      const id = f.get('id') || 'default';
      return { type, target: rawTarget ? abs(rawTarget) : '/run/buildkit/ssh_agent.0', id, required: f.has('required') && bool(f.get('required')), mode: num('mode', 0o600, 8), uid: num('uid', 0), gid: num('gid', 0) };
    }
    default:
      throw new ExecError(`--mount=${text}: unknown mount type ${JSON.stringify(type)} (bind, cache, tmpfs, secret, ssh)`);
  }
}

/** `--secret id=ID,src=FILE` / `id=ID,env=VAR` (and the short `id=ID` meaning env ID) as buildx reads them. */
export function parseSecretFlag(text: string): [string, SecretSource] {
  const f = new Map<string, string>();
  for (const p of splitCSV(text)) {
    const eq = p.indexOf('=');
    const k = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
    if (!['type', 'id', 'src', 'source', 'env'].includes(k)) throw new ExecError(`--secret ${text}: unexpected key ${JSON.stringify(k)} (expected id=ID,src=FILE or id=ID,env=VAR)`);
    f.set(k, eq < 0 ? '' : p.slice(eq + 1));
  }
  const type = f.get('type');
  if (type !== undefined && type !== 'file' && type !== 'env') throw new ExecError(`--secret ${text}: type must be file or env`);
  const id = f.get('id');
  if (!id) throw new ExecError(`--secret ${text}: needs id=`);
  const src = f.get('src') ?? f.get('source');
  if (src) return [id, { file: src }];
  return [id, { env: f.get('env') || id }];
}

/** The bytes of a secret: from its file or its environment variable; undefined when absent. */
export async function secretValue(src: SecretSource | undefined, env: NodeJS.ProcessEnv = process.env): Promise<Buffer | undefined> {
  if (!src) return undefined;
  if (src.file) return readFile(src.file).catch(() => undefined);
  const v = src.env ? env[src.env] : undefined;
  return v === undefined ? undefined : Buffer.from(v);
}

/**
 * A copy of a file or directory with all it holds (device nodes, fifos, owners, times, xattrs), made by GNU cp -a
 * (Node's fs.cp fails on device nodes): the throwaway source of a `rw` bind mount where overlayfs cannot stack,
 * the first content of a cache mount `from=` a stage. `dest` is made, or filled when it is an empty directory.
 */
export function copyTree(source: string, dest: string): void {
  const r = spawnSync('cp', ['-a', '--no-target-directory', '--', source, dest], { encoding: 'utf8' });
  if (r.status !== 0) throw new ExecError(`cannot copy the mount source: ${(r.stderr || r.error?.message || '').trim()}`);
}

/** A writable copy of a mount source: what the step writes there is thrown away with `scratch`. */
export async function throwawayCopy(source: string, scratch: string): Promise<string> {
  const dir = path.join(await mkdtemp(path.join(scratch, 'bind-')), 'copy');
  copyTree(source, dir);
  return dir;
}

export async function writeSecretFile(dir: string, id: string, data: Buffer, mode: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, id.replace(/[^A-Za-z0-9_.-]/g, '_'));
  await writeFile(file, data, { mode });
  return file;
}
