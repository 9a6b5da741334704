// The Dockerfile front end: pure functions from text to instructions, stages and a build plan. No I/O beyond the
// text it is given.
export { dump, dumpNode, type Heredoc, type Node } from './ast.js';
export { DockerfileError, isDockerfileError, type Location } from './errors.js';
export { parse, type ParseOptions, type ParseResult, type ParseWarning } from './parser.js';
export type { Directive } from './directives.js';
export { ShellLex, ExpansionError, type Env, type ExpandResult, type LexOptions } from './shell-lex.js';
export * from './instructions.js';
export { readDockerfile, type Dockerfile, type Stage } from './dockerfile.js';
export {
  planBuild,
  mountFrom,
  splitCSV,
  type BuildPlan,
  type PlanOptions,
  type PlannedStage,
  type StageBase,
  type StageSource,
} from './plan.js';
export { StageScope, type ScopeOptions, type UndefinedVariable } from './scope.js';
export { isPredefinedArg, platformArgs, platformArgNames, proxyArgs } from './args.js';
export { chompHeredocContent } from './heredoc.js';
export {
  IgnoreMatcher,
  parseDockerignore,
  dockerignoreCandidates,
  cleanPath,
  DockerignoreError,
  type IgnorePattern,
} from './dockerignore.js';
export {
  lint,
  formatLintWarning,
  looksSecret,
  type CheckName,
  type LintOptions,
  type LintResult,
  type LintWarning,
} from './lint.js';
