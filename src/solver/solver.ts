// The solver: a Dockerfile's translation (src/dockerfile/translate.ts) executed stage by stage, independent stages in
// parallel. Each stage starts from scratch, a registry image (the tag resolved once, the platform picked from an
// index, no layer downloaded until a step needs the files) or an earlier stage; one loop runs its steps, and each
// step either changes the config alone (a history entry with empty_layer) or is an op whose result (a layer or
// none, and its time) the loop applies to the stage's image.
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { type Dockerfile, readDockerfile } from '../dockerfile/dockerfile.js';
import { DockerignoreError } from '../dockerfile/dockerignore.js';
import { DockerfileError } from '../dockerfile/errors.js';
import type { Instruction } from '../dockerfile/instructions.js';
import { type BuildPlan, type NamedContext, planBuild, type StageSource } from '../dockerfile/plan.js';
import {
  type CopyOp,
  describeOp,
  historyComment,
  isURL,
  type Op,
  type Step,
  translate,
  type TranslatedBase,
  type Translation,
} from '../dockerfile/translate.js';
import { baseKey, stepKey } from '../cache/keys.js';
import { maxSbomPackages, osRelease, parseApkInstalled, parseDpkgStatus, type SbomPackage } from '../export/sbom.js';
import { type RunSandbox, sandboxKey } from '../exec/sandbox.js';
import type { CacheRecord } from '../cache/record.js';
import { CacheBlobError, type CacheSource, defaultMountMax } from '../cache/backend.js';
import { inlineCacheField } from '../cache/format.js';
import { ChmodError } from '../dockerfile/chmod.js';
import { onInterrupt, removeSync } from '../exec/cleanup.js';
import { SecretMask } from '../exec/mask.js';
import { treeDigest, type UsedCacheMount } from '../cache/mounts.js';
import type { SecretSource } from '../exec/mounts.js';
import { ExecError } from '../exec/overlay.js';
import { chooseExecutor } from '../exec/choose.js';
import type { Executor, Isolation } from '../exec/executor.js';
import { extractState } from '../exec/unpack.js';
import { SshAgents } from '../exec/ssh.js';
import {
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  inFamily,
  manifestBytes,
  parseImageConfig,
  parseManifest,
} from '../image/manifest.js';
import { DigestMismatchError, digestOf, SizeMismatchError } from '../image/digest.js';
import { manifestIsOci, MediaType } from '../image/media-types.js';
import { formatPlatform, hostPlatform, type Platform } from '../image/platform.js';
import {
  formatReference,
  parseReference,
  type Reference,
  ImageReferenceError as InvalidReferenceError,
} from '../image/reference.js';
import { CredentialError } from '../registry/credentials.js';
import { RegistryConnectionError, RegistryError } from '../registry/errors.js';
import { NoPlatformError, platformManifest } from '../image/source.js';
import { CompressionError } from '../layer/compression.js';
import { type BlobSource, CompressingLayer, type Layer } from '../layer/layer.js';
import { compressAgain, type WrittenLayer } from '../layer/writer.js';
import { RootedPathError } from '../layer/rooted.js';
import { TarError, type TarHeader } from '../layer/tar.js';
import type { RegistryClient } from '../registry/client.js';
import { settleAll, sharedBy } from '../registry/limit.js';
import { RemoteImage, registryLayers } from '../registry/source.js';
import { type Store, StoreError } from '../store/store.js';
import { ArchiveError } from './archive.js';
import { BuildContext, ContextError, readInside } from './context.js';
import { CopyError } from './copy-plan.js';
import { HttpSourceError } from './http-source.js';
import { BuiltImage, orderedConfig } from './image.js';
import { type CopySelection, digestSelection, execCopy, selectCopy } from './ops/copy.js';
import { BuildStopped, execRun } from './ops/exec.js';
import { execMkdir } from './ops/mkdir.js';
import type { OpContext, OpResult } from './ops/op.js';
import { ImageState, readImageFiles } from './state.js';
import { UserError } from './users.js';
import { inStep, timed } from '../profile.js';
import { FileDigests } from '../store/file-digests.js';

export { NeedsRootError } from './ops/exec.js';
export { BuiltImage } from './image.js';

export interface BuildRequest {
  /** the context directory */
  context: string;
  /** the Dockerfile (default: <context>/Dockerfile) */
  dockerfile?: string;
  /** the Dockerfile's text, when it does not come from a file (`-f -`: standard input) */
  dockerfileText?: string;
  buildArgs?: ReadonlyMap<string, string>;
  target?: string;
  platform?: Platform;
  /** one of several platforms built together: step names say their platform (as BuildKit's do then) */
  platformPrefix?: boolean;
  /** a foreign platform's RUN may register Debian's qemu-user-static with binfmt_misc (--emulate) */
  emulate?: boolean;
  /** what every RUN gets: extra hosts, the network, /dev/shm's size, limits (--add-host, --network, --shm-size, --ulimit) */
  sandbox?: RunSandbox;
  /** --label: added to the final image */
  labels?: ReadonlyMap<string, string>;
  /** --build-context NAME=…: images and directories that FROM, COPY --from and from= read by that name */
  namedContexts?: ReadonlyMap<string, NamedContext>;
  /** read the image's package databases for an SBOM attestation (--sbom) */
  sbom?: boolean;
  /** the manifest's annotations (--annotation manifest:…) */
  annotations?: Readonly<Record<string, string>>;
  /** an OCI manifest (oci-mediatypes=true); otherwise Docker's, unless a layer (zstd) has no Docker type */
  ociMediaTypes?: boolean;
  /** seconds; clamps file times and sets every `created` */
  sourceDateEpoch?: number;
  store: Store;
  client: RegistryClient;
  /** --secret sources by id */
  secrets?: ReadonlyMap<string, SecretSource>;
  /** --ssh: agent sockets or key files by id (none: SSH_AUTH_SOCK) */
  ssh?: ReadonlyMap<string, readonly string[]>;
  /** --no-cache: no step is taken from a cache (their results are still recorded) */
  noCache?: boolean;
  /** --cache-from: caches to look in when the store lacks a step's record, in order */
  /** (a promise: the caches are read while the bases resolve; the first lookup waits for them) */
  cacheFrom?: readonly CacheSource[] | Promise<readonly CacheSource[]>;
  /** --cache-to type=inline: the final image's records ride in its config */
  inlineCache?: boolean;
  /** a cache export with mode=max: every stage's layers leave the store, not only the target's */
  cacheEveryStage?: boolean;
  /** a cache export keeps cache mounts: note what each held when first mounted, to save the changed ones */
  keepCacheMounts?: boolean;
  /** the most bytes a kept cache mount holds (the largest mount-max-size of the build's caches) */
  mountMaxSize?: number;
  /**
   * Which of the image's layers that only a cache holds must be fetched before the build ends (an output that
   * writes every layer, a push to another registry, a layer pushed by reference whose diffID hoist has not verified
   * and that `image` — the digest of the manifest being built — does not already publish): a bad cache blob is then
   * found while its steps can still run.
   */
  prefetch?: (layer: Layer, image: string) => boolean | Promise<boolean>;
  /** a warning for the log (a cache that could not deliver) */
  onWarning?: (message: string) => void;
  /** how RUN steps run (exec/executor.ts): auto picks runc where this machine may mount, else proot or chroot */
  isolation?: Isolation;
  /** the executor of several solves of one build (several platforms): chosen once; else this solve chooses its own */
  executor?: () => Promise<Executor>;
  /** settles when the machine is known to run RUN steps (rejects with what it lacks): no stage with a step to run fetches a layer before */
  executorReady?: () => Promise<unknown>;
  /** a line for the log (which executor runs RUN, when not runc) */
  onLog?: (message: string) => void;
  /**
   * A base this store resolved within this many milliseconds is taken as it was, without asking the registry (a
   * developer's rebuild; never in CI, where a base pushed a moment ago must be seen)
   */
  reuseResolved?: number;
  /** --no-cache-filter: the stages (by name or index) whose steps are not taken from a cache */
  noCacheFilter?: readonly string[];
  /** a line a RUN step printed */
  onOutput?: (step: StepStart, line: string) => void;
  /** progress events: a step starts, a step ends */
  onStepStart?: (step: StepStart) => void;
  onStep?: (step: StepReport) => void;
}

