// The solver for Dockerfiles: the front end's plan (stages, the target, what each needs) executed stage by stage,
// independent stages in parallel. Each stage starts from scratch, a registry image (the tag resolved once, the
// platform picked from an index, no layer downloaded until a step needs the files) or an earlier stage, and each
// instruction either changes the config (a history entry with empty_layer) or writes a layer into the store.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod as chmodFile, chown, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { cleanPath, IgnoreMatcher, parseDockerignore } from '../dockerfile/dockerignore.js';
import { DockerfileError } from '../dockerfile/errors.js';
import { type Dockerfile, readDockerfile } from '../dockerfile/dockerfile.js';
import type { Instruction } from '../dockerfile/instructions.js';
import { parseInstruction } from '../dockerfile/instructions.js';
import { parse } from '../dockerfile/parser.js';
import { type BuildPlan, planBuild } from '../dockerfile/plan.js';
import { StageScope } from '../dockerfile/scope.js';
import { defaultPathEnv, parseEnv } from '../image/env.js';
import { type Descriptor, type ImageConfig, type ImageManifest, manifestBytes, type ParsedManifest, parseImageConfig, parseManifest } from '../image/manifest.js';
import { MediaType } from '../image/media-types.js';
import { formatPlatform, hostPlatform, type Platform } from '../image/platform.js';
import { parseReference, type Reference } from '../image/reference.js';
import { type ImageSource, NoPlatformError, platformManifest } from '../image/source.js';
import { CompressionError, decompressed } from '../layer/compression.js';
import { resolveInside, RootedPathError } from '../layer/rooted.js';
import { TarError } from '../layer/tar.js';
import { extractLayer } from '../layer/extract.js';
import { writeLayer, type WrittenLayer } from '../layer/writer.js';
import type { RegistryClient, Repo } from '../registry/client.js';
import { RemoteImage } from '../registry/source.js';
import type { Store } from '../store/store.js';
import { ArchiveError, archiveKind, openArchive } from './archive.js';
import { download, isURL } from './http-source.js';
import { type ChmodFn, parseChmod } from './chmod.js';
import { FsIndex } from '../layer/fs-index.js';
import { BuildContext, ContextError, type ContextPath, readInside } from './context.js';
import { CopyError, type CopySource, planCopy } from './copy.js';
import type { Owner } from './users.js';
import { applyMetadata, type MetadataContext } from './metadata.js';
import { ImageState, readImageFile } from './state.js';
import { type Layer, repositoryOf } from '../layer/layer.js';
import { type ExecUser, needsLookup, resolveExecUser, resolveOwner, UserError } from './users.js';
import { upperDirEntries } from '../exec/diff.js';
import { onInterrupt, removeSync } from '../exec/cleanup.js';
import { secretDirPrefix } from '../exec/leftovers.js';
import { ExecError, mountOverlay, type OverlayMount } from '../exec/overlay.js';
import { findRuntime, runContainer } from '../exec/runc.js';
import { runSpec } from '../exec/spec.js';
import { agentProxy, SshAgents } from '../exec/ssh.js';
import { SecretMask } from '../exec/mask.js';
import { cacheMountDir } from '../store/cache-mounts.js';
import { copyTree, type MountSpec, parseMount, secretValue, throwawayCopy, writeSecretFile } from '../exec/mounts.js';
import type { SecretSource } from '../exec/mounts.js';

const mkdirp = (p: string) => mkdir(p, { recursive: true });

const haveXattrTools = () => spawnSync('sh', ['-c', 'command -v getfattr && command -v setfattr'], { stdio: 'ignore' }).status === 0;

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

const historyComment = 'buildkit.dockerfile.v0';

/** RUN reached without root: the command may run the build again under sudo. */
export class NeedsRootError extends Error {
  override readonly name = 'NeedsRootError';
  constructor() {
    super('RUN needs root for its overlay mount and container: run hoist as root, or as a user with passwordless sudo');
  }
}

/** The built image as an ImageSource: our layers from the store, the base's from their registry. */
export class BuiltImage implements ImageSource {
  constructor(
    readonly root: ParsedManifest,
    readonly configBytes: Buffer,
    private readonly layers: Layer[],
    private readonly store: Store,
  ) {}
  async manifest(): Promise<ParsedManifest> {
    return this.root;
  }
  async openBlob(desc: Descriptor): Promise<Readable> {
    const l = this.layers.find((x) => x.descriptor.digest === desc.digest);
    if (l) return this.store.openLayer(l);
    return this.store.openBlob(desc.digest);
  }
  async readBlob(desc: Descriptor): Promise<Buffer> {
    return this.store.readBlob(desc.digest);
  }
  originOf(digest: string): Repo | undefined {
    const l = this.layers.find((x) => x.descriptor.digest === digest);
    return l && repositoryOf(l);
  }
}

