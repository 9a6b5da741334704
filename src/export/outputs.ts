// Where a build's image goes (`--output`, buildx syntax: comma-separated key=value, `type=` first):
// registry (every tag, or name=), docker (a `docker load` tar at dest=), oci (an OCI archive, or with tar=false an
// OCI layout directory), local (the final filesystem in a directory). `--push` is type=registry.
import {
  chmodSync,
  createWriteStream,
  lchownSync,
  lstatSync,
  readdirSync,
  renameSync,
  rmSync,
  utimesSync,
} from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decompressed } from '../layer/compression.js';
import { extractLayer } from '../layer/extract.js';
import { parseReference, type Reference } from '../image/reference.js';
import type { ImageSource } from '../image/source.js';
import type { RegistryClient } from '../registry/client.js';
import { splitCSV } from '../dockerfile/plan.js';
import { saveImages } from './archive.js';
import { loadIntoDocker } from './docker-load.js';
import { pushImage, type PushReport } from './push.js';
import { readTar } from '../layer/tar.js';
import type { Descriptor } from '../image/manifest.js';
import { onInterrupt, removeSync } from '../exec/cleanup.js';

export type OutputSpec =
  /** byDigest: the manifest (or index) pushed without a tag, its digest reported (buildx's push-by-digest) */
  | { type: 'registry'; names?: string[]; byDigest?: boolean; ociMediaTypes?: boolean }
  /** buildx's type=image without push=true: built and its digest reported, nothing sent anywhere */
  | { type: 'image'; names?: string[]; byDigest?: boolean; ociMediaTypes?: boolean }
  | { type: 'docker'; dest?: string; names?: string[]; ociMediaTypes?: boolean }
  | { type: 'oci'; dest: string; tar: boolean; names?: string[]; ociMediaTypes?: boolean }
  | { type: 'local'; dest: string };

export class OutputError extends Error {
  override readonly name = 'OutputError';
}

/** An --output value as buildx reads it: CSV fields (a quoted field keeps its commas: "name=a,b" is two names). */
export function parseOutput(text: string): OutputSpec {
  const fields = new Map<string, string>();
  for (const part of splitCSV(text)) {
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (fields.size === 0 && part) fields.set('type', part === '-' ? 'tar' : 'local');
      if (fields.size === 1 && part && !part.includes('=') && fields.get('type') === 'local') fields.set('dest', part);
      continue;
    }
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const type = fields.get('type');
  const names = fields
    .get('name')
    ?.split(/[,\s]+/)
    .filter(Boolean);
  const dest = fields.get('dest');
  const need = () => {
    if (!dest) throw new OutputError(`--output ${text}: type=${type} needs dest=PATH`);
    return dest;
  };
  const flag = (key: string): boolean | undefined => {
    const v = fields.get(key);
    if (v === undefined) return undefined;
    if (/^(true|1)$/i.test(v)) return true;
    if (/^(false|0)$/i.test(v)) return false;
    throw new OutputError(`--output ${text}: ${key}=${v} is not true or false`);
  };
  // push-by-digest: the manifest goes to the names' repositories without a tag, for an index made later from the
  // digests (hoist merge); name-canonical is how buildx spells the names it then reports, which hoist always does.
  const byDigest = flag('push-by-digest') ? { byDigest: true } : {};
  // oci-mediatypes: an OCI manifest (and index) instead of Docker's; BuildKit's oci exporter defaults to it.
  const oci = flag('oci-mediatypes');
  const mediaTypes = (dflt: boolean) => ((oci ?? dflt) ? { ociMediaTypes: true } : {});
  switch (type) {
    case 'registry':
      return { type, names, ...byDigest, ...mediaTypes(false) };
    case 'image':
      // push=false (or none): BuildKit builds and exports to its own store, which hoist's build already is.
      return { type: flag('push') ? 'registry' : 'image', names, ...byDigest, ...mediaTypes(false) };
    case 'docker':
      return { type, ...(dest ? { dest } : {}), names, ...mediaTypes(false) };
    case 'oci':
      return { type, dest: need(), tar: flag('tar') !== false, names, ...mediaTypes(true) };
    case 'local':
      return { type, dest: need() };
    default:
      throw new OutputError(
        `--output ${text}: unknown type ${JSON.stringify(type)} (registry, image, docker, oci, local)`,
      );
  }
}

/**
 * --push and --load over the outputs given, as buildx applies them: --push makes the first image output push (with
 * none, one is added: buildx refuses --push beside another kind of output, hoist writes both), --load adds a docker
 * output unless one is there. hoist's --push-by-digest is a push without a tag.
 */
export function withPushAndLoad(
  outputs: readonly OutputSpec[],
  options: { push?: boolean; pushByDigest?: boolean; load?: boolean },
): OutputSpec[] {
  const out = [...outputs];
  if (options.push || options.pushByDigest) {
    const byDigest = options.pushByDigest ? { byDigest: true } : {};
    const i = out.findIndex((o) => o.type === 'image' || o.type === 'registry');
    if (i < 0) out.push({ type: 'registry', ...byDigest });
    else out[i] = { ...(out[i] as Extract<OutputSpec, { type: 'image' | 'registry' }>), type: 'registry', ...byDigest };
  }
  if (options.load && !out.some((o) => o.type === 'docker')) out.push({ type: 'docker' });
  return out;
}

