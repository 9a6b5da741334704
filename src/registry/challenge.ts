// WWW-Authenticate challenges (RFC 7235: a scheme, then comma-separated key=value or key="quoted value"
// parameters; quoted values may hold commas, spaces and backslash escapes). A bare word not followed by `=`
// starts the next challenge.

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses every challenge in the header value, lower-casing schemes and parameter names. */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skip = (chars: string) => {
    while (i < n && chars.includes(header[i])) i++;
  };
  const token = () => {
    const start = i;
    while (i < n && !' \t,="'.includes(header[i])) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skip(' \t,');
    const word = token();
    if (!word) {
      i++;
      continue;
    }
    skip(' \t');
    if (header[i] !== '=' || out.length === 0) {
      out.push({ scheme: word.toLowerCase(), params: {} });
      continue;
    }
    i++;
    skip(' \t');
    let value = '';
    if (header[i] === '"') {
      i++;
      while (i < n && header[i] !== '"') {
        if (header[i] === '\\' && i + 1 < n) i++;
        value += header[i++];
      }
      i++;
    } else {
      value = token();
    }
    out[out.length - 1].params[word.toLowerCase()] = value;
  }
  return out;
}
