// The Dockerfile side of a build, as BuildKit's dockerfile2llb is: the plan's stages turned into what each step does
// (an op: copy, mkdir, exec; or a change of the config alone), with the config each stage ends with and the history
// text of every step. It runs nothing and reads nothing: a base image's config comes through the resolver it is
// given. Every word is expanded and every flag checked here, so a bad ${…} or a refused value fails at its line
// before any step runs.
import path from 'node:path';
import { defaultPathEnv, parseEnv } from '../image/env.js';
import type { ImageConfig } from '../image/manifest.js';
import type { Platform } from '../image/platform.js';
import { ChmodError, parseChmod } from './chmod.js';
import { DockerfileError } from './errors.js';
import { type Instruction, parseInstruction, type RunInstruction } from './instructions.js';
import { applyMetadata, defaultShell, type MetadataContext } from './metadata.js';
import { MountError, type MountSpec, parseMount } from './mounts.js';
import { parse } from './parser.js';
import { type BuildPlan, mountFrom, type StageSource, stageSourceOf } from './plan.js';
import { StageScope } from './scope.js';
import { ShellLex } from './shell-lex.js';
import { chompHeredocContent } from './heredoc.js';

/** An ADD/COPY source that is downloaded (http or https). */
export function isURL(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** Where COPY reads its sources: the build context, a stage's filesystem or an image's. */
export type CopyFrom = { kind: 'context' } | StageSource;

export interface CopyOp {
  kind: 'copy';
  add: boolean;
  from: CopyFrom;
  /** as expanded: paths (wildcards allowed) of `from`, or URLs for ADD */
  sources: string[];
  /** heredoc sources, expanded unless their delimiter was quoted */
  inline: { name: string; data: string }[];
  dest: string;
  /** the WORKDIR a relative destination is under */
  workdir: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  parents: boolean;
  /** --exclude patterns, expanded */
  exclude: string[];
  checksum?: string;
}

export interface MkdirOp {
  kind: 'mkdir';
  /** absolute */
  path: string;
  /** USER at that point: owns the directories made */
  user?: string;
}

export interface ExecOp {
  kind: 'exec';
  args: string[];
  /** the step's environment, `K=V` (the config's Env, the ARGs in scope, PATH) */
  env: string[];
  /** proxy build args (HTTP_PROXY, no_proxy, …): in the environment, never in a cache key or the history */
  proxyEnv: string[];
  cwd: string;
  user?: string;
  network: 'default' | 'none' | 'host';
  /** each --mount, with what its from= names (a bind or cache mount's source is read there) */
  mounts: { spec: MountSpec; from?: StageSource }[];
  /** a lone heredoc that starts with #!: written to /dev/pipes/NAME and run as args[0] */
  script?: { name: string; data: string };
}

export type Op = CopyOp | MkdirOp | ExecOp;

export interface Step {
  /** the instruction, for progress and for errors at its line */
  at: Pick<Instruction, 'code' | 'line' | 'endLine' | 'keyword'>;
  /** the history entry's created_by */
  createdBy: string;
  /** what the step does to the filesystem; none: it changes the config only (an empty_layer history entry) */
  op?: Op;
  /** how progress names it, when not by its code: a RUN with its variables expanded, secrets' env as **** */
  name?: string;
}

export type TranslatedBase = { kind: 'scratch' } | { kind: 'image'; ref: string } | { kind: 'stage'; index: number };

export interface TranslatedStage {
  index: number;
  name?: string;
  platform: Platform;
  base: TranslatedBase;
  /** the FROM line, for progress */
  from: Pick<Instruction, 'code' | 'line' | 'endLine' | 'keyword'>;
  /** the config the stage ends with; its history and rootfs are the solver's (they need the steps' results) */
  config: ImageConfig;
  steps: Step[];
  /** the ARG values in the stage's environment at its end: what a stage built FROM it inherits */
  argValues: Map<string, string>;
}

export interface Translation {
  plan: BuildPlan;
  /** the stages the target needs, by index */
  stages: Map<number, TranslatedStage>;
}

/** A base image's config for a platform (the solver resolves it from its registry); `at` is the FROM line. */
export type ImageConfigResolver = (ref: string, platform: Platform, at: Instruction) => Promise<ImageConfig>;

export const historyComment = 'buildkit.dockerfile.v0';

/** Config fields BuildKit's image struct knows; others of a base config (container_config, …) are not carried. */
const configKeys = [
  'User',
  'ExposedPorts',
  'Env',
  'Entrypoint',
  'Cmd',
  'Volumes',
  'WorkingDir',
  'Labels',
  'StopSignal',
  'ArgsEscaped',
  'Healthcheck',
  'OnBuild',
  'Shell',
];

/** A base image's config as a stage starts from it (BuildKit keeps only what its image struct knows). */
export function baseConfig(base: ImageConfig): ImageConfig {
  const runtime: Record<string, unknown> = {};
  for (const k of configKeys) if (base.config?.[k] !== undefined) runtime[k] = base.config[k];
  const out: ImageConfig = {
    architecture: base.architecture,
    os: base.os,
    config: runtime,
    rootfs: { type: 'layers', diff_ids: [...base.rootfs.diff_ids] },
    history: [...(base.history ?? [])],
  };
  if (base.variant) out.variant = base.variant;
  if (base['os.version']) out['os.version'] = base['os.version'];
  if (base['os.features']) out['os.features'] = base['os.features'];
  if (base.author) out.author = base.author;
  return out;
}

const proxyArgs = ['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy'];

function at(ins: Pick<Instruction, 'line' | 'endLine'>, message: string, hint?: string): DockerfileError {
  return new DockerfileError(message, { line: ins.line, endLine: ins.endLine }, { hint });
}

/** Translates the stages the plan's target needs, each after those it is built from. */
export async function translate(plan: BuildPlan, resolve: ImageConfigResolver): Promise<Translation> {
  const stages = new Map<number, TranslatedStage>();
  // Base images are resolved all at once (as BuildKit resolves the metadata of every reachable stage's base).
  const bases = new Map<number, Promise<ImageConfig>>();
  for (const i of plan.order) {
    const p = plan.stages[i];
    if (p.base.kind === 'image') {
      const c = resolve(p.base.ref, p.platform ?? plan.targetPlatform, p.stage.from);
      c.catch(() => undefined);
      bases.set(i, c);
    }
  }
  // ONBUILD COPY --from / RUN --mount from= of a base's triggers name stages of this Dockerfile or images (BuildKit
  // >= 0.17, moby/buildkit#5357): a stage a trigger reads is built too, though the plan did not need it. Every
  // stage reads only stages before it, so ascending indices are an order that builds each after its inputs.
  const order = new Set(plan.order);
  const pending = [...plan.order];
  const need = (j: number) => {
    if (order.has(j)) return;
    order.add(j);
    pending.push(j);
    const p = plan.stages[j];
    if (p.base.kind === 'image') {
      const c = resolve(p.base.ref, p.platform ?? plan.targetPlatform, p.stage.from);
      c.catch(() => undefined);
      bases.set(j, c);
    }
    for (const d of p.deps) need(d);
  };
  while (pending.length > 0) {
    const i = pending.shift() as number;
    const p = plan.stages[i];
    // The triggers a stage starts with: its base image's, or the ONBUILD lines of the stage it is built on.
    const texts =
      p.base.kind === 'image'
        ? ((await bases.get(i))?.config?.OnBuild ?? [])
        : p.base.kind === 'stage'
          ? plan.stages[p.base.index].stage.commands.flatMap((c) => (c.kind === 'onbuild' ? [c.expression] : []))
          : [];
    for (const ins of onbuildTriggers(texts, p.stage.from.image)) {
      const froms =
        ins.kind === 'copy' && ins.from !== undefined
          ? [ins.from]
          : ins.kind === 'run'
            ? ins.mounts.map(mountFrom).filter((f): f is string => !!f)
            : [];
      for (const f of froms) {
        const src = stageSourceOf(plan, f);
        if (src.kind !== 'stage') continue;
        if (src.index >= i)
          throw at(
            p.stage.from,
            `ONBUILD ${ins.code}: cannot copy from stage "${f}", it needs to be defined before current stage "${p.stage.name ?? `stage-${i}`}"`,
          );
        need(src.index);
      }
    }
  }
  for (const i of [...order].sort((a, b) => a - b)) stages.set(i, translateStage(plan, i, stages, await bases.get(i)));
  return { plan, stages };
}

/** ONBUILD triggers as instructions (they run first in a stage built on the image or stage that has them). */
function onbuildTriggers(triggers: readonly string[], image: string): Instruction[] {
  return triggers.map((t) => parseInstruction(parse(`${t}\n`, { file: `ONBUILD of ${image}` }).nodes[0]));
}

function translateStage(
  plan: BuildPlan,
  index: number,
  done: Map<number, TranslatedStage>,
  imageConfig: ImageConfig | undefined,
): TranslatedStage {
  const planned = plan.stages[index];
  const stage = planned.stage;
  const platform = planned.platform ?? plan.targetPlatform;
  const base = planned.base;
  let config: ImageConfig;
  let inheritedArgs = new Map<string, string>();
  if (base.kind === 'scratch') {
    // BuildKit's empty image: the default PATH and WorkingDir "/".
    config = {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: [`PATH=${defaultPathEnv}`], WorkingDir: '/' },
      rootfs: { type: 'layers', diff_ids: [] },
      history: [],
    };
  } else if (base.kind === 'stage') {
    const parent = done.get(base.index) as TranslatedStage;
    config = structuredClone(parent.config);
    inheritedArgs = parent.argValues;
  } else {
    config = baseConfig(imageConfig as ImageConfig);
    // An image without PATH gets the default one, as BuildKit gives it.
    const c = (config.config ??= {});
    if (!parseEnv(c.Env).has('PATH')) c.Env = [...(c.Env ?? []), `PATH=${defaultPathEnv}`];
  }
  const c = (config.config ??= {});
  const scope = new StageScope({
    escapeToken: plan.dockerfile.escapeToken,
    globalArgs: plan.globalArgs,
    buildArgs: plan.buildArgs,
    baseEnv: parseEnv(c.Env),
    inheritedArgs,
  });
  const meta: MetadataContext = { cmdSet: false };
  // ONBUILD triggers of the base run first, then are gone from the config (BuildKit resets OnBuild).
  const triggers = onbuildTriggers(c.OnBuild ?? [], stage.from.image);
  c.OnBuild = null;
  const steps: Step[] = [];
  for (const ins of [...triggers, ...stage.commands]) {
    // A trigger's COPY --from names a stage of this Dockerfile or an image, as the stage's own would.
    const triggerFrom =
      triggers.includes(ins) && ins.kind === 'copy' && ins.from !== undefined
        ? stageSourceOf(plan, ins.from)
        : undefined;
    const step = translateStep(ins, { plan, scope, config, meta, source: planned.sources.get(ins) ?? triggerFrom });
    if (step) steps.push({ at: ins, ...step });
  }
  return { index, name: stage.name, platform, base, from: stage.from, config, steps, argValues: scope.argValues() };
}

