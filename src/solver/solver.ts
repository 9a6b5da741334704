// The solver: a Dockerfile's translation (src/dockerfile/translate.ts) executed stage by stage, independent stages in
// parallel. Each stage starts from scratch, a registry image (the tag resolved once, the platform picked from an
// index, no layer downloaded until a step needs the files) or an earlier stage; one loop runs its steps, and each
// step either changes the config alone (a history entry with empty_layer) or is an op whose result (a layer or
// none, and its time) the loop applies to the stage's image.
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { type Dockerfile, readDockerfile } from '../dockerfile/dockerfile.js';
import { DockerfileError } from '../dockerfile/errors.js';
import type { Instruction } from '../dockerfile/instructions.js';
import { type BuildPlan, planBuild, type StageSource } from '../dockerfile/plan.js';
import { historyComment, type Op, type Step, translate, type Translation } from '../dockerfile/translate.js';
import { ChmodError } from '../dockerfile/chmod.js';
import { onInterrupt, removeSync } from '../exec/cleanup.js';
import { SecretMask } from '../exec/mask.js';
import type { SecretSource } from '../exec/mounts.js';
import { ExecError, mountOverlay, type OverlayMount } from '../exec/overlay.js';
import { SshAgents } from '../exec/ssh.js';
import { type ImageConfig, type ImageManifest, manifestBytes, parseImageConfig, parseManifest } from '../image/manifest.js';
import { DigestMismatchError, SizeMismatchError } from '../image/digest.js';
import { MediaType } from '../image/media-types.js';
import { formatPlatform, hostPlatform, type Platform } from '../image/platform.js';
import { parseReference, type Reference, ReferenceError as InvalidReferenceError } from '../image/reference.js';
import { NoPlatformError, platformManifest } from '../image/source.js';
import { CompressionError, decompressed } from '../layer/compression.js';
import { extractLayer } from '../layer/extract.js';
import type { Layer } from '../layer/layer.js';
import { RootedPathError } from '../layer/rooted.js';
import { TarError } from '../layer/tar.js';
import type { RegistryClient } from '../registry/client.js';
import { RemoteImage } from '../registry/source.js';
import type { Store } from '../store/store.js';
import { ArchiveError } from './archive.js';
import { BuildContext, ContextError, readInside } from './context.js';
import { CopyError } from './copy-plan.js';
import { HttpSourceError } from './http-source.js';
import { BuiltImage, orderedConfig } from './image.js';
import { execCopy } from './ops/copy.js';
import { execRun } from './ops/exec.js';
import { execMkdir } from './ops/mkdir.js';
import type { OpContext, OpResult } from './ops/op.js';
import { ImageState } from './state.js';
import { UserError } from './users.js';

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
  /** --label: added to the final image */
  labels?: ReadonlyMap<string, string>;
  /** seconds; clamps file times and sets every `created` */
  sourceDateEpoch?: number;
  store: Store;
  client: RegistryClient;
  /** --secret sources by id */
  secrets?: ReadonlyMap<string, SecretSource>;
  /** --ssh: agent sockets or key files by id (none: SSH_AUTH_SOCK) */
  ssh?: ReadonlyMap<string, readonly string[]>;
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
  /** 1-based position in its stage, and the stage's number of steps (FROM included) */
  position: number;
  steps: number;
}

export interface StepReport extends StepStart {
  cached: boolean;
  source: string | null;
  seconds: number;
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
}

/** A base image as resolved once per build: its config and its (lazy) layers. */
interface ResolvedImage {
  config: ImageConfig;
  layers: Layer[];
}

interface StageResult {
  state: ImageState;
  /** newest input time so far (seconds) */
  time: number;
}

/** Errors of the input that a step meets: printed at the step's Dockerfile line. */
const stepErrors = [UserError, ContextError, CopyError, ExecError, ArchiveError, TarError, CompressionError, RootedPathError, HttpSourceError, ChmodError, NoPlatformError, InvalidReferenceError, DigestMismatchError, SizeMismatchError];

