// How the image commands print sizes, times and tables (as the docker CLI does: 12.3MB, "2 hours ago").

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)}${units[i]}`;
}

/** `10GB`, `512MiB`, `100m`, `1.5g`, plain bytes. */
export function parseBytes(text: string): number {
  const m = text.trim().match(/^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?$/i);
  if (!m) throw new RangeError(`invalid size ${JSON.stringify(text)}: expected e.g. 10GB, 512MiB or 1000000`);
  const power = ['', 'k', 'm', 'g', 't'].indexOf(m[2].toLowerCase());
  const base = m[3] || m[2] === m[2].toLowerCase() ? 1024 : 1000;
  return Math.round(Number(m[1]) * base ** power);
}

export function relativeTime(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.max(0, Math.round((now - t) / 1000));
  const ago = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'} ago`;
  if (s < 60) return s < 2 ? 'Less than a second ago' : ago(s, 'second');
  if (s < 3600) return ago(Math.round(s / 60), 'minute');
  if (s < 86400 * 2) return ago(Math.round(s / 3600), 'hour');
  if (s < 86400 * 14) return ago(Math.round(s / 86400), 'day');
  if (s < 86400 * 60) return ago(Math.round(s / 604800), 'week');
  if (s < 86400 * 730) return ago(Math.round(s / 2592000), 'month');
  return ago(Math.round(s / 31536000), 'year');
}

export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    `${r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] + 3)))
      .join('')
      .trimEnd()}\n`;
  return line(head) + rows.map(line).join('');
}
