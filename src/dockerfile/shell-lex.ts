// Word expansion as BuildKit's shell lexer does it (frontend/dockerfile/shell/lex.go): quotes, escapes, $VAR,
// ${VAR}, the ${VAR<op>word} forms and splitting into words. Our own implementation of that behaviour, checked
// against BuildKit's envVarTest/wordsTest vectors in __tests__/dockerfile/shell-conformance.test.ts.
import { isDigit, isLetter, isSpace } from './chars.js';

/** A lookup of variables; Map or plain record. Keys are case-sensitive (Linux semantics). */
export type Env = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

export interface LexOptions {
  /** keep quote characters in the result (used to tell quoted heredoc delimiters apart) */
  rawQuotes?: boolean;
  /** keep escape characters in the result */
  rawEscapes?: boolean;
  /** treat quotes as ordinary characters */
  skipProcessQuotes?: boolean;
  /** leave references to unset variables as written instead of expanding them to "" */
  skipUnsetEnv?: boolean;
}

export interface ExpandResult {
  /** the single-word result: quotes and escapes processed, variables substituted, spaces kept */
  result: string;
  /** the result split into words after substitution, quoted spaces kept */
  words: string[];
  /** variables that were referenced and set */
  matched: Set<string>;
  /** variables that were referenced but not set */
  unmatched: Set<string>;
}

/** A word could not be expanded: unbalanced quotes or braces, a bad substitution, ${VAR?message}. */
export class ExpansionError extends Error {
  override readonly name = 'ExpansionError';
}

const EOF = '';

function lookup(env: Env, name: string): string | undefined {
  if (env instanceof Map) return env.get(name);
  const rec = env as Record<string, string>;
  return Object.hasOwn(rec, name) ? rec[name] : undefined;
}

export class ShellLex {
  readonly escapeToken: string;
  readonly options: Readonly<LexOptions>;

  constructor(escapeToken = '\\', options: LexOptions = {}) {
    this.escapeToken = escapeToken;
    this.options = options;
  }

  with(options: LexOptions): ShellLex {
    return new ShellLex(this.escapeToken, { ...this.options, ...options });
  }

  process(word: string, env: Env): ExpandResult {
    const w = new ShellWord(this, word, env);
    try {
      const [result, words] = w.processStopOn(EOF, !!this.options.rawEscapes);
      return { result, words, matched: w.matched, unmatched: w.unmatched };
    } catch (e) {
      if (e instanceof ExpansionError)
        throw new ExpansionError(`failed to process ${JSON.stringify(word)}: ${e.message}`);
      throw e;
    }
  }

  /** Single-word expansion: an ENV value, a WORKDIR, a COPY source. */
  processWord(word: string, env: Env): string {
    return this.process(word, env).result;
  }

  /** Multi-word expansion: the arguments of EXPOSE, or the words of a heredoc line. */
  processWords(word: string, env: Env): string[] {
    return this.process(word, env).words;
  }
}

