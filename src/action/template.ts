// The expressions docker/metadata-action evaluates in tag rules, flavors, labels and annotations: `{{name}}` and
// `{{name 'arg' key='value'}}` as Handlebars reads them (a value found in the context, or a helper called with its
// arguments and hash), its output HTML-escaped as Handlebars escapes `{{…}}`; and the moment.js date formats its
// `date`/`commit_date` helpers take (`{{date 'YYYYMMDD-HHmm' tz='Asia/Tokyo'}}`). Pure.

export type TemplateValue =
  | string
  | number
  | undefined
  | ((args: (string | number | boolean | undefined)[], hash: Record<string, string>) => string);

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

const escapes: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#x27;',
  '`': '&#x60;',
  '=': '&#x3D;',
};

/** Splits an expression's inside into words: bare, 'quoted', "quoted", key=value (value bare or quoted). */
function words(inner: string, where: string): { word: string; quoted: boolean; key?: string }[] {
  const out: { word: string; quoted: boolean; key?: string }[] = [];
  const re = /\s*(?:([A-Za-z_][\w-]*)=)?(?:'([^']*)'|"([^"]*)"|([^\s'"=]+))/y;
  let rest = inner.trim();
  while (rest.length > 0) {
    re.lastIndex = 0;
    const m = re.exec(rest);
    if (!m) throw new TemplateError(`${where}: cannot read the expression {{${inner}}}`);
    const quoted = m[2] !== undefined || m[3] !== undefined;
    out.push({ word: m[2] ?? m[3] ?? m[4], quoted, ...(m[1] ? { key: m[1] } : {}) });
    rest = rest.slice(m[0].length).trimStart();
  }
  return out;
}

/** `text` with every `{{…}}` replaced from `context`; `where` names the input for errors. */
export function renderTemplate(text: string, context: Record<string, TemplateValue>, where: string): string {
  return text.replace(/\{\{(.*?)\}\}/g, (_all, inner: string) => {
    const ws = words(inner, where);
    if (ws.length === 0) throw new TemplateError(`${where}: an empty expression {{}}`);
    const [head, ...rest] = ws;
    if (head.quoted || head.key) throw new TemplateError(`${where}: {{${inner}}} does not start with a name`);
    const value = Object.hasOwn(context, head.word) ? context[head.word] : undefined;
    let out: string;
    if (typeof value === 'function') {
      const hash: Record<string, string> = {};
      const args: (string | number | boolean | undefined)[] = [];
      for (const w of rest) {
        if (w.key) hash[w.key] = w.word;
        else args.push(w.quoted ? w.word : literalOrLookup(w.word, context));
      }
      out = value(args, hash);
    } else {
      if (rest.length > 0) throw new TemplateError(`${where}: ${head.word} takes no arguments in {{${inner}}}`);
      out = value === undefined ? '' : String(value);
    }
    return out.replace(/[&<>"'`=]/g, (c) => escapes[c]);
  });
}

/**
 * An unquoted argument as Handlebars reads it: a number, true, false, null or undefined literally, else a name looked up
 * in the context (`{{commit_date YYYY-MM-DD}}` passes nothing: the helper's default format applies).
 */
function literalOrLookup(word: string, context: Record<string, TemplateValue>): string | number | boolean | undefined {
  if (/^-?\d+(\.\d+)?$/.test(word)) return Number(word);
  if (word === 'true' || word === 'false') return word === 'true';
  if (word === 'null' || word === 'undefined') return undefined;
  const v = Object.hasOwn(context, word) ? context[word] : undefined;
  return typeof v === 'function' ? undefined : v;
}

/** The date and time parts of `date` in time zone `tz` (an IANA name). */
function zoned(date: Date, tz: string, where: string): Record<string, number> {
  let f: Intl.DateTimeFormat;
  try {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch {
    throw new TemplateError(`${where}: unknown time zone ${JSON.stringify(tz)}`);
  }
  const parts: Record<string, number> = {};
  for (const p of f.formatToParts(date)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const asUTC = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
  parts.offset = Math.round((asUTC - Math.floor(date.getTime() / 1000) * 1000) / 60000);
  return parts;
}

const pad = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');

/**
 * `date` formatted with moment.js's tokens (YYYY YY MM M DD D HH H hh h mm m ss s SSS A a X x Z ZZ; text in
 * [brackets] is literal) in time zone `tz`.
 */
export function formatDate(date: Date, format: string, tz: string, where: string): string {
  const p = zoned(date, tz, where);
  const offset = (sep: string) =>
    `${p.offset < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(p.offset) / 60))}${sep}${pad(Math.abs(p.offset) % 60)}`;
  const h12 = p.hour % 12 === 0 ? 12 : p.hour % 12;
  const tokens: Record<string, () => string> = {
    YYYY: () => pad(p.year, 4),
    YY: () => pad(p.year % 100),
    MM: () => pad(p.month),
    M: () => String(p.month),
    DD: () => pad(p.day),
    D: () => String(p.day),
    HH: () => pad(p.hour),
    H: () => String(p.hour),
    hh: () => pad(h12),
    h: () => String(h12),
    mm: () => pad(p.minute),
    m: () => String(p.minute),
    ss: () => pad(p.second),
    s: () => String(p.second),
    SSS: () => pad(date.getUTCMilliseconds(), 3),
    A: () => (p.hour < 12 ? 'AM' : 'PM'),
    a: () => (p.hour < 12 ? 'am' : 'pm'),
    X: () => String(Math.floor(date.getTime() / 1000)),
    x: () => String(date.getTime()),
    ZZ: () => offset(''),
    Z: () => offset(':'),
  };
  return format.replace(
    /\[([^\]]*)\]|YYYY|YY|SSS|MM|M|DD|D|HH|H|hh|h|mm|m|ss|s|A|a|X|x|ZZ|Z/g,
    (t, literal: string | undefined) => (literal !== undefined ? literal : tokens[t]()),
  );
}

/** A `date`-style helper over `date`: `{{name 'FORMAT' tz='Zone'}}` (UTC by default; no other hash key). */
export function dateHelper(date: Date, name: string, where: string): TemplateValue {
  return (args, hash) => {
    for (const k of Object.keys(hash))
      if (k !== 'tz') throw new TemplateError(`${where}: unknown ${k} attribute of ${name}`);
    const tz = hash.tz ?? 'UTC';
    const format = args[0];
    if (format !== undefined && typeof format !== 'string') return String(format);
    // moment's format() without a format: its UTC form (…ss[Z]) at offset zero, else …ssZ (+09:00)
    return formatDate(
      date,
      format ?? (zoned(date, tz, where).offset === 0 ? 'YYYY-MM-DDTHH:mm:ss[Z]' : 'YYYY-MM-DDTHH:mm:ssZ'),
      tz,
      where,
    );
  };
}
