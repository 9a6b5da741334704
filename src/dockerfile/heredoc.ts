// Heredocs (`RUN <<EOF`, `COPY <<-"EOT" /dest`): which words of an instruction open one, and how to treat
// the body. The parser reads the bodies; instructions.ts turns them into inline files or scripts.
import type { Heredoc } from './ast.js';
import { LineSyntaxError } from './line-parsers.js';
import { ExpansionError, ShellLex } from './shell-lex.js';

const heredocWord = /^(\d*)<<(-?)([^<]*)$/;
const noEnv: Record<string, string> = {};
const plain = new ShellLex('\\', { skipUnsetEnv: true });
const quoted = plain.with({ rawQuotes: true });
const lineWords = new ShellLex('\\', { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true });

/** The heredoc a single word opens (`<<EOF`, `2<<-'X'`), or undefined when the word is not one. */
export function parseHeredocWord(word: string): Omit<Heredoc, 'content'> | undefined {
  const m = heredocWord.exec(word);
  if (!m || m[3] === '') return undefined;
  const fd = m[1] === '' ? 0 : Number.parseInt(m[1], 10);
  let words: string[];
  let raw: string[];
  try {
    words = plain.processWords(m[3], noEnv);
    if (words.length !== 1) return undefined;
    raw = quoted.processWords(m[3], noEnv);
  } catch (e) {
    if (e instanceof ExpansionError) throw new LineSyntaxError(`invalid heredoc delimiter ${m[3]}: ${e.message}`);
    throw e;
  }
  if (raw.length !== words.length) {
    throw new LineSyntaxError(`internal lexing of heredoc produced inconsistent results: ${m[3]}`);
  }
  // If quoting changed the word, part of the delimiter was quoted, and the body is not expanded.
  const quotes = (s: string) => s.split('').filter((c) => c === '"' || c === "'").length;
  return {
    name: words[0],
    fileDescriptor: Number.isSafeInteger(fd) ? fd : 0,
    expand: quotes(words[0]) === quotes(raw[0]),
    chomp: m[2] === '-',
  };
}

/** The heredocs an instruction line opens, in order. A line that does not lex opens none. */
export function heredocsOfLine(line: string): Omit<Heredoc, 'content'>[] {
  let words: string[];
  try {
    words = lineWords.processWords(line, noEnv);
  } catch (e) {
    if (e instanceof ExpansionError) return [];
    throw e;
  }
  const docs: Omit<Heredoc, 'content'>[] = [];
  for (const w of words) {
    const h = parseHeredocWord(w);
    if (h) docs.push(h);
  }
  return docs;
}

/** `<<-`: leading tabs come off every line of the body. */
export function chompHeredocContent(content: string): string {
  return content.replace(/(^|\n)\t+/g, '$1');
}
