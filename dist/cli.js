#!/usr/bin/env node
import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
/******/ /* webpack/runtime/compat */
/******/ 
/******/ if (typeof __nccwpck_require__ !== 'undefined') __nccwpck_require__.ab = new URL('.', import.meta.url).pathname.slice(import.meta.url.match(/^file:\/\/\/\w:/) ? 1 : 0, -1) + "/";
/******/ 
/************************************************************************/
var __webpack_exports__ = {};

;// CONCATENATED MODULE: ./lib/dockerfile/chars.js
// Character classes with Go's semantics. BuildKit's parser and shell lexer use Go's `unicode` package, whose
// notion of white space differs from JavaScript's `\s` (Go counts U+0085, not U+FEFF), so we spell it out.
const goSpace = new Set([
    0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
    0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);
/** Go's unicode.IsSpace for one character (a code point, or a one-character string). */
function isSpace(ch) {
    const cp = typeof ch === 'number' ? ch : ch.codePointAt(0);
    return cp !== undefined && goSpace.has(cp);
}
/** strings.TrimSpace */
function trimSpace(s) {
    return trimRightSpace(trimLeftSpace(s));
}
/** bytes.TrimLeftFunc(s, unicode.IsSpace) */
function trimLeftSpace(s) {
    let i = 0;
    while (i < s.length && goSpace.has(s.charCodeAt(i)))
        i++;
    return i === 0 ? s : s.slice(i);
}
function trimRightSpace(s) {
    let j = s.length;
    while (j > 0 && goSpace.has(s.charCodeAt(j - 1)))
        j--;
    return j === s.length ? s : s.slice(0, j);
}
const letter = /^\p{L}$/u;
const digit = /^\p{Nd}$/u;
/** unicode.IsLetter */
function isLetter(ch) {
    return ch.length <= 2 && letter.test(ch);
}
/** unicode.IsDigit */
function isDigit(ch) {
    if (ch.length === 1) {
        const c = ch.charCodeAt(0);
        if (c < 0x80)
            return c >= 0x30 && c <= 0x39;
    }
    return ch.length <= 2 && digit.test(ch);
}
const printable = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;
/**
 * Go's strconv.Quote: the format of every value in BuildKit's AST dump. Printable characters stay as they are,
 * the C escapes are used where they exist, other control characters become \xHH, other non-printables \uHHHH.
 */
function goQuote(s) {
    let out = '"';
    for (const ch of s) {
        const cp = ch.codePointAt(0);
        switch (ch) {
            case '"':
                out += '\\"';
                continue;
            case '\\':
                out += '\\\\';
                continue;
            case '\x07':
                out += '\\a';
                continue;
            case '\b':
                out += '\\b';
                continue;
            case '\f':
                out += '\\f';
                continue;
            case '\n':
                out += '\\n';
                continue;
            case '\r':
                out += '\\r';
                continue;
            case '\t':
                out += '\\t';
                continue;
            case '\v':
                out += '\\v';
                continue;
        }
        if (cp >= 0xd800 && cp <= 0xdfff) {
            // a lone surrogate is not valid UTF-8; Go would have decoded it as the replacement character
            out += '\ufffd';
        }
        else if (printable.test(ch)) {
            out += ch;
        }
        else if (cp < 0x20 || cp === 0x7f) {
            out += '\\x' + cp.toString(16).padStart(2, '0');
        }
        else if (cp < 0x10000) {
            out += '\\u' + cp.toString(16).padStart(4, '0');
        }
        else {
            out += '\\U' + cp.toString(16).padStart(8, '0');
        }
    }
    return out + '"';
}

;// CONCATENATED MODULE: ./lib/dockerfile/ast.js
// The parse tree of a Dockerfile: one Node per instruction, as BuildKit's parser produces it, before any
// meaning is given to the arguments (that is instructions.ts).

/** One instruction in BuildKit's AST dump format: `(copy ["--from=x"] "a" "b")` without the parentheses. */
function dumpNode(node) {
    let s = node.keyword.toLowerCase();
    if (node.flags.length > 0)
        s += ' [' + node.flags.map(goQuote).join(' ') + ']';
    if (node.sub)
        s += ' (' + dumpNode(node.sub) + ')';
    for (const a of node.args)
        s += ' ' + goQuote(a);
    return trimSpace(s);
}
/** The whole file in BuildKit's AST dump format, byte-identical to its parser test `result` files. */
function dump(nodes) {
    return nodes.map((n) => '(' + dumpNode(n) + ')\n').join('');
}

;// CONCATENATED MODULE: ./lib/dockerfile/errors.js
// Every problem with a Dockerfile is reported as a DockerfileError: where it is (file, line, column when known),
// the offending source lines, and what to do about it. Nothing in src/dockerfile throws anything else for bad input.
class DockerfileError extends Error {
    name = 'DockerfileError';
    /** the file name as the user gave it; set by whoever knows it (the parser only sees text) */
    file;
    line;
    endLine;
    column;
    hint;
    /** the source lines from line to endLine, for printing */
    source = [];
    /** the bare message without location, for tools that format themselves */
    detail;
    constructor(detail, loc, opts = {}) {
        super(detail);
        this.detail = detail;
        this.line = loc.line;
        this.endLine = loc.endLine ?? loc.line;
        this.column = loc.column;
        this.hint = opts.hint;
        this.file = opts.file ?? 'Dockerfile';
        this.message = this.headline();
    }
    /** Attach the file name and the text the error points into. */
    withSource(file, text) {
        this.file = file;
        this.message = this.headline();
        const lines = text.split('\n');
        if (this.line >= 1)
            this.source = lines.slice(this.line - 1, Math.max(this.line, this.endLine));
        return this;
    }
    /** `file:line[:column]: detail`, also the Error's message */
    headline() {
        const where = this.column ? `${this.file}:${this.line}:${this.column}` : `${this.file}:${this.line}`;
        return `${where}: ${this.detail}`;
    }
    /** The error as a person should see it in a log: location, the lines, the message, the hint. */
    format() {
        const out = [this.headline()];
        if (this.source.length > 0) {
            const width = String(this.line + this.source.length - 1).length;
            out.push('--------------------');
            this.source.forEach((text, i) => {
                const n = String(this.line + i).padStart(width, ' ');
                out.push(` ${n} | >>> ${text.replace(/\r$/, '')}`);
            });
            out.push('--------------------');
        }
        if (this.hint)
            out.push(`hint: ${this.hint}`);
        return out.join('\n');
    }
}
function isDockerfileError(e) {
    return e instanceof DockerfileError;
}

;// CONCATENATED MODULE: ./lib/dockerfile/directives.js
// Parser directives: `# syntax=…`, `# escape=…`, `# check=…`, recognised only in the comment lines at the very
// top of the file. The first line that is not a directive ends them for good (a blank line, another comment, an
// instruction), as in BuildKit.


const known = new Set(['syntax', 'escape', 'check']);
// Go's \s in RE2 is [\t\n\f\r ]
const directiveLine = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*([^\n]+?)[\t\n\f\r ]*$/;
class DirectiveParser {
    done = false;
    seen = new Set();
    directives = [];
    /** Look at one line (newline removed); returns the directive it holds, if it is one and directives are still open. */
    parseLine(text, line) {
        if (this.done)
            return undefined;
        if (!text.startsWith('#')) {
            this.done = true;
            return undefined;
        }
        const m = directiveLine.exec(trimLeftSpace(text.slice(1)));
        if (!m || !known.has(m[1].toLowerCase())) {
            this.done = true;
            return undefined;
        }
        const name = m[1].toLowerCase();
        if (this.seen.has(name)) {
            throw new DockerfileError(`only one ${name} parser directive can be used`, { line }, {
                hint: `remove the second "# ${name}=" line`,
            });
        }
        this.seen.add(name);
        const d = { name, value: m[2], line };
        this.directives.push(d);
        return d;
    }
}
/** Validates an `escape` directive's value: only backslash and backtick are allowed. */
function escapeTokenOf(d) {
    if (d.value !== '\\' && d.value !== '`') {
        throw new DockerfileError(`invalid escape token '${d.value}' does not match \` or \\`, { line: d.line }, {
            hint: 'use "# escape=\\" (the default) or "# escape=`" (common on Windows)',
        });
    }
    return d.value;
}

;// CONCATENATED MODULE: ./lib/dockerfile/line-parsers.js
// How each instruction's text is split into flags and arguments. BuildKit gives every instruction one of a few
// "line parsers" (parser/line_parsers.go); the split decides, for example, that `ENV a b c` sets a to "b c"
// while `ENV a=b c=d` sets two variables, and that `CMD ['x']` (not valid JSON) is shell form.

/** A syntax problem in one instruction; the parser adds the location. */
class LineSyntaxError extends Error {
    hint;
    constructor(message, hint) {
        super(message);
        this.hint = hint;
    }
}
const none = { args: [], json: false };
// BuildKit splits on [\t\v\f\r ]+ (no newline, no Unicode spaces) in several places
const whitespaceRun = /[\t\v\f\r ]+/;
/** Splits `CMD --flag=x -- args` into the keyword, the flags and the argument text. */
function splitCommand(line) {
    const trimmed = trimSpace(line);
    const m = whitespaceRun.exec(trimmed);
    if (!m)
        return { keyword: trimmed, flags: [], rest: '' };
    const keyword = trimmed.slice(0, m.index);
    const { rest, flags } = extractFlags(trimmed.slice(m.index + m[0].length));
    return { keyword, flags, rest: trimSpace(rest) };
}
// Leading words that start with `--` are flags; quotes and backslashes inside them are processed; a bare `--`
// ends the flags.
function extractFlags(line) {
    const flags = [];
    let word = '';
    let blankOK = false;
    let quote = '';
    let phase = 'spaces';
    const n = line.length;
    for (let pos = 0; pos <= n; pos++) {
        const ch = pos < n ? line[pos] : '';
        if (phase === 'spaces') {
            if (pos === n)
                break;
            if (isSpace(ch))
                continue;
            if (ch !== '-' || pos + 1 === n || line[pos + 1] !== '-')
                return { rest: line.slice(pos), flags };
            phase = 'word';
        }
        if (pos === n) {
            if (word !== '--' && (blankOK || word.length > 0))
                flags.push(word);
            break;
        }
        if (phase === 'word') {
            if (isSpace(ch)) {
                phase = 'spaces';
                if (word === '--')
                    return { rest: line.slice(pos), flags };
                if (blankOK || word.length > 0)
                    flags.push(word);
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
                if (pos + 1 === n)
                    continue;
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
function parseWords(rest, escapeToken) {
    const words = [];
    const chars = Array.from(rest);
    let phase = 'spaces';
    let quote = '';
    let blankOK = false;
    let word = '';
    const n = chars.length;
    for (let pos = 0; pos <= n; pos++) {
        let ch = pos < n ? chars[pos] : '';
        if (phase === 'spaces') {
            if (pos === n)
                break;
            if (isSpace(ch))
                continue;
            phase = 'word';
        }
        if (pos === n) {
            if (blankOK || word.length > 0)
                words.push(word);
            break;
        }
        if (phase === 'word') {
            if (isSpace(ch)) {
                phase = 'spaces';
                if (blankOK || word.length > 0)
                    words.push(word);
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
                if (pos + 1 === n)
                    continue; // an escape token at the very end is dropped
                word += ch;
                pos++;
                ch = chars[pos];
            }
            word += ch;
            continue;
        }
        if (ch === quote)
            phase = 'word';
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
function parseNameVal(rest, key, escapeToken) {
    const words = parseWords(rest, escapeToken);
    if (words.length === 0)
        return none;
    // `KEY name value` (legacy: one pair, the value is the rest of the line) or `KEY name=value …`
    if (!words[0].includes('=')) {
        const m = whitespaceRun.exec(rest);
        if (!m) {
            throw new LineSyntaxError(`${key} must have two arguments`, `write ${key} ${rest}=VALUE`);
        }
        return { args: [rest.slice(0, m.index), rest.slice(m.index + m[0].length), ''], json: false };
    }
    const args = [];
    for (const w of words) {
        const eq = w.indexOf('=');
        if (eq < 0) {
            throw new LineSyntaxError(`Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`, `every word of ${key} must be name=value; quote values that contain spaces`);
        }
        args.push(w.slice(0, eq), w.slice(eq + 1), '=');
    }
    return { args, json: false };
}
function parseNameOrNameVal(rest, escapeToken) {
    return { args: parseWords(rest, escapeToken), json: false };
}
function parseWhitespaceDelimited(rest) {
    if (rest === '')
        return none;
    return { args: rest.split(new RegExp(whitespaceRun.source)), json: false };
}
function parseString(rest) {
    return rest === '' ? none : { args: [rest], json: false };
}
const notStringArray = 'when using JSON array syntax, arrays must be comprised of strings only';
/** The JSON (exec) form, or undefined when the text is not a JSON array (the caller then falls back). */
function parseJSON(rest) {
    const t = trimLeftSpace(rest);
    if (!t.startsWith('['))
        return undefined;
    let v;
    try {
        v = JSON.parse(t);
    }
    catch {
        return undefined;
    }
    if (!Array.isArray(v))
        return undefined;
    const args = [];
    for (const e of v) {
        if (typeof e !== 'string') {
            throw new LineSyntaxError(notStringArray, 'write every element as a "string", e.g. ["echo", "hello"]');
        }
        // Go decodes lone surrogate escapes to U+FFFD
        args.push(e.toWellFormed());
    }
    return { args, json: true };
}
function parseMaybeJSON(rest) {
    if (rest === '')
        return none;
    return parseJSON(rest) ?? { args: [rest], json: false };
}
function parseMaybeJSONToList(rest) {
    return parseJSON(rest) ?? parseWhitespaceDelimited(rest);
}
// HEALTHCHECK: a type word (CMD, NONE), then a command like CMD's
function parseHealthConfig(rest) {
    let sep = 0;
    while (sep < rest.length && !isSpace(rest[sep]))
        sep++;
    let next = sep;
    while (next < rest.length && isSpace(rest[next]))
        next++;
    if (sep === 0)
        return none;
    const cmd = parseMaybeJSON(rest.slice(next));
    return { args: [rest.slice(0, sep), ...cmd.args], json: cmd.json };
}
const lineParsers = {
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
const instructionKeywords = Object.keys(lineParsers);
/** One logical line (continuations joined) to a Node; location fields are set by the caller. */
function nodeFromLine(line, escapeToken, comments) {
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

;// CONCATENATED MODULE: ./lib/dockerfile/shell-lex.js
// Word expansion as BuildKit's shell lexer does it (frontend/dockerfile/shell/lex.go): quotes, escapes, $VAR,
// ${VAR}, the ${VAR<op>word} forms and splitting into words. Our own implementation of that behaviour, checked
// against BuildKit's envVarTest/wordsTest vectors in __tests__/dockerfile/shell-conformance.test.ts.

/** A word could not be expanded: unbalanced quotes or braces, a bad substitution, ${VAR?message}. */
class ExpansionError extends Error {
    name = 'ExpansionError';
}
const EOF = '';
function lookup(env, name) {
    if (env instanceof Map)
        return env.get(name);
    const rec = env;
    return Object.prototype.hasOwnProperty.call(rec, name) ? rec[name] : undefined;
}
class ShellLex {
    escapeToken;
    options;
    constructor(escapeToken = '\\', options = {}) {
        this.escapeToken = escapeToken;
        this.options = options;
    }
    with(options) {
        return new ShellLex(this.escapeToken, { ...this.options, ...options });
    }
    process(word, env) {
        const w = new ShellWord(this, word, env);
        try {
            const [result, words] = w.processStopOn(EOF, !!this.options.rawEscapes);
            return { result, words, matched: w.matched, unmatched: w.unmatched };
        }
        catch (e) {
            if (e instanceof ExpansionError)
                throw new ExpansionError(`failed to process ${JSON.stringify(word)}: ${e.message}`);
            throw e;
        }
    }
    /** Single-word expansion: an ENV value, a WORKDIR, a COPY source. */
    processWord(word, env) {
        return this.process(word, env).result;
    }
    /** Multi-word expansion: the arguments of EXPOSE, or the words of a heredoc line. */
    processWords(word, env) {
        return this.process(word, env).words;
    }
}
class Words {
    word = '';
    inWord = false;
    words = [];
    addChar(ch) {
        if (isSpace(ch)) {
            if (this.inWord && this.word.length > 0) {
                this.words.push(this.word);
                this.word = '';
                this.inWord = false;
            }
        }
        else {
            this.addRaw(ch);
        }
    }
    addRaw(s) {
        this.word += s;
        this.inWord = true;
    }
    addString(s) {
        for (const ch of s)
            this.addChar(ch);
    }
    finish() {
        if (this.word.length > 0) {
            this.words.push(this.word);
            this.word = '';
            this.inWord = false;
        }
        return this.words;
    }
}
class ShellWord {
    lex;
    env;
    chars;
    pos = 0;
    rawEscapes;
    matched = new Set();
    unmatched = new Set();
    constructor(lex, source, env) {
        this.lex = lex;
        this.env = env;
        this.chars = Array.from(source);
        this.rawEscapes = !!lex.options.rawEscapes;
    }
    peek() {
        return this.pos < this.chars.length ? this.chars[this.pos] : EOF;
    }
    next() {
        return this.pos < this.chars.length ? this.chars[this.pos++] : EOF;
    }
    getEnv(name) {
        const v = lookup(this.env, name);
        if (v === undefined)
            this.unmatched.add(name);
        else
            this.matched.add(name);
        return v;
    }
    processStopOn(stopChar, rawEscapes) {
        const saved = this.rawEscapes;
        this.rawEscapes = rawEscapes;
        try {
            return this.scan(stopChar);
        }
        finally {
            this.rawEscapes = saved;
        }
    }
    scan(stopChar) {
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
            }
            else if (!options.skipProcessQuotes && (ch === "'" || ch === '"')) {
                const tmp = ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
                result += tmp;
                words.addRaw(tmp);
            }
            else {
                ch = this.next();
                if (ch === escapeToken) {
                    if (this.rawEscapes) {
                        words.addRaw(ch);
                        result += ch;
                    }
                    // the escape token escapes the next character; at the very end it is dropped
                    ch = this.next();
                    if (ch === EOF)
                        break;
                    words.addRaw(ch);
                }
                else {
                    words.addChar(ch);
                }
                result += ch;
            }
        }
        if (stopChar !== EOF)
            throw new ExpansionError(`unexpected end of statement while looking for matching ${stopChar}`);
        return [result, words.finish()];
    }
    processSingleQuote() {
        // Everything up to the next single quote is literal; a single quote cannot be escaped inside.
        const raw = !!this.lex.options.rawQuotes;
        let result = '';
        const open = this.next();
        if (raw)
            result += open;
        for (;;) {
            const ch = this.next();
            if (ch === EOF)
                throw new ExpansionError('unexpected end of statement while looking for matching single-quote');
            if (ch === "'") {
                if (raw)
                    result += ch;
                return result;
            }
            result += ch;
        }
    }
    processDoubleQuote() {
        // Literal except $ and the escape token, which escapes only ", $ and itself (as sh does).
        const raw = !!this.lex.options.rawQuotes;
        const esc = this.lex.escapeToken;
        let result = '';
        const open = this.next();
        if (raw)
            result += open;
        for (;;) {
            const p = this.peek();
            if (p === EOF)
                throw new ExpansionError('unexpected end of statement while looking for matching double-quote');
            if (p === '"') {
                const ch = this.next();
                if (raw)
                    result += ch;
                return result;
            }
            if (p === '$') {
                result += this.processDollar();
                continue;
            }
            let ch = this.next();
            if (ch === esc) {
                if (this.rawEscapes)
                    result += ch;
                const n = this.peek();
                if (n === EOF)
                    continue;
                if (n === '"' || n === '$' || n === esc)
                    ch = this.next();
            }
            result += ch;
        }
    }
    processDollar() {
        const skipUnset = !!this.lex.options.skipUnsetEnv;
        this.next(); // the $
        if (this.peek() !== '{') {
            const name = this.processName();
            if (name === '')
                return '$';
            const value = this.getEnv(name);
            if (value === undefined && skipUnset)
                return '$' + name;
            return value ?? '';
        }
        this.next(); // the {
        const first = this.peek();
        if (first === EOF)
            throw new ExpansionError("syntax error: missing '}'");
        if (first === '{' || first === '}' || first === ':')
            throw new ExpansionError('syntax error: bad substitution');
        const name = this.processName();
        let ch = this.next();
        let op = ch;
        if (ch === '}') {
            const value = this.getEnv(name);
            if (value === undefined && skipUnset)
                return '${' + name + '}';
            return value ?? '';
        }
        if (ch === EOF)
            throw new ExpansionError("syntax error: missing '}'");
        if (ch === '/')
            return this.processReplace(name);
        let nullIsUnset = false;
        if (ch === ':') {
            nullIsUnset = true;
            ch = this.next();
            op += ch;
        }
        else if (!'+-?#%'.includes(ch)) {
            throw new ExpansionError(`unsupported modifier (${op}) in substitution`);
        }
        let word;
        try {
            [word] = this.processStopOn('}', ch === '#' || ch === '%');
        }
        catch (e) {
            if (this.peek() === EOF)
                throw new ExpansionError("syntax error: missing '}'");
            throw e;
        }
        const value = this.getEnv(name);
        if (value === undefined && skipUnset)
            return '${' + name + op + word + '}';
        const unset = value === undefined || (nullIsUnset && value === '');
        switch (ch) {
            case '-':
                return unset ? word : value;
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
    processReplace(name) {
        const all = this.peek() === '/';
        if (all)
            this.next();
        let pattern;
        let replacement;
        try {
            [pattern] = this.processStopOn('/', true);
        }
        catch (e) {
            if (this.peek() === EOF)
                throw new ExpansionError("syntax error: missing '/' in ${}");
            throw e;
        }
        try {
            [replacement] = this.processStopOn('}', true);
        }
        catch (e) {
            if (this.peek() === EOF)
                throw new ExpansionError("syntax error: missing '}'");
            throw e;
        }
        const value = this.getEnv(name);
        if (value === undefined && this.lex.options.skipUnsetEnv)
            return '${' + name + '/' + pattern + '/' + replacement + '}';
        const re = shellPatternToRegExp(pattern, true, false);
        const v = value ?? '';
        if (all)
            return replaceAllGo(re, v, replacement);
        const m = re.exec(v);
        if (!m)
            return v;
        return v.slice(0, m.index) + replacement + v.slice(m.index + m[0].length);
    }
    processName() {
        // A name is letters, digits and _; a leading digit makes it positional ($1, $001), and the special
        // parameters ($@, $*, $#, $?, $-, $$, $!, $0) are one character. None of those is ever set here.
        let name = '';
        while (this.peek() !== EOF) {
            const ch = this.peek();
            if (name === '' && isDigit(ch)) {
                while (this.peek() !== EOF && isDigit(this.peek()))
                    name += this.next();
                return name;
            }
            if (name === '' && '@*#?-$!0'.includes(ch))
                return this.next();
            if (!isLetter(ch) && !isDigit(ch) && ch !== '_')
                break;
            name += this.next();
        }
        return name;
    }
}
/**
 * A shell pattern (`?` one character, `*` any run, `\` escapes) as a RegExp. Like BuildKit, no bracket
 * expressions. `.` becomes `[^\n]` to keep Go's meaning of `.`.
 */
function shellPatternToRegExp(pattern, greedy, anchored) {
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
                if (n === '}' || n === '/')
                    continue;
                if (n !== '*' && n !== '?' && n !== '\\') {
                    throw new ExpansionError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${n ?? ''}'`);
                }
                out += '\\' + n;
                i++;
                continue;
            }
            default:
                if ('[]{}.+()|^$/'.includes(tok))
                    out += '\\';
                out += tok;
        }
    }
    return new RegExp(out, 'gu');
}
function trimPrefix(pattern, value, greedy) {
    const re = shellPatternToRegExp(pattern, greedy, true);
    const m = re.exec(value);
    return m ? value.slice(m.index + m[0].length) : value;
}
// A pattern reversed without reversing its escapes: a\*c -> c\*a
function reversePattern(pattern) {
    const chars = Array.from(pattern);
    const out = new Array(chars.length);
    const last = chars.length - 1;
    for (let i = 0; i <= last;) {
        const tok = chars[i];
        const at = last - i;
        if (tok === '\\' && i !== last) {
            out[at - 1] = tok;
            out[at] = chars[i + 1];
            i += 2;
        }
        else {
            out[at] = tok;
            i++;
        }
    }
    return out.join('');
}
function reverseString(s) {
    return Array.from(s).reverse().join('');
}
// Regular expressions find leftmost matches only, so the shortest suffix is found as the shortest prefix of
// the reversed value.
function trimSuffix(pattern, value, greedy) {
    return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), greedy));
}
// Go's Regexp.ReplaceAllString: no replacement for an empty match right after a match, and $-templates in the
// replacement (only group 0 exists in our patterns).
function replaceAllGo(re, src, template) {
    let out = '';
    let lastMatchEnd = 0;
    let searchPos = 0;
    while (searchPos <= src.length) {
        re.lastIndex = searchPos;
        const m = re.exec(src);
        if (!m)
            break;
        const a0 = m.index;
        const a1 = a0 + m[0].length;
        out += src.slice(lastMatchEnd, a0);
        if (a1 > lastMatchEnd || a0 === 0)
            out += expandTemplate(template, m[0]);
        lastMatchEnd = a1;
        const cp = src.codePointAt(searchPos);
        const width = cp === undefined ? 0 : cp > 0xffff ? 2 : 1;
        if (searchPos + width > a1)
            searchPos += width;
        else if (searchPos + 1 > a1)
            searchPos++;
        else
            searchPos = a1;
    }
    return out + src.slice(lastMatchEnd);
}
function expandTemplate(template, match) {
    let out = '';
    let t = template;
    for (;;) {
        const i = t.indexOf('$');
        if (i < 0)
            break;
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
        if (name === '0')
            out += match;
    }
    return out + t;
}

;// CONCATENATED MODULE: ./lib/dockerfile/heredoc.js


const heredocWord = /^(\d*)<<(-?)([^<]*)$/;
const noEnv = {};
const plain = new ShellLex('\\', { skipUnsetEnv: true });
const quoted = plain.with({ rawQuotes: true });
const lineWords = new ShellLex('\\', { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true });
/** The heredoc a single word opens (`<<EOF`, `2<<-'X'`), or undefined when the word is not one. */
function parseHeredocWord(word) {
    const m = heredocWord.exec(word);
    if (!m || m[3] === '')
        return undefined;
    const fd = m[1] === '' ? 0 : Number.parseInt(m[1], 10);
    let words;
    let raw;
    try {
        words = plain.processWords(m[3], noEnv);
        if (words.length !== 1)
            return undefined;
        raw = quoted.processWords(m[3], noEnv);
    }
    catch (e) {
        if (e instanceof ExpansionError)
            throw new LineSyntaxError(`invalid heredoc delimiter ${m[3]}: ${e.message}`);
        throw e;
    }
    if (raw.length !== words.length) {
        throw new LineSyntaxError(`internal lexing of heredoc produced inconsistent results: ${m[3]}`);
    }
    // If quoting changed the word, part of the delimiter was quoted, and the body is not expanded.
    const quotes = (s) => s.split('').filter((c) => c === '"' || c === "'").length;
    return {
        name: words[0],
        fileDescriptor: Number.isSafeInteger(fd) ? fd : 0,
        expand: quotes(words[0]) === quotes(raw[0]),
        chomp: m[2] === '-',
    };
}
/** The heredocs an instruction line opens, in order. A line that does not lex opens none. */
function heredocsOfLine(line) {
    let words;
    try {
        words = lineWords.processWords(line, noEnv);
    }
    catch (e) {
        if (e instanceof ExpansionError)
            return [];
        throw e;
    }
    const docs = [];
    for (const w of words) {
        const h = parseHeredocWord(w);
        if (h)
            docs.push(h);
    }
    return docs;
}
/** `<<-`: leading tabs come off every line of the body. */
function chompHeredocContent(content) {
    return content.replace(/(^|\n)\t+/g, '$1');
}

;// CONCATENATED MODULE: ./lib/dockerfile/parser.js





// bufio.Scanner's default token limit, which BuildKit's parser keeps
const maxLineBytes = 64 * 1024;
/** Lines with their line endings kept, as BuildKit's scanner yields them. */
function splitLines(text) {
    const lines = [];
    let start = 0;
    for (;;) {
        const nl = text.indexOf('\n', start);
        if (nl < 0)
            break;
        lines.push(text.slice(start, nl + 1));
        start = nl + 1;
    }
    if (start < text.length)
        lines.push(text.slice(start));
    return lines;
}
function trimNewline(s) {
    let j = s.length;
    while (j > 0 && (s[j - 1] === '\n' || s[j - 1] === '\r'))
        j--;
    return s.slice(0, j);
}
function isComment(s) {
    return trimLeftSpace(s).startsWith('#');
}
function continuationPattern(escapeToken) {
    const e = '\\' + escapeToken;
    // the escape token at the end (trailing blanks allowed) continues the line, unless it is itself escaped
    return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}
function parse(text, options = {}) {
    const file = options.file ?? 'Dockerfile';
    try {
        return parseText(text);
    }
    catch (e) {
        if (e instanceof DockerfileError)
            throw e.withSource(file, text);
        throw e;
    }
}
function parseText(text) {
    const lines = splitLines(text.startsWith('\ufeff') ? text.slice(1) : text);
    const directiveParser = new DirectiveParser();
    let escapeToken = '\\';
    let continuation = continuationPattern(escapeToken);
    const nodes = [];
    const warnings = [];
    let comments = [];
    let i = 0;
    let currentLine = 0;
    // A line's text for the parser: newline off, the leading blanks off for a first line, comments emptied.
    const processLine = (raw, stripLeft) => {
        if (raw.length > maxLineBytes / 4 && Buffer.byteLength(raw) > maxLineBytes) {
            throw new DockerfileError(`dockerfile line greater than max allowed size of ${maxLineBytes - 1}`, { line: currentLine + 1 }, { hint: 'split the line with the escape character at the end of each part' });
        }
        let tok = trimNewline(raw);
        if (stripLeft)
            tok = trimLeftSpace(tok);
        const d = directiveParser.parseLine(tok, currentLine + 1);
        if (d?.name === 'escape') {
            escapeToken = escapeTokenOf(d);
            continuation = continuationPattern(escapeToken);
        }
        return [isComment(tok) ? '' : tok, d !== undefined];
    };
    const trimContinuation = (s) => {
        const m = continuation.exec(s);
        if (!m)
            return [s, true];
        return [s.slice(0, m.index) + (m[1] ?? ''), false];
    };
    while (i < lines.length) {
        const first = lines[i++];
        if (isComment(first)) {
            const c = trimLeftSpace(first).slice(1).trim();
            if (c === '')
                comments = [];
            else
                comments.push(c);
        }
        const [tok, isDirective] = processLine(first, true);
        if (isDirective)
            comments.pop();
        currentLine++;
        const startLine = currentLine;
        let [line, endOfLine] = trimContinuation(tok);
        if (endOfLine && line === '')
            continue;
        let emptyContinuation = false;
        while (!endOfLine && i < lines.length) {
            const raw = lines[i++];
            const [next] = processLine(raw, false);
            currentLine++;
            if (isComment(raw))
                continue;
            if (trimLeftSpace(next) === '') {
                emptyContinuation = true;
                continue;
            }
            let part;
            [part, endOfLine] = trimContinuation(next);
            line += part;
        }
        if (emptyContinuation) {
            warnings.push({ message: `Empty continuation line found in: ${line}`, line: currentLine });
        }
        let node;
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
                        if (h.chomp)
                            candidate = candidate.replace(/^\t+/, '');
                        if (candidate === h.name) {
                            terminated = true;
                            break;
                        }
                        content += raw;
                    }
                    if (!terminated) {
                        throw new DockerfileError('unterminated heredoc', { line: startLine, endLine: currentLine }, {
                            hint: `end the heredoc with a line that holds only ${JSON.stringify(h.name)}`,
                        });
                    }
                    node.heredocs.push({ ...h, content });
                }
            }
        }
        catch (e) {
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
        throw new DockerfileError('file with no instructions', { line: Math.max(1, currentLine) }, {
            hint: 'a Dockerfile needs at least a FROM instruction',
        });
    }
    return { nodes, escapeToken, directives: directiveParser.directives, warnings };
}

