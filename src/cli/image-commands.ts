// The image verbs of the hoist command: pull, push, tag, copy, inspect, history, images, rmi, prune, login,
// logout, save, load, import. Each is a thin layer over a library function.
import { ActionCredentials } from '../action/login.js';
import { gitlabJob } from './gitlab.js';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { saveImages, type SaveItem } from '../export/archive.js';
import { pushImage, type PushReport } from '../export/push.js';
import type { Descriptor, ImageConfig, ParsedManifest } from '../image/manifest.js';
import { indexPlatforms, parseImageConfig } from '../image/manifest.js';
import { formatPlatform, hostPlatform } from '../image/platform.js';
import {
  familiarName,
  familiarReference,
  formatReference,
  parseReference,
  type Reference,
} from '../image/reference.js';
import { type ImageSource, NoPlatformError, platformManifest } from '../image/source.js';
import { eraseCredential, StaticCredentials, storeCredential } from '../registry/credentials.js';
import { RegistryClient } from '../registry/client.js';
import { RemoteImage } from '../registry/source.js';
import { checkExitCode, checkStore } from '../store/check.js';
import { prune } from '../store/gc.js';
import { describeLeftovers } from '../exec/leftovers.js';
import { importRootfs, loadArchive } from '../store/load.js';
import { LocalImage } from '../store/local-image.js';
import { pullImage } from '../store/pull.js';
import type { ImageRecord, Store } from '../store/store.js';
import { parseArgv, type OptionSpec, type ParsedArgs, UsageError } from './argv.js';
import { mergedIndex } from '../export/merge.js';
import { commonOptions, commonUsage, type ImageContext, platformOption, withImageContext } from './image-context.js';
import type { CommandIO } from './io.js';
import { formatBytes, parseBytes, relativeTime, table } from './format.js';

type Command = (argv: string[], io: CommandIO) => Promise<number>;

function command(
  name: string,
  usage: string,
  spec: Record<string, OptionSpec>,
  body: (a: ParsedArgs, io: CommandIO) => Promise<number>,
): Command {
  return async (argv, io) => {
    const a = parseArgv(argv, { ...commonOptions, ...spec }, name);
    if (a.flags.has('help')) {
      io.out(`${usage}\n\n${commonUsage}\n`);
      return 0;
    }
    return body(a, io);
  };
}

function positional(a: ParsedArgs, name: string, min: number, max: number, shape: string): string[] {
  if (a.positional.length < min || a.positional.length > max) throw new UsageError(`usage: hoist ${name} ${shape}`);
  return a.positional;
}

/** A name in the store: a reference (normalised), or an image ID / manifest digest (or a prefix of one). */
export async function findLocal(store: Store, text: string): Promise<ImageRecord[]> {
  const hex = text.replace(/^sha256:/, '');
  if (/^[0-9a-f]{4,64}$/.test(hex)) {
    const out: ImageRecord[] = [];
    for (const r of await store.listImages()) {
      const id = await imageID(store, r).catch(() => undefined);
      if (id?.slice(7).startsWith(hex) || r.target.digest.slice(7).startsWith(hex)) out.push(r);
    }
    if (out.length > 0) return out;
  }
  let ref: Reference;
  try {
    ref = parseReference(text);
  } catch {
    return [];
  }
  const r = await store.getImage(formatReference(ref));
  return r ? [r] : [];
}

async function localImage(ctx: ImageContext, record: ImageRecord): Promise<LocalImage> {
  return LocalImage.open(ctx.store, record, ctx.client);
}

async function configOf(
  source: ImageSource,
  m: ParsedManifest,
): Promise<{ config: ImageConfig; descriptor: Descriptor }> {
  if (m.kind !== 'manifest') throw new Error('not a single-platform manifest');
  return { config: parseImageConfig(await source.readBlob(m.manifest.config)), descriptor: m.manifest.config };
}

async function platformManifestOf(source: ImageSource, a: ParsedArgs): Promise<ParsedManifest> {
  try {
    return await platformManifest(source, platformOption(a) ?? hostPlatform());
  } catch (e) {
    if (e instanceof NoPlatformError) throw new UsageError(e.message);
    throw e;
  }
}

