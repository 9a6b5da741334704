// How each instruction's text is split into flags and arguments. BuildKit gives every instruction one of a few
// "line parsers" (parser/line_parsers.go); the split decides, for example, that `ENV a b c` sets a to "b c"
// while `ENV a=b c=d` sets two variables, and that `CMD ['x']` (not valid JSON) is shell form.
import { isSpace, trimLeftSpace, trimSpace } from './chars.js';
import type { Node } from './ast.js';

/** A syntax problem in one instruction; the parser adds the location. */
export class LineSyntaxError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

interface Parsed {
  args: string[];
  json: boolean;
  sub?: Node;
}

type LineParser = (rest: string, escapeToken: string) => Parsed;

const none: Parsed = { args: [], json: false };
// BuildKit splits on [\t\v\f\r ]+ (no newline, no Unicode spaces) in several places
const whitespaceRun = /[\t\v\f\r ]+/;

/** Splits `CMD --flag=x -- args` into the keyword, the flags and the argument text. */
export function splitCommand(line: string): { keyword: string; flags: string[]; rest: string } {
  const trimmed = trimSpace(line);
  const m = whitespaceRun.exec(trimmed);
  if (!m) return { keyword: trimmed, flags: [], rest: '' };
  const keyword = trimmed.slice(0, m.index);
  const { rest, flags } = extractFlags(trimmed.slice(m.index + m[0].length));
  return { keyword, flags, rest: trimSpace(rest) };
}

// Leading words that start with `--` are flags; quotes and backslashes inside them are processed; a bare `--`
// ends the flags.
function extractFlags(line: string): { rest: string; flags: string[] } {
  const flags: string[] = [];
  let word = '';
  let blankOK = false;
  let quote = '';
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  const n = line.length;
  for (let pos = 0; pos <= n; pos++) {
    const ch = pos < n ? line[pos] : '';
    if (phase === 'spaces') {
      if (pos === n) break;
      if (isSpace(ch)) continue;
      if (ch !== '-' || pos + 1 === n || line[pos + 1] !== '-') return { rest: line.slice(pos), flags };
      phase = 'word';
    }
    if (pos === n) {
      if (word !== '--' && (blankOK || word.length > 0)) flags.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (word === '--') return { rest: line.slice(pos), flags };
        if (blankOK || word.length > 0) flags.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === n) continue;
        pos++;
        word += line[pos];
        continue;
      }
      word += ch;
      continue;
    }
    // in a quote
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === '\\') {
      if (pos + 1 === n) {
        phase = 'word';
        continue;
      }
      pos++;
      word += line[pos];
      continue;
    }
    word += ch;
  }
  return { rest: '', flags };
}

/**
 * Words separated by white space with quotes kept (they are removed later, by word expansion). An escape token
 * outside quotes keeps itself and the next character; inside double quotes likewise; inside single quotes it
 * is literal.
 */
export function parseWords(rest: string, escapeToken: string): string[] {
  const words: string[] = [];
  const chars = Array.from(rest);
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let quote = '';
  let blankOK = false;
  let word = '';
  const n = chars.length;
  for (let pos = 0; pos <= n; pos++) {
    let ch = pos < n ? chars[pos] : '';
    if (phase === 'spaces') {
      if (pos === n) break;
      if (isSpace(ch)) continue;
      phase = 'word';
    }
    if (pos === n) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
      }
      if (ch === escapeToken) {
        if (pos + 1 === n) continue; // an escape token at the very end is dropped
        word += ch;
        pos++;
        ch = chars[pos];
      }
      word += ch;
      continue;
    }
    if (ch === quote) phase = 'word';
    if (ch === escapeToken && quote !== "'") {
      if (pos + 1 === n) {
        phase = 'word';
        continue;
      }
      pos++;
      word += ch;
      ch = chars[pos];
    }
    word += ch;
  }
  return words;
}

