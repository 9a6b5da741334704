// Dockerfile text to a list of instruction Nodes, line handling exactly as BuildKit's parser does it: parser
// directives at the top, comments, the escape character as line continuation (blank and comment lines inside a
// continuation are skipped), heredoc bodies, and the start and end line of every instruction.
import type { Heredoc, Node } from './ast.js';
import { trimLeftSpace } from './chars.js';
import { type Directive, DirectiveParser, escapeTokenOf } from './directives.js';
import { DockerfileError } from './errors.js';
import { heredocsOfLine } from './heredoc.js';
import { LineSyntaxError, nodeFromLine } from './line-parsers.js';

export interface ParseWarning {
  message: string;
  line: number;
}

export interface ParseResult {
  nodes: Node[];
  /** `\` unless an escape directive said otherwise */
  escapeToken: string;
  directives: Directive[];
  /** problems BuildKit accepts with a warning (empty continuation lines) */
  warnings: ParseWarning[];
}

export interface ParseOptions {
  /** the name errors carry; default "Dockerfile" */
  file?: string;
}

// bufio.Scanner's default token limit, which BuildKit's parser keeps
const maxLineBytes = 64 * 1024;

/** Lines with their line endings kept, as BuildKit's scanner yields them. */
function splitLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) break;
    lines.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
  if (start < text.length) lines.push(text.slice(start));
  return lines;
}

function trimNewline(s: string): string {
  let j = s.length;
  while (j > 0 && (s[j - 1] === '\n' || s[j - 1] === '\r')) j--;
  return s.slice(0, j);
}

function isComment(s: string): boolean {
  return trimLeftSpace(s).startsWith('#');
}

function continuationPattern(escapeToken: string): RegExp {
  const e = `\\${escapeToken}`;
  // the escape token at the end (trailing blanks allowed) continues the line, unless it is itself escaped
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

export function parse(text: string, options: ParseOptions = {}): ParseResult {
  const file = options.file ?? 'Dockerfile';
  try {
    return parseText(text);
  } catch (e) {
    if (e instanceof DockerfileError) throw e.withSource(file, text);
    throw e;
  }
}

function parseText(text: string): ParseResult {
  const lines = splitLines(text.startsWith('\ufeff') ? text.slice(1) : text);
  const directiveParser = new DirectiveParser();
  let escapeToken = '\\';
  let continuation = continuationPattern(escapeToken);
  const nodes: Node[] = [];
  const warnings: ParseWarning[] = [];
  let comments: string[] = [];
  let i = 0;
  let currentLine = 0;

  // A line's text for the parser: newline off, the leading blanks off for a first line, comments emptied.
  const processLine = (raw: string, stripLeft: boolean): [string, boolean] => {
    if (raw.length > maxLineBytes / 4 && Buffer.byteLength(raw) > maxLineBytes) {
      throw new DockerfileError(
        `dockerfile line greater than max allowed size of ${maxLineBytes - 1}`,
        { line: currentLine + 1 },
        { hint: 'split the line with the escape character at the end of each part' },
      );
    }
    let tok = trimNewline(raw);
    if (stripLeft) tok = trimLeftSpace(tok);
    const d = directiveParser.parseLine(tok, currentLine + 1);
    if (d?.name === 'escape') {
      escapeToken = escapeTokenOf(d);
      continuation = continuationPattern(escapeToken);
    }
    return [isComment(tok) ? '' : tok, d !== undefined];
  };
  const trimContinuation = (s: string): [string, boolean] => {
    const m = continuation.exec(s);
    if (!m) return [s, true];
    return [s.slice(0, m.index) + (m[1] ?? ''), false];
  };

  while (i < lines.length) {
    const first = lines[i++];
    if (isComment(first)) {
      const c = trimLeftSpace(first).slice(1).trim();
      if (c === '') comments = [];
      else comments.push(c);
    }
    const [tok, isDirective] = processLine(first, true);
    if (isDirective) comments.pop();
    currentLine++;
    const startLine = currentLine;
    let [line, endOfLine] = trimContinuation(tok);
    if (endOfLine && line === '') continue;

    let emptyContinuation = false;
    while (!endOfLine && i < lines.length) {
      const raw = lines[i++];
      const [next] = processLine(raw, false);
      currentLine++;
      if (isComment(raw)) continue;
      if (trimLeftSpace(next) === '') {
        emptyContinuation = true;
        continue;
      }
      let part: string;
      [part, endOfLine] = trimContinuation(next);
      line += part;
    }
    if (emptyContinuation) {
      warnings.push({ message: `Empty continuation line found in: ${line}`, line: currentLine });
    }

    let node: Node;
    try {
      node = nodeFromLine(line, escapeToken, comments);
      const target = node.keyword.toLowerCase() === 'onbuild' && node.sub ? node.sub : node;
      if (['run', 'copy', 'add'].includes(target.keyword.toLowerCase()) && !target.json && line.includes('<<')) {
        for (const h of heredocsOfLine(line)) {
          let content = '';
          let terminated = false;
          while (i < lines.length) {
            const raw = lines[i++];
            currentLine++;
            let candidate = trimNewline(raw);
            if (h.chomp) candidate = candidate.replace(/^\t+/, '');
            if (candidate === h.name) {
              terminated = true;
              break;
            }
            content += raw;
          }
          if (!terminated) {
            throw new DockerfileError(
              'unterminated heredoc',
              { line: startLine, endLine: currentLine },
              {
                hint: `end the heredoc with a line that holds only ${JSON.stringify(h.name)}`,
              },
            );
          }
          node.heredocs.push({ ...h, content } satisfies Heredoc);
        }
      }
    } catch (e) {
      if (e instanceof LineSyntaxError) {
        throw new DockerfileError(e.message, { line: startLine, endLine: currentLine }, { hint: e.hint });
      }
      throw e;
    }
    node.startLine = startLine;
    node.endLine = currentLine;
    if (node.sub) {
      node.sub.startLine = startLine;
      node.sub.endLine = currentLine;
      node.sub.heredocs = node.heredocs;
    }
    nodes.push(node);
    comments = [];
  }

  if (nodes.length === 0) {
    throw new DockerfileError(
      'file with no instructions',
      { line: Math.max(1, currentLine) },
      {
        hint: 'a Dockerfile needs at least a FROM instruction',
      },
    );
  }
  return { nodes, escapeToken, directives: directiveParser.directives, warnings };
}
