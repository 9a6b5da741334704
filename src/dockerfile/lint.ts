// Build checks in the spirit of BuildKit's (docs.docker.com/reference/build-checks): each a warning with the
// Dockerfile line, named as BuildKit names it, switched off or made fatal by a `# check=skip=…;error=true` directive.
import { defaultPathEnv } from '../image/env.js';
import type { Dockerfile } from './dockerfile.js';
import { DockerfileError } from './errors.js';
import type { Instruction } from './instructions.js';
import { type BuildPlan, type PlanOptions, planBuild } from './plan.js';
import { StageScope } from './scope.js';
import { closest } from './suggest.js';

export type CheckName =
  | 'ConsistentInstructionCasing'
  | 'DuplicateStageName'
  | 'FromAsCasing'
  | 'FromPlatformFlagConstDisallowed'
  | 'InvalidDefaultArgInFrom'
  | 'JSONArgsRecommended'
  | 'LegacyKeyValueFormat'
  | 'MaintainerDeprecated'
  | 'MultipleInstructionsDisallowed'
  | 'NoEmptyContinuation'
  | 'RedundantTargetPlatform'
  | 'ReservedStageName'
  | 'SecretsUsedInArgOrEnv'
  | 'StageNameCasing'
  | 'UndefinedArgInFrom'
  | 'UndefinedVar'
  | 'UnusedBuildArg'
  | 'WorkdirRelativePath';

export interface LintWarning {
  check: CheckName;
  message: string;
  file: string;
  line: number;
}

export interface LintResult {
  warnings: LintWarning[];
  /** the check directive asked for warnings to fail the build */
  failOnWarnings: boolean;
}

export interface LintOptions extends PlanOptions {
  /** the Env of a base image, when known; stages on images whose Env is unknown are not checked for UndefinedVar */
  baseEnv?: (ref: string) => [string, string][] | undefined;
}

interface CheckConfig {
  skip: Set<string>;
  skipAll: boolean;
  error: boolean;
}

function checkConfig(df: Dockerfile): CheckConfig {
  const config: CheckConfig = { skip: new Set(), skipAll: false, error: false };
  const d = df.directives.find((x) => x.name === 'check');
  if (!d) return config;
  for (const part of d.value.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    const value = part.slice(eq + 1).trim();
    if (key === 'skip') {
      for (const name of value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)) {
        if (name.toLowerCase() === 'all') config.skipAll = true;
        else config.skip.add(name);
      }
    } else if (key === 'error') {
      config.error = value.toLowerCase() === 'true';
    }
  }
  return config;
}

const secretWord = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const publicWord = /(?:_|^)(?:public)(?:_|$)/i;

/** Names that look like they carry a secret (API_TOKEN, DB_PASSWORD), unless marked public. */
export function looksSecret(name: string): boolean {
  return secretWord.test(name) && !publicWord.test(name);
}

const reservedStageNames = new Set(['scratch', 'context']);

function keywordCase(k: string): 'upper' | 'lower' | 'mixed' {
  if (k === k.toUpperCase()) return 'upper';
  if (k === k.toLowerCase()) return 'lower';
  return 'mixed';
}

