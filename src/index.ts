// The engine surface both adapters call, the hoist command (cli/) and the Action (action/): build(request) runs a
// Dockerfile build on a store and a registry client, records the image under its tags, writes it to each output
// while the Actions cache is written, exports the other caches after the push (so that they mount what it uploaded),
// and answers with what outputs, metadata files and summaries need. No argv here, no GitHub.
import { explainNoSpace } from './store/disk.js';
import type { RunSandbox } from './exec/sandbox.js';
import { attestImages, type BuildFacts, newBuildID, type ProvenanceOptions } from './export/provenance.js';
import { spdxDocument } from './export/sbom.js';
import { type Annotation, annotationsFor } from './image/annotations.js';
import type { NamedContext } from './dockerfile/plan.js';
import { chooseExecutor } from './exec/choose.js';
import type { Executor, Isolation } from './exec/executor.js';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { onInterrupt, removeSync } from './exec/cleanup.js';
import { secretValue } from './exec/mounts.js';
import { resolveInside } from './layer/rooted.js';
import { fetchGitContext, parseGitContext, redact } from './solver/git-context.js';
import { type CacheFromSpec, type CacheToSpec, defaultMountMax } from './cache/backend.js';
import { readDockerfile } from './dockerfile/dockerfile.js';
import { planBuild } from './dockerfile/plan.js';
import { type CacheContext, exportCaches, openCaches, prefetchPolicy } from './cache/caches.js';
import type { CacheRecord } from './cache/record.js';
import { cleanLeftovers, describeLeftovers } from './exec/leftovers.js';
import type { SecretSource } from './exec/mounts.js';
import { exportImage, OutputError, type OutputSpec, wantsOciMediaTypes } from './export/outputs.js';
import type { PushReport } from './export/push.js';
import type { Descriptor, ImageConfig } from './image/manifest.js';
import { formatPlatform, hostPlatform, type Platform, samePlatform } from './image/platform.js';
import type { ImageSource } from './image/source.js';
import type { RegistryClient } from './registry/client.js';
import { readInside } from './solver/context.js';
import { IndexImage } from './solver/image.js';
import { build as solve, type BuildResult, type StepReport, type StepStart } from './solver/solver.js';
import type { Store } from './store/store.js';
import { formatProfile, Profile, timed, withProfile } from './profile.js';

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
  /** several platforms in one build: an image each, pushed as one index (one of them: as `platform`) */
  platforms?: readonly Platform[];
  /** a foreign platform's RUN may register Debian's qemu-user-static with binfmt_misc (root) */
  emulate?: boolean;
  /** what every RUN gets: extra hosts, the network, /dev/shm's size, limits */
  sandbox?: RunSandbox;
  /** how RUN steps run: auto (runc where this machine may mount, else proot, else chroot), runc, proot, chroot */
  isolation?: Isolation;
  labels?: ReadonlyMap<string, string>;
  /** --build-context NAME=…, parsed (solver/named-contexts.ts) */
  namedContexts?: ReadonlyMap<string, NamedContext>;
  /** a SLSA provenance attestation on pushed images (--provenance; none unless asked) */
  provenance?: ProvenanceOptions;
  /** an SBOM attestation (SPDX, from the image's package databases) on pushed images (--sbom) */
  sbom?: boolean;
  /** annotations on the manifests and the index (--annotation) */
  annotations?: readonly Annotation[];
  /** where the time went, by phase and step, said in the log (--debug; HOIST_PROFILE=1 does it too) */
  profile?: boolean;
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
  /** the first platform's */
  platform: Platform;
  /** every platform built, in order */
  platforms: Platform[];
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

export function build(req: BuildRequest): Promise<BuildOutcome> {
  const profile = new Profile();
  return withProfile(profile, async () => {
    const outcome = await onContext(req, buildProfiled).catch(async (e: unknown) => {
      throw await explainNoSpace(e, req.store.root);
    });
    const report = profile.report();
    outcome.metadata['hoist.profile'] = report;
    if (req.profile || /^(1|true)$/i.test(process.env.HOIST_PROFILE ?? ''))
      for (const line of formatProfile(report)) req.events?.log?.(line);
    return outcome;
  });
}

