// The parse tree of a Dockerfile: one Node per instruction, as BuildKit's parser produces it, before any
// meaning is given to the arguments (that is instructions.ts).
import { goQuote, trimSpace } from './chars.js';

export interface Heredoc {
  /** the delimiter word, quotes removed */
  name: string;
  /** `3<<EOF` gives 3; 0 when not given */
  fileDescriptor: number;
  /** false when any part of the delimiter was quoted: the body is then taken literally */
  expand: boolean;
  /** `<<-EOF`: leading tabs are removed from the body and the terminator */
  chomp: boolean;
  /** the body, each line with its newline */
  content: string;
}

export interface Node {
  /** the instruction keyword exactly as written (FROM, from, From …) */
  keyword: string;
  /** the `--name=value` flags before the arguments, as written */
  flags: string[];
  /** the arguments, as the instruction's line parser split them */
  args: string[];
  /** ONBUILD's trigger instruction */
  sub?: Node;
  /** the arguments were given in JSON (exec) form */
  json: boolean;
  heredocs: Heredoc[];
  /** the instruction's text after joining continuation lines */
  original: string;
  /** 1-based first and last line, continuations and heredoc bodies included */
  startLine: number;
  endLine: number;
  /** comment lines directly above the instruction, `#` removed */
  comments: string[];
}

/** One instruction in BuildKit's AST dump format: `(copy ["--from=x"] "a" "b")` without the parentheses. */
export function dumpNode(node: Node): string {
  let s = node.keyword.toLowerCase();
  if (node.flags.length > 0) s += ` [${node.flags.map(goQuote).join(' ')}]`;
  if (node.sub) s += ` (${dumpNode(node.sub)})`;
  for (const a of node.args) s += ` ${goQuote(a)}`;
  return trimSpace(s);
}

/** The whole file in BuildKit's AST dump format, byte-identical to its parser test `result` files. */
export function dump(nodes: readonly Node[]): string {
  return nodes.map((n) => `(${dumpNode(n)})\n`).join('');
}