export interface StepStart {
  stage: number;
  stageName?: string;
  instruction: string;
  line: number;
  /**
   * 1-based position in its stage among the steps BuildKit numbers (FROM an image, ADD, COPY, RUN, WORKDIR), and
   * their number
   */
  position: number;
  steps: number;
  /** the name's prefix as BuildKit's prefixCommand writes it: `[stage-1 2/3] `, `[ 2/12] ` in a one-stage build */
  prefix: string;
}

export interface StepReport extends StepStart {
  cached: boolean;
  source: string | null;
  seconds: number;
  /** the layer the step made or took from the cache (its size is in the image's manifest) */
  diffID?: string;
}

export interface CacheSummary {
  /** steps taken from a cache, and steps run */
  hits: number;
  misses: number;
  /** layer bytes the build fetched (from registries and caches) */
  downloadedBytes: number;
}

/** The records this build used or made, for --cache-to, and the layers they name. */
export interface BuildRecords {
  /** every step's records (mode=max) */
  all: CacheRecord[];
  /** those of the stages the final image is made of (mode=min) */
  final: CacheRecord[];
  /**
   * those again, each step by its first key only (inline: the records are part of the image, so they must not
   * depend on whether a COPY --from was found by its stage or by its content)
   */
  inline: CacheRecord[];
  /** a layer named by a record, with where its bytes are */
  layer(digest: string): Layer | undefined;
}

export interface BuildResult {
  image: BuiltImage;
  /** the manifest digest */
  digest: string;
  /** the config digest */
  imageID: string;
  platform: Platform;
  steps: StepReport[];
  /** --build-arg names nothing used */
  unusedBuildArgs: string[];
  cache: CacheSummary;
  /** the cache mounts the build used, when keepCacheMounts */
  cacheMounts: UsedCacheMount[];
  records: BuildRecords;
  /** the images the build read (FROM, COPY --from, mounts), as resolved: a provenance attestation's materials */
  materials: { ref: string; platform: string; digest: string }[];
  /** what the image's package databases list, when asked (--sbom) */
  sbom?: { packages: SbomPackage[]; os: { id?: string; versionId?: string }; notes: string[] };
}

/** A base image as resolved once per build: its manifest digest (for the platform), config and (lazy) layers. */
interface ResolvedImage {
  digest: string;
  config: ImageConfig;
  layers: Layer[];
}

interface StageResult {
  state: ImageState;
  /** newest input time so far (seconds) */
  time: number;
  /** the cache key of the stage's filesystem: its base's, then each op's */
  key: string;
}

/** A stage while its steps run. */
interface StageRun extends StageResult {
  index: number;
}

/** A step as planned: its key (an op's) and what the caches hold for it, found before the stage runs. */
interface PlannedStep {
  step: Step;
  key?: string;
  /** the key of what the step builds on */
  parent?: string;
  hit?: CacheHit;
  /** COPY from the context: the sources its key hashed, copied when it runs */
  selection?: CopySelection;
  /** --no-cache or --no-cache-filter: no step of the stage comes from a cache */
  noCache?: boolean;
}

interface StagePlan {
  /** the stage's key: its last op's, or its base's */
  key: string;
  steps: PlannedStep[];
}

/** A step's result found in a cache, and where its layer's bytes are. */
interface CacheHit {
  record: CacheRecord;
  /** where it was found: "local" for the store */
  source: string;
  blobs: BlobSource[];
}

/** A base or --from image the registry would not give, said as BuildKit says it ("REF: failed to resolve source metadata for NAME: …"). */
export class ImageSourceError extends Error {
  override readonly name = 'ImageSourceError';
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** Errors of the input that a step meets: printed at the step's Dockerfile line. */
const stepErrors = [
  ImageSourceError,
  DockerignoreError,
  UserError,
  ContextError,
  CopyError,
  ExecError,
  ArchiveError,
  TarError,
  CompressionError,
  RootedPathError,
  HttpSourceError,
  ChmodError,
  NoPlatformError,
  InvalidReferenceError,
  DigestMismatchError,
  SizeMismatchError,
];

function stageError(ins: Pick<Instruction, 'line' | 'endLine'>, e: unknown, hint?: string): DockerfileError {
  return new DockerfileError(
    (e as Error).message,
    { line: ins.line, endLine: ins.endLine },
    { hint: hint ?? (e as { hint?: string }).hint },
  );
}

/**
 * A step's result applied to its stage: a history entry (`created` from the result's time, or SOURCE_DATE_EPOCH),
 * the layer on top when there is one (an empty_layer entry when not), and the stage's time moved on.
 */
function applyResult(
  run: StageRun,
  result: { created_by: string; time: number; layer?: Layer; headers?: readonly TarHeader[] },
  sourceDateEpoch: number | undefined,
): void {
  const entry = {
    created: new Date((sourceDateEpoch ?? result.time) * 1000).toISOString(),
    created_by: result.created_by,
    comment: historyComment,
  };
  if (result.layer) run.state.addLayer(result.layer, entry, result.headers);
  else run.state.history.push({ ...entry, empty_layer: true });
  run.time = result.time;
}

export class Solver {
  private readonly df: Dockerfile;
  private readonly plan: BuildPlan;
  private readonly context: BuildContext;
  private readonly file: string;
  private readonly steps: StepReport[] = [];
  private readonly stages = new Map<number, Promise<StageResult>>();
  private readonly plans = new Map<number, Promise<StagePlan>>();
  private readonly rootfsDirs = new Map<string, Promise<string>>();
  private readonly images = new Map<string, Promise<ResolvedImage>>();
  private translation: Translation | undefined;
  /** the build's temp dir in the store (made once, removed when the build ends or is interrupted) */
  private tmp: Promise<string> | undefined;
  private digests: Promise<FileDigests> | undefined;
  private forgetTmp: (() => void) | undefined;
  /** read-only views of stages and images (COPY --from, bind mounts): undone when the build ends */
  private readonly views: (() => Promise<void>)[] = [];
  /** this solve's own executor, when the request brings none */
  private ownExecutor: Promise<Executor> | undefined;
  /** the step each stage is at (RUN output is shown under it) */
  private readonly currentStep = new Map<number, StepStart>();
  private readonly sshAgents: SshAgents;
  /** the values of the secrets handed to steps, masked in what the steps print */
  private readonly mask = new SecretMask();
  private readonly cache: CacheSummary = { hits: 0, misses: 0, downloadedBytes: 0 };
  /** aborted at the build's first failure: running steps are killed, no new one starts */
  private readonly stopping = new AbortController();
  private firstFailure: unknown;
  /** every step's records, by the stage that made or used them; `primary`: by the step's first key */
  private readonly used: { stage: number; record: CacheRecord; primary: boolean }[] = [];
  /** the layers steps gave, by digest (a cache's carry where their bytes are) */
  private readonly layers = new Map<string, Layer>();
  /** layers kept in stored deflate blocks, compressed for this build's images and caches (by the stored digest) */
  private readonly compressedAgain = new Map<string, CompressingLayer>();
  /** snapshots started ahead of the steps that need them (warm); waited for before the build returns */
  private readonly warming: Promise<unknown>[] = [];
  /** RUN layers being compressed, and their records: all in before the image is made */
  private readonly background: Promise<void>[] = [];
  /** cache mounts by name, as first mounted (restored from a cache backend when new) */
  private readonly mounts = new Map<string, Promise<UsedCacheMount | undefined>>();