/** How long a base this store resolved is taken as it was, on a developer's machine (a rebuild asks no registry). */
const reuseResolvedFor = 60_000;

/** A CI job (where a base pushed a moment ago by another job must be seen): every base is resolved at every build. */
function inCI(env: NodeJS.ProcessEnv): boolean {
  return ['CI', 'GITHUB_ACTIONS', 'GITLAB_CI', 'BUILDKITE', 'JENKINS_URL', 'TF_BUILD', 'HOIST_ALWAYS_RESOLVE'].some(
    (k) => env[k] !== undefined && env[k] !== '' && env[k] !== 'false',
  );
}

async function buildProfiled(req: BuildRequest): Promise<BuildOutcome> {
  const { store, client } = req;
  const startedOn = new Date();
  const buildID = newBuildID();
  const events = req.events ?? {};
  const warn = (m: string) => events.warning?.(m);
  const log = (m: string) => events.log?.(m);
  // A build killed outright earlier left mounts, containers or secrets nobody else will clean.
  const left = describeLeftovers(cleanLeftovers(store.root));
  if (left) log(`cleaned up after killed builds: ${left}`);
  const outputs = req.outputs ?? [];
  const cacheTo = req.cacheTo ?? [];
  const platforms = uniquePlatforms(req.platforms?.length ? req.platforms : [req.platform ?? hostPlatform()]);
  const several = platforms.length > 1;
  if (several) {
    // As buildx's exporters: a docker archive holds one platform; an OCI archive of an index is not written yet.
    const one = outputs.find((o) => o.type === 'docker' || o.type === 'oci');
    if (one)
      throw new OutputError(
        `--output type=${one.type} holds one platform; with several (${platforms.map(formatPlatform).join(', ')}) push them (type=registry) or write their filesystems (type=local), or build one --platform at a time`,
      );
  }
  // SOURCE_DATE_EPOCH given as a build arg does what the environment variable does (BuildKit's dockerfile frontend
  // reads build-arg:SOURCE_DATE_EPOCH; buildx turns the variable into that arg), and wins over it.
  const epochArg = req.buildArgs?.get('SOURCE_DATE_EPOCH');
  let sourceDateEpoch = req.sourceDateEpoch;
  if (epochArg !== undefined && epochArg !== '') {
    if (!/^\d+$/.test(epochArg))
      throw new RangeError(
        `invalid SOURCE_DATE_EPOCH build arg ${JSON.stringify(epochArg)}: expected whole seconds since 1970-01-01 UTC`,
      );
    sourceDateEpoch = Number(epochArg);
  }
  // One solve per platform, one after the other: stages whose result cannot differ (FROM --platform=$BUILDPLATFORM,
  // nothing of the target platform in them) have the same keys, so the second finds them in the store.
  const builds = new Map<string, unknown>();
  const solved: Solved[] = [];
  // The executor of RUN steps, chosen once for every platform's solve (and said in the log when it is not runc).
  let executorChosen: Promise<Executor> | undefined;
  const executor = () => {
    executorChosen ??= chooseExecutor(store, req.isolation ?? 'auto', log).then((ex) => {
      if (ex.notice) log(ex.notice);
      return ex;
    });
    return executorChosen;
  };
  // What RUN needs (a runtime and the xattr tools, proot and python3, or chroot) is checked before any layer is
  // fetched: a machine that lacks it says what to install before it downloads the base, not at the first RUN. The
  // check (an overlay mounted, a namespace made: ~45 ms) is made when a stage has a step to run, before its layers
  // come (solver.ts runStage): a build that a cache answers whole makes none.
  const runs = process.getuid?.() === 0 && runsSteps(req) ? executor : undefined;
  try {
    for (const platform of platforms) {
      const cacheContext = { client, platform, tags: req.tags, target: req.target, build: builds };
      // The caches' manifests are read while the solve resolves the bases; its first lookup waits for them.
      const caches = timed('cache-import', () => openCaches(req.cacheFrom ?? [], cacheContext, warn));
      caches.catch(() => undefined); // the solve meets the failure at its first lookup
      const result: BuildResult = await solve({
        context: req.context,
        ...(req.dockerfile !== undefined ? { dockerfile: req.dockerfile } : {}),
        ...(req.dockerfileText !== undefined ? { dockerfileText: req.dockerfileText } : {}),
        buildArgs: req.buildArgs ?? new Map(),
        target: req.target,
        platform: several || req.platform || req.platforms?.length ? platform : undefined,
        platformPrefix: several,
        emulate: req.emulate,
        ...(req.sandbox ? { sandbox: req.sandbox } : {}),
        executor,
        ...(runs ? { executorReady: runs } : {}),
        labels: req.labels ?? new Map(),
        ...(req.namedContexts?.size ? { namedContexts: req.namedContexts } : {}),
        ...(req.sbom ? { sbom: true } : {}),
        annotations: annotationsFor(req.annotations ?? [], 'manifest', platform),
        ociMediaTypes: wantsOciMediaTypes(outputs),
        sourceDateEpoch,
        ...(inCI(process.env) ? {} : { reuseResolved: reuseResolvedFor }),
        secrets: req.secrets ?? new Map(),
        ssh: req.ssh ?? new Map(),
        noCache: req.noCache ?? false,
        noCacheFilter: req.noCacheFilter ?? [],
        cacheFrom: caches,
        inlineCache: cacheTo.some((c) => c.type === 'inline'),
        cacheEveryStage: cacheTo.some((c) => 'mode' in c && c.mode === 'max'),
        keepCacheMounts: cacheTo.some((c) => c.type !== 'inline'),
        mountMaxSize: Math.max(
          defaultMountMax,
          ...cacheTo.map((c) => ('mountMaxSize' in c ? (c.mountMaxSize ?? 0) : 0)),
        ),
        prefetch: prefetchPolicy(outputs, req.tags, cacheTo, client, store),
        onWarning: warn,
        store,
        client,
        onStepStart: (st) => events.stepStart?.(st),
        onOutput: (step, line) => events.output?.(step, line),
        onStep: (st) => events.step?.(st),
      });
      solved.push({ platform: result.platform, result, cacheContext });
    }
  } catch (e) {
    // (a base that cannot be resolved, on a machine that cannot RUN, is told what to install first)
    await runs?.();
    throw e;
  } finally {
    if (executorChosen) await (await executorChosen.catch(() => undefined))?.close().catch(() => undefined);
  }
  events.built?.();

  // an index's own annotations and those of its descriptors (left out with one platform: there is no index)
  const plain: ImageSource = several
    ? await IndexImage.of(
        solved.map((x) => ({
          image: x.result.image,
          platform: x.platform,
          annotations: annotationsFor(req.annotations ?? [], 'manifest-descriptor', x.platform),
        })),
        store,
        annotationsFor(req.annotations ?? [], 'index'),
        wantsOciMediaTypes(outputs),
      )
    : solved[0].result.image;
  // With provenance, what is pushed (and recorded under the tags) is an OCI index of the images and their
  // attestations; the other outputs (a docker or OCI archive, a directory) get the image alone.
  const image = req.provenance || req.sbom ? await attestedIndex(req, solved, { startedOn, buildID }, store) : plain;
  const root = image.root;
  const descriptor = { mediaType: root.mediaType, digest: root.digest, size: root.bytes.length };
  for (const t of req.tags) await store.putImage(t, descriptor);
  const pushed: PushReport[] = [];
  const files: string[] = [];
  const fetchedAtEnd = store.fetched.bytes;
  // The Actions cache is written while the image is pushed (each platform to its scope); a registry or local cache
  // after it, so that it mounts the layers the push has just uploaded instead of uploading them again (every
  // platform's records in one cache manifest, as BuildKit exports them).
  const ghaSpecs = cacheTo.filter((c) => c.type === 'gha');
  const ghaExport = Promise.all(
    solved.map((x) => timed('cache-export', () => exportCaches(ghaSpecs, x.result, x.cacheContext, store, warn, log))),
  ).then((n) => n.reduce((a, b) => a + b, 0));
  ghaExport.catch(() => undefined); // awaited below; an output's failure must not leave it unhandled
  for (const o of outputs) {
    const targets =
      o.type === 'local' && several
        ? solved.map((x) => ({
            spec: { ...o, dest: path.join(o.dest, formatPlatform(x.platform).replaceAll('/', '_')) },
            image: x.result.image as ImageSource,
          }))
        : [{ spec: o, image }];
    for (const t of targets) {
      const r = await timed('export', () =>
        exportImage(t.spec.type === 'registry' || t.image !== image ? t.image : plain, t.spec, req.tags, client),
      );
      if (r.pushed) {
        pushed.push(r.pushed);
        log(
          `pushed ${r.pushed.references.join(', ')} (${r.pushed.blobs.uploaded} blobs uploaded, ${r.pushed.blobs.mounted} mounted, ${r.pushed.blobs.exists} already there${r.pushed.putAgain ? `; the manifest put again ${r.pushed.putAgain === 1 ? 'once' : `${r.pushed.putAgain} times`}: the registry missed a blob it had taken` : ''})`,
        );
      }
      for (const f of r.files) log(`wrote ${f}`);
      files.push(...r.files);
      for (const l of r.loaded ?? []) log(`docker: ${l}`);
    }
  }
  const others = cacheTo.filter((c) => c.type !== 'gha');
  const cacheUploaded =
    (await timed('cache-export', () =>
      exportCaches(
        others,
        several ? mergedResult(solved.map((x) => x.result)) : solved[0].result,
        solved[0].cacheContext,
        store,
        warn,
        log,
      ),
    )) + (await ghaExport);
  const cache = {
    hits: 0,
    misses: 0,
    downloadedBytes: store.fetched.bytes - fetchedAtEnd,
    uploadedBytes: pushed.reduce((n, p) => n + p.uploadedBytes, 0) + cacheUploaded,
  };
  for (const x of solved) {
    cache.hits += x.result.cache.hits;
    cache.misses += x.result.cache.misses;
    cache.downloadedBytes += x.result.cache.downloadedBytes;
  }
  const first = solved[0].result;
  const steps = solved.flatMap((x) => x.result.steps);
  const metadata: Record<string, unknown> = {
    // buildx names each build builder/node/ref (workflows read it for build records); this one is hoist's own
    'buildx.build.ref': `hoist/hoist0/${buildID}`,
    'containerimage.config.digest': several ? undefined : first.imageID,
    'containerimage.descriptor': descriptor,
    'containerimage.digest': root.digest,
    // with several platforms, each step names the platform it was built for
    'hoist.steps': solved.flatMap((x) =>
      x.result.steps.map((st) => ({
        ...(several ? { platform: formatPlatform(x.platform) } : {}),
        stage: st.stageName ?? st.stage,
        instruction: st.instruction,
        line: st.line,
        cached: st.cached,
        source: st.source,
        seconds: st.seconds,
      })),
    ),
    'hoist.cache': cache,
  };
  if (several) delete metadata['containerimage.config.digest'];
  if (req.tags.length) metadata['image.name'] = req.tags.join(',');
  const layers: BuildOutcome['layers'] = [];
  let size = 0;
  for (const x of solved) {
    const m = x.result.image.root;
    const manifestLayers = m.kind === 'manifest' ? m.manifest.layers : [];
    const diffIDs = (JSON.parse(x.result.image.configBytes.toString('utf8')) as ImageConfig).rootfs?.diff_ids ?? [];
    layers.push(...manifestLayers.map((l, i) => ({ diffID: diffIDs[i], digest: l.digest, size: l.size })));
    size += manifestLayers.reduce((n, l) => n + l.size, m.kind === 'manifest' ? m.manifest.config.size : 0);
  }
  return {
    digest: root.digest,
    imageID: several ? root.digest : first.imageID,
    descriptor,
    tags: req.tags,
    platform: first.platform,
    platforms: solved.map((x) => x.platform),
    pushed,
    files,
    steps,
    cache,
    unusedBuildArgs: first.unusedBuildArgs,
    metadata,
    layers,
    size,
  };
}