;// CONCATENATED MODULE: ./lib/dockerfile/suggest.js
// "did you mean …?" for unknown instructions, flags and stage names.
function distance(a, b) {
    const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        let diag = prev[0];
        prev[0] = i;
        for (let j = 1; j <= b.length; j++) {
            const up = prev[j];
            prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
            diag = up;
        }
    }
    return prev[b.length];
}
/** The closest candidate (case-insensitive), when it is close enough to be a likely typo. */
function closest(word, candidates) {
    const w = word.toLowerCase();
    let best;
    let bestD = Infinity;
    for (const c of candidates) {
        const d = distance(w, c.toLowerCase());
        if (d < bestD) {
            best = c;
            bestD = d;
        }
    }
    if (best === undefined)
        return undefined;
    const limit = Math.max(1, Math.floor(Math.min(w.length, best.length) / 3));
    return bestD <= limit ? best : undefined;
}

;// CONCATENATED MODULE: ./lib/dockerfile/flags.js
// Instruction flags (`--from=x`, `--link`, `--mount=…` repeated), with BuildKit's rules: unknown and duplicated
// flags are errors, booleans take true/false or nothing, strings need a value, list flags may repeat.


class FlagSet {
    instruction;
    kinds = new Map();
    strings = new Map();
    lists = new Map();
    bools = new Map();
    used = [];
    constructor(instruction, spec) {
        this.instruction = instruction;
        for (const [name, kind] of Object.entries(spec))
            this.kinds.set(name, kind);
    }
    parse(flags) {
        for (const raw of flags) {
            if (!raw.startsWith('--'))
                throw new LineSyntaxError(`arg should start with -- : ${raw}`);
            if (raw === '--')
                break;
            const body = raw.slice(2);
            const eq = body.indexOf('=');
            const name = eq < 0 ? body : body.slice(0, eq);
            const value = eq < 0 ? undefined : body.slice(eq + 1);
            const kind = this.kinds.get(name);
            if (!kind) {
                const near = closest(name, this.kinds.keys());
                const known = [...this.kinds.keys()].map((k) => '--' + k).join(', ');
                throw new LineSyntaxError(`unknown flag: ${name}`, near ? `did you mean --${near}?` :
                    known ? `${this.instruction} takes ${known}` : `${this.instruction} takes no flags`);
            }
            if (this.used.includes(name) && kind !== 'list')
                throw new LineSyntaxError(`duplicate flag specified: ${name}`);
            this.used.push(name);
            if (kind === 'bool') {
                if (value === '')
                    throw new LineSyntaxError(`missing a value on flag: ${name}`);
                const v = (value ?? 'true').toLowerCase();
                if (v !== 'true' && v !== 'false') {
                    throw new LineSyntaxError(`expecting boolean value for flag ${name}, not: ${value}`, `write --${name} or --${name}=false`);
                }
                this.bools.set(name, v === 'true');
            }
            else {
                if (value === undefined)
                    throw new LineSyntaxError(`missing a value on flag: ${name}`, `write --${name}=VALUE`);
                if (kind === 'string')
                    this.strings.set(name, value);
                else
                    this.lists.set(name, [...(this.lists.get(name) ?? []), value]);
            }
        }
        return this;
    }
    string(name) {
        return this.strings.get(name);
    }
    bool(name) {
        return this.bools.get(name) ?? false;
    }
    list(name) {
        return this.lists.get(name) ?? [];
    }
}