interface StepContext {
  plan: BuildPlan;
  scope: StageScope;
  config: ImageConfig;
  meta: MetadataContext;
  /** COPY --from / RUN --mount from=, as the plan resolved it */
  source?: StageSource;
}

function translateStep(ins: Instruction, x: StepContext): Omit<Step, 'at'> | undefined {
  const { scope, config, meta } = x;
  if (ins.kind === 'arg') {
    const args = scope.applyArg(ins);
    return { createdBy: `ARG ${args.map((a) => (a.value === undefined ? a.key : `${a.key}=${a.value}`)).join(' ')}` };
  }
  if (ins.kind === 'env')
    return { createdBy: applyMetadata(config, { ...ins, pairs: scope.applyEnv(ins) }, meta) as string };
  const e = scope.expandInstruction(ins);
  const history = applyMetadata(config, e, meta);
  if (history === '') return undefined; // ONBUILD: recorded in the config, no history entry
  if (history !== undefined) return { createdBy: history };
  const c = (config.config ??= {});
  switch (e.kind) {
    case 'workdir': {
      const wd = path.posix.join('/', e.path.startsWith('/') ? '' : (c.WorkingDir ?? '/'), e.path);
      c.WorkingDir = wd;
      // The root needs no mkdir: a config change alone, empty_layer (BuildKit's dispatchWorkdir: withLayer only when
      // wd != "/"; testExportedHistory).
      if (wd === '/') return { createdBy: 'WORKDIR /' };
      return { createdBy: `WORKDIR ${wd}`, op: { kind: 'mkdir', path: wd, ...(c.User ? { user: c.User } : {}) } };
    }
    case 'copy':
    case 'add':
      return translateCopy(e, x);
    case 'run':
      return translateRun(e, x);
    case 'from':
      return undefined;
    default:
      throw at(e, `${e.keyword} is not supported here`);
  }
}