interface Solved {
  platform: Platform;
  result: BuildResult;
  cacheContext: CacheContext;
}

function uniquePlatforms(list: readonly Platform[]): Platform[] {
  const out: Platform[] = [];
  for (const p of list) if (!out.some((o) => samePlatform(o, p))) out.push(p);
  return out;
}

/** Several platforms' records as one build's, for a cache that holds them all (a registry or local cache). */
function mergedResult(results: readonly BuildResult[]): BuildResult {
  const unique = (list: CacheRecord[]) => [...new Map(list.map((r) => [r.key, r])).values()];
  return {
    ...results[0],
    cacheMounts: results.flatMap((r) => r.cacheMounts),
    records: {
      all: unique(results.flatMap((r) => r.records.all)),
      final: unique(results.flatMap((r) => r.records.final)),
      inline: unique(results.flatMap((r) => r.records.inline)),
      layer: (digest) => results.map((r) => r.records.layer(digest)).find((l) => l !== undefined),
    },
  };
}

/**
 * Whether building `target` runs a RUN step (which needs root for its overlay mount and container), read from the
 * plan before anything is fetched: an adapter that is not root decides up front to run the build through sudo. A
 * base image's ONBUILD RUN is not in the plan: such a build still stops with NeedsRootError.
 */
export function planRunsSteps(
  req: Pick<
    BuildRequest,
    'context' | 'dockerfile' | 'dockerfileText' | 'buildArgs' | 'target' | 'platform' | 'namedContexts'
  >,
): boolean {
  const file = req.dockerfile ?? path.join(req.context, 'Dockerfile');
  const text = req.dockerfileText ?? readInside(path.resolve(req.context), file);
  if (text === undefined) return false; // the build itself says the Dockerfile is missing
  const plan = planBuild(readDockerfile(text, file), {
    buildArgs: req.buildArgs,
    target: req.target,
    targetPlatform: req.platform,
    buildPlatform: hostPlatform(),
    ...(req.namedContexts?.size ? { namedContexts: req.namedContexts } : {}),
  });
  return plan.order.some((i) => plan.stages[i].stage.commands.some((ins) => ins.kind === 'run'));
}

