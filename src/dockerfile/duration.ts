// Go's time.ParseDuration, which HEALTHCHECK's --interval, --timeout, --start-period and --start-interval use.

const units: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Nanoseconds, or undefined when the text is not a Go duration ("1m30s", "1.5h", "300ms", "0"). */
export function parseGoDuration(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  const part = /^(\d*)(?:\.(\d*))?([^\d.]+)/u;
  while (s !== '') {
    const m = part.exec(s);
    if (!m || (m[1] === '' && (m[2] ?? '') === '')) return undefined;
    const unit = units[m[3]];
    if (unit === undefined) return undefined;
    const whole = m[1] === '' ? 0 : Number(m[1]);
    const frac = m[2] ? Number(`0.${m[2]}`) : 0;
    total += (whole + frac) * unit;
    s = s.slice(m[0].length);
  }
  if (total >= 2 ** 63) return undefined; // past Go's int64 of nanoseconds (2^63 - 1)
  return sign * Math.round(total);
}