  constructor(
    private readonly req: BuildRequest,
    /** layer digests a cache could not deliver in an earlier attempt: records naming them are no hits */
    private readonly badBlobs: ReadonlySet<string> = new Set(),
  ) {
    this.sshAgents = new SshAgents(req.ssh ?? new Map());
    const file = req.dockerfile ?? path.join(req.context, 'Dockerfile');
    this.file = file;
    let text: string | undefined = req.dockerfileText;
    try {
      // Inside the context, the Dockerfile is read where it is in the context: a symlink there cannot make hoist
      // print a host file's lines in a parse error.
      text ??= readInside(path.resolve(req.context), file);
    } catch (e) {
      throw new ContextError(`cannot read the Dockerfile ${file}: ${(e as Error).message}`);
    }
    if (text === undefined)
      throw new ContextError(
        `cannot read the Dockerfile ${file}: no such file in ${path.relative(path.resolve(req.context), path.resolve(file)).startsWith('..') ? 'its directory' : 'the build context'}`,
      );
    this.df = readDockerfile(text, file);
    try {
      this.plan = planBuild(this.df, {
        buildArgs: req.buildArgs,
        target: req.target,
        targetPlatform: req.platform,
        buildPlatform: hostPlatform(),
        ...(req.namedContexts ? { namedContexts: req.namedContexts } : {}),
      });
    } catch (e) {
      if (e instanceof DockerfileError) throw e.withSource(file, text);
      throw e;
    }
    // A Dockerfile from standard input has no ignore file of its own beside it: the context's .dockerignore.
    this.context = BuildContext.open(req.context, req.dockerfileText === undefined ? file : undefined);
  }

  async build(): Promise<BuildResult> {
    const fetchedBefore = this.req.store.fetched.bytes;
    try {
      const early = this.hashContextEarly().catch(() => undefined);
      this.background.push(early);
      try {
        this.translation = await translate(
          this.plan,
          async (ref, platform, at) => (await this.baseImage(ref, platform, at)).config,
        );
      } catch (e) {
        if (e instanceof DockerfileError) throw e.withSource(this.file, this.df.text);
        throw e;
      }
      const target = this.plan.target;
      const { state, time } = await this.stage(target).catch((e: unknown) => {
        // A step's failure points into this Dockerfile: its name and lines, as parse errors have them.
        if (e instanceof DockerfileError && e.source.length === 0) throw e.withSource(this.file, this.df.text);
        throw e;
      });
      await settleAll(this.background);
      const config = structuredClone(this.stageOf(target).config);
      const c = (config.config ??= {});
      if (this.req.labels?.size) c.Labels = { ...c.Labels, ...Object.fromEntries(this.req.labels) };
      // No "OnBuild": null (Docker 20.10's BuildKit wrote it; current BuildKit leaves an empty one out).
      if (c.OnBuild === null || (Array.isArray(c.OnBuild) && c.OnBuild.length === 0)) delete c.OnBuild;
      config.created = new Date((this.req.sourceDateEpoch ?? time) * 1000).toISOString();
      config.rootfs = { type: 'layers', diff_ids: state.layers.map((l) => l.diffID) };
      config.history = state.history;
      await this.keepUnrunStages();
      const records = this.records(target);
      if (this.req.inlineCache) config[inlineCacheField] = records.inline;
      const configBytes = Buffer.from(JSON.stringify(orderedConfig(config)));
      const configDigest = digestOf(configBytes);
      // The base's layers keep their bytes; their media types follow the manifest's family (an OCI base's gzip
      // layer is Docker's gzip layer under a Docker manifest; a zstd layer makes the manifest OCI).
      const layers = state.layers.map((l) => l.descriptor);
      const oci = manifestIsOci(
        layers.map((l) => l.mediaType),
        this.req.ociMediaTypes,
      );
      const manifest: ImageManifest = inFamily(
        {
          schemaVersion: 2,
          mediaType: MediaType.dockerManifest,
          config: { mediaType: MediaType.dockerConfig, digest: configDigest, size: configBytes.length },
          layers,
          ...(this.req.annotations ? { annotations: { ...this.req.annotations } } : {}),
        },
        oci,
      );
      const bytes = manifestBytes(manifest);
      // Layers only a cache has, that an output will need whole (or whose diffID the push cannot take on the
      // record's word, caches.ts prefetchPolicy): fetched now, so that a bad one is met while its steps can still
      // run (build() runs them again).
      const image = digestOf(bytes);
      await settleAll(
        state.layers.map(async (l) => {
          if (!l.sources.some((src) => src.cache) || !(await this.req.prefetch?.(l, image))) return;
          await this.req.store.fetchLayerChecked(l).catch((e: unknown) => {
            // a record that lies about its blob (its diffID, its compression, no tar) is the cache's fault: steps run again
            if (
              e instanceof DigestMismatchError ||
              e instanceof StoreError ||
              e instanceof TarError ||
              e instanceof CompressionError
            )
              throw new CacheBlobError(
                `the cache's record of layer ${l.descriptor.digest} does not match its content (${(e as Error).message})`,
                l.descriptor.digest,
              );
            throw e;
          });
        }),
      );
      await this.req.store.writeBlob(configBytes);
      await this.req.store.writeBlob(bytes);
      const root = parseManifest(bytes);
      return {
        image: new BuiltImage(root, configBytes, state.layers, this.req.store),
        digest: root.digest,
        imageID: configDigest,
        platform: this.plan.targetPlatform,
        steps: this.steps,
        unusedBuildArgs: this.plan.unusedBuildArgs,
        cache: { ...this.cache, downloadedBytes: this.req.store.fetched.bytes - fetchedBefore },
        records,
        materials: await this.materials(),
        ...(this.req.sbom ? { sbom: await imagePackages(state, this.req.store) } : {}),
        cacheMounts: (await Promise.all(this.mounts.values())).filter((m): m is UsedCacheMount => m !== undefined),
      };
    } catch (e) {
      // The first failure is the build's error: the other steps are stopped (their processes killed, their
      // mounts undone as each step ends) before anything they use is taken away.
      this.stopping.abort();
      const first = this.firstFailure ?? e;
      if (first instanceof DockerfileError && first.source.length === 0)
        throw first.withSource(this.file, this.df.text);
      throw first;
    } finally {
      await Promise.allSettled([...this.stages.values(), ...this.warming, ...this.background]);
      // Clean-up never replaces the build's outcome (a mount that will not go is left to the next build's sweep).
      await this.sshAgents.close().catch(() => undefined);
      await (await this.digests)?.save().catch(() => undefined);
      for (const release of this.views.splice(0)) await release().catch(() => undefined);
      if (this.ownExecutor) await (await this.ownExecutor.catch(() => undefined))?.close().catch(() => undefined);
      if (this.tmp) await rm(await this.tmp, { recursive: true, force: true }).catch(() => undefined);
      this.forgetTmp?.();
    }
  }