function translateCopy(ins: Extract<Instruction, { kind: 'copy' | 'add' }>, x: StepContext): Omit<Step, 'at'> {
  const { scope, config } = x;
  if (ins.kind !== 'add' && ins.sources.some(isURL))
    throw at(ins, "source can't be a URL for COPY", 'use ADD for a URL');
  if (ins.kind === 'add' && ins.checksum !== undefined && (ins.sources.length !== 1 || !isURL(ins.sources[0]))) {
    throw at(ins, '--checksum needs exactly one http(s) source');
  }
  if (ins.chmod !== undefined) {
    try {
      parseChmod(ins.chmod);
    } catch (e) {
      if (e instanceof ChmodError) throw at(ins, e.message);
      throw e;
    }
  }
  // Heredoc sources (COPY <<EOF /dest): files named after their delimiter, expanded unless the delimiter was quoted
  // as dockerfile2llb's ExpandRaw does it: a lexer with the backslash as escape whatever the escape directive says,
  // quotes as ordinary characters (`'${name}'` is expanded), escapes processed (`\$` → `$`, `\\` → `\`);
  // BuildKit's testHeredocVarSubstitution and testCopyHeredocSpecialSymbols.
  const lex = new ShellLex('\\', { skipProcessQuotes: true });
  const inline = ins.inline.map((f) => {
    if (!f.expand) return { name: f.name, data: f.data };
    try {
      return { name: f.name, data: lex.process(f.data, scope.vars).result };
    } catch (e) {
      throw at(ins, (e as Error).message);
    }
  });
  const flags = [
    ins.kind === 'copy' && ins.parents ? '--parents' : '',
    ins.chown !== undefined ? `--chown=${ins.chown}` : '',
    ins.chmod !== undefined ? `--chmod=${ins.chmod}` : '',
  ].filter(Boolean);
  const createdBy = `${ins.kind.toUpperCase()} ${[...flags, ...ins.sources, ...ins.inline.map((f) => `<<${f.name}`), ins.dest].join(' ')} # buildkit`;
  const op: CopyOp = {
    kind: 'copy',
    add: ins.kind === 'add',
    from: x.source ?? { kind: 'context' },
    sources: ins.sources,
    inline,
    dest: ins.dest,
    workdir: config.config?.WorkingDir ?? '/',
    ...(ins.chown !== undefined ? { chown: ins.chown } : {}),
    ...(ins.chmod !== undefined ? { chmod: ins.chmod } : {}),
    link: ins.link,
    parents: ins.kind === 'copy' && ins.parents,
    exclude: ins.exclude.map((p) => scope.expand(p, ins)),
    ...(ins.kind === 'add' && ins.checksum !== undefined ? { checksum: ins.checksum } : {}),
  };
  return { createdBy, op };
}