async function imageID(store: Store, r: ImageRecord): Promise<string> {
  const img = await LocalImage.open(store, r);
  const m = await img.platformManifest().catch(async () => img.root);
  return m.kind === 'manifest' ? m.manifest.config.digest : m.digest;
}

/** Local when the store has it (unless --remote), else the registry. */
async function openSource(
  ctx: ImageContext,
  text: string,
  remoteOnly: boolean,
): Promise<{ source: ImageSource; local: boolean; name: string }> {
  if (!remoteOnly) {
    const [r] = await findLocal(ctx.store, text);
    if (r) return { source: await localImage(ctx, r), local: true, name: r.name };
  }
  const ref = parseReference(text);
  return { source: await RemoteImage.open(ctx.client, ref), local: false, name: formatReference(ref) };
}

function pushSummary(io: CommandIO, r: PushReport): void {
  io.out(
    `${r.references.join('\n')}\ndigest: ${r.digest} size: ${r.size} (blobs: ${r.blobs.uploaded} uploaded, ${r.blobs.mounted} mounted, ${r.blobs.exists} already there)\n`,
  );
}

const pull = command(
  'pull',
  'Usage: hoist pull [--platform P | --all-platforms] REF\n\nDownloads an image into the store.',
  { platform: { value: true }, 'all-platforms': {} },
  async (a, io) => {
    const [text] = positional(a, 'pull', 1, 1, '[--platform P] REF');
    const ref = parseReference(text);
    return withImageContext(a, io, async (ctx) => {
      const r = await pullImage(ctx.client, ctx.store, ref, {
        platform: platformOption(a),
        allPlatforms: a.flags.has('all-platforms'),
        log: (l) => io.err(`${l}\n`),
      });
      io.out(
        `${familiarReference(ref)}: pulled ${r.fetchedBlobs} blobs (${formatBytes(r.fetchedBytes)})\ndigest: ${r.digest}\n`,
      );
      return 0;
    });
  },
);

/** `--by-digest`: the destinations without their tags, so the manifest is stored by digest only. */
function destinations(a: ParsedArgs, texts: string[]): Reference[] {
  return texts.map((t) => {
    const r = parseReference(t);
    return a.flags.has('by-digest') ? { registry: r.registry, repository: r.repository } : r;
  });
}

const push = command(
  'push',
  'Usage: hoist push [--by-digest] NAME[:TAG] [DEST...]\n\nPushes an image of the store to its registry (or to each DEST); --by-digest writes no tag.',
  { 'by-digest': {} },
  async (a, io) => {
    const [name, ...dests] = positional(a, 'push', 1, 64, 'NAME[:TAG] [DEST...]');
    return withImageContext(a, io, async (ctx) => {
      const [r] = await findLocal(ctx.store, name);
      if (!r) throw new UsageError(`${name} is not in the store (${ctx.store.root}); pull, load or build it first`);
      const targets = destinations(a, dests.length ? dests : [r.name]);
      pushSummary(io, await pushImage(ctx.client, await localImage(ctx, r), targets, { log: (l) => io.err(`${l}\n`) }));
      return 0;
    });
  },
);

const copy = command(
  'copy',
  'Usage: hoist copy [--by-digest] SRC DST [DST...]\n\nCopies an image, all platforms of an index, from registry to registry; --by-digest writes no tag.',
  { 'by-digest': {} },
  async (a, io) => {
    const [src, ...dsts] = positional(a, 'copy', 2, 64, 'SRC DST [DST...]');
    return withImageContext(
      a,
      io,
      async (ctx) => {
        const source = await RemoteImage.open(ctx.client, parseReference(src));
        pushSummary(io, await pushImage(ctx.client, source, destinations(a, dsts), { log: (l) => io.err(`${l}\n`) }));
        return 0;
      },
      { store: false },
    );
  },
);