  /**
   * Stages planned but never run (everything that reads them came from a cache): the records their steps found
   * are this build's too, so that a mode=max export of a fully cached rebuild holds what the build before wrote,
   * as BuildKit exports the cache chains a result was loaded through.
   */
  private async keepUnrunStages(): Promise<void> {
    for (const [index, planning] of this.plans) {
      if (this.stages.has(index)) continue;
      const plan = await planning.catch(() => undefined);
      for (const s of plan?.steps ?? []) {
        if (!s.hit || s.key === undefined) continue;
        this.hitLayer(s.hit);
        this.useRecords(index, s.hit.record, [s.key]);
      }
    }
  }

  /**
   * A step found in a cache is this build's under each of its keys, and under the keys its record says the step
   * also has (a COPY --from found by its stage key keeps its content key: the export of a rerun with nothing
   * changed then serves the next change as the first build's did). The first key's record names the others.
   */
  private useRecords(stage: number, found: CacheRecord, keys: readonly string[]): void {
    const { also: _also, ...result } = found;
    const all = [...new Set([...keys, ...(found.also ?? [])])];
    for (const [i, k] of all.entries())
      this.used.push({
        stage,
        record: { ...result, key: k, ...(i === 0 && all.length > 1 ? { also: all.slice(1) } : {}) },
        primary: i === 0,
      });
  }

  /** The target and the stages it is built FROM: the stages whose layers the image holds. */
  private finalStages(target: number): Set<number> {
    const finalStages = new Set<number>();
    for (let i: number | undefined = target; i !== undefined; ) {
      finalStages.add(i);
      const b: TranslatedBase = this.stageOf(i).base;
      i = b.kind === 'stage' ? b.index : undefined;
    }
    return finalStages;
  }

  private imageStages: Set<number> | undefined;

  /**
   * Whether a stage's layers may leave the store: it is one of the image's, or a cache export takes every stage.
   * The others (a builder stage: compilers, sources, node_modules) are only this store's cache: their blobs hold
   * the tar in stored deflate blocks (level 0: no deflate search, ~1 s of two cores for a 34 MB layer of binaries
   * at level 6), as docker's image store keeps layers as tars until a push; a later build that publishes one
   * compresses it then (publishable()).
   */
  private published(stage: number): boolean {
    if (this.req.cacheEveryStage) return true;
    this.imageStages ??= this.finalStages(this.plan.target);
    return this.imageStages.has(stage);
  }

  /** The records of this build: all, and those of the target and the stages it is built FROM. */
  private records(target: number): BuildRecords {
    const finalStages = this.finalStages(target);
    const unique = (list: CacheRecord[]) => [...new Map(list.map((r) => [r.key, r])).values()];
    return {
      all: unique(this.used.map((u) => u.record)),
      final: unique(this.used.filter((u) => finalStages.has(u.stage)).map((u) => u.record)),
      // (without the other keys: what rides in the image never depends on which key found a step)
      inline: unique(
        this.used.filter((u) => u.primary && finalStages.has(u.stage)).map(({ record: { also: _also, ...r } }) => r),
      ),
      layer: (digest) => this.layers.get(digest),
    };
  }

  private stageOf(index: number) {
    const s = this.translation?.stages.get(index);
    if (!s) throw new Error(`internal: stage ${index} was not translated`);
    return s;
  }

  private stage(index: number): Promise<StageResult> {
    return sharedBy(this.stages, index, () =>
      this.runStage(index).catch((e: unknown) => {
        // The first step to fail stops the rest, wherever they are; its error is the build's.
        if (!(e instanceof BuildStopped) && !this.stopping.signal.aborted) {
          this.firstFailure = e;
          this.stopping.abort();
        }
        throw e;
      }),
    );
  }

  /** A registry image for a platform: the tag resolved, the manifest picked, the config read; no layer fetched. */
  private async materials(): Promise<BuildResult['materials']> {
    const out: BuildResult['materials'] = [];
    for (const [key, p] of this.images) {
      const r = await p.catch(() => undefined);
      const bar = key.lastIndexOf('|');
      if (r) out.push({ ref: key.slice(0, bar), platform: key.slice(bar + 1), digest: r.digest });
    }
    return out;
  }

  private baseImage(ref: string, platform: Platform, at?: Instruction): Promise<ResolvedImage> {
    return sharedBy(this.images, `${ref}|${formatPlatform(platform)}`, () =>
      timed('resolve', async () => {
        let parsed: Reference;
        try {
          parsed = parseReference(ref);
        } catch (e) {
          throw at ? stageError(at, e) : e;
        }
        const name = `${formatReference(parsed)}|${formatPlatform(platform)}`;
        const store = this.req.store;
        if (this.req.reuseResolved) {
          const recent = await store.recentlyResolved(name, this.req.reuseResolved);
          const known =
            recent &&
            (await (async () => {
              const m = parseManifest(await store.readBlob(recent.digest), recent.mediaType);
              if (m.kind !== 'manifest') return undefined;
              const config = parseImageConfig(await store.readBlob(m.manifest.config.digest));
              return {
                digest: m.digest,
                config,
                layers: registryLayers(
                  this.req.client,
                  { registry: parsed.registry, repository: parsed.repository },
                  m,
                  config.rootfs.diff_ids,
                ),
              };
            })().catch(() => undefined));
          if (known) return known;
        }
        try {
          const remote = await RemoteImage.open(this.req.client, parsed);
          const m = await platformManifest(remote, platform, ref);
          if (m.kind !== 'manifest') throw new NoPlatformError(`${ref}: not an image manifest`);
          const configBytes = await remote.readBlob(m.manifest.config);
          const config = parseImageConfig(configBytes);
          if (this.req.reuseResolved)
            await store
              .noteResolved(name, m, { digest: m.manifest.config.digest, bytes: configBytes })
              .catch(() => undefined);
          return { digest: m.digest, config, layers: remote.layers(m, config.rootfs.diff_ids) };
        } catch (e) {
          let err = e;
          if (e instanceof RegistryError || e instanceof RegistryConnectionError || e instanceof CredentialError) {
            err = new ImageSourceError(
              `${ref}: failed to resolve source metadata for ${formatReference(parsed)}: ${e.message}`,
              (e as { hint?: string }).hint,
            );
          }
          if (at && (err instanceof NoPlatformError || err instanceof ImageSourceError)) throw stageError(at, err);
          throw err;
        }
      }),
    );
  }