class Words {
  private word = '';
  private inWord = false;
  private readonly words: string[] = [];

  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.word.length > 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else {
      this.addRaw(ch);
    }
  }

  addRaw(s: string): void {
    this.word += s;
    this.inWord = true;
  }

  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }

  finish(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class ShellWord {
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();

  constructor(
    private readonly lex: ShellLex,
    source: string,
    private readonly env: Env,
  ) {
    this.chars = Array.from(source);
    this.rawEscapes = !!lex.options.rawEscapes;
  }

  private peek(): string {
    return this.pos < this.chars.length ? this.chars[this.pos] : EOF;
  }

  private next(): string {
    return this.pos < this.chars.length ? this.chars[this.pos++] : EOF;
  }

  private getEnv(name: string): string | undefined {
    const v = lookup(this.env, name);
    if (v === undefined) this.unmatched.add(name);
    else this.matched.add(name);
    return v;
  }

  processStopOn(stopChar: string, rawEscapes: boolean): [string, string[]] {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      return this.scan(stopChar);
    } finally {
      this.rawEscapes = saved;
    }
  }

  private scan(stopChar: string): [string, string[]] {
    const { escapeToken, options } = this.lex;
    let result = '';
    const words = new Words();
    while (this.peek() !== EOF) {
      let ch = this.peek();
      if (stopChar !== EOF && ch === stopChar) {
        this.next();
        return [result, words.finish()];
      }
      if (ch === '$') {
        const tmp = this.processDollar();
        result += tmp;
        words.addString(tmp);
      } else if (!options.skipProcessQuotes && (ch === "'" || ch === '"')) {
        const tmp = ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
        result += tmp;
        words.addRaw(tmp);
      } else {
        ch = this.next();
        if (ch === escapeToken) {
          if (this.rawEscapes) {
            words.addRaw(ch);
            result += ch;
          }
          // the escape token escapes the next character; at the very end it is dropped
          ch = this.next();
          if (ch === EOF) break;
          words.addRaw(ch);
        } else {
          words.addChar(ch);
        }
        result += ch;
      }
    }
    if (stopChar !== EOF)
      throw new ExpansionError(`unexpected end of statement while looking for matching ${stopChar}`);
    return [result, words.finish()];
  }

  private processSingleQuote(): string {
    // Everything up to the next single quote is literal; a single quote cannot be escaped inside.
    const raw = !!this.lex.options.rawQuotes;
    let result = '';
    const open = this.next();
    if (raw) result += open;
    for (;;) {
      const ch = this.next();
      if (ch === EOF) throw new ExpansionError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") {
        if (raw) result += ch;
        return result;
      }
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    // Literal except $ and the escape token, which escapes only ", $ and itself (as sh does).
    const raw = !!this.lex.options.rawQuotes;
    const esc = this.lex.escapeToken;
    let result = '';
    const open = this.next();
    if (raw) result += open;
    for (;;) {
      const p = this.peek();
      if (p === EOF) throw new ExpansionError('unexpected end of statement while looking for matching double-quote');
      if (p === '"') {
        const ch = this.next();
        if (raw) result += ch;
        return result;
      }
      if (p === '$') {
        result += this.processDollar();
        continue;
      }
      let ch = this.next();
      if (ch === esc) {
        if (this.rawEscapes) result += ch;
        const n = this.peek();
        if (n === EOF) continue;
        if (n === '"' || n === '$' || n === esc) ch = this.next();
      }
      result += ch;
    }
  }

  private processDollar(): string {
    const skipUnset = !!this.lex.options.skipUnsetEnv;
    this.next(); // the $
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.getEnv(name);
      if (value === undefined && skipUnset) return `$${name}`;
      return value ?? '';
    }
    this.next(); // the {
    const first = this.peek();
    if (first === EOF) throw new ExpansionError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new ExpansionError('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.next();
    let op = ch;
    if (ch === '}') {
      const value = this.getEnv(name);
      if (value === undefined && skipUnset) return `\${${name}}`;
      return value ?? '';
    }
    if (ch === EOF) throw new ExpansionError("syntax error: missing '}'");
    if (ch === '/') return this.processReplace(name);
    let nullIsUnset = false;
    if (ch === ':') {
      nullIsUnset = true;
      ch = this.next();
      op += ch;
    } else if (!'+-?#%'.includes(ch)) {
      throw new ExpansionError(`unsupported modifier (${op}) in substitution`);
    }
    let word: string;
    try {
      [word] = this.processStopOn('}', ch === '#' || ch === '%');
    } catch (e) {
      if (this.peek() === EOF) throw new ExpansionError("syntax error: missing '}'");
      throw e;
    }
    const value = this.getEnv(name);
    if (value === undefined && skipUnset) return `\${${name}${op}${word}}`;
    const unset = value === undefined || (nullIsUnset && value === '');
    switch (ch) {
      case '-':
        return unset ? word : value!;
      case '+':
        return unset ? '' : word;
      case '?':
        if (value === undefined)
          throw new ExpansionError(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
        if (nullIsUnset && value === '')
          throw new ExpansionError(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
        return value;
      case '#':
      case '%': {
        // # and % remove the shortest match, ## and %% the longest
        let greedy = false;
        if (word.startsWith(ch)) {
          greedy = true;
          word = word.slice(1);
        }
        return ch === '%' ? trimSuffix(word, value ?? '', greedy) : trimPrefix(word, value ?? '', greedy);
      }
      default:
        throw new ExpansionError(`unsupported modifier (${op}) in substitution`);
    }
  }

  private processReplace(name: string): string {
    const all = this.peek() === '/';
    if (all) this.next();
    let pattern: string;
    let replacement: string;
    try {
      [pattern] = this.processStopOn('/', true);
    } catch (e) {
      if (this.peek() === EOF) throw new ExpansionError("syntax error: missing '/' in ${}");
      throw e;
    }
    try {
      [replacement] = this.processStopOn('}', true);
    } catch (e) {
      if (this.peek() === EOF) throw new ExpansionError("syntax error: missing '}'");
      throw e;
    }
    const value = this.getEnv(name);
    if (value === undefined && this.lex.options.skipUnsetEnv) return `\${${name}/${pattern}/${replacement}}`;
    const re = shellPatternToRegExp(pattern, true, false);
    const v = value ?? '';
    if (all) return replaceAllGo(re, v, replacement);
    const m = re.exec(v);
    if (!m) return v;
    return v.slice(0, m.index) + replacement + v.slice(m.index + m[0].length);
  }

  private processName(): string {
    // A name is letters, digits and _; a leading digit makes it positional ($1, $001), and the special
    // parameters ($@, $*, $#, $?, $-, $$, $!, $0) are one character. None of those is ever set here.
    let name = '';
    while (this.peek() !== EOF) {
      const ch = this.peek();
      if (name === '' && isDigit(ch)) {
        while (this.peek() !== EOF && isDigit(this.peek())) name += this.next();
        return name;
      }
      if (name === '' && '@*#?-$!0'.includes(ch)) return this.next();
      if (!isLetter(ch) && !isDigit(ch) && ch !== '_') break;
      name += this.next();
    }
    return name;
  }
}

/**
 * A shell pattern (`?` one character, `*` any run, `\` escapes) as a RegExp. Like BuildKit, no bracket
 * expressions. `.` becomes `[^\n]` to keep Go's meaning of `.`.
 */
export function shellPatternToRegExp(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? '^' : '';
  const star = greedy ? '[^\\n]*' : '[^\\n]*?';
  for (let i = 0; i < chars.length; i++) {
    const tok = chars[i];
    switch (tok) {
      case '*':
        out += star;
        continue;
      case '?':
        out += '[^\\n]';
        continue;
      case '\\': {
        // \} and \/ are escapes of the ${} syntax, not of the pattern
        const n = chars[i + 1];
        if (n === '}' || n === '/') continue;
        if (n !== '*' && n !== '?' && n !== '\\') {
          throw new ExpansionError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${n ?? ''}'`);
        }
        out += `\\${n}`;
        i++;
        continue;
      }
      default:
        if ('[]{}.+()|^$/'.includes(tok)) out += '\\';
        out += tok;
    }
  }
  return new RegExp(out, 'gu');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const re = shellPatternToRegExp(pattern, greedy, true);
  const m = re.exec(value);
  return m ? value.slice(m.index + m[0].length) : value;
}

// A pattern reversed without reversing its escapes: a\*c -> c\*a
function reversePattern(pattern: string): string {
  const chars = Array.from(pattern);
  const out: string[] = new Array(chars.length);
  const last = chars.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = chars[i];
    const at = last - i;
    if (tok === '\\' && i !== last) {
      out[at - 1] = tok;
      out[at] = chars[i + 1];
      i += 2;
    } else {
      out[at] = tok;
      i++;
    }
  }
  return out.join('');
}

function reverseString(s: string): string {
  return Array.from(s).reverse().join('');
}

// Regular expressions find leftmost matches only, so the shortest suffix is found as the shortest prefix of
// the reversed value.
function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), greedy));
}