;// CONCATENATED MODULE: ./lib/dockerfile/duration.js
// Go's time.ParseDuration, which HEALTHCHECK's --interval, --timeout, --start-period and --start-interval use.
const units = {
    ns: 1,
    us: 1e3,
    'µs': 1e3,
    'μs': 1e3,
    ms: 1e6,
    s: 1e9,
    m: 60e9,
    h: 3600e9,
};
/** Nanoseconds, or undefined when the text is not a Go duration ("1m30s", "1.5h", "300ms", "0"). */
function parseGoDuration(text) {
    let s = text;
    let sign = 1;
    if (s.startsWith('-') || s.startsWith('+')) {
        if (s[0] === '-')
            sign = -1;
        s = s.slice(1);
    }
    if (s === '0')
        return 0;
    if (s === '')
        return undefined;
    let total = 0;
    const part = /^(\d*)(?:\.(\d*))?([^\d.]+)/u;
    while (s !== '') {
        const m = part.exec(s);
        if (!m || (m[1] === '' && (m[2] ?? '') === ''))
            return undefined;
        const unit = units[m[3]];
        if (unit === undefined)
            return undefined;
        const whole = m[1] === '' ? 0 : Number(m[1]);
        const frac = m[2] ? Number('0.' + m[2]) : 0;
        total += (whole + frac) * unit;
        s = s.slice(m[0].length);
    }
    if (total > 9223372036854775807)
        return undefined;
    return sign * Math.round(total);
}

