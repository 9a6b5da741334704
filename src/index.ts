// The engine surface both adapters call, the hoist command (cli/) and the Action (action/): build(request) runs a
// Dockerfile build on a store and a registry client, records the image under its tags, writes it to each output
// while the Actions cache is written, exports the other caches after the push (so that they mount what it uploaded),
// and answers with what outputs, metadata files and summaries need. No argv here, no GitHub.
import path from 'node:path';
import { type CacheFromSpec, type CacheToSpec, defaultMountMax } from './cache/backend.js';
import { readDockerfile } from './dockerfile/dockerfile.js';
import { planBuild } from './dockerfile/plan.js';
import { exportCaches, openCaches, prefetchPolicy } from './cache/caches.js';
import { cleanLeftovers, describeLeftovers } from './exec/leftovers.js';
import type { SecretSource } from './exec/mounts.js';
import { exportImage, type OutputSpec } from './export/outputs.js';
import type { PushReport } from './export/push.js';
import type { Descriptor, ImageConfig } from './image/manifest.js';
import { hostPlatform, type Platform } from './image/platform.js';
import type { RegistryClient } from './registry/client.js';
import { readInside } from './solver/context.js';
import { build as solve, type BuildResult, type StepReport, type StepStart } from './solver/solver.js';
import type { Store } from './store/store.js';

export type { CacheFromSpec, CacheToSpec } from './cache/backend.js';
export { parseCacheFrom, parseCacheTo } from './cache/backend.js';
export type { OutputSpec } from './export/outputs.js';
export { parseOutput } from './export/outputs.js';
export type { PushReport } from './export/push.js';
export type { Platform } from './image/platform.js';
export { NeedsRootError, type StepReport, type StepStart } from './solver/solver.js';

export interface BuildRequest {
  /** the context directory */
  context: string;
  /** the Dockerfile (default: <context>/Dockerfile) */
  dockerfile?: string;
  /** the Dockerfile's text, when it does not come from a file */
  dockerfileText?: string;
  /** names the image is recorded under in the store and pushed as (normalised: `name:tag`) */
  tags: readonly string[];
  buildArgs?: ReadonlyMap<string, string>;
  target?: string;
  /** default: the host's */
  platform?: Platform;
  labels?: ReadonlyMap<string, string>;
  outputs?: readonly OutputSpec[];
  cacheFrom?: readonly CacheFromSpec[];
  cacheTo?: readonly CacheToSpec[];
  noCache?: boolean;
  noCacheFilter?: readonly string[];
  secrets?: ReadonlyMap<string, SecretSource>;
  ssh?: ReadonlyMap<string, readonly string[]>;
  /** seconds; clamps file times and sets every `created` */
  sourceDateEpoch?: number;
  store: Store;
  client: RegistryClient;
  events?: BuildEvents;
}

/** What a build tells as it goes; every one optional. */
export interface BuildEvents {
  /** something the user should act on (a cache that could not be read, an unused build arg) */
  warning?(message: string): void;
  /** what happened (pushed, wrote, cache exported, cleaned up) */
  log?(message: string): void;
  stepStart?(step: StepStart): void;
  /** a line a RUN step printed */
  output?(step: StepStart, line: string): void;
  step?(step: StepReport): void;
  /** every step is done; the outputs and cache exports follow */
  built?(): void;
}

export interface BuildOutcome {
  /** the manifest digest: what a push wrote, byte for byte */
  digest: string;
  /** the config digest */
  imageID: string;
  descriptor: Descriptor;
  tags: readonly string[];
  platform: Platform;
  pushed: PushReport[];
  /** files the outputs wrote */
  files: string[];
  steps: StepReport[];
  /** cache hits and misses, and what moved over the network (layers fetched, pushes and cache exports) */
  cache: { hits: number; misses: number; downloadedBytes: number; uploadedBytes: number };
  unusedBuildArgs: string[];
  /** buildx's --metadata-file keys and hoist's step report */
  metadata: Record<string, unknown>;
  /** the image's layers as its manifest lists them (compressed sizes), and its size: config and layers */
  layers: { diffID: string; digest: string; size: number }[];
  size: number;
}