/** Config fields BuildKit's image struct knows; others of a base config (container_config, …) are not carried. */
const configKeys = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'ArgsEscaped', 'Healthcheck', 'OnBuild', 'Shell'];

function baseConfig(base: ImageConfig): ImageConfig {
  const runtime: Record<string, unknown> = {};
  for (const k of configKeys) if (base.config?.[k] !== undefined) runtime[k] = base.config[k];
  const out: ImageConfig = { architecture: base.architecture, os: base.os, config: runtime, rootfs: { type: 'layers', diff_ids: [...base.rootfs.diff_ids] }, history: [...(base.history ?? [])] };
  if (base.variant) out.variant = base.variant;
  if (base['os.version']) out['os.version'] = base['os.version'];
  if (base['os.features']) out['os.features'] = base['os.features'];
  if (base.author) out.author = base.author;
  if (base.created) out.created = base.created;
  return out;
}

function stageError(ins: Instruction, e: unknown, hint?: string): DockerfileError {
  return new DockerfileError((e as Error).message, { line: ins.line, endLine: ins.endLine }, { hint });
}

interface StageResult {
  state: ImageState;
  /** newest input time so far (seconds) */
  time: number;
  /**
   * the ARG values in the stage's environment at its end (its own and those it inherited): a stage built FROM it
   * sees them too, as BuildKit's llb state carries them, though neither its config nor its RUN history shows them
   */
  argValues: Map<string, string>;
}