;// CONCATENATED MODULE: ./lib/dockerfile/instructions.js







function base(node) {
    return { keyword: node.keyword, code: trimSpace(node.original), line: node.startLine, endLine: node.endLine, node };
}
function flags(node, spec = {}) {
    return new FlagSet(node.keyword.toUpperCase(), spec).parse(node.flags);
}
function fail(message, hint) {
    throw new LineSyntaxError(message, hint);
}
function exactlyOne(node, name) {
    if (node.args.length !== 1)
        fail(`${name} requires exactly one argument`, `write ${name} VALUE`);
    return node.args[0];
}
function atLeastOne(node, name) {
    if (node.args.length === 0)
        fail(`${name} requires at least one argument`);
}
function keyValues(node, name) {
    if (node.args.length === 0)
        fail(`${name} requires at least one argument`, `write ${name} KEY=VALUE`);
    const pairs = [];
    // the line parser gives triples: key, value, separator ("=" or "" for the legacy form)
    for (let i = 0; i < node.args.length; i += 3) {
        if (node.args[i] === '')
            fail(`${name} names can not be blank`);
        const legacy = node.args[i + 2] === '';
        pairs.push(legacy ? { key: node.args[i], value: node.args[i + 1], legacy } : { key: node.args[i], value: node.args[i + 1] });
    }
    return pairs;
}
// Exec form keeps its elements; shell form is one string for the SHELL. `CMD []` stays an empty exec form.
function commandLine(node) {
    const files = node.heredocs.map((h) => ({ name: h.name, data: h.content, expand: h.expand, chomp: h.chomp }));
    const args = node.json ? node.args : node.args.length === 0 ? [] : [node.args.join(' ')];
    return { args, prependShell: !node.json, files };
}
function sourcesAndDest(node, name) {
    if (node.args.length < 2) {
        fail(`${name} requires at least two arguments, but only one was provided. Destination could not be determined`, `write ${name} SOURCE... DEST`);
    }
    const dest = node.args[node.args.length - 1];
    if (parseHeredocWord(dest))
        fail(`${name} cannot accept a heredoc as a destination`);
    const byName = new Map(node.heredocs.map((h) => [h.name, h]));
    const sources = [];
    const inline = [];
    for (const src of node.args.slice(0, -1)) {
        const h = parseHeredocWord(src);
        if (h) {
            const content = byName.get(h.name)?.content ?? '';
            inline.push({ name: h.name, data: h.chomp ? chompHeredocContent(content) : content, expand: h.expand, chomp: h.chomp });
        }
        else {
            sources.push(src);
        }
    }
    return { sources, inline, dest };
}
function interval(f, name) {
    const v = f.string(name);
    if (v === undefined || v === '')
        return 0;
    const d = parseGoDuration(v);
    if (d === undefined)
        fail(`time: invalid duration "${v}" in --${name}`, 'use a duration like 30s, 1m30s or 500ms');
    if (d === 0)
        return 0;
    if (d < 1e6)
        fail(`Interval "${name}" cannot be less than 1ms`);
    return d;
}
const stageNamePattern = /^[a-z][a-z0-9-_.]*$/;
function parseFrom(node) {
    const f = flags(node, { platform: 'string' });
    const a = node.args;
    let stageName;
    if (a.length === 3 && a[1].toLowerCase() === 'as') {
        stageName = a[2].toLowerCase();
        if (!stageNamePattern.test(stageName)) {
            fail(`invalid name for build stage: ${JSON.stringify(a[2])}, name can't start with a number or contain symbols`, 'stage names are letters, digits, -, _ and ., starting with a letter');
        }
    }
    else if (a.length !== 1) {
        fail('FROM requires either one or three arguments', 'write FROM IMAGE or FROM IMAGE AS NAME');
    }
    return { ...base(node), kind: 'from', image: a[0], stageName, platform: f.string('platform') };
}
function parseHealthcheck(node) {
    atLeastOne(node, 'HEALTHCHECK');
    const type = node.args[0].toUpperCase();
    const rest = node.args.slice(1);
    const b = { ...base(node), kind: 'healthcheck' };
    if (type === 'NONE') {
        if (rest.length !== 0)
            fail('HEALTHCHECK NONE takes no arguments');
        flags(node);
        return { ...b, test: ['NONE'], interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 };
    }
    const f = flags(node, { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' });
    if (type !== 'CMD')
        fail(`Unknown type "${node.args[0]}" in HEALTHCHECK (try CMD)`);
    const cmd = node.json ? rest : rest.length === 0 ? [] : [rest.join(' ')];
    if (cmd.length === 0)
        fail('Missing command after HEALTHCHECK CMD');
    let retries = 0;
    const r = f.string('retries');
    if (r !== undefined && r !== '') {
        if (!/^[+-]?\d+$/.test(r))
            fail(`strconv.ParseInt: parsing "${r}": invalid syntax`, '--retries takes a whole number');
        retries = Number.parseInt(r, 10);
        if (retries < 0)
            fail(`--retries cannot be negative (${retries})`);
    }
    return {
        ...b,
        test: [node.json ? 'CMD' : 'CMD-SHELL', ...cmd],
        interval: interval(f, 'interval'),
        timeout: interval(f, 'timeout'),
        startPeriod: interval(f, 'start-period'),
        startInterval: interval(f, 'start-interval'),
        retries,
    };
}
function parseOnbuild(node) {
    flags(node);
    if (!node.sub)
        fail('ONBUILD requires at least one argument', 'write ONBUILD INSTRUCTION, e.g. ONBUILD COPY . /app');
    const trigger = node.sub.keyword.toUpperCase();
    if (trigger === 'ONBUILD')
        fail('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
    if (trigger === 'MAINTAINER' || trigger === 'FROM')
        fail(`${trigger} isn't allowed as an ONBUILD trigger`);
    let expression = node.original.replace(/^\s*ONBUILD\s*/i, '');
    for (const h of node.heredocs)
        expression += '\n' + h.content + h.name;
    return { ...base(node), kind: 'onbuild', expression, trigger: node.sub };
}
function parseNode(node) {
    const b = base(node);
    switch (node.keyword.toLowerCase()) {
        case 'from':
            return parseFrom(node);
        case 'arg': {
            flags(node);
            if (node.args.length === 0)
                fail('ARG requires at least one argument', 'write ARG NAME or ARG NAME=DEFAULT');
            const args = node.args.map((w) => {
                const eq = w.indexOf('=');
                if (eq === 0)
                    fail(`ARG names can not be blank: ${w}`);
                return eq < 0 ? { key: w } : { key: w.slice(0, eq), value: w.slice(eq + 1) };
            });
            return { ...b, kind: 'arg', args };
        }
        case 'env':
            flags(node);
            return { ...b, kind: 'env', pairs: keyValues(node, 'ENV') };
        case 'label':
            flags(node);
            return { ...b, kind: 'label', pairs: keyValues(node, 'LABEL') };
        case 'maintainer':
            flags(node);
            return { ...b, kind: 'maintainer', maintainer: exactlyOne(node, 'MAINTAINER') };
        case 'run': {
            const f = flags(node, { mount: 'list', network: 'string', security: 'string' });
            return {
                ...b,
                kind: 'run',
                command: commandLine(node),
                mounts: f.list('mount'),
                network: f.string('network'),
                security: f.string('security'),
            };
        }
        case 'cmd':
            flags(node);
            return { ...b, kind: 'cmd', command: commandLine(node) };
        case 'entrypoint':
            flags(node);
            return { ...b, kind: 'entrypoint', command: commandLine(node) };
        case 'shell':
            flags(node);
            if (!node.json)
                fail('SHELL requires the arguments to be in JSON form', 'write SHELL ["/bin/bash", "-c"]');
            if (node.args.length === 0)
                fail('SHELL requires at least one argument');
            return { ...b, kind: 'shell', shell: node.args };
        case 'copy': {
            const f = flags(node, { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'list' });
            return {
                ...b,
                kind: 'copy',
                ...sourcesAndDest(node, 'COPY'),
                from: f.string('from'),
                chown: f.string('chown'),
                chmod: f.string('chmod'),
                link: f.bool('link'),
                parents: f.bool('parents'),
                exclude: f.list('exclude'),
            };
        }
        case 'add': {
            const f = flags(node, {
                chown: 'string', chmod: 'string', link: 'bool', checksum: 'string', 'keep-git-dir': 'bool', exclude: 'list',
                unpack: 'bool',
            });
            return {
                ...b,
                kind: 'add',
                ...sourcesAndDest(node, 'ADD'),
                chown: f.string('chown'),
                chmod: f.string('chmod'),
                link: f.bool('link'),
                checksum: f.string('checksum'),
                keepGitDir: f.bool('keep-git-dir'),
                exclude: f.list('exclude'),
                unpack: f.used.includes('unpack') ? f.bool('unpack') : undefined,
            };
        }
        case 'workdir':
            flags(node);
            return { ...b, kind: 'workdir', path: exactlyOne(node, 'WORKDIR') };
        case 'user':
            flags(node);
            return { ...b, kind: 'user', user: exactlyOne(node, 'USER') };
        case 'volume':
            flags(node);
            atLeastOne(node, 'VOLUME');
            for (const v of node.args)
                if (trimSpace(v) === '')
                    fail('VOLUME specified can not be an empty string');
            return { ...b, kind: 'volume', volumes: node.args };
        case 'expose':
            flags(node);
            atLeastOne(node, 'EXPOSE');
            return { ...b, kind: 'expose', ports: node.args };
        case 'stopsignal':
            flags(node);
            return { ...b, kind: 'stopsignal', signal: exactlyOne(node, 'STOPSIGNAL') };
        case 'healthcheck':
            return parseHealthcheck(node);
        case 'onbuild':
            return parseOnbuild(node);
        default: {
            const near = closest(node.keyword, instructionKeywords);
            fail(`unknown instruction: ${node.keyword}`, near ? `did you mean ${near.toUpperCase()}?` : `the instructions are ${instructionKeywords.map((k) => k.toUpperCase()).join(', ')}`);
        }
    }
}
/** One node to its instruction; a DockerfileError (at the node's lines) for anything BuildKit rejects. */
function parseInstruction(node) {
    try {
        return parseNode(node);
    }
    catch (e) {
        if (e instanceof LineSyntaxError) {
            throw new DockerfileError(e.message, { line: node.startLine, endLine: node.endLine }, { hint: e.hint });
        }
        throw e;
    }
}

;// CONCATENATED MODULE: ./lib/dockerfile/dockerfile.js



/** Parses the text and reads it into stages. Throws DockerfileError, with the source attached, for bad input. */
function readDockerfile(text, file = 'Dockerfile') {
    try {
        return read(text, file);
    }
    catch (e) {
        if (e instanceof DockerfileError)
            throw e.withSource(file, text);
        throw e;
    }
}
function read(text, file) {
    const parsed = parse(text, { file });
    const globalArgs = [];
    const stages = [];
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
            throw new DockerfileError(`no build stage in current context: ${ins.keyword.toUpperCase()} before the first FROM`, { line: ins.line, endLine: ins.endLine }, { hint: 'only ARG may come before the first FROM; start a stage with FROM IMAGE' });
        }
        stages[stages.length - 1].commands.push(ins);
    }
    if (stages.length === 0) {
        const last = parsed.nodes[parsed.nodes.length - 1];
        throw new DockerfileError('the Dockerfile has no FROM instruction', { line: last.endLine }, {
            hint: 'start a stage with FROM IMAGE (or FROM scratch for an empty base)',
        });
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

;// CONCATENATED MODULE: ./lib/image/platform.js
// Platforms (`os/arch[/variant]`) as containerd normalises them: `linux/x86_64` is linux/amd64,
// `linux/arm64/v8` is linux/arm64, `linux/arm` is linux/arm/v7.
class PlatformError extends Error {
    name = 'PlatformError';
}
function normalizeArch(arch, variant) {
    const a = arch.toLowerCase();
    const v = variant?.toLowerCase();
    switch (a) {
        case 'i386':
        case 'i686':
        case '386':
            return ['386', undefined];
        case 'x86_64':
        case 'x86-64':
        case 'amd64':
            return ['amd64', v === 'v1' ? undefined : v];
        case 'aarch64':
        case 'arm64':
            return ['arm64', v === 'v8' || v === '8' ? undefined : v];
        case 'armhf':
            return ['arm', 'v7'];
        case 'armel':
            return ['arm', 'v6'];
        case 'arm':
            if (v === undefined || v === '' || v === '7')
                return ['arm', 'v7'];
            if (v === '5' || v === '6' || v === '8')
                return ['arm', 'v' + v];
            return ['arm', v];
        default:
            return [a, v === '' ? undefined : v];
    }
}
/** Parses and normalises `os/arch[/variant]`; a bare `arch` is taken as linux/arch. */
function parsePlatform(text) {
    const parts = text.trim().split('/');
    if (parts.some((p) => p === '') || parts.length > 3) {
        throw new PlatformError(`invalid platform ${JSON.stringify(text)}: expected os/arch[/variant], e.g. linux/amd64`);
    }
    let os = 'linux';
    let arch;
    let variant;
    if (parts.length === 1) {
        if (['linux', 'windows', 'darwin', 'freebsd'].includes(parts[0].toLowerCase())) {
            throw new PlatformError(`invalid platform ${JSON.stringify(text)}: missing the architecture, e.g. ${parts[0]}/amd64`);
        }
        arch = parts[0];
    }
    else {
        [os, arch, variant] = parts;
        os = os.toLowerCase();
        if (os === 'macos')
            os = 'darwin';
    }
    if (!/^[a-z0-9_.-]+$/i.test(os) || !/^[a-z0-9_.-]+$/i.test(arch) || (variant && !/^[a-z0-9_.-]+$/i.test(variant))) {
        throw new PlatformError(`invalid platform ${JSON.stringify(text)}: only letters, digits, '.', '_' and '-' are allowed`);
    }
    const [a, v] = normalizeArch(arch, variant);
    return v ? { os, architecture: a, variant: v } : { os, architecture: a };
}
function formatPlatform(p) {
    return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}
/** Two platforms are the same after normalisation (`linux/arm64/v8` matches `linux/arm64`). */
function samePlatform(a, b) {
    const x = parsePlatform(formatPlatform(a));
    const y = parsePlatform(formatPlatform(b));
    return x.os === y.os && x.architecture === y.architecture && (x.variant ?? '') === (y.variant ?? '');
}
const nodeArch = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ia32: '386',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
    loong64: 'loong64',
    mips: 'mips',
    mipsel: 'mipsle',
};
/** The platform this process runs on (containers here are always linux). */
function hostPlatform() {
    return parsePlatform(`linux/${nodeArch[process.arch] ?? process.arch}`);
}

;// CONCATENATED MODULE: ./lib/dockerfile/args.js
// Build arguments that exist without an ARG: the platform args (always in the global scope; a stage sees them
// after `ARG TARGETARCH` etc.) and the proxy args (usable in RUN without a declaration, kept out of history).

const proxyArgs = [
    'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy',
    'ALL_PROXY', 'all_proxy',
];
const platformArgNames = [
    'BUILDPLATFORM', 'BUILDOS', 'BUILDARCH', 'BUILDVARIANT', 'TARGETPLATFORM', 'TARGETOS', 'TARGETARCH', 'TARGETVARIANT',
];
/** Names a --build-arg may carry without any ARG consuming it, and without a warning. */
function isPredefinedArg(name) {
    return proxyArgs.includes(name) || platformArgNames.includes(name) || name.startsWith('BUILDKIT_') ||
        name === 'SOURCE_DATE_EPOCH';
}
function platformArgs(build, target) {
    return new Map([
        ['BUILDPLATFORM', formatPlatform(build)],
        ['BUILDOS', build.os],
        ['BUILDARCH', build.architecture],
        ['BUILDVARIANT', build.variant ?? ''],
        ['TARGETPLATFORM', formatPlatform(target)],
        ['TARGETOS', target.os],
        ['TARGETARCH', target.architecture],
        ['TARGETVARIANT', target.variant ?? ''],
    ]);
}

;// CONCATENATED MODULE: ./lib/dockerfile/plan.js
// From a Dockerfile and the build's options to a plan: the global ARG scope, each stage's base (image, earlier
// stage or scratch) with FROM expanded, the graph of stages (FROM, COPY --from, RUN --mount from=), the target and
// the stages it needs in dependency order. Stages the target does not need are pruned.





function at(ins, message, hint) {
    return new DockerfileError(message, { line: ins.line, endLine: ins.endLine }, { hint });
}
function expandGlobal(lex, word, scope, ins) {
    try {
        return lex.process(word, scope);
    }
    catch (e) {
        if (e instanceof ExpansionError)
            throw at(ins, e.message);
        throw e;
    }
}
/** The `from=` of a --mount value (comma-separated key=value fields, quotes allowed). */
function mountFrom(spec) {
    for (const field of splitCSV(spec)) {
        const eq = field.indexOf('=');
        if (eq > 0 && field.slice(0, eq).trim().toLowerCase() === 'from')
            return field.slice(eq + 1);
    }
    return undefined;
}
/** Splits a CSV line as Go's encoding/csv does for one record (double quotes, "" for a quote). */
function splitCSV(line) {
    const out = [];
    let field = '';
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
        const c = line[i];
        if (quoted) {
            if (c === '"' && line[i + 1] === '"') {
                field += '"';
                i++;
            }
            else if (c === '"')
                quoted = false;
            else
                field += c;
        }
        else if (c === '"' && field === '')
            quoted = true;
        else if (c === ',') {
            out.push(field);
            field = '';
        }
        else
            field += c;
    }
    out.push(field);
    return out;
}
function planBuild(df, options = {}) {
    try {
        return plan(df, options);
    }
    catch (e) {
        if (e instanceof DockerfileError)
            throw e.withSource(df.file, df.text);
        throw e;
    }
}
function plan(df, options) {
    const lex = new ShellLex(df.escapeToken);
    const buildPlatform = options.buildPlatform ?? hostPlatform();
    const targetPlatform = options.targetPlatform ?? buildPlatform;
    const buildArgs = new Map(options.buildArgs instanceof Map ? options.buildArgs : Object.entries(options.buildArgs ?? {}));
    // The global scope: platform args, then each global ARG in order (a --build-arg wins over the default).
    const globalArgs = platformArgs(buildPlatform, targetPlatform);
    const declared = new Set();
    for (const ins of df.globalArgs) {
        for (const a of ins.args) {
            declared.add(a.key);
            let value;
            if (buildArgs.has(a.key))
                value = buildArgs.get(a.key);
            else if (a.value !== undefined)
                value = expandGlobal(lex, a.value, globalArgs, ins).result;
            if (value !== undefined)
                globalArgs.set(a.key, value);
            else
                globalArgs.delete(a.key);
        }
    }
    const byName = (name, before = df.stages.length) => df.stages.findIndex((s, i) => i < before && s.name !== undefined && s.name === name.toLowerCase());
    const stages = df.stages.map((stage) => {
        const from = stage.from;
        const image = expandGlobal(lex, from.image, globalArgs, from);
        if (image.result === '') {
            throw at(from, `base name (${from.image}) should not be blank`, 'give the ARG a default or pass --build-arg');
        }
        let platform;
        if (from.platform !== undefined) {
            const p = expandGlobal(lex, from.platform, globalArgs, from).result;
            try {
                platform = parsePlatform(p);
            }
            catch (e) {
                if (e instanceof PlatformError)
                    throw at(from, `FROM --platform: ${e.message}`);
                throw e;
            }
        }
        const prior = byName(image.result, stage.index);
        const base = prior >= 0 ? { kind: 'stage', index: prior }
            : image.result === 'scratch' ? { kind: 'scratch' } : { kind: 'image', ref: image.result };
        return { stage, base, platform, sources: new Map(), deps: base.kind === 'stage' ? [base.index] : [],
            undefinedInFrom: [...image.unmatched].filter((n) => !declared.has(n)) };
    });
    // COPY --from and RUN --mount from= may name any stage (earlier or later), a stage index, or an image.
    const source = (ins, value, what) => {
        let expanded;
        try {
            expanded = lex.processWord(value, new Map());
        }
        catch (e) {
            if (e instanceof ExpansionError)
                throw at(ins, `${what}: ${e.message}`);
            throw e;
        }
        if (expanded !== value) {
            throw at(ins, `variable expansion is not supported for ${what}`, 'define a stage with FROM using an ARG from the global scope, and name that stage here');
        }
        if (/^\d+$/.test(value)) {
            const index = Number(value);
            if (index >= df.stages.length)
                throw at(ins, `invalid stage index ${index}`, `the stages are numbered 0 to ${df.stages.length - 1}`);
            return { kind: 'stage', index };
        }
        const i = byName(value);
        return i >= 0 ? { kind: 'stage', index: i } : { kind: 'image', ref: value };
    };
    for (const p of stages) {
        for (const ins of p.stage.commands) {
            let src;
            if (ins.kind === 'copy' && ins.from !== undefined)
                src = source(ins, ins.from, '--from');
            if (ins.kind === 'run') {
                for (const m of ins.mounts) {
                    const f = mountFrom(m);
                    if (f !== undefined && f !== '')
                        src = source(ins, f, 'the from= of --mount');
                }
            }
            if (!src)
                continue;
            p.sources.set(ins, src);
            if (src.kind === 'stage' && !p.deps.includes(src.index))
                p.deps.push(src.index);
        }
    }
    let target = df.stages.length - 1;
    if (options.target !== undefined && options.target !== '') {
        target = byName(options.target);
        if (target < 0) {
            const near = closest(options.target, df.stages.flatMap((s) => (s.name ? [s.name] : [])));
            throw new DockerfileError(`target stage "${options.target}" could not be found`, { line: 1 }, {
                hint: near ? `did you mean "${near}"?` : 'name a stage with FROM IMAGE AS NAME',
            });
        }
    }
    // Depth-first from the target; a stage met again while still on the path is a cycle.
    const order = [];
    const state = new Map();
    const visit = (i) => {
        const s = state.get(i);
        if (s === 'done')
            return;
        if (s === 'visiting') {
            const st = df.stages[i];
            throw at(st.from, `circular dependency detected on stage: ${st.name ?? i}`);
        }
        state.set(i, 'visiting');
        for (const d of stages[i].deps)
            visit(d);
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
    const consumed = new Set(declared);
    for (const i of order) {
        for (const ins of df.stages[i].commands)
            if (ins.kind === 'arg')
                for (const a of ins.args)
                    consumed.add(a.key);
    }
    const unusedBuildArgs = [...buildArgs.keys()].filter((k) => !consumed.has(k) && !isPredefinedArg(k)).sort();
    return { dockerfile: df, buildPlatform, targetPlatform, globalArgs, buildArgs, stages, target, order, unusedBuildArgs };
}

;// CONCATENATED MODULE: ./lib/dockerfile/scope.js
// The variables a stage's instructions see, and the expansion of each instruction's words with them, following
// which fields BuildKit expands (the Expand methods of instructions/commands.go): ENV, LABEL, ARG, WORKDIR, USER,
// VOLUME, STOPSIGNAL, COPY/ADD sources, destination, --chown, --chmod, ADD --checksum, EXPOSE (into words), RUN
// --mount values. RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK commands are left for the shell at run time.


class StageScope {
    lex;
    /** what expansion and RUN see: the base Env, then ENV and ARG in the order they come (later wins) */
    vars;
    /** the Env of the image config: the base Env and ENV, never ARG */
    env;
    /** ARGs declared in this stage (undefined: declared without a value) */
    args = new Map();
    /** references to variables that were not set, for the UndefinedVar check */
    undefinedVars = [];
    options;
    constructor(options) {
        this.options = options;
        this.lex = new ShellLex(options.escapeToken);
        this.env = new Map(options.baseEnv ?? []);
        this.vars = new Map(this.env);
    }
    /** One word, expanded with the stage's variables; a DockerfileError at the instruction for a bad word. */
    expand(word, at) {
        return this.process(word, at).result;
    }
    process(word, at) {
        try {
            const r = this.lex.process(word, this.vars);
            for (const name of r.unmatched)
                this.undefinedVars.push({ name, line: at.line, instruction: at });
            return r;
        }
        catch (e) {
            if (e instanceof ExpansionError) {
                throw new DockerfileError(e.message, { line: at.line, endLine: at.endLine }, {
                    hint: 'check the quotes and ${…} braces; escape a literal $ as \\$',
                });
            }
            throw e;
        }
    }
    expandPairs(pairs, at) {
        return pairs.map((p) => ({ ...p, key: this.expand(p.key, at), value: this.expand(p.value, at) }));
    }
    /** The instruction with its expandable words expanded. Does not change the scope (see apply). */
    expandInstruction(ins) {
        const x = (w) => this.expand(w, ins);
        const opt = (w) => (w === undefined ? undefined : x(w));
        switch (ins.kind) {
            case 'env':
            case 'label':
                return { ...ins, pairs: this.expandPairs(ins.pairs, ins) };
            case 'workdir':
                return { ...ins, path: x(ins.path) };
            case 'user':
                return { ...ins, user: x(ins.user) };
            case 'stopsignal':
                return { ...ins, signal: x(ins.signal) };
            case 'volume': {
                const volumes = ins.volumes.map(x);
                if (volumes.some((v) => v.trim() === '')) {
                    throw new DockerfileError('VOLUME specified can not be an empty string', { line: ins.line, endLine: ins.endLine });
                }
                return { ...ins, volumes };
            }
            case 'expose':
                return { ...ins, ports: ins.ports.flatMap((p) => this.process(p, ins).words) };
            case 'copy':
                return { ...ins, sources: ins.sources.map(x), dest: x(ins.dest), chown: opt(ins.chown), chmod: opt(ins.chmod) };
            case 'add':
                return {
                    ...ins, sources: ins.sources.map(x), dest: x(ins.dest), chown: opt(ins.chown), chmod: opt(ins.chmod),
                    checksum: opt(ins.checksum),
                };
            case 'run':
                return { ...ins, mounts: ins.mounts.map(x), network: opt(ins.network), security: opt(ins.security) };
            default:
                return ins;
        }
    }
    /** ENV: all pairs are expanded with the variables as they were before the instruction. */
    applyEnv(ins) {
        const pairs = this.expandPairs(ins.pairs, ins);
        for (const p of pairs) {
            this.env.set(p.key, p.value);
            this.vars.set(p.key, p.value);
        }
        return pairs;
    }
    /**
     * ARG: each name gets the --build-arg value, else its expanded default, else the global ARG's value; each
     * later name of the same instruction already sees the earlier ones.
     */
    applyArg(ins) {
        const out = [];
        for (const a of ins.args) {
            const key = a.key;
            let value;
            if (this.options.buildArgs.has(key))
                value = this.options.buildArgs.get(key);
            else if (a.value !== undefined)
                value = this.expand(a.value, ins);
            else if (this.options.globalArgs.has(key))
                value = this.options.globalArgs.get(key);
            this.args.set(key, value);
            if (value !== undefined)
                this.vars.set(key, value);
            out.push(value === undefined ? { key } : { key, value });
        }
        return out;
    }
    /** Runs the scope forward over one instruction (ENV and ARG change it; others do not). */
    apply(ins) {
        if (ins.kind === 'env')
            this.applyEnv(ins);
        else if (ins.kind === 'arg')
            this.applyArg(ins);
    }
}

;// CONCATENATED MODULE: ./lib/dockerfile/dockerignore.js
// .dockerignore with Docker's semantics (moby/patternmatcher): Go filepath.Match patterns on slash-separated
// paths relative to the context, `**` for any number of directories, `!` exceptions where the last matching
// line wins, `#` comment lines, patterns cleaned like Go's filepath.Clean, and a path excluded when it or any
// of its parent directories matches.
class DockerignoreError extends Error {
    line;
    name = 'DockerignoreError';
    constructor(message, line) {
        super(message);
        this.line = line;
    }
}
/** Go's path.Clean for slash-separated paths. */
function cleanPath(p) {
    if (p === '')
        return '.';
    const rooted = p.startsWith('/');
    const out = [];
    for (const part of p.split('/')) {
        if (part === '' || part === '.')
            continue;
        if (part === '..') {
            if (out.length > 0 && out[out.length - 1] !== '..')
                out.pop();
            else if (!rooted)
                out.push('..');
            continue;
        }
        out.push(part);
    }
    const s = (rooted ? '/' : '') + out.join('/');
    return s === '' ? '.' : s;
}
function escapeRegExp(ch) {
    return /[\\^$.*+?()[\]{}|/]/.test(ch) ? '\\' + ch : ch;
}
function escapeInClass(ch) {
    return /[\\^\]\[-]/.test(ch) ? '\\' + ch : ch;
}
function compile(pattern, line) {
    const chars = Array.from(pattern);
    let re = '^';
    for (let i = 0; i < chars.length; i++) {
        const ch = chars[i];
        if (ch === '*') {
            if (chars[i + 1] === '*') {
                i++;
                if (chars[i + 1] === '/')
                    i++; // **/ is the same as **
                re += i + 1 >= chars.length ? '.*' : '(?:.*/)?';
            }
            else {
                re += '[^/]*';
            }
        }
        else if (ch === '?') {
            re += '[^/]';
        }
        else if (ch === '\\') {
            // the next character is literal; a trailing backslash is itself
            if (i + 1 < chars.length)
                re += escapeRegExp(chars[++i]);
            else
                re += '\\\\';
        }
        else if (ch === '[') {
            // a character class as in filepath.Match: [abc], [a-z], [^a] or [!a]
            let j = i + 1;
            let cls = '';
            if (chars[j] === '!' || chars[j] === '^') {
                cls += '^';
                j++;
            }
            let closed = false;
            let first = true;
            for (; j < chars.length; j++) {
                const c = chars[j];
                if (c === ']' && !first) {
                    closed = true;
                    break;
                }
                first = false;
                if (c === '\\') {
                    j++;
                    if (j >= chars.length)
                        break;
                    cls += escapeInClass(chars[j]);
                }
                else if (c === '-' && cls !== '' && cls !== '^' && chars[j + 1] !== ']') {
                    cls += '-';
                }
                else {
                    cls += escapeInClass(c);
                }
            }
            if (!closed || cls === '' || cls === '^')
                throw new DockerignoreError(`syntax error in pattern: ${pattern}`, line);
            re += '(?![/])[' + cls + ']';
            i = j;
        }
        else {
            re += escapeRegExp(ch);
        }
    }
    try {
        return new RegExp(re + '$', 'u');
    }
    catch {
        throw new DockerignoreError(`syntax error in pattern: ${pattern}`, line);
    }
}
/** Reads the text of a .dockerignore file into patterns. Throws DockerignoreError for a malformed line. */
function parseDockerignore(text) {
    const patterns = [];
    text.replace(/^\ufeff/, '').split('\n').forEach((raw, idx) => {
        const line = idx + 1;
        if (raw.startsWith('#'))
            return;
        let p = raw.trim();
        if (p === '')
            return;
        const exclusion = p.startsWith('!');
        if (exclusion) {
            p = p.slice(1).trim();
            if (p === '')
                throw new DockerignoreError('illegal exclusion pattern: "!"', line);
        }
        p = cleanPath(p);
        if (p.length > 1 && p.startsWith('/'))
            p = p.slice(1);
        patterns.push({ pattern: p, exclusion, line, regexp: compile(p, line) });
    });
    return patterns;
}
class IgnoreMatcher {
    patterns;
    /** some `!` line could bring back a path inside an excluded directory, so excluded directories must be walked */
    hasExceptions;
    constructor(patterns) {
        this.patterns = patterns;
        this.hasExceptions = patterns.some((p) => p.exclusion);
    }
    static fromText(text) {
        return new IgnoreMatcher(parseDockerignore(text));
    }
    /** Whether a context path (slash-separated, relative) is excluded: it or a parent matches, last line wins. */
    excludes(path) {
        const file = cleanPath(path.replace(/^\/+/, ''));
        const slash = file.lastIndexOf('/');
        const parentDirs = slash < 0 ? [] : file.slice(0, slash).split('/');
        let matched = false;
        for (const p of this.patterns) {
            // an inclusion cannot change an already excluded path, nor an exception a path not excluded yet
            if (p.exclusion !== matched)
                continue;
            let match = p.regexp.test(file);
            for (let i = 0; !match && i < parentDirs.length; i++) {
                match = p.regexp.test(parentDirs.slice(0, i + 1).join('/'));
            }
            if (match)
                matched = !p.exclusion;
        }
        return matched;
    }
}
/**
 * The ignore files to look for, most specific first: `<Dockerfile>.dockerignore` beside the Dockerfile, then the
 * context's `.dockerignore`. Paths are joined with `/`; the caller reads the first that exists.
 */
function dockerignoreCandidates(dockerfilePath, contextDir) {
    const trimmed = contextDir.replace(/\/+$/, '');
    return [`${dockerfilePath}.dockerignore`, `${trimmed === '' ? '.' : trimmed}/.dockerignore`];
}

;// CONCATENATED MODULE: ./lib/image/config-defaults.js
// Values the builder puts into image configs when nothing else says otherwise.
/** The PATH of an image that sets none (BuildKit gives it to scratch images and RUN steps on Linux). */
const defaultPathEnv = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

;// CONCATENATED MODULE: ./lib/dockerfile/lint.js
// Build checks in the spirit of BuildKit's (docs.docker.com/reference/build-checks): each a warning with the
// Dockerfile line, named as BuildKit names it, switched off or made fatal by a `# check=skip=…;error=true` directive.





function checkConfig(df) {
    const config = { skip: new Set(), skipAll: false, error: false };
    const d = df.directives.find((x) => x.name === 'check');
    if (!d)
        return config;
    for (const part of d.value.split(';')) {
        const eq = part.indexOf('=');
        if (eq < 0)
            continue;
        const key = part.slice(0, eq).trim().toLowerCase();
        const value = part.slice(eq + 1).trim();
        if (key === 'skip') {
            for (const name of value.split(',').map((s) => s.trim()).filter(Boolean)) {
                if (name.toLowerCase() === 'all')
                    config.skipAll = true;
                else
                    config.skip.add(name);
            }
        }
        else if (key === 'error') {
            config.error = value.toLowerCase() === 'true';
        }
    }
    return config;
}
const secretWord = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const publicWord = /(?:_|^)(?:public)(?:_|$)/i;
/** Names that look like they carry a secret (API_TOKEN, DB_PASSWORD), unless marked public. */
function looksSecret(name) {
    return secretWord.test(name) && !publicWord.test(name);
}
const reservedStageNames = new Set(['scratch', 'context']);
function keywordCase(k) {
    if (k === k.toUpperCase())
        return 'upper';
    if (k === k.toLowerCase())
        return 'lower';
    return 'mixed';
}
function lint(df, options = {}) {
    const config = checkConfig(df);
    const warnings = [];
    const report = (check, line, message) => {
        if (config.skipAll || config.skip.has(check))
            return;
        warnings.push({ check, message, file: df.file, line });
    };
    for (const w of df.parseWarnings)
        report('NoEmptyContinuation', w.line, 'Empty continuation line');
    // Keyword casing: every instruction should be cased like the majority.
    const all = [...df.globalArgs, ...df.stages.flatMap((s) => [s.from, ...s.commands])];
    const upper = all.filter((i) => keywordCase(i.keyword) === 'upper').length;
    const lower = all.filter((i) => keywordCase(i.keyword) === 'lower').length;
    const majority = upper >= lower ? 'upper' : 'lower';
    for (const ins of all) {
        if (keywordCase(ins.keyword) !== majority) {
            const want = majority === 'upper' ? ins.keyword.toUpperCase() : ins.keyword.toLowerCase();
            report('ConsistentInstructionCasing', ins.line, `Command '${ins.keyword}' should match the case of the command majority (${majority}case): use '${want}'`);
        }
    }
    const seen = new Map();
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
                report('ReservedStageName', from.line, `Stage name should not use the same name as reserved stage "${stage.name}"`);
            }
            const prev = seen.get(stage.name);
            if (prev !== undefined) {
                report('DuplicateStageName', from.line, `Duplicate stage name "${stage.name}", stage names should be unique (first at line ${prev})`);
            }
            else {
                seen.set(stage.name, from.line);
            }
        }
        if (from.platform !== undefined) {
            if (/^\$\{?TARGETPLATFORM\}?$/.test(from.platform)) {
                report('RedundantTargetPlatform', from.line, 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior');
            }
            else if (!from.platform.includes('$')) {
                report('FromPlatformFlagConstDisallowed', from.line, `FROM --platform flag should not use constant value "${from.platform}"`);
            }
        }
        const counts = new Map();
        for (const ins of stage.commands) {
            if (ins.kind === 'cmd' || ins.kind === 'entrypoint' || ins.kind === 'healthcheck') {
                counts.set(ins.kind, [...(counts.get(ins.kind) ?? []), ins]);
            }
            if ((ins.kind === 'cmd' || ins.kind === 'entrypoint') && ins.command.prependShell && ins.command.args.length > 0) {
                const name = ins.kind.toUpperCase();
                report('JSONArgsRecommended', ins.line, `JSON arguments recommended for ${name} to prevent unintended behavior related to OS signals`);
            }
            if (ins.kind === 'maintainer')
                report('MaintainerDeprecated', ins.line, 'Maintainer instruction is deprecated in favor of using label');
            if (ins.kind === 'env' || ins.kind === 'label') {
                if (ins.pairs.some((p) => p.legacy)) {
                    const k = ins.kind.toUpperCase();
                    report('LegacyKeyValueFormat', ins.line, `"${k} key=value" should be used instead of legacy "${k} key value" format`);
                }
            }
            if (ins.kind === 'workdir' && !ins.path.startsWith('/') && !ins.path.startsWith('$')) {
                report('WorkdirRelativePath', ins.line, `Relative workdir "${ins.path}" can have unexpected results if the base image changes`);
            }
        }
        for (const [kind, list] of counts) {
            for (const ins of list.slice(0, -1)) {
                report('MultipleInstructionsDisallowed', ins.line, `Multiple ${kind.toUpperCase()} instructions should not be used in the same stage because only the last one will be used`);
            }
        }
    }
    for (const ins of [...df.globalArgs, ...df.stages.flatMap((s) => s.commands)]) {
        if (ins.kind === 'arg') {
            for (const a of ins.args)
                if (looksSecret(a.key))
                    report('SecretsUsedInArgOrEnv', ins.line, `Do not use ARG or ENV instructions for sensitive data (ARG "${a.key}")`);
        }
        else if (ins.kind === 'env') {
            for (const p of ins.pairs)
                if (looksSecret(p.key))
                    report('SecretsUsedInArgOrEnv', ins.line, `Do not use ARG or ENV instructions for sensitive data (ENV "${p.key}")`);
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
                report('InvalidDefaultArgInFrom', p.stage.from.line, `Default value for ARG ${p.stage.from.image} results in empty or invalid base image name`);
            }
        }
    }
    undefinedVars(plan, options, report);
    for (const name of plan.unusedBuildArgs)
        report('UnusedBuildArg', 1, `Build argument "${name}" is not consumed by any ARG`);
    warnings.sort((a, b) => a.line - b.line);
    return { warnings, failOnWarnings: config.error };
}
function undefinedVars(plan, options, report) {
    const finalEnv = new Map();
    for (const p of plan.stages) {
        let baseEnv;
        if (p.base.kind === 'scratch')
            baseEnv = [['PATH', defaultPathEnv]];
        else if (p.base.kind === 'stage')
            baseEnv = finalEnv.get(p.base.index);
        else
            baseEnv = options.baseEnv?.(p.base.ref);
        if (baseEnv === undefined) {
            // unknown base Env: anything could be defined there
            finalEnv.set(p.stage.index, undefined);
            continue;
        }
        const scope = new StageScope({
            escapeToken: plan.dockerfile.escapeToken, globalArgs: plan.globalArgs, buildArgs: plan.buildArgs, baseEnv,
        });
        const reported = new Set();
        for (const ins of p.stage.commands) {
            try {
                scope.expandInstruction(ins);
                scope.apply(ins);
            }
            catch (e) {
                if (e instanceof DockerfileError)
                    throw e.withSource(plan.dockerfile.file, plan.dockerfile.text);
                throw e;
            }
            for (const u of scope.undefinedVars.splice(0)) {
                if (scope.args.has(u.name) || reported.has(`${u.line}:${u.name}`))
                    continue;
                reported.add(`${u.line}:${u.name}`);
                const near = closest(u.name, [...scope.vars.keys(), ...plan.globalArgs.keys()]);
                report('UndefinedVar', u.line, `Usage of undefined variable '$${u.name}'${near ? ` (did you mean $${near}?)` : ''}`);
            }
        }
        finalEnv.set(p.stage.index, [...scope.env]);
    }
}
/** `FILE:LINE: [Check] message`, one line per warning. */
function formatLintWarning(w) {
    return `${w.file}:${w.line}: [${w.check}] ${w.message}`;
}

