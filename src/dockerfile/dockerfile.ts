// A Dockerfile read into stages: the global ARGs before the first FROM, then one Stage per FROM with the
// instructions that follow it.
import type { Node } from './ast.js';
import type { Directive } from './directives.js';
import { DockerfileError } from './errors.js';
import { type ArgInstruction, type FromInstruction, type Instruction, parseInstruction } from './instructions.js';
import { parse, type ParseWarning } from './parser.js';

export interface Stage {
  /** 0-based position in the file; `COPY --from=0` refers to it */
  index: number;
  /** `AS name`, lower case */
  name?: string;
  from: FromInstruction;
  /** the instructions after FROM */
  commands: Instruction[];
  /** the comment lines directly above FROM */
  comment: string[];
}

export interface Dockerfile {
  file: string;
  text: string;
  escapeToken: string;
  directives: Directive[];
  nodes: Node[];
  parseWarnings: ParseWarning[];
  /** ARG instructions before the first FROM */
  globalArgs: ArgInstruction[];
  stages: Stage[];
}

/** Parses the text and reads it into stages. Throws DockerfileError, with the source attached, for bad input. */
export function readDockerfile(text: string, file = 'Dockerfile'): Dockerfile {
  try {
    return read(text, file);
  } catch (e) {
    if (e instanceof DockerfileError) throw e.withSource(file, text);
    throw e;
  }
}

function read(text: string, file: string): Dockerfile {
  const parsed = parse(text, { file });
  const globalArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  for (const node of parsed.nodes) {
    const ins = parseInstruction(node);
    if (ins.kind === 'from') {
      stages.push({ index: stages.length, name: ins.stageName, from: ins, commands: [], comment: node.comments });
      continue;
    }
    if (stages.length === 0) {
      if (ins.kind === 'arg') {
        globalArgs.push(ins);
        continue;
      }
      throw new DockerfileError(
        `no build stage in current context: ${ins.keyword.toUpperCase()} before the first FROM`,
        { line: ins.line, endLine: ins.endLine },
        { hint: 'only ARG may come before the first FROM; start a stage with FROM IMAGE' },
      );
    }
    stages[stages.length - 1].commands.push(ins);
  }
  if (stages.length === 0) {
    const last = parsed.nodes[parsed.nodes.length - 1];
    throw new DockerfileError(
      'dockerfile contains no stages to build',
      { line: last.endLine },
      {
        hint: 'start a stage with FROM IMAGE (or FROM scratch for an empty base)',
      },
    );
  }
  return {
    file,
    text,
    escapeToken: parsed.escapeToken,
    directives: parsed.directives,
    nodes: parsed.nodes,
    parseWarnings: parsed.warnings,
    globalArgs,
    stages,
  };
}