/**
 * The build on its context: a directory as it is; a Git URL fetched first into a directory of the store's (removed
 * after the build), the Dockerfile then read from it (a relative -f inside the context, as BuildKit reads it there).
 */
async function onContext<T>(req: BuildRequest, run: (req: BuildRequest) => Promise<T>): Promise<T> {
  const git = parseGitContext(req.context);
  if (!git) return run(req);
  const tmp = path.join(req.store.root, 'tmp');
  await mkdir(tmp, { recursive: true });
  const dir = await mkdtemp(path.join(tmp, 'git-'));
  const forget = onInterrupt(() => removeSync(dir));
  try {
    const secret = async (id: string) => (await secretValue(req.secrets?.get(id)))?.toString('utf8');
    const token = (await secret(`GIT_AUTH_TOKEN.${git.host}`)) ?? (await secret('GIT_AUTH_TOKEN'));
    const keepGitDir = /^(1|true)$/i.test(req.buildArgs?.get('BUILDKIT_CONTEXT_KEEP_GIT_DIR') ?? '');
    const fetched = await timed('context', () =>
      fetchGitContext(git, path.join(dir, 'checkout'), { token, keepGitDir }),
    );
    req.events?.log?.(
      `context: ${redact(git.remote)} at ${git.ref ?? 'HEAD'} (commit ${fetched.commit.slice(0, 12)})${git.subdir ? `, directory ${git.subdir}` : ''}`,
    );
    const dockerfile =
      req.dockerfile === undefined || path.isAbsolute(req.dockerfile)
        ? req.dockerfile
        : resolveInside(fetched.dir, req.dockerfile, { followLast: true }).abs;
    return await run({ ...req, context: fetched.dir, ...(dockerfile !== undefined ? { dockerfile } : {}) });
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    forget();
  }
}

