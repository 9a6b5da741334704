// An image's filesystem as one tree, for comparing two builders (the buildah conformance approach): every
// layer of a `docker save` / `hoist save` tar applied in order, whiteouts included, each path summarised as
// type, mode, owner, size, link target, content hash and mtime.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { decompressed } from '../../src/layer/compression.js';
import { readTar } from '../../src/layer/tar.js';
import { run } from './tools.js';

export interface FlatEntry {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size: number;
  link?: string;
  sha256?: string;
  mtime?: number;
  /** xattrs, base64 */
  xattrs?: Record<string, string>;
}

export interface SavedImage {
  config: Record<string, unknown>;
  fs: Map<string, FlatEntry>;
  layers: number;
  /** the text of each small file (up to 4 KiB), for a test that must read one */
  texts: Map<string, string>;
}

/** What one layer does to the tree, in order: parsed once per process for each layer's bytes (the bases' layers
 * are in every image a test file compares). */
type LayerOp = { opaque: string } | { whiteout: string } | { name: string; entry: FlatEntry; text?: string };
const parsedLayers = new Map<string, Promise<LayerOp[]>>();

async function parseLayer(bytes: Buffer): Promise<LayerOp[]> {
  const { stream } = await decompressed(Readable.from([bytes]));
  const ops: LayerOp[] = [];
  for await (const { header, body } of readTar(stream)) {
    const name = header.name.replace(/^\.?\//, '').replace(/\/$/, '');
    const base = path.posix.basename(name);
    const dir = path.posix.dirname(name);
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    if (base === '.wh..wh..opq') {
      ops.push({ opaque: dir === '.' ? '' : dir });
      continue;
    }
    if (base.startsWith('.wh.')) {
      ops.push({ whiteout: path.posix.join(dir, base.slice(4)) });
      continue;
    }
    if (!name) continue;
    const e: FlatEntry = {
      type: header.type,
      mode: (header.mode & 0o7777).toString(8),
      uid: header.uid,
      gid: header.gid,
      size: header.size,
    };
    if (header.linkname) e.link = header.linkname;
    if (header.type === 'file') e.sha256 = createHash('sha256').update(Buffer.concat(chunks)).digest('hex');
    e.mtime = Math.floor(header.mtime);
    if (header.xattrs)
      e.xattrs = Object.fromEntries(Object.entries(header.xattrs).map(([k, v]) => [k, v.toString('base64')]));
    ops.push({
      name,
      entry: e,
      text: header.type === 'file' && header.size <= 4096 ? Buffer.concat(chunks).toString('utf8') : undefined,
    });
  }
  return ops;
}

async function applyLayer(fs: Map<string, FlatEntry>, bytes: Buffer, texts: Map<string, string>): Promise<void> {
  const id = createHash('sha256').update(bytes).digest('hex');
  let parsed = parsedLayers.get(id);
  if (!parsed) {
    parsed = parseLayer(bytes);
    parsedLayers.set(id, parsed);
  }
  const opaque: string[] = [];
  const added = new Set<string>();
  const under = (dir: string) => {
    for (const k of [...fs.keys()]) if (k.startsWith(`${dir}/`)) fs.delete(k);
  };
  for (const op of await parsed) {
    if ('opaque' in op) opaque.push(op.opaque);
    else if ('whiteout' in op) {
      fs.delete(op.whiteout);
      under(op.whiteout);
    } else {
      const before = fs.get(op.name);
      // what was under a directory goes when something else takes its name (a tar has no children of a name
      // it has not had as a directory)
      if (before?.type === 'directory' && op.entry.type !== 'directory') under(op.name);
      fs.set(op.name, { ...op.entry });
      if (op.text !== undefined) texts.set(op.name, op.text);
      added.add(op.name);
    }
  }
  for (const d of opaque)
    for (const k of [...fs.keys()]) if (k.startsWith(d ? `${d}/` : '') && !added.has(k)) fs.delete(k);
}

/** Reads a save tar (either layout: manifest.json paths are used). */
export async function readSaved(tarFile: string, workDir: string): Promise<SavedImage> {
  run('tar', ['-xf', tarFile, '-C', workDir]);
  const [entry] = JSON.parse(readFileSync(path.join(workDir, 'manifest.json'), 'utf8')) as {
    Config: string;
    Layers: string[];
  }[];
  const config = JSON.parse(readFileSync(path.join(workDir, entry.Config), 'utf8')) as Record<string, unknown>;
  const fs = new Map<string, FlatEntry>();
  const texts = new Map<string, string>();
  for (const l of entry.Layers) await applyLayer(fs, readFileSync(path.join(workDir, l)), texts);
  return { config, fs, layers: entry.Layers.length, texts };
}

/** The config without what differs between any two builds (times, layer digests). */
export function comparableConfig(c: Record<string, unknown>): Record<string, unknown> {
  const out = structuredClone(c);
  delete out.created;
  delete (out.rootfs as Record<string, unknown>)?.diff_ids;
  for (const h of (out.history as Record<string, unknown>[] | undefined) ?? []) delete h.created;
  return out;
}

export function fsObject(fs: Map<string, FlatEntry>): Record<string, FlatEntry> {
  return Object.fromEntries([...fs].sort(([a], [b]) => (a < b ? -1 : 1)));
}