const tag = command(
  'tag',
  'Usage: hoist tag SRC DST [DST...]\n\nTags an image in its registry: the same manifest under more names; blobs are mounted, not uploaded again.',
  {},
  async (a, io) => {
    const [src, ...dsts] = positional(a, 'tag', 2, 64, 'SRC DST [DST...]');
    const srcRef = parseReference(src);
    const targets = dsts.map((d) => parseReference(d));
    return withImageContext(
      a,
      io,
      async (ctx) => {
        const source = await RemoteImage.open(ctx.client, srcRef);
        const sameRepo = targets.every((t) => t.registry === srcRef.registry && t.repository === srcRef.repository);
        if (sameRepo) {
          for (const t of targets)
            await ctx.client.putManifest(t, t.tag ?? 'latest', source.root.bytes, source.root.mediaType);
          io.out(`${targets.map((t) => familiarReference(t)).join('\n')}\ndigest: ${source.root.digest}\n`);
        } else {
          pushSummary(io, await pushImage(ctx.client, source, targets));
        }
        return 0;
      },
      { store: false },
    );
  },
);

const inspect = command(
  'inspect',
  "Usage: hoist inspect [--raw] [--remote] [--platform P] REF\n\nPrints an image's manifest and config (local when the store has it).",
  { raw: {}, remote: {}, platform: { value: true } },
  async (a, io) => {
    const [text] = positional(a, 'inspect', 1, 1, '[--raw] [--remote] REF');
    return withImageContext(a, io, async (ctx) => {
      const { source, local, name } = await openSource(ctx, text, a.flags.has('remote'));
      if (a.flags.has('raw')) {
        const m = a.options.has('platform') ? await platformManifestOf(source, a) : source.root;
        // the bytes as the registry holds them, nothing added: `| sha256sum` is the digest
        io.out(Buffer.from(m.bytes).toString('utf8'));
        return 0;
      }
      const out: Record<string, unknown> = {
        Name: name,
        Local: local,
        Digest: source.root.digest,
        MediaType: source.root.mediaType,
      };
      if (source.root.kind === 'index' && !a.options.has('platform')) {
        out.Index = source.root.index;
        out.Platforms = indexPlatforms(source.root.index).map(formatPlatform);
      } else {
        const m = await platformManifestOf(source, a);
        const { config, descriptor } = await configOf(source, m);
        if (m !== source.root) out.PlatformDigest = m.digest;
        out.ImageID = descriptor.digest;
        out.Manifest = m.kind === 'manifest' ? m.manifest : undefined;
        out.Config = config;
      }
      io.out(`${JSON.stringify(out, null, 2)}\n`);
      return 0;
    });
  },
);

const history = command(
  'history',
  'Usage: hoist history [--platform P] REF\n\nShows the steps an image was made of.',
  { platform: { value: true }, remote: {} },
  async (a, io) => {
    const [text] = positional(a, 'history', 1, 1, 'REF');
    return withImageContext(a, io, async (ctx) => {
      const { source } = await openSource(ctx, text, a.flags.has('remote'));
      const m = await platformManifestOf(source, a);
      const { config } = await configOf(source, m);
      const layers = m.kind === 'manifest' ? [...m.manifest.layers] : [];
      const rows = (config.history ?? []).map((h) => {
        const layer = h.empty_layer ? undefined : layers.shift();
        return [
          layer ? layer.digest.slice(7, 19) : '<missing>',
          h.created ? relativeTime(h.created) : '',
          (h.created_by ?? '').replace(/\s+/g, ' ').slice(0, 60),
          layer ? formatBytes(layer.size) : '0B',
          h.comment ?? '',
        ];
      });
      io.out(table(['LAYER', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], rows.reverse()));
      return 0;
    });
  },
);