;// CONCATENATED MODULE: ./lib/dockerfile/index.js
// The Dockerfile front end: pure functions from text to instructions, stages and a build plan. No I/O beyond the
// text it is given.













;// CONCATENATED MODULE: ./lib/version.js
/** hoist's version; a test keeps it equal to package.json's. */
const version = '0.1.0';

;// CONCATENATED MODULE: ./lib/cli/argv.js
// A small argv reader for the hoist command: `--name value`, `--name=value`, short `-f value`, boolean flags,
// repeated flags, `--` to end options. Unknown options are errors that name the command's options.
class UsageError extends Error {
    name = 'UsageError';
}
function parseArgv(argv, spec, command) {
    const options = new Map();
    const flags = new Set();
    const positional = [];
    const byShort = new Map(Object.entries(spec).flatMap(([name, s]) => (s.short ? [[s.short, name]] : [])));
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--') {
            positional.push(...argv.slice(i + 1));
            break;
        }
        let name;
        let inline;
        if (a.startsWith('--')) {
            const eq = a.indexOf('=');
            name = eq < 0 ? a.slice(2) : a.slice(2, eq);
            if (eq >= 0)
                inline = a.slice(eq + 1);
        }
        else if (a.startsWith('-') && a.length > 1) {
            name = byShort.get(a.slice(1, 2));
            if (!name)
                throw new UsageError(`unknown option ${a} for "hoist ${command}"`);
            if (a.length > 2)
                inline = a.slice(2).replace(/^=/, '');
        }
        else {
            positional.push(a);
            continue;
        }
        const s = spec[name];
        if (!s) {
            const known = Object.keys(spec).map((k) => '--' + k).join(', ');
            throw new UsageError(`unknown option --${name} for "hoist ${command}" (options: ${known})`);
        }
        if (!s.value) {
            if (inline !== undefined && inline !== 'true' && inline !== 'false') {
                throw new UsageError(`option --${name} takes no value`);
            }
            if (inline !== 'false')
                flags.add(name);
            continue;
        }
        let value = inline;
        if (value === undefined) {
            if (i + 1 >= argv.length)
                throw new UsageError(`option --${name} needs a value`);
            value = argv[++i];
        }
        const list = options.get(name) ?? [];
        if (list.length > 0 && !s.repeat)
            throw new UsageError(`option --${name} given more than once`);
        list.push(value);
        options.set(name, list);
    }
    return { options, flags, positional };
}
/** `KEY=VALUE` pairs of a repeated option (`--build-arg`); a bare KEY takes its value from the environment. */
function keyValueOptions(values, env = process.env) {
    const out = new Map();
    for (const v of values) {
        const eq = v.indexOf('=');
        if (eq === 0)
            throw new UsageError(`invalid argument ${JSON.stringify(v)}: expected KEY=VALUE`);
        if (eq < 0) {
            const fromEnv = env[v];
            if (fromEnv !== undefined)
                out.set(v, fromEnv);
            continue;
        }
        out.set(v.slice(0, eq), v.slice(eq + 1));
    }
    return out;
}