function parseNameVal(rest: string, key: string, escapeToken: string): Parsed {
  const words = parseWords(rest, escapeToken);
  if (words.length === 0) return none;
  // `KEY name value` (legacy: one pair, the value is the rest of the line) or `KEY name=value …`
  if (!words[0].includes('=')) {
    const m = whitespaceRun.exec(rest);
    if (!m) {
      throw new LineSyntaxError(`${key} must have two arguments`, `write ${key} ${rest}=VALUE`);
    }
    return { args: [rest.slice(0, m.index), rest.slice(m.index + m[0].length), ''], json: false };
  }
  const args: string[] = [];
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq < 0) {
      throw new LineSyntaxError(
        `Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`,
        `every word of ${key} must be name=value; quote values that contain spaces`,
      );
    }
    args.push(w.slice(0, eq), w.slice(eq + 1), '=');
  }
  return { args, json: false };
}

function parseNameOrNameVal(rest: string, escapeToken: string): Parsed {
  return { args: parseWords(rest, escapeToken), json: false };
}

function parseWhitespaceDelimited(rest: string): Parsed {
  if (rest === '') return none;
  return { args: rest.split(new RegExp(whitespaceRun.source)), json: false };
}

function parseString(rest: string): Parsed {
  return rest === '' ? none : { args: [rest], json: false };
}

const notStringArray = 'when using JSON array syntax, arrays must be comprised of strings only';

/** The JSON (exec) form, or undefined when the text is not a JSON array (the caller then falls back). */
function parseJSON(rest: string): Parsed | undefined {
  const t = trimLeftSpace(rest);
  if (!t.startsWith('[')) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v)) return undefined;
  const args: string[] = [];
  for (const e of v) {
    if (typeof e !== 'string') {
      throw new LineSyntaxError(notStringArray, 'write every element as a "string", e.g. ["echo", "hello"]');
    }
    // Go decodes lone surrogate escapes to U+FFFD
    args.push(e.toWellFormed());
  }
  return { args, json: true };
}

function parseMaybeJSON(rest: string): Parsed {
  if (rest === '') return none;
  return parseJSON(rest) ?? { args: [rest], json: false };
}

function parseMaybeJSONToList(rest: string): Parsed {
  return parseJSON(rest) ?? parseWhitespaceDelimited(rest);
}

// HEALTHCHECK: a type word (CMD, NONE), then a command like CMD's
function parseHealthConfig(rest: string): Parsed {
  let sep = 0;
  while (sep < rest.length && !isSpace(rest[sep])) sep++;
  let next = sep;
  while (next < rest.length && isSpace(rest[next])) next++;
  if (sep === 0) return none;
  const cmd = parseMaybeJSON(rest.slice(next));
  return { args: [rest.slice(0, sep), ...cmd.args], json: cmd.json };
}

const lineParsers: Record<string, LineParser> = {
  add: parseMaybeJSONToList,
  arg: parseNameOrNameVal,
  cmd: parseMaybeJSON,
  copy: parseMaybeJSONToList,
  entrypoint: parseMaybeJSON,
  env: (rest, esc) => parseNameVal(rest, 'ENV', esc),
  expose: parseWhitespaceDelimited,
  from: parseWhitespaceDelimited,
  healthcheck: parseHealthConfig,
  label: (rest, esc) => parseNameVal(rest, 'LABEL', esc),
  maintainer: parseString,
  onbuild: (rest, esc) => (rest === '' ? none : { args: [], json: false, sub: nodeFromLine(rest, esc, []) }),
  run: parseMaybeJSON,
  shell: parseMaybeJSON,
  stopsignal: parseString,
  user: parseString,
  volume: parseMaybeJSONToList,
  workdir: parseString,
};

/** The keywords BuildKit knows, lower case. */
export const instructionKeywords: readonly string[] = Object.keys(lineParsers);

/** One logical line (continuations joined) to a Node; location fields are set by the caller. */
export function nodeFromLine(line: string, escapeToken: string, comments: string[]): Node {
  const { keyword, flags, rest } = splitCommand(line);
  const fn = lineParsers[keyword.toLowerCase()];
  // Unknown instructions parse (as BuildKit's parser does) and are rejected when instructions are read.
  const parsed = fn ? fn(rest, escapeToken) : { args: [''], json: false };
  return {
    keyword,
    flags,
    args: parsed.args,
    sub: parsed.sub,
    json: parsed.json,
    heredocs: [],
    original: line,
    startLine: 0,
    endLine: 0,
    comments,
  };
}