function stageError(ins: Pick<Instruction, 'line' | 'endLine'>, e: unknown, hint?: string): DockerfileError {
  return new DockerfileError((e as Error).message, { line: ins.line, endLine: ins.endLine }, { hint: hint ?? (e as { hint?: string }).hint });
}

export class Solver {
  private readonly df: Dockerfile;
  private readonly plan: BuildPlan;
  private readonly context: BuildContext;
  private readonly file: string;
  private readonly steps: StepReport[] = [];
  private readonly stages = new Map<number, Promise<StageResult>>();
  private readonly rootfsDirs = new Map<string, Promise<string>>();
  private readonly images = new Map<string, Promise<ResolvedImage>>();
  private translation: Translation | undefined;
  /** the build's temp dir in the store (made once, removed when the build ends or is interrupted) */
  private tmp: Promise<string> | undefined;
  private forgetTmp: (() => void) | undefined;
  /** read-only overlays of stages and images (COPY --from, bind mounts), released when the build ends */
  private readonly sourceMounts: OverlayMount[] = [];
  /** the step each stage is at (RUN output is shown under it) */
  private readonly currentStep = new Map<number, StepStart>();
  /** whether read-only overlays can be mounted here (undefined: not tried yet) */
  private overlaySources: boolean | undefined;
  private readonly sshAgents: SshAgents;
  /** the values of the secrets handed to steps, masked in what the steps print */
  private readonly mask = new SecretMask();

  constructor(private readonly req: BuildRequest) {
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
    if (text === undefined) throw new ContextError(`cannot read the Dockerfile ${file}: no such file in ${path.relative(path.resolve(req.context), path.resolve(file)).startsWith('..') ? 'its directory' : 'the build context'}`);
    this.df = readDockerfile(text, file);
    try {
      this.plan = planBuild(this.df, { buildArgs: req.buildArgs, target: req.target, targetPlatform: req.platform, buildPlatform: hostPlatform() });
    } catch (e) {
      if (e instanceof DockerfileError) throw e.withSource(file, text);
      throw e;
    }
    // A Dockerfile from standard input has no ignore file of its own beside it: the context's .dockerignore.
    this.context = BuildContext.open(req.context, req.dockerfileText === undefined ? file : undefined);
  }

  async build(): Promise<BuildResult> {
    try {
      try {
        this.translation = await translate(this.plan, async (ref, platform, at) => (await this.baseImage(ref, platform, at)).config);
      } catch (e) {
        if (e instanceof DockerfileError) throw e.withSource(this.file, this.df.text);
        throw e;
      }
      const target = this.plan.target;
      const { state, time } = await this.stage(target);
      const config = structuredClone(this.stageOf(target).config);
      const c = (config.config ??= {});
      if (this.req.labels?.size) c.Labels = { ...c.Labels, ...Object.fromEntries(this.req.labels) };
      c.OnBuild ??= null;
      config.created = new Date((this.req.sourceDateEpoch ?? time) * 1000).toISOString();
      config.rootfs = { type: 'layers', diff_ids: state.layers.map((l) => l.diffID) };
      config.history = state.history;
      const configBytes = Buffer.from(JSON.stringify(orderedConfig(config)));
      const stored = await this.req.store.writeBlob(configBytes);
      const manifest: ImageManifest = {
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { mediaType: MediaType.dockerConfig, digest: stored.digest, size: stored.size },
        layers: state.layers.map((l) => l.descriptor),
      };
      const bytes = manifestBytes(manifest);
      await this.req.store.writeBlob(bytes);
      const root = parseManifest(bytes, MediaType.dockerManifest);
      return {
        image: new BuiltImage(root, configBytes, state.layers, this.req.store),
        digest: root.digest,
        imageID: stored.digest,
        platform: this.plan.targetPlatform,
        steps: this.steps,
        unusedBuildArgs: this.plan.unusedBuildArgs,
      };
    } finally {
      await this.sshAgents.close();
      for (const m of this.sourceMounts.splice(0)) await m.release();
      if (this.tmp) await rm(await this.tmp, { recursive: true, force: true });
      this.forgetTmp?.();
    }
  }