export class Builder {
  private readonly df: Dockerfile;
  private readonly plan: BuildPlan;
  private readonly context: BuildContext;
  private readonly steps: StepReport[] = [];
  private readonly stages = new Map<number, Promise<StageResult>>();
  private readonly rootfsDirs = new Map<string, Promise<string>>();
  private readonly images = new Map<string, Promise<ImageState>>();
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
      const target = this.plan.target;
      const { state, time } = await this.stage(target);
      const final = state.clone();
      if (this.req.labels?.size) {
        final.runtime.Labels = { ...final.runtime.Labels, ...Object.fromEntries(this.req.labels) };
      }
      const created = new Date((this.req.sourceDateEpoch ?? time) * 1000).toISOString();
      final.config.created = created;
      final.runtime.OnBuild ??= null;
      const config = orderedConfig(final.config);
      const configBytes = Buffer.from(JSON.stringify(config));
      const stored = await this.req.store.writeBlob(configBytes);
      const manifest: ImageManifest = {
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { mediaType: MediaType.dockerConfig, digest: stored.digest, size: stored.size },
        layers: final.layers.map((l) => l.descriptor),
      };
      const bytes = manifestBytes(manifest);
      await this.req.store.writeBlob(bytes);
      const root = parseManifest(bytes, MediaType.dockerManifest);
      return {
        image: new BuiltImage(root, configBytes, final.layers, this.req.store),
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

  private stage(index: number): Promise<StageResult> {
    let p = this.stages.get(index);
    if (!p) {
      p = this.runStage(index);
      this.stages.set(index, p);
    }
    return p;
  }

  private async baseImage(ref: string, platform: Platform, at: Instruction): Promise<ImageState> {
    const key = `${ref}|${formatPlatform(platform)}`;
    let p = this.images.get(key);
    if (!p) {
      p = (async () => {
        let parsed: Reference;
        try {
          parsed = parseReference(ref);
        } catch (e) {
          throw stageError(at, e);
        }
        const remote = await RemoteImage.open(this.req.client, parsed);
        let m: ParsedManifest;
        try {
          m = await platformManifest(remote, platform, ref);
        } catch (e) {
          if (e instanceof NoPlatformError) throw stageError(at, e);
          throw e;
        }
        if (m.kind !== 'manifest') throw stageError(at, new Error(`${ref}: not an image manifest`));
        const config = parseImageConfig(await remote.readBlob(m.manifest.config));
        const layers = remote.layers(m, config.rootfs.diff_ids);
        return new ImageState(baseConfig(config), layers);
      })();
      this.images.set(key, p);
    }
    return (await p).clone();
  }

  private async runStage(index: number): Promise<StageResult> {
    const planned = this.plan.stages[index];
    const stage = planned.stage;
    const platform = planned.platform ?? this.plan.targetPlatform;
    // The stages this one needs start now, in parallel with each other.
    for (const d of planned.deps) void this.stage(d).catch(() => undefined);
    let state: ImageState;
    let time = 0;
    let inheritedArgs = new Map<string, string>();
    const base = planned.base;
    const fromStarted = Date.now();
    if (base.kind === 'scratch') {
      // BuildKit's empty image: the default PATH and WorkingDir "/".
      state = ImageState.scratch({ architecture: platform.architecture, os: platform.os, ...(platform.variant ? { variant: platform.variant } : {}), config: { Env: [`PATH=${defaultPathEnv}`], WorkingDir: '/' }, rootfs: { type: 'layers', diff_ids: [] }, history: [] });
    } else if (base.kind === 'stage') {
      const r = await this.stage(base.index);
      state = r.state.clone();
      time = r.time;
      inheritedArgs = r.argValues;
    } else {
      state = await this.baseImage(base.ref, platform, stage.from);
      // An image without PATH gets the default one, as BuildKit gives it.
      if (!(state.runtime.Env ?? []).some((e) => e.startsWith('PATH='))) state.runtime.Env = [...(state.runtime.Env ?? []), `PATH=${defaultPathEnv}`];
      const created = Date.parse(state.config.created ?? '');
      time = Number.isNaN(created) ? 0 : Math.floor(created / 1000);
    }
    delete state.config.created;
    const env = parseEnv(state.runtime.Env);
    const scope = new StageScope({ escapeToken: this.df.escapeToken, globalArgs: this.plan.globalArgs, buildArgs: this.plan.buildArgs, baseEnv: env, inheritedArgs });
    const meta: MetadataContext = { cmdSet: false };
    const triggers = state.runtime.OnBuild ?? [];
    state.runtime.OnBuild = null;
    const onbuild = triggers.map((t) => {
      const parsed = parse(t + '\n', { file: `ONBUILD of ${stage.from.image}` });
      return parseInstruction(parsed.nodes[0]);
    });
    const ctx = { index, state, time };
    const all = [...onbuild, ...stage.commands];
    const steps = all.length + 1;
    const from: StepReport = { stage: index, stageName: stage.name, instruction: stage.from.code, line: stage.from.line, position: 1, steps, cached: false, source: base.kind === 'image' ? 'registry' : null, seconds: (Date.now() - fromStarted) / 1000 };
    this.req.onStepStart?.(from);
    this.steps.push(from);
    this.req.onStep?.(from);
    for (const [i, ins] of all.entries()) {
      const started = Date.now();
      const start: StepStart = { stage: index, stageName: stage.name, instruction: ins.code, line: ins.line, position: i + 2, steps };
      this.currentStep.set(index, start);
      this.req.onStepStart?.(start);
      await this.step(ins, scope, meta, ctx, planned.sources.get(ins));
      const report: StepReport = { ...start, cached: false, source: null, seconds: (Date.now() - started) / 1000 };
      this.steps.push(report);
      this.req.onStep?.(report);
    }
    return { state: ctx.state, time: ctx.time, argValues: scope.argValues() };
  }

  /** A layer this build wrote, on top of `state` with its history entry; the index learns it from its headers. */
  private async addWritten(state: ImageState, layer: WrittenLayer, createdBy: string, time: number): Promise<void> {
    const descriptor = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
    state.addLayer({ descriptor, diffID: layer.diffID, sources: [] }, { created: this.created(time), created_by: createdBy, comment: historyComment }, layer.headers);
    await this.req.store.writeLayerIndex(layer.diffID, layer.headers);
  }

  private created(t: number): string {
    return new Date((this.req.sourceDateEpoch ?? t) * 1000).toISOString();
  }

  private async step(ins: Instruction, scope: StageScope, meta: MetadataContext, ctx: { index: number; state: ImageState; time: number }, source: ReturnType<BuildPlan['stages'][number]['sources']['get']>): Promise<void> {
    const state = ctx.state;
    if (ins.kind === 'arg') {
      const args = scope.applyArg(ins);
      const text = args.map((a) => (a.value === undefined ? a.key : `${a.key}=${a.value}`)).join(' ');
      state.history({ created: this.created(ctx.time), created_by: `ARG ${text}`, comment: historyComment, empty_layer: true });
      return;
    }
    if (ins.kind === 'env') {
      const pairs = scope.applyEnv(ins);
      const text = applyMetadata(state, { ...ins, pairs }, meta) as string;
      state.history({ created: this.created(ctx.time), created_by: text, comment: historyComment, empty_layer: true });
      return;
    }
    const x = scope.expandInstruction(ins);
    const history = applyMetadata(state, x, meta);
    if (history === '') return;
    if (history !== undefined) {
      state.history({ created: this.created(ctx.time), created_by: history, comment: historyComment, empty_layer: true });
      return;
    }
    try {
      await this.dispatchFiles(x, ctx, source, scope);
    } catch (e) {
      if (e instanceof DockerfileError) throw e;
      if (e instanceof UserError || e instanceof ContextError || e instanceof CopyError || e instanceof ExecError || e instanceof ArchiveError || e instanceof TarError || e instanceof CompressionError || e instanceof RootedPathError) throw stageError(x, e);
      throw e;
    }
  }

  private async dispatchFiles(x: Instruction, ctx: { index: number; state: ImageState; time: number }, source: ReturnType<BuildPlan['stages'][number]['sources']['get']>, scope: StageScope): Promise<void> {
    switch (x.kind) {
      case 'workdir':
        return this.workdir(x.path, ctx);
      case 'copy':
      case 'add':
        return this.copy(x, ctx, source, scope);
      case 'run':
        return this.run(x, ctx, scope);
      case 'from':
        return;
      default:
        throw stageError(x, new Error(`${x.keyword} is not supported here`));
    }
  }

  private async workdir(p: string, ctx: { state: ImageState; time: number }): Promise<void> {
    const state = ctx.state;
    const wd = path.posix.join('/', p.startsWith('/') ? '' : state.runtime.WorkingDir ?? '/', p);
    state.runtime.WorkingDir = wd;
    const fs = await state.fs(this.req.store, this.req.client);
    // Made where the path leads inside the image: symlinked parents (a merged /usr's /lib → usr/lib) are followed
    // as BuildKit's mkdir follows them, never replaced by a directory.
    const parts = fs.resolve(wd, true).split('/').filter(Boolean);
    const owner = await this.owner(state.runtime.User, ctx.state);
    const entries = [];
    for (let i = 1; i <= parts.length && !fs.isDirectory(parts.join('/')); i++) {
      const dir = parts.slice(0, i).join('/');
      if (fs.isDirectory(dir)) {
        // Repeated with its own attributes (see planCopy): the layer must stand on its own as an overlay lower dir.
        const existing = fs.lookup(dir);
        if (i < parts.length && existing?.header.type === 'directory') entries.push({ header: { ...existing.header, name: dir, size: 0 } });
        continue;
      }
      entries.push({ header: { name: dir, type: 'directory' as const, mode: 0o755, uid: owner.uid, gid: owner.gid, size: 0, mtime: this.req.sourceDateEpoch ?? ctx.time } });
    }
    const createdBy = `WORKDIR ${wd}`;
    // Always a layer, empty when the directory was there already: BuildKit's mkdir is a filesystem step.
    const layer = await writeLayer(this.req.store, entries, { sourceDateEpoch: this.req.sourceDateEpoch });
    await this.addWritten(state, layer, createdBy, ctx.time);
  }

  /** USER or --chown as uid/gid: numbers as they are, names from the image's /etc/passwd and /etc/group. */
  private async owner(spec: string | undefined, state: ImageState): Promise<Owner> {
    if (!spec) return { uid: 0, gid: 0 };
    if (!needsLookup(spec)) return resolveOwner(spec, {});
    const read = async (f: string) => (await readImageFile(state, this.req.store, this.req.client, f))?.toString('utf8');
    return resolveOwner(spec, { passwd: await read('/etc/passwd'), group: await read('/etc/group') });
  }

  /**
   * The user a RUN step runs as (resolveExecUser): the image's passwd and group are read unless USER is
   * `uid:gid`, from the step's mounted root (`merged`), each path resolved inside it (src/layer/rooted.ts).
   */
  private async execUser(spec: string | undefined, merged: string): Promise<ExecUser> {
    if (!spec || /^\d+:\d+$/.test(spec)) return resolveExecUser(spec ?? '', {});
    const read = async (f: string) => {
      const r = resolveInside(merged, f, { followLast: true });
      return r.stats?.isFile() ? readFile(r.abs, 'utf8') : undefined;
    };
    return resolveExecUser(spec, { passwd: await read('/etc/passwd'), group: await read('/etc/group') });
  }

  private async copy(ins: Extract<Instruction, { kind: 'copy' | 'add' }>, ctx: { index: number; state: ImageState; time: number }, source: ReturnType<BuildPlan['stages'][number]['sources']['get']>, scope: StageScope): Promise<void> {
    const state = ctx.state;
    let from: BuildContext = this.context;
    if (source) {
      const dir = source.kind === 'stage' ? await this.stageRootfs(source.index) : await this.imageRootfs(source.ref, ins);
      from = BuildContext.plain(dir);
    }
    if (ins.kind !== 'add' && ins.sources.some(isURL)) throw stageError(ins, new Error('source can\'t be a URL for COPY'), 'use ADD for a URL');
    if (ins.kind === 'add' && ins.checksum !== undefined && (ins.sources.length !== 1 || !isURL(ins.sources[0]))) {
      throw stageError(ins, new Error('--checksum needs exactly one http(s) source'));
    }
    const sources: CopySource[] = [];
    try {
      for (const s of ins.sources) {
        if (isURL(s)) {
          const dir = await this.scratchDir();
          let file: string;
          try {
            file = await download(s, dir, { checksum: ins.kind === 'add' ? ins.checksum : undefined, fallbackTime: this.req.sourceDateEpoch ?? ctx.time });
          } catch (e) {
            throw stageError(ins, e);
          }
          sources.push({ path: (await BuildContext.plain(dir).resolve(path.basename(file)))[0] });
          continue;
        }
        for (const p of await from.resolve(s)) {
          const kind = ins.kind === 'add' && !source && p.stats.isFile() ? await archiveKind(p.abs) : undefined;
          if (kind) {
            // A local archive is unpacked into the destination, like `tar -x` (owners and times from the archive).
            const dir = await this.scratchDir();
            try {
              await extractLayer(openArchive(p.abs, kind), dir, { whiteouts: 'none' });
            } catch (e) {
              if (e instanceof TarError || e instanceof CompressionError || e instanceof ArchiveError) throw stageError(ins, new Error(`cannot unpack ${p.rel}: ${e.message}`));
              throw e;
            }
            const unpacked = BuildContext.plain(dir);
            const top = (await unpacked.resolve('.'))[0];
            sources.push({ path: { ...top, rel: '' }, keepOwner: true, children: await unpacked.walk(top) });
            continue;
          }
          const pivot = s.indexOf('/./');
          const parentsPath = pivot >= 0 ? path.posix.relative(cleanPath(s.slice(0, pivot).replace(/^\/+/, '') || '.').replace(/^\.$/, ''), p.rel) : undefined;
          // A stage's or image's files keep their owners unless --chown says otherwise (BuildKit copies them with
          // their uid/gid); the context's become 0:0.
          sources.push({ path: p, keepOwner: source !== undefined && ins.chown === undefined, children: p.stats.isDirectory() ? await from.walk(p) : undefined, parentsPath });
        }
      }
    } catch (e) {
      if (e instanceof ContextError) throw stageError(ins, e, source ? undefined : `the context is ${this.context.dir}`);
      throw e;
    }
    // Heredoc sources (COPY <<EOF /dest): files named after their delimiter, 0644, variables expanded unless the
    // delimiter was quoted.
    if (ins.inline.length > 0) {
      const dir = await this.scratchDir();
      const lex = scope.lex.with({ rawQuotes: true, rawEscapes: true });
      const inlineRoot = BuildContext.plain(dir);
      const mtime = this.req.sourceDateEpoch ?? ctx.time;
      for (const f of ins.inline) {
        let data = f.data;
        if (f.expand) {
          try {
            data = lex.process(data, scope.vars).result;
          } catch (e) {
            throw stageError(ins, e);
          }
        }
        const file = path.join(dir, f.name);
        await writeFile(file, data, { mode: 0o644 });
        await chmodFile(file, 0o644);
        await utimes(file, mtime, mtime);
        sources.push({ path: (await inlineRoot.resolve(f.name))[0] });
      }
    }
    let newest = ctx.time;
    for (const s of sources) for (const p of [s.path, ...(s.children ?? [])]) newest = Math.max(newest, Math.floor(p.stats.mtimeMs / 1000));
    if (!source) ctx.time = newest;
    let owner: Owner | undefined;
    try {
      owner = ins.chown ? await this.owner(ins.chown, state) : undefined;
    } catch (e) {
      throw stageError(ins, e);
    }
    let chmod: ChmodFn | undefined;
    try {
      chmod = ins.chmod === undefined ? undefined : parseChmod(ins.chmod);
    } catch (e) {
      throw stageError(ins, e);
    }
    const exclude = ins.exclude.length ? new IgnoreMatcher(ins.exclude.flatMap((p) => parseDockerignore(scope.expand(p, ins)))) : undefined;
    // --link: the layer is made on an empty filesystem, as BuildKit makes it, so it does not depend on the base
    // (and the base's layers need not be fetched). Otherwise the destination is looked up in the image.
    const target = ins.link ? new FsIndex() : await state.fs(this.req.store, this.req.client);
    let entries;
    try {
      entries = planCopy(sources, { dest: ins.dest, workdir: state.runtime.WorkingDir ?? '/', owner, chmod, created: this.req.sourceDateEpoch ?? ctx.time, fs: target, parents: ins.kind === 'copy' && ins.parents, exclude });
    } catch (e) {
      if (e instanceof CopyError) throw stageError(ins, e);
      throw e;
    }
    const layer = await writeLayer(this.req.store, entries, { sourceDateEpoch: this.req.sourceDateEpoch });
    const flags = [ins.kind === 'copy' && ins.parents ? '--parents' : '', ins.chown !== undefined ? `--chown=${ins.chown}` : '', ins.chmod !== undefined ? `--chmod=${ins.chmod}` : ''].filter(Boolean);
    const createdBy = `${ins.kind.toUpperCase()} ${[...flags, ...ins.sources, ...ins.inline.map((f) => `<<${f.name}`), ins.dest].join(' ')} # buildkit`;
    await this.addWritten(state, layer, createdBy, ctx.time);
  }

  /** RUN: the step's process in the OCI runtime over an overlay of the image; the upper dir is the new layer. */
  private async run(ins: Extract<Instruction, { kind: 'run' }>, ctx: { index: number; state: ImageState; time: number }, scope: StageScope): Promise<void> {
    const state = ctx.state;
    // As BuildKit's parser: any other mode is an error at the line, not the host's network (commands_runnetwork.go).
    if (ins.network !== undefined && !['default', 'none', 'host'].includes(ins.network)) throw new ExecError(`unsupported network mode ${JSON.stringify(ins.network)}: RUN --network takes default, none or host`);
    // security=insecure needs an entitlement BuildKit grants only on request (--allow security.insecure); hoist
    // grants none, so it is refused rather than run sandboxed without saying so.
    if (ins.security !== undefined && ins.security !== 'sandbox') throw new ExecError(`RUN --security=${ins.security} is not allowed: hoist runs every step sandboxed (--security=sandbox)`);
    const runtime = findRuntime();
    if (!runtime) throw new ExecError('RUN needs an OCI runtime: install runc (apt-get install runc) or crun');
    if (process.getuid?.() !== 0) throw new NeedsRootError();
    // Opaque directories live in an xattr that only these tools read and write here; without them a layer
    // would silently bring back what a step deleted.
    if (!haveXattrTools()) throw new ExecError('RUN needs getfattr and setfattr to read and write overlayfs whiteouts: install them (apt-get install attr)');
    const store = this.req.store;
    const lowers = await this.snapshots(state);
    const lower = await state.fs(store, this.req.client);
    const scratch = await this.scratchDir();
    const mount = await mountOverlay(lowers, scratch);
    // What this step's mounts hold (cache locks, secret files, ssh proxies), undone when it ends.
    const cleanup: (() => Promise<void>)[] = [];
    try {
      const c = state.runtime;
      const owner = await this.execUser(c.User, mount.merged);
      const cwd = c.WorkingDir || '/';
      // Made where the path leads inside the image (its symlinks resolved there): joined to the host path as it
      // is, an image's absolute symlink (`w -> /etc`) would have mkdir write outside the root.
      await mkdirp(resolveInside(mount.merged, cwd, { followLast: true }).abs);
      const env = new Map([...parseEnv(c.Env)].map(([k, v]) => [k, `${k}=${v}`] as const));
      const argPrefix: string[] = [];
      for (const [k, v] of scope.inheritedArgs) if (!env.has(k)) env.set(k, `${k}=${v}`);
      for (const [k, v] of scope.args) if (v !== undefined && !env.has(k)) env.set(k, `${k}=${v}`);
      // The history names every ARG in scope, valued from the step's environment (so an ENV of the same name
      // wins), an ARG without a value as `K=` (dockerfile2llb runCommandString).
      for (const [k, v] of scope.args) argPrefix.push(env.get(k) ?? `${k}=${v ?? ''}`);
      if (!env.has('PATH')) env.set('PATH', `PATH=${defaultPathEnv}`);
      // Proxy build args reach every RUN without an ARG, in both spellings, and stay out of the history
      // (dockerfile2llb proxyEnvFromBuildArgs, the executor's proxyEnvList).
      for (const [k, v] of this.req.buildArgs ?? []) {
        const key = k.toLowerCase();
        if (!['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy'].includes(key)) continue;
        for (const name of [key.toUpperCase(), key]) if (!env.has(name)) env.set(name, `${name}=${v}`);
      }
      const shell = c.Shell ?? ['/bin/sh', '-c'];
      let args = ins.command.prependShell ? [...shell, ins.command.args.join(' ')] : [...ins.command.args];
      const extraMounts: object[] = [];
      const targets: string[] = [];
      // Heredocs, as dockerfile2llb dispatchRun treats them: a lone heredoc with #! is written to /dev/pipes and
      // run; a lone heredoc without is the shell's script; anything else is handed to the shell whole.
      const files = ins.command.files;
      if (files.length > 0) {
        const lone = ins.command.args.length === 1 && /^<<-?["']?[A-Za-z0-9_]+["']?$/.test(ins.command.args[0].trim());
        if (lone && files[0].data.startsWith('#!')) {
          const pipes = await mkdtemp(path.join(scratch, 'pipes-'));
          await writeFile(path.join(pipes, files[0].name), files[0].data, { mode: 0o755 });
          extraMounts.push({ destination: '/dev/pipes', type: 'bind', source: pipes, options: ['rbind', 'ro'] });
          args = [`/dev/pipes/${files[0].name}`];
        } else if (lone) {
          args = [...shell, files[0].data];
        } else {
          args = [...shell, files.reduce((full, f) => `${full}\n${f.data}${f.name}`, ins.command.args[0])];
        }
      }
      for (const m of ins.mounts.map((t) => parseMount(t, cwd))) {
        targets.push(m.target);
        extraMounts.push(...(await this.runMount(m, env, scratch, ins, cleanup)));
      }
      const hosts = path.join(scratch, `hosts-${ctx.index}`);
      await writeFile(hosts, '127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n');
      const resolv = path.join(scratch, `resolv-${ctx.index}`);
      await writeFile(resolv, await readFile('/etc/resolv.conf').catch(() => Buffer.from('nameserver 8.8.8.8\n')));
      const spec = runSpec({ root: mount.merged, args, env: [...env.values()], cwd, uid: owner.uid, gid: owner.gid, additionalGids: owner.additionalGids, hostname: 'buildkitsandbox', hostsFile: hosts, resolvConf: resolv, network: ins.network === 'none' ? 'none' : 'host', mounts: extraMounts });
      const result = await runContainer(runtime, spec, scratch, (line) => {
        const step = this.currentStep.get(ctx.index);
        if (step) this.req.onOutput?.(step, this.mask.apply(line));
      });
      if (result.exitCode !== 0) {
        throw new ExecError(`process ${JSON.stringify(args.join(' '))} did not complete successfully: exit code: ${result.exitCode}${result.tail.length ? `\n${result.tail.slice(-10).map((l) => this.mask.apply(l)).join('\n')}` : ''}`);
      }
      const { entries, dropped } = await upperDirEntries(mount.upper, lower, targets);
      const createdBy = `RUN ${argPrefix.length ? `|${argPrefix.length} ${argPrefix.join(' ')} ` : ''}${args.join(' ')} # buildkit`;
      if (entries.length === 0) {
        state.history({ created: this.created(ctx.time), created_by: createdBy, comment: historyComment, empty_layer: true });
        return;
      }
      const layer = await writeLayer(store, entries, { sourceDateEpoch: this.req.sourceDateEpoch });
      await this.addWritten(state, layer, createdBy, ctx.time);
      // The upper dir, less what the layer leaves out, is already this layer unpacked in overlay form: it becomes
      // the layer's snapshot instead of unpacking the new layer again for the next step. Like BuildKit's
      // snapshots, it keeps what only the exported tar drops (other xattrs; times before SOURCE_DATE_EPOCH).
      await mount.unmount();
      for (const d of dropped.sort().reverse()) await rm(path.join(mount.upper, d), { recursive: true, force: true });
      await store.adoptSnapshot(layer.diffID, mount.upper);
    } finally {
      await mount.release();
      for (const undo of cleanup.reverse()) await undo();
    }
  }

  /** The OCI mounts of one RUN --mount (cache dirs in the store, secrets on a tmpfs, binds of stages or context). */
  private async runMount(m: MountSpec, env: Map<string, string>, scratch: string, ins: Instruction, cleanup: (() => Promise<void>)[]): Promise<object[]> {
    switch (m.type) {
      case 'tmpfs':
        return [{ destination: m.target, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', ...(m.size ? [`size=${m.size}`] : [])] }];
      case 'bind': {
        const source = await this.mountSource(m.from, m.source, ins);
        if (!m.rw) return [{ destination: m.target, type: 'bind', source: source.abs, options: ['rbind', 'ro'] }];
        return [{ destination: m.target, type: 'bind', source: await this.writableView(source, scratch, cleanup), options: ['rbind', 'rw'] }];
      }
      case 'cache': {
        const dir = await cacheMountDir(path.join(this.req.store.root, 'cache-mounts'), m, cleanup);
        // from= seeds a new cache with a directory of a stage or image (BuildKit: the cache starts as a copy of it).
        if (m.from && (await readdir(dir)).length === 0) copyTree((await this.mountSource(m.from, m.source, ins)).abs, dir);
        return [{ destination: m.target, type: 'bind', source: dir, options: ['rbind', m.readonly ? 'ro' : 'rw'] }];
      }
      case 'secret': {
        const data = await secretValue(this.req.secrets?.get(m.id));
        if (data) this.mask.add(data);
        if (!data) {
          if (m.required) throw new ExecError(`secret ${m.id} is required but was not given; pass --secret id=${m.id},src=FILE`);
          return [];
        }
        if (m.env) env.set(m.env, `${m.env}=${data.toString('utf8')}`);
        if (!m.target) return [];
        // Secrets stay on a tmpfs (/dev/shm) and are bound read-only: never in the upper dir, never in a layer.
        const dir = await mkdtemp(secretDirPrefix(existsSync('/dev/shm') ? '/dev/shm' : scratch));
        const forget = onInterrupt(() => removeSync(dir));
        cleanup.push(async () => {
          await rm(dir, { recursive: true, force: true });
          forget();
        });
        const file = await writeSecretFile(dir, m.id, data, m.mode);
        await chown(file, m.uid, m.gid).catch(() => undefined);
        return [{ destination: m.target, type: 'bind', source: file, options: ['rbind', 'ro'] }];
      }
      case 'ssh': {
        // As BuildKit: an ssh mount needs `--ssh ID`; without it the mount is left out, or the step fails if required.
        if (!this.sshAgents.has(m.id)) {
          if (m.required) throw new ExecError(`RUN --mount=type=ssh,id=${m.id} is required: pass --ssh ${m.id} (the agent of SSH_AUTH_SOCK) or --ssh ${m.id}=SOCKET|KEY`);
          return [];
        }
        const proxy = await agentProxy(await this.sshAgents.socket(m.id), m);
        cleanup.push(() => proxy.close());
        if (!env.has('SSH_AUTH_SOCK')) env.set('SSH_AUTH_SOCK', `SSH_AUTH_SOCK=${m.target}`);
        return [{ destination: m.target, type: 'bind', source: proxy.path, options: ['rbind', 'rw'] }];
      }
    }
  }

  /**
   * What a mount's `source` names in its `from` (a stage by name or index, else an image) or in the context,
   * resolved inside that root: a symlink there (`link -> /etc`) leads to the root's own files, never the host's.
   */
  private async mountSource(from: string | undefined, source: string, at: Instruction): Promise<ContextPath> {
    let root = this.context;
    if (from !== undefined) {
      const stages = this.plan.stages;
      const byName = stages.findIndex((p) => p.stage.name === from.toLowerCase());
      const index = byName >= 0 ? byName : /^\d+$/.test(from) && Number(from) < stages.length ? Number(from) : -1;
      root = BuildContext.plain(index >= 0 ? await this.stageRootfs(index) : await this.imageRootfs(from, at));
    }
    const found = root.find(source);
    if (!found) throw new ExecError(`--mount source ${JSON.stringify(source)} not found in ${from === undefined ? 'the build context' : from}`);
    return found;
  }

  /**
   * What a `rw` bind mount shows: a directory under an overlay with a scratch upper dir (the step's writes land
   * there and go with it; nothing is copied), a file or a tree overlayfs cannot stack on as a throwaway copy.
   */
  private async writableView(source: ContextPath, scratch: string, cleanup: (() => Promise<void>)[]): Promise<string> {
    if (source.stats.isDirectory() && process.getuid?.() === 0) {
      try {
        const m = await mountOverlay([source.abs], scratch);
        cleanup.push(() => m.release());
        return m.merged;
      } catch (e) {
        if (!(e instanceof ExecError)) throw e;
      }
    }
    return throwawayCopy(source.abs, scratch);
  }

  private async scratchDir(): Promise<string> {
    this.tmp ??= mkdtemp(path.join(this.req.store.root, 'tmp', `${process.pid}-build-`)).then((dir) => {
      this.forgetTmp = onInterrupt(() => removeSync(dir));
      return dir;
    });
    return mkdtemp(path.join(await this.tmp, 'rootfs-'));
  }

  /** A stage's filesystem unpacked (for COPY --from), once per build. */
  private stageRootfs(index: number): Promise<string> {
    const key = `stage:${index}`;
    let p = this.rootfsDirs.get(key);
    if (!p) {
      p = (async () => this.unpack((await this.stage(index)).state))();
      this.rootfsDirs.set(key, p);
    }
    return p;
  }

  private imageRootfs(ref: string, at: Instruction): Promise<string> {
    const key = `image:${ref}`;
    let p = this.rootfsDirs.get(key);
    if (!p) {
      p = (async () => this.unpack(await this.baseImage(ref, this.plan.targetPlatform, at)))();
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

/** The config's keys in the order BuildKit's exporter writes them, so equal images serialise to equal bytes. */
function orderedConfig(c: ImageConfig): ImageConfig {
  const order = ['architecture', 'author', 'config', 'created', 'history', 'os', 'os.version', 'os.features', 'rootfs', 'variant'];
  const out: Record<string, unknown> = {};
  for (const k of order) if (c[k] !== undefined) out[k] = c[k];
  for (const k of Object.keys(c)) if (!(k in out)) out[k] = c[k];
  return out as ImageConfig;
}

export async function build(req: BuildRequest): Promise<BuildResult> {
  return new Builder(req).build();
}

