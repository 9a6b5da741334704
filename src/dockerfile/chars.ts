// Character classes with Go's semantics. BuildKit's parser and shell lexer use Go's `unicode` package, whose
// notion of white space differs from JavaScript's `\s` (Go counts U+0085, not U+FEFF), so we spell it out.

const goSpace = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
  0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

/** Go's unicode.IsSpace for one character (a code point, or a one-character string). */
export function isSpace(ch: string | number): boolean {
  const cp = typeof ch === 'number' ? ch : ch.codePointAt(0);
  return cp !== undefined && goSpace.has(cp);
}

/** strings.TrimSpace */
export function trimSpace(s: string): string {
  return trimRightSpace(trimLeftSpace(s));
}

/** bytes.TrimLeftFunc(s, unicode.IsSpace) */
export function trimLeftSpace(s: string): string {
  let i = 0;
  while (i < s.length && goSpace.has(s.charCodeAt(i))) i++;
  return i === 0 ? s : s.slice(i);
}

export function trimRightSpace(s: string): string {
  let j = s.length;
  while (j > 0 && goSpace.has(s.charCodeAt(j - 1))) j--;
  return j === s.length ? s : s.slice(0, j);
}

const letter = /^\p{L}$/u;
const digit = /^\p{Nd}$/u;

/** unicode.IsLetter */
export function isLetter(ch: string): boolean {
  return ch.length <= 2 && letter.test(ch);
}

/** unicode.IsDigit */
export function isDigit(ch: string): boolean {
  if (ch.length === 1) {
    const c = ch.charCodeAt(0);
    if (c < 0x80) return c >= 0x30 && c <= 0x39;
  }
  return ch.length <= 2 && digit.test(ch);
}

const printable = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/**
 * Go's strconv.Quote: the format of every value in BuildKit's AST dump. Printable characters stay as they are,
 * the C escapes are used where they exist, other control characters become \xHH, other non-printables \uHHHH.
 */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
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
    } else if (printable.test(ch)) {
      out += ch;
    } else if (cp < 0x20 || cp === 0x7f) {
      out += `\\x${cp.toString(16).padStart(2, '0')}`;
    } else if (cp < 0x10000) {
      out += `\\u${cp.toString(16).padStart(4, '0')}`;
    } else {
      out += `\\U${cp.toString(16).padStart(8, '0')}`;
    }
  }
  return `${out}"`;
}