  private stageOf(index: number) {
    const s = this.translation?.stages.get(index);
    if (!s) throw new Error(`internal: stage ${index} was not translated`);
    return s;
  }

  private stage(index: number): Promise<StageResult> {
    let p = this.stages.get(index);
    if (!p) {
      p = this.runStage(index);
      this.stages.set(index, p);
    }
    return p;
  }

  /** A registry image for a platform: the tag resolved, the manifest picked, the config read; no layer fetched. */
  private baseImage(ref: string, platform: Platform, at?: Instruction): Promise<ResolvedImage> {
    const key = `${ref}|${formatPlatform(platform)}`;
    let p = this.images.get(key);
    if (!p) {
      p = (async () => {
        let parsed: Reference;
        try {
          parsed = parseReference(ref);
        } catch (e) {
          throw at ? stageError(at, e) : e;
        }
        const remote = await RemoteImage.open(this.req.client, parsed);
        let m;
        try {
          m = await platformManifest(remote, platform, ref);
        } catch (e) {
          if (e instanceof NoPlatformError && at) throw stageError(at, e);
          throw e;
        }
        if (m.kind !== 'manifest') throw new NoPlatformError(`${ref}: not an image manifest`);
        const config = parseImageConfig(await remote.readBlob(m.manifest.config));
        return { config, layers: remote.layers(m, config.rootfs.diff_ids) };
      })();
      this.images.set(key, p);
    }
    return p;
  }

  private async runStage(index: number): Promise<StageResult> {
    const ts = this.stageOf(index);
    // The stages this one needs start now, in parallel with each other.
    for (const d of this.plan.stages[index].deps) void this.stage(d).catch(() => undefined);
    let state: ImageState;
    let time = 0;
    const fromStarted = Date.now();
    if (ts.base.kind === 'scratch') {
      state = new ImageState([], []);
    } else if (ts.base.kind === 'stage') {
      const r = await this.stage(ts.base.index);
      state = r.state.clone();
      time = r.time;
    } else {
      const b = await this.baseImage(ts.base.ref, ts.platform, ts.from as Instruction);
      state = new ImageState([...b.layers], [...(b.config.history ?? [])]);
      const created = Date.parse(b.config.created ?? '');
      time = Number.isNaN(created) ? 0 : Math.floor(created / 1000);
    }
    const steps = ts.steps.length + 1;
    const from: StepReport = { stage: index, stageName: ts.name, instruction: ts.from.code, line: ts.from.line, position: 1, steps, cached: false, source: ts.base.kind === 'image' ? 'registry' : null, seconds: (Date.now() - fromStarted) / 1000 };
    this.req.onStepStart?.(from);
    this.steps.push(from);
    this.req.onStep?.(from);
    for (const [i, step] of ts.steps.entries()) {
      const started = Date.now();
      const start: StepStart = { stage: index, stageName: ts.name, instruction: step.at.code, line: step.at.line, position: i + 2, steps };
      this.currentStep.set(index, start);
      this.req.onStepStart?.(start);
      time = await this.runStep(step, state, time, index);
      const report: StepReport = { ...start, cached: false, source: null, seconds: (Date.now() - started) / 1000 };
      this.steps.push(report);
      this.req.onStep?.(report);
    }
    return { state, time };
  }