const images = command(
  'images',
  'Usage: hoist images [--digests]\n\nLists the images in the store.',
  { digests: {} },
  async (a, io) => {
    positional(a, 'images', 0, 0, '[--digests]');
    return withImageContext(a, io, async (ctx) => {
      const rows: string[][] = [];
      for (const r of await ctx.store.listImages()) {
        const ref = parseReference(r.name);
        let id = '<unknown>';
        let created = '';
        let size = '';
        try {
          const img = await LocalImage.open(ctx.store, r);
          const m = await img.platformManifest();
          if (m.kind === 'manifest') {
            id = m.manifest.config.digest.slice(7, 19);
            const config = parseImageConfig(await ctx.store.readBlob(m.manifest.config.digest));
            created = config.created ? relativeTime(config.created) : '';
            size = formatBytes(m.manifest.config.size + m.manifest.layers.reduce((n, l) => n + l.size, 0));
          }
        } catch {
          // an image pulled for another platform, or whose documents were pruned: listed without details
        }
        const row = [familiarName(ref), ref.tag ?? '<none>', id, created, size];
        if (a.flags.has('digests')) row.splice(2, 0, r.target.digest);
        rows.push(row);
      }
      const head = ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'];
      if (a.flags.has('digests')) head.splice(2, 0, 'DIGEST');
      io.out(table(head, rows));
      return 0;
    });
  },
);

const rmi = command(
  'rmi',
  'Usage: hoist rmi NAME|ID...\n\nRemoves images from the store (their blobs go with the next prune).',
  {},
  async (a, io) => {
    const names = positional(a, 'rmi', 1, 1000, 'NAME|ID...');
    return withImageContext(a, io, async (ctx) => {
      let missing = 0;
      for (const n of names) {
        const found = await findLocal(ctx.store, n);
        if (found.length === 0) {
          io.err(`hoist rmi: no such image: ${n}\n`);
          missing++;
        }
        for (const r of found) {
          await ctx.store.removeImage(r.name);
          io.out(`Untagged: ${familiarReference(parseReference(r.name))}\n`);
        }
      }
      return missing ? 1 : 0;
    });
  },
);

const pruneCmd = command(
  'prune',
  'Usage: hoist prune [--all] [--keep-storage SIZE]\n\nRemoves what no image references; --all empties the store (cache mounts included); --keep-storage trims least recently used first.',
  { all: {}, 'keep-storage': { value: true } },
  async (a, io) => {
    positional(a, 'prune', 0, 0, '[--all] [--keep-storage SIZE]');
    const keep = a.options.get('keep-storage')?.[0];
    return withImageContext(a, io, async (ctx) => {
      const r = await prune(ctx.store, {
        all: a.flags.has('all'),
        keepStorage: keep === undefined ? undefined : parseBytes(keep),
      });
      for (const n of r.removedImages) io.out(`Untagged: ${familiarReference(parseReference(n))}\n`);
      const left = r.leftovers ? describeLeftovers(r.leftovers) : '';
      if (left) io.out(`Cleaned up after killed builds: ${left}\n`);
      io.out(
        `Deleted ${r.removedRecords} cache records, ${r.removedBlobs} blobs and ${r.removedSnapshots} snapshots${r.removedCacheMounts ? ` and ${r.removedCacheMounts} cache mounts` : ''}\nTotal reclaimed space: ${formatBytes(r.reclaimedBytes)}\n`,
      );
      if (r.leftForRoot)
        io.err(
          `${r.leftForRoot} unpacked layers or cache mounts are owned by root (RUN ran through sudo) and were left: run sudo hoist prune with the same options to remove them\n`,
        );
      return 0;
    });
  },
);