;// CONCATENATED MODULE: external "node:fs"
const external_node_fs_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:fs");
;// CONCATENATED MODULE: ./lib/cli/dockerfile-commands.js
// `hoist parse` and `hoist lint`: the front end on its own, for people and for conformance checks.




function dockerfileArg(command, positional, file) {
    const f = file?.[0] ?? positional[0];
    if (f === undefined)
        throw new UsageError(`"hoist ${command}" needs a Dockerfile: hoist ${command} [-f] FILE`);
    if (file && positional.length > 0)
        throw new UsageError(`"hoist ${command}" takes one Dockerfile, got -f ${f} and ${positional[0]}`);
    if (!file && positional.length > 1)
        throw new UsageError(`"hoist ${command}" takes one Dockerfile, got ${positional.length} arguments`);
    return f;
}
function readText(file, io) {
    if (file === '-')
        return io.readStdin();
    try {
        return (0,external_node_fs_namespaceObject.readFileSync)(file, 'utf8');
    }
    catch (e) {
        const code = e.code;
        throw new UsageError(code === 'ENOENT' ? `${file}: no such file` : code === 'EISDIR' ? `${file} is a directory, not a Dockerfile`
            : `cannot read ${file}: ${e.message}`);
    }
}
const parseUsage = `Usage: hoist parse [--dump|--json] [-f] FILE

Parses a Dockerfile (FILE or - for standard input) and prints it.
  --dump   BuildKit's AST dump format (the default)
  --json   the instructions as JSON, with their lines`;