/** Whether the image is built as an OCI manifest: an output asked for OCI media types. */
export function wantsOciMediaTypes(outputs: readonly OutputSpec[]): boolean {
  return outputs.some((o) => 'ociMediaTypes' in o && o.ociMediaTypes === true);
}

export interface ExportReport {
  pushed?: PushReport;
  files: string[];
  /** what a Docker daemon said when the image was loaded into it */
  loaded?: string[];
}

async function atomicFile(dest: string, write: (out: NodeJS.WritableStream) => Promise<void>): Promise<void> {
  await mkdir(path.dirname(path.resolve(dest)), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}`;
  try {
    await write(createWriteStream(tmp));
    await rename(tmp, dest);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Writes an image to one output. `tags` are the build's -t names (used unless the output names its own). */
export async function exportImage(
  image: ImageSource,
  spec: OutputSpec,
  tags: readonly string[],
  client: RegistryClient,
): Promise<ExportReport> {
  const refs = (names?: string[]): Reference[] => (names ?? tags).map((t) => parseReference(t));
  switch (spec.type) {
    case 'registry': {
      const named = refs(spec.names);
      if (named.length === 0)
        throw new OutputError('pushing needs a name: pass -t NAME[:TAG] (or --output type=registry,name=…)');
      // By digest: each repository once, no tag.
      const targets = spec.byDigest
        ? [
            ...new Map(
              named.map((r) => [
                `${r.registry}/${r.repository}`,
                { registry: r.registry, repository: r.repository } as Reference,
              ]),
            ).values(),
          ]
        : named;
      return { pushed: await pushImage(client, image, targets), files: [] };
    }
    case 'image':
      // nothing leaves the build: its digest is the report
      return { files: [] };
    case 'docker': {
      if (spec.dest === undefined) return { files: [], loaded: await loadIntoDocker(image, refs(spec.names)) };
      const dest = spec.dest;
      await atomicFile(dest, (out) => saveImages([{ source: image, refs: refs(spec.names) }], out as never));
      return { files: [dest] };
    }
    case 'oci': {
      if (spec.tar) {
        await atomicFile(spec.dest, (out) => saveImages([{ source: image, refs: refs(spec.names) }], out as never));
        return { files: [spec.dest] };
      }
      // A layout directory: the same archive, unpacked.
      await mkdir(spec.dest, { recursive: true });
      const pass = new PassThrough();
      const writing = saveImages([{ source: image, refs: refs(spec.names) }], pass);
      const reading = (async () => {
        for await (const { header, body } of readTar(pass)) {
          const target = path.join(spec.dest, header.name);
          if (header.type === 'directory') {
            await mkdir(target, { recursive: true });
            body.resume();
          } else {
            await mkdir(path.dirname(target), { recursive: true });
            await pipeline(body, createWriteStream(target));
          }
        }
      })();
      await Promise.all([writing, reading]);
      return { files: [spec.dest] };
    }
    case 'local': {
      const m = image.root;
      if (m.kind !== 'manifest') throw new OutputError('type=local needs a single-platform image');
      await exportFilesystem(image, m.manifest.layers, spec.dest);
      return { files: [spec.dest] };
    }
  }
}

/**
 * The image's filesystem into `dest`. The layers are applied in a fresh directory inside it first, so that a
 * whiteout (or an opaque directory) removes only what a lower layer of the image put there, never what `dest`
 * held before; the result is then merged in, as BuildKit's local exporter merges: what the image has replaces
 * what is there under the same name, the rest of `dest` stays.
 */
async function exportFilesystem(image: ImageSource, layers: readonly Descriptor[], dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  const staging = await mkdtemp(path.join(dest, '.hoist-export-'));
  const forget = onInterrupt(() => removeSync(staging));
  try {
    for (const l of layers) {
      const { stream } = await decompressed(await image.openBlob(l));
      await extractLayer(stream, staging, { whiteouts: 'apply' });
    }
    mergeInto(staging, path.resolve(dest));
  } finally {
    await rm(staging, { recursive: true, force: true });
    forget();
  }
}

/** Moves what `from` holds into `to` (both real directories), directories merged, anything else replaced. */
function mergeInto(from: string, to: string): void {
  for (const name of readdirSync(from)) {
    const src = path.join(from, name);
    const dst = path.join(to, name);
    const st = lstatSync(src);
    const there = lstatSync(dst, { throwIfNoEntry: false });
    if (st.isDirectory() && there?.isDirectory()) {
      mergeInto(src, dst);
      // The image's directory, with its own mode, owner and times (merging changed them).
      chmodSync(dst, st.mode & 0o7777);
      if (process.getuid?.() === 0) lchownSync(dst, st.uid, st.gid);
      utimesSync(dst, st.atime, st.mtime);
      continue;
    }
    if (there) rmSync(dst, { recursive: true, force: true });
    renameSync(src, dst);
  }
}