export async function build(req: BuildRequest): Promise<BuildOutcome> {
  const { store, client } = req;
  const events = req.events ?? {};
  const warn = (m: string) => events.warning?.(m);
  const log = (m: string) => events.log?.(m);
  // A build killed outright earlier left mounts, containers or secrets nobody else will clean.
  const left = describeLeftovers(cleanLeftovers(store.root));
  if (left) log(`cleaned up after killed builds: ${left}`);
  const outputs = req.outputs ?? [];
  const cacheTo = req.cacheTo ?? [];
  const platform = req.platform ?? hostPlatform();
  const cacheContext = { client, platform, tags: req.tags, target: req.target, build: new Map<string, unknown>() };
  // SOURCE_DATE_EPOCH given as a build arg does what the environment variable does (BuildKit's dockerfile frontend
  // reads build-arg:SOURCE_DATE_EPOCH; buildx turns the variable into that arg), and wins over it.
  const epochArg = req.buildArgs?.get('SOURCE_DATE_EPOCH');
  let sourceDateEpoch = req.sourceDateEpoch;
  if (epochArg !== undefined && epochArg !== '') {
    if (!/^\d+$/.test(epochArg)) throw new RangeError(`invalid SOURCE_DATE_EPOCH build arg ${JSON.stringify(epochArg)}: expected whole seconds since 1970-01-01 UTC`);
    sourceDateEpoch = Number(epochArg);
  }
  const caches = await openCaches(req.cacheFrom ?? [], cacheContext, warn);
  const result: BuildResult = await solve({
    context: req.context,
    ...(req.dockerfile !== undefined ? { dockerfile: req.dockerfile } : {}),
    ...(req.dockerfileText !== undefined ? { dockerfileText: req.dockerfileText } : {}),
    buildArgs: req.buildArgs ?? new Map(),
    target: req.target,
    platform: req.platform,
    labels: req.labels ?? new Map(),
    sourceDateEpoch,
    secrets: req.secrets ?? new Map(),
    ssh: req.ssh ?? new Map(),
    noCache: req.noCache ?? false,
    noCacheFilter: req.noCacheFilter ?? [],
    cacheFrom: caches,
    inlineCache: cacheTo.some((c) => c.type === 'inline'),
    keepCacheMounts: cacheTo.some((c) => c.type !== 'inline'),
    mountMaxSize: Math.max(defaultMountMax, ...cacheTo.map((c) => ('mountMaxSize' in c ? (c.mountMaxSize ?? 0) : 0))),
    prefetch: prefetchPolicy(outputs, req.tags, cacheTo, client),
    onWarning: warn,
    store,
    client,
    onStepStart: (st) => events.stepStart?.(st),
    onOutput: (step, line) => events.output?.(step, line),
    onStep: (st) => events.step?.(st),
  });
  events.built?.();

  const descriptor = { mediaType: result.image.root.mediaType, digest: result.digest, size: result.image.root.bytes.length };
  for (const t of req.tags) await store.putImage(t, descriptor);
  const pushed: PushReport[] = [];
  const files: string[] = [];
  const fetchedAtEnd = store.fetched.bytes;
  // The Actions cache is written while the image is pushed; a registry cache after it, so that it mounts the
  // layers the push has just uploaded instead of uploading them again.
  const exportTo = (specs: CacheToSpec[]) => exportCaches(specs, result, cacheContext, store, warn, log);
  const ghaExport = exportTo(cacheTo.filter((c) => c.type === 'gha'));
  ghaExport.catch(() => undefined); // awaited below; an output's failure must not leave it unhandled
  for (const o of outputs) {
    const r = await exportImage(result.image, o, req.tags, client);
    if (r.pushed) {
      pushed.push(r.pushed);
      log(`pushed ${r.pushed.references.join(', ')} (${r.pushed.blobs.uploaded} blobs uploaded, ${r.pushed.blobs.mounted} mounted, ${r.pushed.blobs.exists} already there)`);
    }
    for (const f of r.files) log(`wrote ${f}`);
    files.push(...r.files);
    for (const l of r.loaded ?? []) log(`docker: ${l}`);
  }
  const cacheUploaded = (await exportTo(cacheTo.filter((c) => c.type !== 'gha'))) + (await ghaExport);
  const c = result.cache;
  const cache = { hits: c.hits, misses: c.misses, downloadedBytes: c.downloadedBytes + store.fetched.bytes - fetchedAtEnd, uploadedBytes: pushed.reduce((n, p) => n + p.uploadedBytes, 0) + cacheUploaded };
  const metadata: Record<string, unknown> = {
    'containerimage.config.digest': result.imageID,
    'containerimage.descriptor': descriptor,
    'containerimage.digest': result.digest,
    'hoist.steps': result.steps.map((st) => ({ stage: st.stageName ?? st.stage, instruction: st.instruction, line: st.line, cached: st.cached, source: st.source, seconds: st.seconds })),
    'hoist.cache': cache,
  };
  if (req.tags.length) metadata['image.name'] = req.tags.join(',');
  const root = result.image.root;
  const manifestLayers = root.kind === 'manifest' ? root.manifest.layers : [];
  const diffIDs = (JSON.parse(result.image.configBytes.toString('utf8')) as ImageConfig).rootfs?.diff_ids ?? [];
  const layers = manifestLayers.map((l, i) => ({ diffID: diffIDs[i], digest: l.digest, size: l.size }));
  const size = layers.reduce((n, l) => n + l.size, root.kind === 'manifest' ? root.manifest.config.size : 0);
  return { digest: result.digest, imageID: result.imageID, descriptor, tags: req.tags, platform: result.platform, pushed, files, steps: result.steps, cache, unusedBuildArgs: result.unusedBuildArgs, metadata, layers, size };
}

/**
 * Whether building `target` runs a RUN step (which needs root for its overlay mount and container), read from the
 * plan before anything is fetched: an adapter that is not root decides up front to run the build through sudo. A
 * base image's ONBUILD RUN is not in the plan: such a build still stops with NeedsRootError.
 */
export function planRunsSteps(req: Pick<BuildRequest, 'context' | 'dockerfile' | 'dockerfileText' | 'buildArgs' | 'target' | 'platform'>): boolean {
  const file = req.dockerfile ?? path.join(req.context, 'Dockerfile');
  const text = req.dockerfileText ?? readInside(path.resolve(req.context), file);
  if (text === undefined) return false; // the build itself says the Dockerfile is missing
  const plan = planBuild(readDockerfile(text, file), { buildArgs: req.buildArgs, target: req.target, targetPlatform: req.platform, buildPlatform: hostPlatform() });
  return plan.order.some((i) => plan.stages[i].stage.commands.some((ins) => ins.kind === 'run'));
}