function parseCommand(argv, io) {
    const a = parseArgv(argv, { dump: {}, json: {}, file: { value: true, short: 'f' }, help: { short: 'h' } }, 'parse');
    if (a.flags.has('help')) {
        io.out(parseUsage + '\n');
        return 0;
    }
    const file = dockerfileArg('parse', a.positional, a.options.get('file'));
    const text = readText(file, io);
    const name = file === '-' ? 'Dockerfile' : file;
    if (a.flags.has('json')) {
        const df = readDockerfile(text, name);
        const strip = (k, v) => (k === 'node' || k === 'trigger' ? undefined : v);
        io.out(JSON.stringify({ directives: df.directives, globalArgs: df.globalArgs, stages: df.stages }, strip, 2) + '\n');
        return 0;
    }
    io.out(dump(parse(text, { file: name }).nodes));
    return 0;
}
const lintUsage = `Usage: hoist lint [--build-arg KEY=VALUE]... [--target STAGE] [-f] FILE

Checks a Dockerfile and prints each finding as FILE:LINE: [Check] message.
Exits 1 when the file does not parse, or when a "# check=error=true" directive is set and there are findings.`;
function lintCommand(argv, io) {
    const a = parseArgv(argv, {
        file: { value: true, short: 'f' },
        'build-arg': { value: true, repeat: true },
        target: { value: true },
        platform: { value: true },
        help: { short: 'h' },
    }, 'lint');
    if (a.flags.has('help')) {
        io.out(lintUsage + '\n');
        return 0;
    }
    const file = dockerfileArg('lint', a.positional, a.options.get('file'));
    const df = readDockerfile(readText(file, io), file === '-' ? 'Dockerfile' : file);
    const platform = a.options.get('platform')?.[0];
    const result = lint(df, {
        buildArgs: keyValueOptions(a.options.get('build-arg') ?? []),
        target: a.options.get('target')?.[0],
        targetPlatform: platform ? parsePlatform(platform) : undefined,
    });
    for (const w of result.warnings)
        io.out(formatLintWarning(w) + '\n');
    return result.failOnWarnings && result.warnings.length > 0 ? 1 : 0;
}

