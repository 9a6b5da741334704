// RUN --mount, as BuildKit reads it (frontend/dockerfile/instructions/commands_runmount.go): type=bind (the
// default; read-only unless rw, and then writes are discarded), cache (a directory kept in the store between
// builds, by id), tmpfs, secret (a file on a tmpfs from --secret, never in a layer) and ssh (the agent socket).
// Mount targets are left out of the layer: what is written there never reaches the image. Pure: the spec only.
import path from 'node:path';
import { splitCSV } from './plan.js';
import { closest } from './suggest.js';

export class MountError extends Error {
  override readonly name = 'MountError';
}

export type MountSpec =
  | { type: 'bind'; target: string; source: string; from?: string; rw: boolean }
  | {
      type: 'cache';
      target: string;
      id: string;
      sharing: 'shared' | 'private' | 'locked';
      mode: number;
      uid: number;
      gid: number;
      source: string;
      from?: string;
      readonly: boolean;
      ownerGiven: boolean;
    }
  | { type: 'tmpfs'; target: string; size?: number }
  | {
      type: 'secret';
      target: string;
      id: string;
      required: boolean;
      mode: number;
      uid: number;
      gid: number;
      env?: string;
    }
  | { type: 'ssh'; target: string; id: string; required: boolean; mode: number; uid: number; gid: number };

const bool = (v: string | undefined) => v === undefined || v === '' || v === 'true' || v === '1';

// The keys BuildKit's parseMount knows (commands_runmount.go), and those only some types take.
const mountKeys = [
  'type',
  'from',
  'source',
  'src',
  'target',
  'dst',
  'destination',
  'readonly',
  'ro',
  'readwrite',
  'rw',
  'required',
  'size',
  'id',
  'sharing',
  'mode',
  'uid',
  'gid',
  'env',
];
const keyTypes: Record<string, string[]> = { required: ['secret', 'ssh'], size: ['tmpfs'], env: ['secret'] };

/** A size as docker's units.RAMInBytes reads it: `1024`, `64k`, `1.5m`, `2g`, `1GiB` (powers of 1024). */
export function ramInBytes(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * 1024 ** ' kmgtp'.indexOf(m[2].toLowerCase() || ' '));
}

const mountTypes = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];

export function parseMount(text: string, workdir: string): MountSpec {
  const f = new Map<string, string>();
  for (const field of splitCSV(text)) {
    const eq = field.indexOf('=');
    const k = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    if (!mountKeys.includes(k)) {
      // BuildKit: "unexpected key 'typ' in 'typ=cache'" with its suggestion.
      const near = closest(k, mountKeys);
      throw new MountError(
        `--mount=${text}: unexpected key '${k}' in '${field}'${near ? ` (did you mean ${near}?)` : ''}`,
      );
    }
    f.set(k, eq < 0 ? '' : field.slice(eq + 1));
  }
  const type = f.get('type') ?? 'bind';
  for (const [k, types] of Object.entries(keyTypes))
    if (f.has(k) && !types.includes(type))
      throw new MountError(`--mount=${text}: unexpected key '${k}' for mount type '${type}'`);
  const rawTarget = f.get('target') ?? f.get('dst') ?? f.get('destination');
  const abs = (t: string) => {
    const target = path.posix.join('/', t.startsWith('/') ? '' : workdir, t);
    // BuildKit's dispatchRunMounts: the root cannot be a mount target.
    if (target === '/') throw new MountError(`--mount=${text}: invalid mount target "/"`);
    return target;
  };
  const num = (k: string, d: number, base = 10) => (f.has(k) ? parseInt(f.get(k) as string, base) : d);
  switch (type) {
    case 'bind':
      if (!rawTarget) throw new MountError(`--mount=${text}: a bind mount needs target=`);
      return {
        type,
        target: abs(rawTarget),
        source: f.get('source') ?? f.get('src') ?? '/',
        from: f.get('from'),
        rw: f.has('rw') ? bool(f.get('rw')) : f.has('readwrite') ? bool(f.get('readwrite')) : false,
      };
    case 'cache': {
      if (!rawTarget) throw new MountError(`--mount=${text}: a cache mount needs target=`);
      const source = f.get('source') ?? f.get('src');
      const up = source === undefined ? '' : path.posix.normalize(source.replace(/^\/+/, '') || '.');
      if (!f.has('from') && (up === '..' || up.startsWith('../')))
        throw new MountError(`--mount=${text}: source ${source} leaves the cache; name a directory inside it`);
      const sharing = (f.get('sharing') ?? 'shared') as 'shared' | 'private' | 'locked';
      if (!['shared', 'private', 'locked'].includes(sharing))
        throw new MountError(`--mount=${text}: sharing must be shared, private or locked`);
      return {
        type,
        target: abs(rawTarget),
        id: f.get('id') || abs(rawTarget),
        sharing,
        mode: num('mode', 0o755, 8),
        uid: num('uid', 0),
        gid: num('gid', 0),
        source: source ?? '/',
        from: f.get('from'),
        readonly: f.has('ro') || f.has('readonly'),
        ownerGiven: f.has('uid') || f.has('gid') || f.has('mode'),
      };
    }
    case 'tmpfs': {
      if (!rawTarget) throw new MountError(`--mount=${text}: a tmpfs mount needs target=`);
      const size = f.has('size') ? ramInBytes(f.get('size') as string) : undefined;
      if (f.has('size') && size === undefined)
        throw new MountError(`--mount=${text}: invalid value for size: ${f.get('size')}`);
      return { type, target: abs(rawTarget), size };
    }
    case 'secret': {
      const id = f.get('id') || (rawTarget ? path.posix.basename(rawTarget) : '');
      if (!id) throw new MountError(`--mount=${text}: a secret mount needs id= or target=`);
      const env = f.get('env');
      const target = rawTarget ? abs(rawTarget) : env ? '' : `/run/secrets/${id}`;
      return {
        type,
        target,
        id,
        required: bool(f.get('required') ?? 'false') && f.has('required'),
        mode: num('mode', 0o400, 8),
        uid: num('uid', 0),
        gid: num('gid', 0),
        env,
      };
    }
    case 'ssh': {
      const id = f.get('id') || 'default';
      return {
        type,
        target: rawTarget ? abs(rawTarget) : '/run/buildkit/ssh_agent.0',
        id,
        required: f.has('required') && bool(f.get('required')),
        mode: num('mode', 0o600, 8),
        uid: num('uid', 0),
        gid: num('gid', 0),
      };
    }
    default:
      // BuildKit's words, with suggest.WrapError's suggestion.
      throw new MountError(
        `--mount=${text}: unsupported mount type ${JSON.stringify(type)}${closest(type, mountTypes) ? ` (did you mean ${closest(type, mountTypes)}?)` : ' (bind, cache, tmpfs, secret, ssh)'}`,
      );
  }
}
