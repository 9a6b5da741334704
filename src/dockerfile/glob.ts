// Go's path/filepath.Match patterns, the one glob syntax of Dockerfiles: COPY/ADD source wildcards use it as Go
// defines it, and .dockerignore (moby/patternmatcher) adds `**` for any number of directories. `*` and `?` never
// match a `/`; a class `[abc]`, `[a-z]` or `[^…]` matches one character (any, `/` included, as in Go); `\` makes
// the next character literal. There is no `[!…]`: Go takes `!` as a character like any other. A pattern Go calls
// malformed (ErrBadPattern: an unclosed or empty class, a `-` or `]` where a character is due, a trailing `\`) is
// an error, not a pattern that matches nothing.

export class GlobError extends Error {
  override readonly name = 'GlobError';
}

const special = /[\\^$.*+?()[\]{}|/]/;
const escapeChar = (c: string) => (special.test(c) ? `\\${c}` : c);
const escapeInClass = (c: string) => (/[\\\][^-]/.test(c) ? `\\${c}` : c);

export interface GlobOptions {
  // `**` spans directories: alone it matches anything, before a name that name at any depth, after a directory
  // anything below it.
  doubleStar?: boolean;
}

/** The pattern as an anchored RegExp over a whole slash-separated path. */
export function globToRegExp(pattern: string, options: GlobOptions = {}): RegExp {
  const chars = Array.from(pattern);
  const bad = (why: string) => new GlobError(`syntax error in pattern ${JSON.stringify(pattern)}: ${why}`);
  let re = '^';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === '*') {
      if (options.doubleStar && chars[i + 1] === '*') {
        i++;
        if (chars[i + 1] === '/') i++; // `**/` is the same as `**`
        re += i + 1 >= chars.length ? '.*' : '(?:.*/)?';
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '\\') {
      if (i + 1 >= chars.length) throw bad('a trailing \\');
      re += escapeChar(chars[++i]);
    } else if (c === '[') {
      let j = i + 1;
      let cls = '';
      if (chars[j] === '^') {
        cls = '^';
        j++;
      }
      // One character of a range: escaped, or any but `-` and `]` (Go's getEsc).
      const one = (): string => {
        let ch = chars[j];
        if (ch === undefined || ch === '-' || ch === ']')
          throw bad(ch === undefined ? 'an unclosed [' : `a ${ch} where a character is due`);
        if (ch === '\\') {
          ch = chars[++j];
          if (ch === undefined) throw bad('an unclosed [');
        }
        j++;
        return ch;
      };
      for (let ranges = 0; ; ranges++) {
        if (chars[j] === ']' && ranges > 0) break;
        const lo = one();
        let hi = lo;
        if (chars[j] === '-') {
          j++;
          hi = one();
        }
        // Go compares code points; a range whose ends are reversed matches nothing.
        if ((lo.codePointAt(0) as number) <= (hi.codePointAt(0) as number))
          cls += lo === hi ? escapeInClass(lo) : `${escapeInClass(lo)}-${escapeInClass(hi)}`;
      }
      re += cls === '^' ? '[^]' : cls === '' ? '[]' : `[${cls}]`;
      i = j;
    } else {
      re += escapeChar(c);
    }
  }
  return new RegExp(`${re}$`, 'u');
}

/** Whether a path component or path holds a wildcard (`*`, `?` or `[` not escaped by `\`). */
export function hasWildcard(p: string): boolean {
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '\\') i++;
    else if (p[i] === '*' || p[i] === '?' || p[i] === '[') return true;
  }
  return false;
}
