// What RUN --mount kinds need at run time (the specs are parsed in src/dockerfile/mounts.ts): secret values from
// --secret, secret files on a tmpfs, throwaway copies for rw binds and cache seeds.
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { splitCSV } from '../dockerfile/plan.js';
import { ExecError } from './overlay.js';
import { runProcess } from './process.js';

export interface SecretSource {
  /** a file's path or the value of an environment variable */
  file?: string;
  env?: string;
  /** the value itself (the Action's `secrets` input) */
  value?: string;
}

/** `--secret id=ID,src=FILE` / `id=ID,env=VAR` (and the short `id=ID` meaning env ID) as buildx reads them. */
export function parseSecretFlag(text: string): [string, SecretSource] {
  const f = new Map<string, string>();
  for (const p of splitCSV(text)) {
    const eq = p.indexOf('=');
    const k = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
    if (!['type', 'id', 'src', 'source', 'env'].includes(k))
      throw new ExecError(
        `--secret ${text}: unexpected key ${JSON.stringify(k)} (expected id=ID,src=FILE or id=ID,env=VAR)`,
      );
    f.set(k, eq < 0 ? '' : p.slice(eq + 1));
  }
  const type = f.get('type');
  if (type !== undefined && type !== 'file' && type !== 'env')
    throw new ExecError(`--secret ${text}: type must be file or env`);
  const id = f.get('id');
  if (!id) throw new ExecError(`--secret ${text}: needs id=`);
  const src = f.get('src') ?? f.get('source');
  if (src) return [id, { file: src }];
  return [id, { env: f.get('env') || id }];
}

/** The bytes of a secret: from its file or its environment variable; undefined when absent. */
export async function secretValue(
  src: SecretSource | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Buffer | undefined> {
  if (!src) return undefined;
  if (src.value !== undefined) return Buffer.from(src.value);
  if (src.file) return readFile(src.file).catch(() => undefined);
  const v = src.env ? env[src.env] : undefined;
  return v === undefined ? undefined : Buffer.from(v);
}

/**
 * A copy of a file or directory with all it holds (device nodes, fifos, owners, times, xattrs), made by GNU cp -a
 * (Node's fs.cp fails on device nodes): the throwaway source of a `rw` bind mount where overlayfs cannot stack,
 * the first content of a cache mount `from=` a stage. `dest` is made, or filled when it is an empty directory.
 */
export async function copyTree(source: string, dest: string): Promise<void> {
  const r = await runProcess('cp', ['-a', '--no-target-directory', '--', source, dest]);
  if (r.status !== 0)
    throw new ExecError(`cannot copy the mount source: ${(r.stderr || r.error?.message || '').trim()}`);
}

/** A writable copy of a mount source: what the step writes there is thrown away with `scratch`. */
export async function throwawayCopy(source: string, scratch: string): Promise<string> {
  const dir = path.join(await mkdtemp(path.join(scratch, 'bind-')), 'copy');
  await copyTree(source, dir);
  return dir;
}

export async function writeSecretFile(dir: string, id: string, data: Buffer, mode: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, id.replace(/[^A-Za-z0-9_.-]/g, '_'));
  await writeFile(file, data, { mode });
  return file;
}