// Go's Regexp.ReplaceAllString: no replacement for an empty match right after a match, and $-templates in the
// replacement (only group 0 exists in our patterns).
function replaceAllGo(re: RegExp, src: string, template: string): string {
  let out = '';
  let lastMatchEnd = 0;
  let searchPos = 0;
  while (searchPos <= src.length) {
    re.lastIndex = searchPos;
    const m = re.exec(src);
    if (!m) break;
    const a0 = m.index;
    const a1 = a0 + m[0].length;
    out += src.slice(lastMatchEnd, a0);
    if (a1 > lastMatchEnd || a0 === 0) out += expandTemplate(template, m[0]);
    lastMatchEnd = a1;
    const cp = src.codePointAt(searchPos);
    const width = cp === undefined ? 0 : cp > 0xffff ? 2 : 1;
    if (searchPos + width > a1) searchPos += width;
    else if (searchPos + 1 > a1) searchPos++;
    else searchPos = a1;
  }
  return out + src.slice(lastMatchEnd);
}

function expandTemplate(template: string, match: string): string {
  let out = '';
  let t = template;
  for (;;) {
    const i = t.indexOf('$');
    if (i < 0) break;
    out += t.slice(0, i);
    t = t.slice(i);
    if (t[1] === '$') {
      out += '$';
      t = t.slice(2);
      continue;
    }
    const m = /^\$(?:\{([\p{L}\p{Nd}_]+)\}|([\p{L}\p{Nd}_]+))/u.exec(t);
    if (!m) {
      out += '$';
      t = t.slice(1);
      continue;
    }
    const name = m[1] ?? m[2];
    t = t.slice(m[0].length);
    if (name === '0') out += match;
  }
  return out + t;
}