  /**
   * A stage's keys, before anything of it runs: its base's key, then each op's, and what the caches hold for each
   * (the lookups are cheap: a record file, an imported cache's table). Only keys of other stages are needed here,
   * never their results: a COPY --from that is a hit does not run the stage it copies from.
   */
  private planStage(index: number): Promise<StagePlan> {
    return sharedBy(this.plans, index, () => this.makePlan(index));
  }

  private async makePlan(index: number): Promise<StagePlan> {
    const ts = this.stageOf(index);
    const noCache =
      this.req.noCache === true ||
      (this.req.noCacheFilter ?? []).some(
        (f) => f === String(index) || (ts.name !== undefined && f.toLowerCase() === ts.name),
      );
    // The stages this one reads are planned meanwhile: their bases resolve, and their context files are hashed,
    // while this one's base resolves (what fails is met when its key is needed, in its turn).
    for (const step of ts.steps) {
      const op = step.op;
      const froms =
        op?.kind === 'copy' ? [op.from] : op?.kind === 'exec' ? op.mounts.flatMap((m) => (m.from ? [m.from] : [])) : [];
      for (const f of froms) if (f.kind === 'stage') this.planStage(f.index).catch(() => undefined);
    }
    // The keys need a context to select the context's files in; nothing of the stage's image is read. The files a
    // COPY takes from the context are selected and hashed while the base resolves (each error met in its turn).
    const x = this.opContext(new ImageState([], []), 0, index);
    const contents = new Map<Step, Promise<readonly [CopySelection, string]>>();
    for (const step of ts.steps) {
      const op = step.op;
      if (op?.kind !== 'copy' || (op.from.kind !== 'context' && op.from.kind !== 'local')) continue;
      const p = this.contextContent(op, x);
      p.catch(() => undefined);
      contents.set(step, p);
    }
    let key: string;
    const epoch = this.req.sourceDateEpoch;
    if (ts.base.kind === 'scratch') key = baseKey({ kind: 'scratch' }, epoch);
    else if (ts.base.kind === 'stage') key = (await this.planStage(ts.base.index)).key;
    else
      key = baseKey(
        { kind: 'image', manifest: (await this.baseImage(ts.base.ref, ts.platform, ts.from as Instruction)).digest },
        epoch,
      );
    const steps: PlannedStep[] = [];
    for (const step of ts.steps) {
      const op = step.op;
      if (!op) {
        steps.push({ step });
        continue;
      }
      try {
        const described = describeOp(op);
        const parent = key;
        let selection: CopySelection | undefined;
        const hashing = contents.get(step);
        if (hashing) {
          const [picked, content] = await hashing;
          selection = picked;
          key = stepKey(key, { op: described, content });
        } else if (op.kind === 'copy') {
          key = stepKey(key, { op: described, from: await this.sourceKey(op.from as StageSource) });
        } else if (op.kind === 'exec') {
          // A mount's input: the stage or image it reads, or the content of the context it binds; a secret by its
          // id, a cache mount by its id: never a secret's value, never a cache's content.
          const inputs = [];
          for (const m of op.mounts)
            inputs.push(
              m.from
                ? await this.sourceKey(m.from)
                : m.spec.type === 'bind'
                  ? await this.contextDigest(m.spec.source)
                  : null,
            );
          // The platform it runs as: the same files give another result under another architecture (a stage FROM
          // scratch has the same key on every platform until its first RUN).
          const sandbox = sandboxKey(this.req.sandbox);
          key = stepKey(key, {
            op: described,
            mounts: inputs,
            platform: formatPlatform(ts.platform),
            ...(sandbox ? { sandbox } : {}),
          });
        } else {
          key = stepKey(key, { op: described });
        }
        steps.push({ step, key, parent, hit: noCache ? undefined : await this.lookup(key), selection, noCache });
      } catch (e) {
        if (e instanceof DockerfileError) throw e;
        if (stepErrors.some((k) => e instanceof k)) throw stageError(step.at, e);
        throw e;
      }
    }
    return { key, steps };
  }

  /**
   * The files a COPY takes from the context (or a named directory context) and their content's digest, once per
   * build for the same sources: what selectCopy and digestSelection read of the op, and nothing else, is the key.
   */
  private contextContent(op: CopyOp, x: OpContext): Promise<readonly [CopySelection, string]> {
    const key = JSON.stringify([op.from, op.sources, op.add, op.parents, op.chown !== undefined, op.checksum ?? null]);
    return sharedBy(this.contents, key, () =>
      timed('context', async () => {
        const s = await selectCopy(op, x);
        return [s, await digestSelection(s, await this.fileDigests())] as const;
      }),
    );
  }

  private readonly contents = new Map<string, Promise<readonly [CopySelection, string]>>();

  /**
   * The context's files hashed while the bases resolve: the Dockerfile translated as if every base had an empty
   * config gives the COPY instructions that name no variable (their sources are then what the real translation
   * gives), and their content is computed for the plan's keys to find (contextContent). A guess that turns out
   * different is work thrown away, never a wrong key: the real keys come from the real translation.
   */
  private async hashContextEarly(): Promise<void> {
    const guess = await translate(this.plan, async (_ref, platform) => ({
      architecture: platform.architecture,
      os: platform.os,
      rootfs: { type: 'layers', diff_ids: [] },
    }));
    for (const [index, ts] of guess.stages) {
      if (this.stopping.signal.aborted) return;
      const x = this.opContext(new ImageState([], []), 0, index, ts.platform);
      for (const step of ts.steps) {
        const op = step.op;
        if (op?.kind !== 'copy' || op.from.kind !== 'context' || step.at.code.includes('$') || op.sources.some(isURL))
          continue;
        await this.contextContent(op, x).catch(() => undefined);
      }
    }
  }