const storeCmd = command(
  'store',
  `Usage: hoist store check [--repair]

Checks every object of the store: each blob re-hashed against its name, each image record's manifest (or index) and
config present and whole, each cache record, layer index and note readable, each lower's tar hashed against its
diffID beside its EROFS index, each unpacked layer's files held to its layer index's names and sizes; and what
killed builds left (temp dirs, mounts, runtime containers). --repair removes what is broken (the next build fetches
or makes it again) and cleans up after killed builds.
Exit status (as e2fsck's): 0 nothing wrong, 1 something was wrong and all of it repaired, 4 something is left broken
(found without --repair), 2 the command could not run. What a build still running wrote since it began is not judged.`,
  { repair: {} },
  async (a, io) => {
    const [sub] = positional(a, 'store', 1, 1, 'check [--repair]');
    if (sub !== 'check') throw new UsageError(`hoist store ${sub}: unknown; usage: hoist store check [--repair]`);
    const repair = a.flags.has('repair');
    return withImageContext(a, io, async (ctx) => {
      const r = await checkStore(ctx.store, { repair });
      for (const p of r.problems) io.out(`${p.repaired ? 'removed' : 'broken'}: ${p.path}: ${p.what}\n`);
      if (r.leftovers)
        io.out(
          repair
            ? `cleaned up after killed builds: ${r.leftovers}\n`
            : `left by killed builds: ${r.leftovers} (hoist store check --repair cleans them up)\n`,
        );
      const c = r.checked;
      const broken = r.problems.filter((p) => !p.repaired).length;
      if (r.busy)
        io.out(`${r.busy} objects newer than a running build's start were not judged (its work in progress)\n`);
      io.out(
        `checked ${c.blobs} blobs, ${c.images} image records, ${c.records} cache records, ${c.lowers} lowers, ${c.indexes} layer indexes, ${c.snapshots} unpacked layers, ${c.notes} notes: ${r.problems.length === 0 ? 'nothing broken' : `${r.problems.length - broken} removed, ${broken} broken`}\n`,
      );
      return checkExitCode(r, repair);
    });
  },
);

const login = command(
  'login',
  'Usage: hoist login [REGISTRY] -u USER --password-stdin\n\nChecks the credentials with the registry and stores them as docker login does.',
  { username: { value: true, short: 'u' }, 'password-stdin': {}, password: { value: true, short: 'p' } },
  async (a, io) => {
    const [registry = 'docker.io'] = positional(a, 'login', 0, 1, '[REGISTRY] -u USER --password-stdin');
    const username = a.options.get('username')?.[0];
    if (!username) throw new UsageError('hoist login needs a username (-u USER)');
    let password = a.options.get('password')?.[0];
    if (password !== undefined)
      io.err('WARNING! Using --password via the command line is insecure. Use --password-stdin.\n');
    if (a.flags.has('password-stdin')) password = io.readStdin().replace(/\r?\n$/, '');
    if (!password) throw new UsageError('hoist login needs a password: pipe it to --password-stdin');
    const host = registry.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    const cred = { username, password };
    const client = new RegistryClient({
      credentials: new StaticCredentials(new Map([[host, cred]])),
      insecureRegistries: a.options.get('insecure-registry') ?? [],
    });
    try {
      await client.ping(host);
    } finally {
      await client.close();
    }
    const where = await storeCredential(host, cred);
    io.out(`Login Succeeded (credentials stored in ${where})\n`);
    return 0;
  },
);

const logout = command(
  'logout',
  'Usage: hoist logout [REGISTRY]\n\nRemoves the stored credentials of a registry.',
  {},
  async (a, io) => {
    const [registry = 'docker.io'] = positional(a, 'logout', 0, 1, '[REGISTRY]');
    const host = registry.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    io.out((await eraseCredential(host)) ? `Removing login credentials for ${host}\n` : `Not logged in to ${host}\n`);
    return 0;
  },
);

const save = command(
  'save',
  'Usage: hoist save [-o FILE] [--platform P] REF...\n\nWrites images to a tar that docker load and OCI tools read.',
  { output: { value: true, short: 'o' }, platform: { value: true } },
  async (a, io) => {
    const names = positional(a, 'save', 1, 1000, '[-o FILE] REF...');
    const file = a.options.get('output')?.[0];
    if (!file && !io.stdoutStream) throw new UsageError('hoist save needs -o FILE');
    return withImageContext(a, io, async (ctx) => {
      const items: SaveItem[] = [];
      for (const n of names) {
        const { source, name } = await openSource(ctx, n, false);
        const ref = parseReference(name);
        items.push({
          source,
          refs: ref.tag !== undefined && !/^[0-9a-f]{4,64}$/.test(n.replace(/^sha256:/, '')) ? [ref] : [],
        });
      }
      if (file) {
        const tmp = `${file}.tmp-${process.pid}`;
        try {
          await saveImages(items, createWriteStream(tmp), { platform: platformOption(a) });
          await rename(tmp, file);
        } catch (e) {
          await rm(tmp, { force: true });
          throw e;
        }
      } else {
        await saveImages(items, (io.stdoutStream as NonNullable<CommandIO['stdoutStream']>)(), {
          platform: platformOption(a),
        });
      }
      return 0;
    });
  },
);