export function lint(df: Dockerfile, options: LintOptions = {}): LintResult {
  const config = checkConfig(df);
  const warnings: LintWarning[] = [];
  const report = (check: CheckName, line: number, message: string) => {
    if (config.skipAll || config.skip.has(check)) return;
    warnings.push({ check, message, file: df.file, line });
  };

  for (const w of df.parseWarnings) report('NoEmptyContinuation', w.line, 'Empty continuation line');

  // Keyword casing: every instruction should be cased like the majority.
  const all: Instruction[] = [...df.globalArgs, ...df.stages.flatMap((s) => [s.from, ...s.commands])];
  const upper = all.filter((i) => keywordCase(i.keyword) === 'upper').length;
  const lower = all.filter((i) => keywordCase(i.keyword) === 'lower').length;
  const majority = upper >= lower ? 'upper' : 'lower';
  for (const ins of all) {
    if (keywordCase(ins.keyword) !== majority) {
      const want = majority === 'upper' ? ins.keyword.toUpperCase() : ins.keyword.toLowerCase();
      report(
        'ConsistentInstructionCasing',
        ins.line,
        `Command '${ins.keyword}' should match the case of the command majority (${majority}case): use '${want}'`,
      );
    }
  }

  const seen = new Map<string, number>();
  for (const stage of df.stages) {
    const from = stage.from;
    const args = from.node.args;
    if (args.length === 3) {
      const asWord = args[1];
      const fromCase = keywordCase(from.keyword);
      if (fromCase !== 'mixed' && keywordCase(asWord) !== fromCase) {
        report('FromAsCasing', from.line, `'${asWord}' and '${from.keyword}' keywords' casing do not match`);
      }
      if (args[2] !== args[2].toLowerCase())
        report('StageNameCasing', from.line, `Stage name '${args[2]}' should be lowercase`);
    }
    if (stage.name) {
      if (reservedStageNames.has(stage.name)) {
        report(
          'ReservedStageName',
          from.line,
          `Stage name should not use the same name as reserved stage "${stage.name}"`,
        );
      }
      const prev = seen.get(stage.name);
      if (prev !== undefined) {
        report(
          'DuplicateStageName',
          from.line,
          `Duplicate stage name "${stage.name}", stage names should be unique (first at line ${prev})`,
        );
      } else {
        seen.set(stage.name, from.line);
      }
    }
    if (from.platform !== undefined) {
      if (/^\$\{?TARGETPLATFORM\}?$/.test(from.platform)) {
        report(
          'RedundantTargetPlatform',
          from.line,
          'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior',
        );
      } else if (!from.platform.includes('$')) {
        report(
          'FromPlatformFlagConstDisallowed',
          from.line,
          `FROM --platform flag should not use constant value "${from.platform}"`,
        );
      }
    }

    const counts = new Map<string, Instruction[]>();
    for (const ins of stage.commands) {
      if (ins.kind === 'cmd' || ins.kind === 'entrypoint' || ins.kind === 'healthcheck') {
        counts.set(ins.kind, [...(counts.get(ins.kind) ?? []), ins]);
      }
      if (
        (ins.kind === 'cmd' || ins.kind === 'entrypoint') &&
        ins.command.prependShell &&
        ins.command.args.length > 0
      ) {
        const name = ins.kind.toUpperCase();
        report(
          'JSONArgsRecommended',
          ins.line,
          `JSON arguments recommended for ${name} to prevent unintended behavior related to OS signals`,
        );
      }
      if (ins.kind === 'maintainer')
        report('MaintainerDeprecated', ins.line, 'Maintainer instruction is deprecated in favor of using label');
      if (ins.kind === 'env' || ins.kind === 'label') {
        if (ins.pairs.some((p) => p.legacy)) {
          const k = ins.kind.toUpperCase();
          report(
            'LegacyKeyValueFormat',
            ins.line,
            `"${k} key=value" should be used instead of legacy "${k} key value" format`,
          );
        }
      }
      if (ins.kind === 'workdir' && !ins.path.startsWith('/') && !ins.path.startsWith('$')) {
        report(
          'WorkdirRelativePath',
          ins.line,
          `Relative workdir "${ins.path}" can have unexpected results if the base image changes`,
        );
      }
    }
    for (const [kind, list] of counts) {
      for (const ins of list.slice(0, -1)) {
        report(
          'MultipleInstructionsDisallowed',
          ins.line,
          `Multiple ${kind.toUpperCase()} instructions should not be used in the same stage because only the last one will be used`,
        );
      }
    }
  }

  for (const ins of [...df.globalArgs, ...df.stages.flatMap((s) => s.commands)]) {
    if (ins.kind === 'arg') {
      for (const a of ins.args)
        if (looksSecret(a.key))
          report(
            'SecretsUsedInArgOrEnv',
            ins.line,
            `Do not use ARG or ENV instructions for sensitive data (ARG "${a.key}")`,
          );
    } else if (ins.kind === 'env') {
      for (const p of ins.pairs)
        if (looksSecret(p.key))
          report(
            'SecretsUsedInArgOrEnv',
            ins.line,
            `Do not use ARG or ENV instructions for sensitive data (ENV "${p.key}")`,
          );
    }
  }

  // The checks that need the ARG scopes and variables. A Dockerfile the build would reject (unknown target,
  // cycle, bad ${…}) is an error here too, not a silent pass.
  const plan = planBuild(df, options);
  for (const p of plan.stages) {
    for (const name of p.undefinedInFrom)
      report('UndefinedArgInFrom', p.stage.from.line, `FROM argument '${name}' is not declared`);
    if (p.base.kind === 'image' && p.stage.from.image.includes('$') && p.undefinedInFrom.length === 0) {
      const ref = p.base.ref;
      if (ref.endsWith(':') || ref.includes('/:') || ref.startsWith(':') || ref.startsWith('/')) {
        report(
          'InvalidDefaultArgInFrom',
          p.stage.from.line,
          `Default value for ARG ${p.stage.from.image} results in empty or invalid base image name`,
        );
      }
    }
  }
  undefinedVars(plan, options, report);
  for (const name of plan.unusedBuildArgs)
    report('UnusedBuildArg', 1, `Build argument "${name}" is not consumed by any ARG`);

  warnings.sort((a, b) => a.line - b.line);
  return { warnings, failOnWarnings: config.error };
}