  /** A stage's result: its steps' results in order, each from a cache or, failing that, run. */
  private async runStage(index: number): Promise<StageResult> {
    const ts = this.stageOf(index);
    const plan = await this.planStage(index);
    // What the stage's misses read (stages for COPY --from and mounts) starts now, in parallel.
    for (const p of plan.steps) {
      if (!p.step.op || p.hit) continue;
      const op = p.step.op;
      const froms =
        op.kind === 'copy' && op.from.kind !== 'context'
          ? [op.from as StageSource]
          : op.kind === 'exec'
            ? op.mounts.flatMap((m) => (m.from ? [m.from] : []))
            : [];
      for (const f of froms) if (f.kind === 'stage') void this.stage(f.index).catch(() => undefined);
    }
    const fromStarted = Date.now();
    let run: StageRun;
    if (ts.base.kind === 'scratch') {
      run = { index, state: new ImageState([], []), time: 0, key: plan.key };
    } else if (ts.base.kind === 'stage') {
      const r = await this.stage(ts.base.index);
      run = { index, state: r.state.clone(), time: r.time, key: plan.key };
    } else {
      const b = await this.baseImage(ts.base.ref, ts.platform, ts.from as Instruction);
      const created = Date.parse(b.config.created ?? '');
      run = {
        index,
        state: new ImageState([...b.layers], [...(b.config.history ?? [])]),
        time: Number.isNaN(created) ? 0 : Math.floor(created / 1000),
        key: plan.key,
      };
    }
    // Nothing of the stage's layers comes before the machine is known to run its RUN steps (index.ts).
    if (plan.steps.some((p) => p.step.op && !p.hit)) await this.req.executorReady?.();
    // (the unpacking registered before any step reads the layers' index, which then waits for it)
    await this.warm(plan, run);
    // Numbered as dockerfile2llb numbers its vertices (cmdTotal, prefixCommand): FROM only for an image (scratch and
    // another stage have no vertex), then ADD, COPY, RUN and WORKDIR; config-only instructions are not shown.
    const numbered = (st: Step) => ['add', 'copy', 'run', 'workdir'].includes(st.at.keyword.toLowerCase());
    const steps = (ts.base.kind === 'image' ? 1 : 0) + ts.steps.filter(numbered).length;
    // One stage and no image read by COPY --from or a mount: BuildKit names no stage (its states then number one).
    const alone =
      this.plan.stages.length === 1 && ![...this.plan.stages[0].sources.values()].some((src) => src.kind === 'image');
    const stageName = alone ? undefined : (ts.name ?? `stage-${index}`);
    // Several platforms in one build: each step names its stage's platform, and the target's when that differs
    // (prefixCommand with prefixPlatform, formatTargetPlatform: `[linux/amd64->arm64 build 2/3]`).
    const target = this.plan.targetPlatform;
    const arrow =
      ts.platform.os !== target.os
        ? `->${formatPlatform(target)}`
        : ts.platform.architecture !== target.architecture || (ts.platform.variant ?? '') !== (target.variant ?? '')
          ? `->${target.variant ? `${target.architecture}/${target.variant}` : target.architecture}`
          : '';
    const platformPart = this.req.platformPrefix ? `${formatPlatform(ts.platform)}${arrow} ` : '';
    const prefix = (n: number) =>
      `[${platformPart}${stageName ? `${stageName} ` : ''}${String(n).padStart(String(steps).length)}/${steps}] `;
    let position = 0;
    if (ts.base.kind === 'image') {
      const from: StepReport = {
        stage: index,
        stageName: ts.name,
        instruction: ts.from.code,
        line: ts.from.line,
        position: ++position,
        steps,
        prefix: prefix(position),
        cached: false,
        source: 'registry',
        seconds: (Date.now() - fromStarted) / 1000,
      };
      this.req.onStepStart?.(from);
      this.steps.push(from);
      this.req.onStep?.(from);
    }
    for (const planned of plan.steps) {
      if (this.stopping.signal.aborted) throw new BuildStopped();
      const step = planned.step;
      const started = Date.now();
      // A config change is applied without being shown; WORKDIR / is numbered but has no vertex either.
      const shown = numbered(step) && step.op !== undefined;
      if (numbered(step)) position++;
      const start: StepStart = {
        stage: index,
        stageName: ts.name,
        instruction: step.name ?? step.at.code,
        line: step.at.line,
        position,
        steps,
        prefix: prefix(position),
      };
      if (shown) {
        this.currentStep.set(index, start);
        this.req.onStepStart?.(start);
      }
      let hit: CacheHit | undefined;
      let diffID: string | undefined;
      try {
        ({ hit, diffID } = await inStep(`${start.prefix}${start.instruction}`.slice(0, 80), () =>
          this.runStep(planned, run),
        ));
      } catch (e) {
        if (e instanceof DockerfileError) throw e;
        if (stepErrors.some((k) => e instanceof k)) throw stageError(step.at, e);
        throw e;
      }
      if (!shown) continue;
      const report: StepReport = {
        ...start,
        cached: hit !== undefined,
        source: hit?.source ?? null,
        seconds: (Date.now() - started) / 1000,
        ...(diffID ? { diffID } : {}),
      };
      this.steps.push(report);
      this.req.onStep?.(report);
    }
    return { state: run.state, time: run.time, key: plan.key };
  }

  /**
   * One step: a config change is a history entry; an op's result comes from the cache hit its plan found, or from
   * a second key (COPY --from: the content of the files it copies, so that a change elsewhere in that stage does
   * not rerun the copy, as BuildKit's selectors), or from running it (then recorded under every key it has). The
   * result is applied to the stage's image. Answers the cache hit, if it was one, and the step's layer.
   */
  private async runStep(planned: PlannedStep, run: StageRun): Promise<{ hit?: CacheHit; diffID?: string }> {
    const { step } = planned;
    if (!step.op || planned.key === undefined) {
      applyResult(run, { created_by: step.createdBy, time: run.time }, this.req.sourceDateEpoch);
      return {};
    }
    const op = step.op;
    const x = this.opContext(run.state, run.time, run.index);
    const keys = [planned.key];
    let hit = planned.hit;
    let selection = planned.selection;
    if (!hit && op.kind === 'copy' && op.from.kind !== 'context' && op.from.kind !== 'local') {
      selection = await selectCopy(op, x);
      keys.push(stepKey(planned.parent as string, { op: describeOp(op), content: await digestSelection(selection) }));
      if (!planned.noCache) hit = await this.lookup(keys[1]);
    }
    if (hit) {
      this.cache.hits++;
      const r = hit.record;
      const first = this.used.length;
      this.useRecords(run.index, r, keys);
      let layer = this.hitLayer(hit);
      if (layer && r.layer?.stored && this.published(run.index)) {
        // kept in stored blocks by a build where no image held it; this one publishes it: compressed first, and
        // its records name the compressed blob from now on
        const again = this.publishable(layer);
        layer = again;
        const mine = this.used.slice(first);
        this.background.push(
          (async () => {
            await again.ready;
            this.layers.set(again.descriptor.digest, again);
            for (const u of mine) {
              u.record = { ...u.record, layer: { ...again.descriptor, diffID: again.diffID } };
              await this.req.store.writeRecord(u.record);
            }
          })(),
        );
      }
      applyResult(run, { created_by: step.createdBy, time: r.time, layer }, this.req.sourceDateEpoch);
      return { hit, diffID: layer?.diffID };
    }
    this.cache.misses++;
    const result = await this.exec(op, x, selection);
    const l = result.layer;
    let layer: Layer | undefined;
    if (l) {
      const descriptorOf = (w: WrittenLayer): Descriptor => ({
        mediaType: w.mediaType,
        digest: w.digest,
        size: w.size,
      });
      // (hoist made the layer: its digest and diffID are a pair it knows to be true, store.ts noteVerified)
      const noted = async (w: WrittenLayer) => {
        await this.req.store.noteVerified(w.digest, w.diffID);
        return w;
      };
      layer =
        'written' in l
          ? new CompressingLayer(
              l.diffID,
              timed(
                'compress',
                () => l.written.then(noted),
                (w) => w.size,
              ).then(descriptorOf),
            )
          : { descriptor: descriptorOf(await noted(l)), diffID: l.diffID, sources: [] };
      await this.req.store.keepLayerIndex(l.diffID, l.headers);
    }
    applyResult(
      run,
      { created_by: step.createdBy, time: result.time, layer, headers: l?.headers },
      this.req.sourceDateEpoch,
    );
    // The records are written once the layer's blob is (in place now, so that their order does not depend on
    // which compression finishes first).
    const used = keys.map((k, i) => ({
      stage: run.index,
      record: {
        key: k,
        time: result.time,
        ...(i === 0 && keys.length > 1 ? { also: keys.slice(1) } : {}),
      } as CacheRecord,
      primary: i === 0,
    }));
    this.used.push(...used);
    const record = async () => {
      await layer?.ready;
      if (layer) this.layers.set(layer.descriptor.digest, layer);
      for (const u of used) {
        if (layer)
          u.record = {
            ...u.record,
            layer: {
              ...layer.descriptor,
              diffID: layer.diffID,
              ...(x.layerLevel === 0 ? { stored: true as const } : {}),
            },
          } as CacheRecord;
        await this.req.store.writeRecord(u.record);
      }
    };
    if (layer?.ready) this.background.push(record());
    else await record();
    return { diffID: layer?.diffID };
  }

