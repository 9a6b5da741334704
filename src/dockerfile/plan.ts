// From a Dockerfile and the build's options to a plan: the global ARG scope, each stage's base (image, earlier
// stage or scratch) with FROM expanded, the graph of stages (FROM, COPY --from, RUN --mount from=), the target and
// the stages it needs in dependency order. Stages the target does not need are pruned.
import { type Platform, PlatformError, hostPlatform, parsePlatform } from '../image/platform.js';
import { isPredefinedArg, platformArgs } from './args.js';
import type { Dockerfile, Stage } from './dockerfile.js';
import { DockerfileError } from './errors.js';
import type { Instruction } from './instructions.js';
import { ExpansionError, ShellLex } from './shell-lex.js';
import { closest } from './suggest.js';

export interface PlanOptions {
  buildArgs?: Readonly<Record<string, string>> | ReadonlyMap<string, string>;
  /** the stage to build; default the last */
  target?: string;
  /** default: this machine */
  buildPlatform?: Platform;
  /** default: the build platform */
  targetPlatform?: Platform;
  /** --build-context NAME=…: an image or a directory that FROM NAME, COPY --from=NAME and from=NAME read instead */
  namedContexts?: ReadonlyMap<string, NamedContext>;
}

/** A named context: another image (docker-image://REF) or a local directory (read as the build context is). */
export type NamedContext = { kind: 'image'; ref: string } | { kind: 'local'; dir: string };

/**
 * The name a named context answers to for an image reference, as BuildKit looks it up (its familiar form without
 * `:latest`: `docker.io/library/alpine:latest` is `alpine`), or the name as written.
 */
export function namedContextKey(name: string): string {
  let n = name.trim();
  n = n.replace(/^docker\.io\/library\/(?=[^/]+$)/, '').replace(/^(?:index\.)?docker\.io\//, '');
  if (!n.includes('@')) n = n.replace(/:latest$/, '');
  return n;
}

function namedContext(named: ReadonlyMap<string, NamedContext> | undefined, name: string): NamedContext | undefined {
  if (!named?.size) return undefined;
  return named.get(name) ?? named.get(namedContextKey(name));
}

export type StageBase = { kind: 'scratch' } | { kind: 'image'; ref: string } | { kind: 'stage'; index: number };

/** Something a stage needs from elsewhere: COPY --from or RUN --mount from=. */
export type StageSource =
  | { kind: 'stage'; index: number }
  | { kind: 'image'; ref: string }
  | { kind: 'local'; name: string };

export interface PlannedStage {
  stage: Stage;
  base: StageBase;
  /** FROM --platform, expanded and normalised */
  platform?: Platform;
  /** other sources, by instruction */
  sources: Map<Instruction, StageSource>;
  /** indexes of the stages this one needs, base first */
  deps: number[];
  /** global ARGs used in FROM that were not set */
  undefinedInFrom: string[];
}

export interface BuildPlan {
  dockerfile: Dockerfile;
  buildPlatform: Platform;
  targetPlatform: Platform;
  /** platform args, then global ARGs that have a value (build-arg overrides applied) */
  globalArgs: Map<string, string>;
  buildArgs: Map<string, string>;
  stages: PlannedStage[];
  target: number;
  /** the stages the target needs, each after the stages it needs; the target last */
  order: number[];
  /** --build-arg names that no ARG of the global scope or of a needed stage declares */
  unusedBuildArgs: string[];
  namedContexts?: ReadonlyMap<string, NamedContext>;
}

function at(ins: Instruction, message: string, hint?: string): DockerfileError {
  return new DockerfileError(message, { line: ins.line, endLine: ins.endLine }, { hint });
}

function expandGlobal(lex: ShellLex, word: string, scope: Map<string, string>, ins: Instruction) {
  try {
    return lex.process(word, scope);
  } catch (e) {
    if (e instanceof ExpansionError) throw at(ins, e.message);
    throw e;
  }
}

/** The value of the first of `keys` in a --mount value (comma-separated key=value fields, quotes allowed). */
function mountField(spec: string, keys: readonly string[]): string | undefined {
  for (const field of splitCSV(spec)) {
    const eq = field.indexOf('=');
    if (eq > 0 && keys.includes(field.slice(0, eq).trim().toLowerCase())) return field.slice(eq + 1);
  }
  return undefined;
}

/** The `from=` of a --mount value. */
export const mountFrom = (spec: string): string | undefined => mountField(spec, ['from']);

/** The target= (dst=, destination=) of a --mount value, as written. */
const mountTarget = (spec: string): string => mountField(spec, ['target', 'dst', 'destination']) ?? '';

/** Splits a CSV line as Go's encoding/csv does for one record (double quotes, "" for a quote). */
export function splitCSV(line: string): string[] {
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      out.push(field);
      field = '';
    } else field += c;
  }
  out.push(field);
  return out;
}