/** planRunsSteps, where the Dockerfile can be read and parsed (the solve says what is wrong with it otherwise). */
function runsSteps(req: BuildRequest): boolean {
  try {
    return planRunsSteps(req);
  } catch {
    return false;
  }
}

/** The images and their attestations (provenance, SBOM) as one OCI index (export/provenance.ts, export/sbom.ts). */
async function attestedIndex(
  req: BuildRequest,
  solved: readonly { result: BuildResult; platform: Platform }[],
  build: { startedOn: Date; buildID: string },
  store: Store,
): Promise<ImageSource> {
  const steps = solved.flatMap((x) => x.result.steps);
  const networkOf = (instruction: string) => {
    const own = /--network=(none|host|default)\b/.exec(instruction)?.[1];
    return own && own !== 'default' ? own : (req.sandbox?.network ?? 'default');
  };
  const facts: BuildFacts = {
    dockerfile:
      req.dockerfileText !== undefined
        ? 'Dockerfile'
        : path.relative(
            path.resolve(req.context),
            path.resolve(req.dockerfile ?? path.join(req.context, 'Dockerfile')),
          ),
    ...(req.target ? { target: req.target } : {}),
    buildArgs: req.buildArgs ?? new Map(),
    labels: req.labels ?? new Map(),
    secrets: [...(req.secrets?.keys() ?? [])],
    ssh: [...(req.ssh?.keys() ?? [])],
    materials: [
      ...new Map(solved.flatMap((x) => x.result.materials).map((m) => [`${m.ref}|${m.platform}`, m])).values(),
    ],
    // no RUN could reach the network: each ran with --network=none, its own or the build's
    hermetic: !steps.some((st) => /^RUN\b/.test(st.instruction) && networkOf(st.instruction) !== 'none'),
    steps: steps.map((st) => ({ stage: st.stageName ?? st.stage, instruction: st.instruction, line: st.line })),
    startedOn: build.startedOn,
    finishedOn: new Date(),
    hostPlatform: hostPlatform(),
    invocationID: build.buildID,
  };
  const sbomOf = (platform: Platform) => {
    const s = solved.find((x) => formatPlatform(x.platform) === formatPlatform(platform))?.result.sbom;
    return spdxDocument(s?.packages ?? [], {
      name: req.tags[0] ?? 'image',
      created: facts.finishedOn,
      os: s?.os ?? {},
      notes: s?.notes ?? [],
    });
  };
  const attested = await attestImages(
    solved.map((x) => ({ image: x.result.image, platform: x.platform })),
    req.tags,
    {
      ...(req.provenance ? { provenance: { facts, options: req.provenance } } : {}),
      ...(req.sbom ? { sbom: sbomOf } : {}),
    },
    store,
  );
  const unknown = { architecture: 'unknown', os: 'unknown' };
  return IndexImage.of(
    [
      ...attested.entries.map((e) => ({
        image: e.image,
        platform: e.platform,
        annotations: annotationsFor(req.annotations ?? [], 'manifest-descriptor', e.platform),
      })),
      ...attested.entries.map((e) => ({
        image: e.attestation,
        platform: unknown,
        annotations: {
          'vnd.docker.reference.digest': e.image.root.digest,
          'vnd.docker.reference.type': 'attestation-manifest',
        },
      })),
    ],
    store,
    annotationsFor(req.annotations ?? [], 'index'),
    true,
  );
}