  /** A layer kept in stored deflate blocks that this build publishes, compressed at the default level (once). */
  private publishable(layer: Layer): CompressingLayer {
    let again = this.compressedAgain.get(layer.descriptor.digest);
    if (!again) {
      const store = this.req.store;
      const compressed = timed(
        'compress',
        async () => {
          const w = await compressAgain(store, await store.openBlobFrom(layer.descriptor, layer.sources), layer.diffID);
          await store.noteVerified(w.digest, layer.diffID);
          return { mediaType: layer.descriptor.mediaType, digest: w.digest, size: w.size };
        },
        (d) => d.size,
      );
      again = new CompressingLayer(layer.diffID, compressed);
      this.compressedAgain.set(layer.descriptor.digest, again);
    }
    return again;
  }

  /** The layer a cache hit names, one object per digest (the sources of the record that named it first). */
  private hitLayer(hit: CacheHit): Layer | undefined {
    if (!hit.record.layer) return undefined;
    const { diffID, ...descriptor } = hit.record.layer;
    const layer = this.layers.get(descriptor.digest) ?? { descriptor, diffID, sources: hit.blobs };
    this.layers.set(descriptor.digest, layer);
    return layer;
  }

  /**
   * A stage with a RUN to run needs its layers below the first step to run unpacked: they start now (fetched and
   * unpacked in one pass, several at once), while the stage waits for what it copies from, and its first COPY
   * finds their index written by the unpacking instead of reading the layers once more.
   */
  private async warm(plan: StagePlan, run: StageRun): Promise<void> {
    // Only root runs steps (a user's build runs again through sudo): a user's unpacking would own the files.
    if (process.getuid?.() !== 0 || !plan.steps.some((p) => p.step.op?.kind === 'exec' && !p.hit)) return;
    const first = plan.steps.findIndex((p) => p.step.op && !p.hit);
    const hits = plan.steps.slice(0, first).flatMap((p) => (p.hit ? [this.hitLayer(p.hit)] : []));
    const layers = [...run.state.layers, ...hits].filter((l): l is Layer => l !== undefined);
    const executor = await this.executor().catch(() => undefined);
    if (executor) this.warming.push(Promise.all(executor.warm(layers, run.index)).catch(() => undefined));
  }

  /** The build's executor: the request's, or one chosen now for this solve (said in the log when not runc). */
  private executor(): Promise<Executor> {
    if (this.req.executor) return this.req.executor();
    this.ownExecutor ??= chooseExecutor(this.req.store, this.req.isolation ?? 'auto', (line) =>
      this.req.onLog?.(line),
    ).then((ex) => {
      if (ex.notice) this.req.onLog?.(ex.notice);
      return ex;
    });
    return this.ownExecutor;
  }

  /**
   * A step's result: in the store's records (its layer still there whole), else in the caches of --cache-from, in
   * their order. A record whose layer a cache could not deliver before is no hit.
   */
  private async lookup(key: string): Promise<CacheHit | undefined> {
    const record = await this.req.store.readRecord(key);
    if (
      record &&
      !(record.layer && this.badBlobs.has(record.layer.digest)) &&
      (!record.layer || (await this.req.store.hasIntactBlob(record.layer)))
    ) {
      return { record, source: 'local', blobs: [] };
    }
    for (const c of await this.cacheSources()) {
      const r = c.lookup(key);
      if (r && !(r.layer && this.badBlobs.has(r.layer.digest))) return { record: r, source: c.kind, blobs: [c.blobs] };
    }
    return undefined;
  }

  /** The caches of --cache-from, once read (they are read while the bases resolve). */
  private async cacheSources(): Promise<readonly CacheSource[]> {
    return (await this.req.cacheFrom) ?? [];
  }

  /** The key of what a COPY --from or a mount's from= reads: a stage's filesystem, or an image's manifest. */
  private async sourceKey(from: StageSource): Promise<string> {
    if (from.kind === 'stage') return (await this.planStage(from.index)).key;
    if (from.kind === 'local') {
      // a named directory: all it holds, hashed as COPY's sources are
      const c = this.namedContext(from.name);
      const found = c.find('.');
      return found
        ? digestSelection(
            { sources: [{ path: found, children: await c.walk(found) }], newest: 0 },
            await this.fileDigests(),
          )
        : 'missing';
    }
    return baseKey({ kind: 'image', manifest: (await this.baseImage(from.ref, this.plan.targetPlatform)).digest });
  }

  /** The digests of context files hashed before, by their stat (loaded from the store when first needed). */
  private fileDigests(): Promise<FileDigests> {
    return (this.digests ??= FileDigests.load(this.req.store.root, { reread: this.req.noCache }));
  }

  /** The content of what a bind mount of the context shows (.dockerignore applied), hashed as COPY's sources are. */
  private contextDigest(source: string): Promise<string> {
    return timed('context', () => this.contextDigestOf(source));
  }

  private async contextDigestOf(source: string): Promise<string> {
    const found = this.context.find(source);
    if (!found) return 'missing';
    return digestSelection(
      {
        sources: [{ path: found, children: found.stats.isDirectory() ? await this.context.walk(found) : undefined }],
        newest: 0,
      },
      await this.fileDigests(),
    );
  }

  private exec(op: Op, x: OpContext, selection?: CopySelection): Promise<OpResult> {
    switch (op.kind) {
      case 'copy':
        return execCopy(op, x, selection);
      case 'mkdir':
        return execMkdir(op, x);
      case 'exec':
        return execRun(op, x);
    }
  }

  private opContext(
    state: ImageState,
    time: number,
    stageIndex: number,
    platform: Platform = this.stageOf(stageIndex).platform,
  ): OpContext {
    return {
      store: this.req.store,
      client: this.req.client,
      sourceDateEpoch: this.req.sourceDateEpoch,
      ...(this.published(stageIndex) ? {} : { layerLevel: 0 }),
      context: this.context,
      state,
      time,
      stageIndex,
      scratchDir: () => this.scratchDir(),
      sourceFiles: (from) => this.sourceFiles(from),
      executor: () => this.executor(),
      secrets: this.req.secrets ?? new Map(),
      ssh: this.sshAgents,
      mask: this.mask,
      output: (line) => {
        const step = this.currentStep.get(stageIndex);
        if (step) this.req.onOutput?.(step, line);
      },
      cacheMount: (m) => this.cacheMount(m),
      warn: (message) => this.req.onWarning?.(message),
      signal: this.stopping.signal,
      platform,
      emulate: this.req.emulate === true,
      sandbox: this.req.sandbox ?? {},
    };
  }