function translateRun(ins: RunInstruction, x: StepContext): Omit<Step, 'at'> {
  const { scope, config } = x;
  const c = config.config ?? {};
  // As BuildKit's parser: any other mode is an error at the line, not the host's network (commands_runnetwork.go).
  const network = ins.network ?? 'default';
  if (network !== 'default' && network !== 'none' && network !== 'host')
    throw at(ins, `unsupported network mode ${JSON.stringify(network)}: RUN --network takes default, none or host`);
  // security=insecure needs an entitlement BuildKit grants only on request (--allow security.insecure); hoist grants
  // none, so it is refused rather than run sandboxed without saying so.
  if (ins.security !== undefined && ins.security !== 'sandbox')
    throw at(
      ins,
      `RUN --security=${ins.security} is not allowed: hoist runs every step sandboxed (--security=sandbox)`,
    );
  const cwd = c.WorkingDir || '/';
  const env = new Map([...parseEnv(c.Env)].map(([k, v]) => [k, `${k}=${v}`] as const));
  for (const [k, v] of scope.inheritedArgs) if (!env.has(k)) env.set(k, `${k}=${v}`);
  for (const [k, v] of scope.args) if (v !== undefined && !env.has(k)) env.set(k, `${k}=${v}`);
  // The history names every ARG in scope, valued from the step's environment (so an ENV of the same name wins), an
  // ARG without a value as `K=` (dockerfile2llb runCommandString).
  const argPrefix = [...scope.args].map(([k, v]) => env.get(k) ?? `${k}=${v ?? ''}`);
  if (!env.has('PATH')) env.set('PATH', `PATH=${defaultPathEnv}`);
  // Proxy build args reach every RUN without an ARG, in both spellings, and stay out of the history and the cache
  // key (dockerfile2llb proxyEnvFromBuildArgs, the executor's proxyEnvList).
  const proxyEnv: string[] = [];
  for (const [k, v] of x.plan.buildArgs) {
    const key = k.toLowerCase();
    if (!proxyArgs.includes(key)) continue;
    for (const name of [key.toUpperCase(), key])
      if (!env.has(name) && !proxyEnv.some((p) => p.startsWith(`${name}=`))) proxyEnv.push(`${name}=${v}`);
  }
  const shell = c.Shell ?? defaultShell;
  let args = ins.command.prependShell ? [...shell, ins.command.args.join(' ')] : [...ins.command.args];
  let script: ExecOp['script'];
  // Heredocs, as dockerfile2llb dispatchRun treats them: a lone heredoc with #! is written to /dev/pipes and run; a
  // lone heredoc without is the shell's script; anything else is handed to the shell whole.
  const files = ins.command.files;
  if (files.length > 0) {
    const lone = ins.command.args.length === 1 && /^<<-?["']?[A-Za-z0-9_]+["']?$/.test(ins.command.args[0].trim());
    // A lone heredoc is the script itself, so `<<-` strips its leading tabs here (BuildKit's testHeredocIndent);
    // anywhere else the shell reads the `<<-` and strips them.
    const data = files[0].chomp ? chompHeredocContent(files[0].data) : files[0].data;
    if (lone && data.startsWith('#!')) {
      script = { name: files[0].name, data };
      args = [`/dev/pipes/${files[0].name}`];
    } else if (lone) {
      args = [...shell, data];
    } else {
      args = [...shell, files.reduce((full, f) => `${full}\n${f.data}${f.name}`, ins.command.args[0])];
    }
  }
  let mounts: ExecOp['mounts'];
  try {
    mounts = ins.mounts.map((t) => {
      const spec = parseMount(t, cwd);
      const from =
        (spec.type === 'bind' || spec.type === 'cache') && spec.from !== undefined
          ? stageSourceOf(x.plan, spec.from)
          : undefined;
      return from ? { spec, from } : { spec };
    });
  } catch (e) {
    if (e instanceof MountError) throw at(ins, e.message);
    throw e;
  }
  const createdBy = `RUN ${argPrefix.length ? `|${argPrefix.length} ${argPrefix.join(' ')} ` : ''}${args.join(' ')} # buildkit`;
  return {
    createdBy,
    name: runName(ins, env, mounts, x.plan.dockerfile.escapeToken),
    op: {
      kind: 'exec',
      args,
      env: [...env.values()],
      proxyEnv,
      cwd,
      ...(c.User ? { user: c.User } : {}),
      network,
      mounts,
      ...(script ? { script } : {}),
    },
  };
}

/**
 * A RUN's name in the progress, as dockerfile2llb names it (processCmdEnv over the instruction with the step's
 * environment, where a secret given as env= reads `****`: withSecretEnvMask, convert_secrets.go; its lexer keeps
 * quotes and leaves unset variables as written), the keyword in capitals; the instruction as written when the
 * expansion fails.
 */
function runName(
  ins: RunInstruction,
  env: ReadonlyMap<string, string>,
  mounts: ExecOp['mounts'],
  escapeToken: string,
): string {
  const values = new Map(
    [...env.values()].map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const),
  );
  for (const m of mounts) if (m.spec.type === 'secret' && m.spec.env) values.set(m.spec.env, '****');
  let name = ins.code;
  try {
    // As dispatchRun's copy of the lexer: quotes kept, unset variables left as written.
    name = new ShellLex(escapeToken, { rawQuotes: true, skipUnsetEnv: true }).processWord(ins.code, values);
  } catch {
    // as BuildKit: the text as it is
  }
  return name.replace(/^\S+/, (k) => k.toUpperCase());
}

/**
 * What a step's cache key needs of its op: everything the op says, except what never changes its result (the
 * proxy settings, as BuildKit leaves them out). What the op reads from elsewhere (a stage, an image, the context's
 * files) is added by the solver, which knows their keys and contents.
 */
export function describeOp(op: Op): object {
  switch (op.kind) {
    case 'copy':
      return { ...op, from: op.from.kind };
    case 'mkdir':
      return op;
    case 'exec': {
      const { proxyEnv: _proxy, mounts, ...rest } = op;
      return { ...rest, mounts: mounts.map((m) => m.spec) };
    }
  }
}
