// Where a build's image goes (`--output`, buildx syntax: comma-separated key=value, `type=` first):
// registry (every tag, or name=), docker (a `docker load` tar at dest=), oci (an OCI archive, or with tar=false an
// OCI layout directory), local (the final filesystem in a directory). `--push` is type=registry.
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decompressed } from '../layer/compression.js';
import { extractLayer } from '../layer/extract.js';
import { parseReference, type Reference } from '../image/reference.js';
import type { ImageSource } from '../image/source.js';
import type { RegistryClient } from '../registry/client.js';
import { saveImages } from './archive.js';
import { loadIntoDocker } from './docker-load.js';
import { pushImage, type PushReport } from './push.js';
import { readTar } from '../layer/tar.js';

export type OutputSpec =
  | { type: 'registry'; names?: string[] }
  | { type: 'docker'; dest?: string; names?: string[] }
  | { type: 'oci'; dest: string; tar: boolean; names?: string[] }
  | { type: 'local'; dest: string };

export class OutputError extends Error {
  override readonly name = 'OutputError';
}

export function parseOutput(text: string): OutputSpec {
  const fields = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (fields.size === 0 && part) fields.set('type', part === '-' ? 'tar' : 'local');
      if (fields.size === 1 && part && !part.includes('=') && fields.get('type') === 'local') fields.set('dest', part);
      continue;
    }
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const type = fields.get('type');
  const names = fields.get('name')?.split(/[,\s]+/).filter(Boolean);
  const dest = fields.get('dest');
  const need = () => {
    if (!dest) throw new OutputError(`--output ${text}: type=${type} needs dest=PATH`);
    return dest;
  };
  switch (type) {
    case 'registry':
      return { type, names };
    case 'image':
      if (fields.get('push') === 'true') return { type: 'registry', names };
      throw new OutputError(`--output ${text}: type=image without push=true only loads into a daemon's image store; use --load or type=docker`);
    case 'docker':
      return dest ? { type, dest, names } : { type, names };
    case 'oci':
      return { type, dest: need(), tar: fields.get('tar') !== 'false', names };
    case 'local':
      return { type, dest: need() };
    default:
      throw new OutputError(`--output ${text}: unknown type ${JSON.stringify(type)} (registry, docker, oci, local)`);
  }
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
export async function exportImage(image: ImageSource, spec: OutputSpec, tags: readonly string[], client: RegistryClient): Promise<ExportReport> {
  const refs = (names?: string[]): Reference[] => (names ?? tags).map((t) => parseReference(t));
  switch (spec.type) {
    case 'registry': {
      const targets = refs(spec.names);
      if (targets.length === 0) throw new OutputError('pushing needs a name: pass -t NAME[:TAG] (or --output type=registry,name=…)');
      return { pushed: await pushImage(client, image, targets), files: [] };
    }
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
      await mkdir(spec.dest, { recursive: true });
      for (const l of m.manifest.layers) {
        const { stream } = await decompressed(await image.openBlob(l));
        await extractLayer(stream, spec.dest, { whiteouts: 'apply' });
      }
      return { files: [spec.dest] };
    }
  }
}

