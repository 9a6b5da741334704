// The Dockerfile front end: pure functions from text to instructions and stages. No I/O beyond the text it is given.
export { dump, dumpNode, type Heredoc, type Node } from './ast.js';
export { DockerfileError, isDockerfileError, type Location } from './errors.js';
export { parse, type ParseOptions, type ParseResult, type ParseWarning } from './parser.js';
export { type Directive } from './directives.js';
export { ShellLex, ExpansionError, type Env, type ExpandResult, type LexOptions } from './shell-lex.js';