  /** A cache mount's first use in this build: a new one restored from the first cache that has it; noted. */
  private async cacheMount(m: { name: string; id: string; dir: string; created: boolean }): Promise<void> {
    await sharedBy(this.mounts, m.name, async () => {
      if (m.created) {
        for (const c of await this.cacheSources()) {
          if (!c.restoreMount) continue;
          try {
            if (await c.restoreMount(m.name, m.dir, this.req.mountMaxSize ?? defaultMountMax)) break;
          } catch (e) {
            this.req.onWarning?.(
              `cache ${c.name}: cache mount ${m.id} could not be restored, it starts empty: ${(e as Error).message}`,
            );
          }
        }
      }
      if (!this.req.keepCacheMounts) return undefined;
      const kept = (await this.cacheSources()).flatMap((c) => {
        const blob = c.mountBlob?.(m.name);
        return blob ? [{ blob, source: c.blobs }] : [];
      });
      return {
        name: m.name,
        id: m.id,
        dir: m.dir,
        before: (await treeDigest(m.dir, this.req.mountMaxSize ?? defaultMountMax)).digest,
        kept,
      };
    });
  }

  private async scratchDir(): Promise<string> {
    this.tmp ??= mkdtemp(path.join(this.req.store.root, 'tmp', `${process.pid}-build-`)).then((dir) => {
      this.forgetTmp = onInterrupt(() => removeSync(dir));
      return dir;
    });
    return mkdtemp(path.join(await this.tmp, 'rootfs-'));
  }

  /** A named directory context (--build-context NAME=DIR), read as a build context is, with no ignore file. */
  private namedContext(name: string): BuildContext {
    const c = this.req.namedContexts?.get(name);
    if (c?.kind !== 'local') throw new ContextError(`no build context named ${name}`);
    return BuildContext.plain(c.dir, name);
  }

  /** What COPY --from and mounts read (OpContext.sourceFiles): a named directory, or a stage's or image's filesystem. */
  private async sourceFiles(from: StageSource): Promise<BuildContext> {
    if (from.kind === 'local') return this.namedContext(from.name);
    return BuildContext.plain(await this.rootfs(from), from.kind === 'image' ? from.ref : `stage-${from.index}`);
  }

  /** A stage's or image's filesystem as a directory (for COPY --from and mounts), once per build. */
  private rootfs(from: Exclude<StageSource, { kind: 'local' }>): Promise<string> {
    const key = from.kind === 'stage' ? `stage:${from.index}` : `image:${from.ref}`;
    let p = this.rootfsDirs.get(key);
    if (!p) {
      p = (async () => {
        if (from.kind === 'stage') return this.unpack((await this.stage(from.index)).state);
        const b = await this.baseImage(from.ref, this.plan.targetPlatform);
        return this.unpack(new ImageState([...b.layers], []));
      })();
      this.rootfsDirs.set(key, p);
    }
    return p;
  }

  /**
   * An image's filesystem as a directory: as root, what the executor makes of it (a read-only overlay of the
   * snapshots, or the layers unpacked); otherwise every layer unpacked into a temp dir.
   */
  private async unpack(state: ImageState): Promise<string> {
    const dir = await this.scratchDir();
    // (An executor that cannot be had here fails the build at its first RUN, not at a COPY --from.)
    const executor =
      process.getuid?.() === 0 && state.layers.length > 0 ? await this.executor().catch(() => undefined) : undefined;
    if (executor) {
      const view = await executor.view(state, dir);
      if (view.release) this.views.push(view.release);
      return view.path;
    }
    await extractState(this.req.store, state.layers, dir);
    return dir;
  }
}

/**
 * Builds. A blob a cache holds that turns out bad (unreachable, or its bytes not matching its digest) is a warning:
 * the build runs again without the records that name it, so the steps that would have come from it run instead.
 */
export async function build(req: BuildRequest): Promise<BuildResult> {
  const bad = new Set<string>();
  for (;;) {
    try {
      return await new Solver(req, bad).build();
    } catch (e) {
      if (!(e instanceof CacheBlobError) || bad.has(e.digest) || bad.size >= 10) throw e;
      bad.add(e.digest);
      req.onWarning?.(`${e.message}; the steps it would have given run again`);
    }
  }
}

/** The packages the image's dpkg and apk databases list, its OS release, and what was not read (an SBOM's content). */
export async function imagePackages(
  state: ImageState,
  store: Store,
  maxBytes = 64 * 1024 * 1024,
): Promise<NonNullable<BuildResult['sbom']>> {
  const fs = await state.fs(store);
  const notes: string[] = [];
  // distroless images: one file per package in status.d
  const allStatusD = [...fs.entries]
    .filter(
      ([p, e]) =>
        e.header.type === 'file' && /^\/?var\/lib\/dpkg\/status\.d\/[^/]+$/.test(p) && !p.endsWith('.md5sums'),
    )
    .map(([p]) => `/${p.replace(/^\//, '')}`);
  const statusD = allStatusD.slice(0, maxSbomPackages);
  const files = ['/var/lib/dpkg/status', ...statusD, '/lib/apk/db/installed', '/etc/os-release', '/usr/lib/os-release'];
  // An image's database is the image's to write: one larger than any real one is not read whole into memory.
  for (const f of files) {
    const e = fs.entries.get(fs.resolve(f, true));
    if (e && e.header.size > maxBytes) notes.push(`${f} (${e.header.size} bytes) was not read: over ${maxBytes} bytes`);
  }
  const read = await readImageFiles(state, store, files, maxBytes);
  const text = (f: string) => read.get(f)?.toString('utf8');
  // An image's database is also the image's to fill: an SBOM lists at most maxSbomPackages packages, and says so.
  const packages: SbomPackage[] = [];
  const room = () => maxSbomPackages - packages.length;
  packages.push(...parseDpkgStatus(text('/var/lib/dpkg/status') ?? '', room() + 1));
  for (const f of statusD) if (room() >= 0) packages.push(...parseDpkgStatus(text(f) ?? '', room() + 1));
  if (room() >= 0) packages.push(...parseApkInstalled(text('/lib/apk/db/installed') ?? '', room() + 1));
  if (packages.length > maxSbomPackages || allStatusD.length > statusD.length) {
    packages.length = Math.min(packages.length, maxSbomPackages);
    notes.push(`the image lists more than ${maxSbomPackages} packages: the first ${packages.length} are in this SBOM`);
  }
  if ([...fs.entries.keys()].some((p) => /^\/?(var\/lib\/rpm|usr\/lib\/sysimage\/rpm)\//.test(p)))
    notes.push('this image has an rpm database, whose packages are not listed');
  return { packages, os: osRelease(text('/etc/os-release') ?? text('/usr/lib/os-release')), notes };
}