function undefinedVars(plan: BuildPlan, options: LintOptions, report: (c: CheckName, line: number, m: string) => void) {
  const finalEnv = new Map<number, [string, string][] | undefined>();
  /** each stage's ARG values, which a stage built FROM it sees too */
  const finalArgs = new Map<number, Map<string, string>>();
  for (const p of plan.stages) {
    let baseEnv: [string, string][] | undefined;
    const inheritedArgs = p.base.kind === 'stage' ? finalArgs.get(p.base.index) : undefined;
    if (p.base.kind === 'scratch') baseEnv = [['PATH', defaultPathEnv]];
    else if (p.base.kind === 'stage') baseEnv = finalEnv.get(p.base.index);
    else baseEnv = options.baseEnv?.(p.base.ref);
    if (baseEnv === undefined) {
      // unknown base Env: anything could be defined there
      finalEnv.set(p.stage.index, undefined);
      continue;
    }
    const scope = new StageScope({
      escapeToken: plan.dockerfile.escapeToken,
      globalArgs: plan.globalArgs,
      buildArgs: plan.buildArgs,
      baseEnv,
      inheritedArgs,
    });
    const reported = new Set<string>();
    for (const ins of p.stage.commands) {
      try {
        scope.expandInstruction(ins);
        scope.apply(ins);
      } catch (e) {
        if (e instanceof DockerfileError) throw e.withSource(plan.dockerfile.file, plan.dockerfile.text);
        throw e;
      }
      for (const u of scope.undefinedVars.splice(0)) {
        if (scope.args.has(u.name) || reported.has(`${u.line}:${u.name}`)) continue;
        reported.add(`${u.line}:${u.name}`);
        const near = closest(u.name, [...scope.vars.keys(), ...plan.globalArgs.keys()]);
        report(
          'UndefinedVar',
          u.line,
          `Usage of undefined variable '$${u.name}'${near ? ` (did you mean $${near}?)` : ''}`,
        );
      }
    }
    finalEnv.set(p.stage.index, [...scope.env]);
    finalArgs.set(p.stage.index, scope.argValues());
  }
}

/** `FILE:LINE: [Check] message`, one line per warning. */
export function formatLintWarning(w: LintWarning): string {
  return `${w.file}:${w.line}: [${w.check}] ${w.message}`;
}