  /** One step: its op run (if it has one) and its result applied to the stage's image; answers the new time. */
  private async runStep(step: Step, state: ImageState, time: number, stageIndex: number): Promise<number> {
    const created = (t: number) => new Date((this.req.sourceDateEpoch ?? t) * 1000).toISOString();
    if (!step.op) {
      state.history.push({ created: created(time), created_by: step.createdBy, comment: historyComment, empty_layer: true });
      return time;
    }
    let result: OpResult;
    try {
      result = await this.exec(step.op, this.opContext(state, time, stageIndex));
    } catch (e) {
      if (e instanceof DockerfileError) throw e;
      if (stepErrors.some((k) => e instanceof k)) throw stageError(step.at, e);
      throw e;
    }
    const entry = { created: created(result.time), created_by: step.createdBy, comment: historyComment };
    if (!result.layer) {
      state.history.push({ ...entry, empty_layer: true });
      return result.time;
    }
    const l = result.layer;
    state.addLayer({ descriptor: { mediaType: l.mediaType, digest: l.digest, size: l.size }, diffID: l.diffID, sources: [] }, entry, l.headers);
    await this.req.store.writeLayerIndex(l.diffID, l.headers);
    return result.time;
  }

  private exec(op: Op, x: OpContext): Promise<OpResult> {
    switch (op.kind) {
      case 'copy':
        return execCopy(op, x);
      case 'mkdir':
        return execMkdir(op, x);
      case 'exec':
        return execRun(op, x);
    }
  }

  private opContext(state: ImageState, time: number, stageIndex: number): OpContext {
    return {
      store: this.req.store,
      client: this.req.client,
      sourceDateEpoch: this.req.sourceDateEpoch,
      context: this.context,
      state,
      time,
      stageIndex,
      scratchDir: () => this.scratchDir(),
      rootfs: (from) => this.rootfs(from),
      snapshots: (s) => this.snapshots(s),
      secrets: this.req.secrets ?? new Map(),
      ssh: this.sshAgents,
      mask: this.mask,
      output: (line) => {
        const step = this.currentStep.get(stageIndex);
        if (step) this.req.onOutput?.(step, line);
      },
    };
  }

  private async scratchDir(): Promise<string> {
    this.tmp ??= mkdtemp(path.join(this.req.store.root, 'tmp', `${process.pid}-build-`)).then((dir) => {
      this.forgetTmp = onInterrupt(() => removeSync(dir));
      return dir;
    });
    return mkdtemp(path.join(await this.tmp, 'rootfs-'));
  }

  /** A stage's or image's filesystem as a directory (for COPY --from and mounts), once per build. */
  private rootfs(from: StageSource): Promise<string> {
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
   * The unpacked snapshots of an image's layers, bottom first (unpacked once into the store). A layer that comes
   * again higher up (RUN steps that change nothing alike, the same COPY twice, a base built that way) is one
   * snapshot directory, and overlayfs refuses a directory twice among its lower dirs; its lower copy is left out,
   * which shows the same tree: the upper copy applies again all that layer holds (its files, whiteouts and opaque
   * directories) over whatever came between.
   */
  private async snapshots(state: ImageState): Promise<string[]> {
    const store = this.req.store;
    const out: string[] = [];
    for (const l of state.layers) {
      const snap = await store.useLayer(l, (open) => store.snapshot(l.diffID, async () => (await decompressed(await open())).stream, { whiteouts: 'overlay' }));
      out.push(snap.path);
    }
    return out.filter((dir, i) => out.indexOf(dir, i + 1) < 0);
  }

  /**
   * An image's filesystem as a directory: as root, a read-only overlay of its snapshots (a stage's RUN layers are
   * there already); otherwise, or where overlayfs cannot be mounted, every layer unpacked into a temp dir.
   */
  private async unpack(state: ImageState): Promise<string> {
    const dir = await this.scratchDir();
    if (process.getuid?.() === 0 && state.layers.length > 0 && this.overlaySources !== false) {
      try {
        const m = await mountOverlay(await this.snapshots(state), dir, { readOnly: true });
        this.sourceMounts.push(m);
        this.overlaySources = true;
        return m.merged;
      } catch (e) {
        if (!(e instanceof ExecError)) throw e;
        this.overlaySources = false;
      }
    }
    for (const l of state.layers) {
      await this.req.store.useLayer(l, async (open) => extractLayer((await decompressed(await open())).stream, dir, { whiteouts: 'apply' }));
    }
    return dir;
  }
}

export async function build(req: BuildRequest): Promise<BuildResult> {
  return new Solver(req).build();
}