/** What a `--from=`/`from=` value names: a stage by name, a stage by index, a named context, else an image. */
export function stageSourceOf(plan: Pick<BuildPlan, 'stages' | 'namedContexts'>, value: string): StageSource {
  const byName = plan.stages.findIndex((p) => p.stage.name !== undefined && p.stage.name === value.toLowerCase());
  if (byName >= 0) return { kind: 'stage', index: byName };
  if (/^\d+$/.test(value) && Number(value) < plan.stages.length) return { kind: 'stage', index: Number(value) };
  return fromNamed(plan.namedContexts, value) ?? { kind: 'image', ref: value };
}

function fromNamed(named: ReadonlyMap<string, NamedContext> | undefined, value: string): StageSource | undefined {
  const c = namedContext(named, value);
  if (!c) return undefined;
  return c.kind === 'image'
    ? { kind: 'image', ref: c.ref }
    : { kind: 'local', name: named?.has(value) ? value : namedContextKey(value) };
}

export function planBuild(df: Dockerfile, options: PlanOptions = {}): BuildPlan {
  try {
    return plan(df, options);
  } catch (e) {
    if (e instanceof DockerfileError) throw e.withSource(df.file, df.text);
    throw e;
  }
}

function plan(df: Dockerfile, options: PlanOptions): BuildPlan {
  const lex = new ShellLex(df.escapeToken);
  const buildPlatform = options.buildPlatform ?? hostPlatform();
  const targetPlatform = options.targetPlatform ?? buildPlatform;
  const buildArgs = new Map(
    options.buildArgs instanceof Map ? options.buildArgs : Object.entries(options.buildArgs ?? {}),
  );

  // The global scope: platform args, then each global ARG in order (a --build-arg wins over the default).
  // Without --target, the last stage by its name, or "default" when it has none (BuildKit's testTargetStageNameArg).
  const globalArgs = platformArgs(
    buildPlatform,
    targetPlatform,
    options.target || (df.stages[df.stages.length - 1]?.name ?? 'default'),
  );
  const declared = new Set<string>();
  for (const ins of df.globalArgs) {
    for (const a of ins.args) {
      declared.add(a.key);
      let value: string | undefined;
      if (buildArgs.has(a.key)) value = buildArgs.get(a.key);
      else if (a.value !== undefined) value = expandGlobal(lex, a.value, globalArgs, ins).result;
      if (value !== undefined) globalArgs.set(a.key, value);
      else globalArgs.delete(a.key);
    }
  }

  const byName = (name: string, before = df.stages.length) =>
    df.stages.findIndex((s, i) => i < before && s.name !== undefined && s.name === name.toLowerCase());

  const stages: PlannedStage[] = df.stages.map((stage) => {
    const from = stage.from;
    const image = expandGlobal(lex, from.image, globalArgs, from);
    if (image.result === '') {
      throw at(from, `base name (${from.image}) should not be blank`, 'give the ARG a default or pass --build-arg');
    }
    let platform: Platform | undefined;
    if (from.platform !== undefined) {
      const p = expandGlobal(lex, from.platform, globalArgs, from).result;
      try {
        platform = parsePlatform(p);
      } catch (e) {
        if (e instanceof PlatformError) throw at(from, `FROM --platform: ${e.message}`);
        throw e;
      }
    }
    const prior = byName(image.result, stage.index);
    const named =
      prior >= 0 || image.result === 'scratch' ? undefined : namedContext(options.namedContexts, image.result);
    if (named?.kind === 'local')
      throw at(
        from,
        `FROM ${image.result}: the build context ${image.result} is a directory; FROM a directory is not supported yet`,
        'give it as docker-image://REF, or COPY --from from it',
      );
    const base: StageBase =
      prior >= 0
        ? { kind: 'stage', index: prior }
        : image.result === 'scratch'
          ? { kind: 'scratch' }
          : { kind: 'image', ref: named?.kind === 'image' ? named.ref : image.result };
    return {
      stage,
      base,
      platform,
      sources: new Map(),
      deps: base.kind === 'stage' ? [base.index] : [],
      undefinedInFrom: [...image.unmatched].filter((n) => !declared.has(n)),
    };
  });

  // COPY --from and RUN --mount from= name a stage, a stage index, or an image (a later stage is refused below).
  const source = (ins: Instruction, value: string, what: string): StageSource => {
    let expanded: string;
    try {
      expanded = lex.processWord(value, new Map());
    } catch (e) {
      if (e instanceof ExpansionError) throw at(ins, `${what}: ${e.message}`);
      throw e;
    }
    if (expanded !== value) {
      // BuildKit's words (dockerfile2llb convert.go; instructions commands_runmount.go for a mount's from=).
      const hint = 'ARG V=…  before the first FROM, then  FROM image:${V} AS name  and name that stage here';
      if (what === '--from')
        throw at(
          ins,
          'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
          hint,
        );
      throw at(ins, "'from' doesn't support variable expansion, define alias stage instead", hint);
    }
    if (/^\d+$/.test(value)) {
      const index = Number(value);
      if (index >= df.stages.length)
        throw at(ins, `invalid stage index ${index}`, `the stages are numbered 0 to ${df.stages.length - 1}`);
      return { kind: 'stage', index };
    }
    const i = byName(value);
    return i >= 0
      ? { kind: 'stage', index: i }
      : (fromNamed(options.namedContexts, value) ?? { kind: 'image', ref: value });
  };
  for (const p of stages) {
    for (const ins of p.stage.commands) {
      let src: StageSource | undefined;
      if (ins.kind === 'copy' && ins.from !== undefined) src = source(ins, ins.from, '--from');
      if (ins.kind === 'run') {
        for (const m of ins.mounts) {
          const f = mountFrom(m);
          if (f === undefined || f === '') continue;
          src = source(ins, f, 'the from= of --mount');
          if (src.kind === 'stage' && !p.deps.includes(src.index)) p.deps.push(src.index);
        }
      }
      if (!src) continue;
      p.sources.set(ins, src);
      if (src.kind === 'stage' && !p.deps.includes(src.index)) p.deps.push(src.index);
    }
  }

  let target = df.stages.length - 1;
  if (options.target !== undefined && options.target !== '') {
    target = byName(options.target);
    if (target < 0) {
      const near = closest(
        options.target,
        df.stages.flatMap((s) => (s.name ? [s.name] : [])),
      );
      // BuildKit: suggest.WrapError appends "(did you mean NAME?)".
      throw new DockerfileError(
        `target stage "${options.target}" could not be found${near ? ` (did you mean ${near}?)` : ''}`,
        { line: 1 },
        {
          hint: `the stages are named: ${df.stages.flatMap((s) => (s.name ? [s.name] : [])).join(', ') || 'none (name one with FROM IMAGE AS NAME)'}`,
        },
      );
    }
  }

  // Depth-first from the target; a stage met again while still on the path is a cycle.
  const order: number[] = [];
  const state = new Map<number, 'visiting' | 'done'>();
  const visit = (i: number) => {
    const s = state.get(i);
    if (s === 'done') return;
    if (s === 'visiting') {
      const st = df.stages[i];
      throw at(st.from, `circular dependency detected on stage: ${st.name ?? i}`);
    }
    state.set(i, 'visiting');
    for (const d of stages[i].deps) visit(d);
    state.set(i, 'done');
    order.push(i);
  };
  visit(target);
  // A cycle among stages the target does not need is still an error, as in BuildKit.
  for (let i = 0; i < stages.length; i++) {
    if (!state.has(i)) {
      const saved = order.length;
      visit(i);
      order.length = saved;
    }
  }

  // A stage the build runs may only read stages defined before it (BuildKit validates the order when it dispatches
  // a COPY --from or a mount's from=, moby/buildkit#4568); a stage the target does not need is not checked.
  for (const i of order) {
    const name = df.stages[i].name ?? `stage-${i}`;
    const notYet = (value: string) => {
      const s = stageSourceOf({ stages }, value);
      return s.kind === 'stage' && s.index >= i;
    };
    const hint = 'move the stage it reads above this one';
    for (const ins of df.stages[i].commands) {
      if (ins.kind === 'copy' && ins.from !== undefined && notYet(ins.from)) {
        throw at(
          ins,
          `cannot copy from stage "${ins.from}", it needs to be defined before current stage "${name}"`,
          hint,
        );
      }
      const m = ins.kind === 'run' ? ins.mounts.find((t) => notYet(mountFrom(t) || '')) : undefined;
      if (m)
        throw at(
          ins,
          `cannot mount from stage "${mountFrom(m)}" to "${mountTarget(m)}", stage needs to be defined before current command`,
          hint,
        );
    }
  }

  const consumed = new Set(declared);
  for (const i of order) {
    for (const ins of df.stages[i].commands) if (ins.kind === 'arg') for (const a of ins.args) consumed.add(a.key);
  }
  const unusedBuildArgs = [...buildArgs.keys()].filter((k) => !consumed.has(k) && !isPredefinedArg(k)).sort();

  return {
    dockerfile: df,
    buildPlatform,
    targetPlatform,
    globalArgs,
    buildArgs,
    stages,
    target,
    order,
    unusedBuildArgs,
    ...(options.namedContexts?.size ? { namedContexts: options.namedContexts } : {}),
  };
}