;// CONCATENATED MODULE: ./lib/cli/io.js
// Where a command's output goes; the real process streams, or buffers in tests.

const processIO = {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    readStdin: () => (0,external_node_fs_namespaceObject.readFileSync)(0, 'utf8'),
};

;// CONCATENATED MODULE: ./lib/cli/main.js
// The `hoist` command: argv to a subcommand, errors to messages a person can act on, and an exit code.






const usage = `hoist ${version}: build and push container images from Dockerfiles, without a daemon

Usage: hoist COMMAND [OPTIONS]

Commands:
  parse    print a Dockerfile's parse tree (BuildKit's AST dump format)
  lint     check a Dockerfile and print the findings
  version  print hoist's version

Run "hoist COMMAND --help" for a command's options.
`;
const commands = {
    parse: parseCommand,
    lint: lintCommand,
    version: (_argv, io) => {
        io.out(`hoist ${version}\n`);
        return 0;
    },
};
async function run(argv, io = processIO) {
    const [name, ...rest] = argv;
    if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
        io.out(usage);
        return name === undefined ? 2 : 0;
    }
    if (name === '--version')
        return commands.version([], io);
    const command = commands[name];
    if (!command) {
        io.err(`hoist: unknown command "${name}"\n\n${usage}`);
        return 2;
    }
    try {
        return await command(rest, io);
    }
    catch (e) {
        if (e instanceof DockerfileError) {
            io.err(`error: ${e.format()}\n`);
            return 1;
        }
        if (e instanceof UsageError || e instanceof PlatformError) {
            io.err(`hoist ${name}: ${e.message}\n`);
            return 2;
        }
        throw e;
    }
}

;// CONCATENATED MODULE: ./lib/cli/bin.js
// Entry point of dist/cli.js (the `hoist` command).

run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
}, (e) => {
    process.stderr.write(`hoist: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 70;
});