function inputStream(file: string | undefined, io: CommandIO, what: string): Readable {
  if (file && file !== '-') return createReadStream(file);
  if (!io.stdinStream) throw new UsageError(`${what} needs a file`);
  return io.stdinStream();
}

const load = command(
  'load',
  'Usage: hoist load [-i FILE]\n\nLoads images from a docker save / hoist save tar (plain or compressed).',
  { input: { value: true, short: 'i' } },
  async (a, io) => {
    positional(a, 'load', 0, 0, '[-i FILE]');
    const file = a.options.get('input')?.[0];
    return withImageContext(a, io, async (ctx) => {
      const r = await loadArchive(ctx.store, inputStream(file, io, 'hoist load'), file ?? 'standard input');
      for (const rec of r.records) io.out(`Loaded image: ${familiarReference(parseReference(rec.name))}\n`);
      for (const d of r.unnamed) io.out(`Loaded image ID: ${d}\n`);
      return 0;
    });
  },
);

const importCmd = command(
  'import',
  'Usage: hoist import [--platform P] FILE|- REF\n\nMakes a one-layer image of a root filesystem tarball.',
  { platform: { value: true } },
  async (a, io) => {
    const [file, name] = positional(a, 'import', 2, 2, 'FILE|- REF');
    return withImageContext(a, io, async (ctx) => {
      const rec = await importRootfs(ctx.store, inputStream(file, io, 'hoist import'), name, {
        platform: platformOption(a),
        source: file,
      });
      io.out(`${rec.target.digest}\n`);
      return 0;
    });
  },
);

const merge = command(
  'merge',
  `Usage: hoist merge -t NAME[:TAG] [-t NAME[:TAG]…] SOURCE…

Writes one index of images already in registries under every -t name, as docker buildx imagetools create: each
SOURCE is a platform's image (REPO@sha256:…, as a matrix leg pushes it by digest) or an index. Blobs are found where
they are or mounted from the sources' repositories (copied only to another registry); nothing is tagged before all
of it is in place. Prints the names written and the index's digest. In a GitLab job it logs in to $CI_REGISTRY with
the job's credentials, as hoist build does.`,
  { tag: { value: true, repeat: true, short: 't' } },
  async (a, io) => {
    const sources = positional(a, 'merge', 1, 256, '-t NAME[:TAG] SOURCE...').map((s) => parseReference(s));
    const tags = a.options.get('tag') ?? [];
    if (tags.length === 0)
      throw new UsageError('usage: hoist merge -t NAME[:TAG] SOURCE... (the names the index is pushed as)');
    const job = gitlabJob();
    return withImageContext(
      a,
      io,
      async (ctx) => {
        const { image, platforms } = await mergedIndex(ctx.client, sources);
        io.err(`merging ${platforms.map(formatPlatform).join(', ')}\n`);
        pushSummary(
          io,
          await pushImage(
            ctx.client,
            image,
            tags.map((t) => parseReference(t)),
            { log: (l) => io.err(`${l}\n`) },
          ),
        );
        return 0;
        // (in a GitLab job, with the job's own registry login, as hoist build: no hoist login first)
      },
      { store: false, ...(job?.login ? { credentials: new ActionCredentials(job.login) } : {}) },
    );
  },
);

export const imageCommands: Record<string, Command> = {
  pull,
  push,
  copy,
  tag,
  merge,
  inspect,
  history,
  images,
  rmi,
  prune: pruneCmd,
  store: storeCmd,
  login,
  logout,
  save,
  load,
  import: importCmd,
};
