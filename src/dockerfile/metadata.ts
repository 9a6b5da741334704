// The instructions that change only the image config, applied as BuildKit's dockerfile2llb applies them, with
// the history `created_by` text BuildKit writes (Go's %q/%v formatting of slices and maps included).
import { goQuote } from './chars.js';
import { formatEnv, parseEnv } from '../image/env.js';
import { DockerfileError } from './errors.js';
import type { Instruction } from './instructions.js';
import type { ImageConfig } from '../image/manifest.js';

export const defaultShell = ['/bin/sh', '-c'];

/** Go `%q` of a []string: `["a" "b"]`. */
export const goQuotedList = (l: readonly string[]) => `[${l.map(goQuote).join(' ')}]`;
/** Go `%v` of a []string: `[a b]`. */
export const goList = (l: readonly string[]) => `[${l.join(' ')}]`;

function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const units: [number, string][] = [
    [3600e9, 'h'],
    [60e9, 'm'],
  ];
  let out = '';
  let rest = ns;
  for (const [n, u] of units) {
    if (rest >= n) {
      out += `${Math.floor(rest / n)}${u}`;
      rest %= n;
    }
  }
  if (ns < 1e9) {
    if (ns % 1e6 === 0) return `${ns / 1e6}ms`;
    if (ns % 1e3 === 0) return `${ns / 1e3}µs`;
    return `${ns}ns`;
  }
  const secs = rest / 1e9;
  return `${out}${Number.isInteger(secs) ? secs : secs.toFixed(9).replace(/0+$/, '')}s`;
}

/** EXPOSE words → `port/proto` keys, ranges spelled out (docker's nat.ParsePortSpecs). */
export function exposedPorts(words: readonly string[], at: Instruction): string[] {
  const out: string[] = [];
  for (const w of words) {
    const m = w.match(/^(?:(?:\[[^\]]*\]|[^:]*):)?(?:[^:]*:)?(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i);
    if (!m)
      throw new DockerfileError(`invalid port ${JSON.stringify(w)}: expected PORT[-PORT][/tcp|udp|sctp]`, {
        line: at.line,
        endLine: at.endLine,
      });
    const start = Number(m[1]);
    const end = m[2] ? Number(m[2]) : start;
    if (end < start || end > 65535)
      throw new DockerfileError(`invalid port range ${JSON.stringify(w)}`, { line: at.line, endLine: at.endLine });
    for (let p = start; p <= end; p++) out.push(`${p}/${(m[3] ?? 'tcp').toLowerCase()}`);
  }
  return out;
}

/** Go's %q of an int, which formats it as a quoted rune: 'A', '\x03', '\n'. */
export function goQuoteRune(n: number): string {
  const body = goQuote(String.fromCodePoint(n)).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'");
  return `'${body}'`;
}

export interface MetadataContext {
  /** whether CMD was set in this stage (ENTRYPOINT clears an inherited CMD) */
  cmdSet: boolean;
}

/**
 * Applies a config-only instruction (already expanded) and returns its history text; undefined when the
 * instruction is not one of these.
 */
export function applyMetadata(config: ImageConfig, ins: Instruction, ctx: MetadataContext): string | undefined {
  const c = (config.config ??= {});
  switch (ins.kind) {
    case 'env': {
      const env = parseEnv(c.Env);
      for (const p of ins.pairs) env.set(p.key, p.value);
      c.Env = formatEnv(env);
      return `ENV ${ins.pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`;
    }
    case 'label':
      c.Labels = { ...c.Labels };
      for (const p of ins.pairs) c.Labels[p.key] = p.value;
      return `LABEL ${ins.pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`;
    case 'user':
      c.User = ins.user;
      return `USER ${ins.user}`;
    case 'expose': {
      c.ExposedPorts = { ...c.ExposedPorts };
      const ports = exposedPorts(ins.ports, ins);
      for (const p of ports) c.ExposedPorts[p] = {};
      // Current BuildKit's history text (testExportedHistory: "EXPOSE [1234/udp 2375/tcp 5000/tcp]"); Docker 20.10
      // printed the map: "EXPOSE map[1234/udp:{} …]".
      return `EXPOSE [${[...new Set(ports)].sort().join(' ')}]`;
    }
    case 'volume':
      c.Volumes = { ...c.Volumes };
      for (const v of ins.volumes) c.Volumes[v] = {};
      return `VOLUME ${goList(ins.volumes)}`;
    case 'stopsignal':
      c.StopSignal = ins.signal;
      return `STOPSIGNAL ${ins.signal}`;
    case 'shell':
      c.Shell = [...ins.shell];
      return `SHELL ${goList(ins.shell)}`;
    case 'cmd': {
      const args = ins.command.prependShell
        ? [...(c.Shell ?? defaultShell), ins.command.args.join(' ')]
        : [...ins.command.args];
      // An empty list is nil to BuildKit's JSON (omitempty): the key goes.
      if (args.length) c.Cmd = args;
      else delete c.Cmd;
      // BuildKit sets it for every CMD, for compatibility with the Docker image spec.
      c.ArgsEscaped = true;
      ctx.cmdSet = true;
      return `CMD ${goQuotedList(args)}`;
    }
    case 'entrypoint': {
      const args = ins.command.prependShell
        ? [...(c.Shell ?? defaultShell), ins.command.args.join(' ')]
        : [...ins.command.args];
      if (args.length) c.Entrypoint = args;
      else delete c.Entrypoint;
      if (!ctx.cmdSet) delete c.Cmd;
      return `ENTRYPOINT ${goQuotedList(args)}`;
    }
    case 'healthcheck': {
      const h: NonNullable<typeof c.Healthcheck> = { Test: [...ins.test] };
      if (ins.interval) h.Interval = ins.interval;
      if (ins.timeout) h.Timeout = ins.timeout;
      if (ins.startPeriod) h.StartPeriod = ins.startPeriod;
      if (ins.startInterval) h.StartInterval = ins.startInterval;
      if (ins.retries) h.Retries = ins.retries;
      c.Healthcheck = h;
      const retries = goQuoteRune(ins.retries);
      return `HEALTHCHECK &{${goQuotedList(ins.test)} ${[ins.interval, ins.timeout, ins.startPeriod, ins.startInterval].map((d) => goQuote(goDuration(d))).join(' ')} ${retries}}`;
    }
    case 'onbuild':
      // Recorded in the config; BuildKit writes no history entry for it.
      c.OnBuild = [...(c.OnBuild ?? []), ins.expression];
      return '';
    case 'maintainer':
      config.author = ins.maintainer;
      return `MAINTAINER ${ins.maintainer}`;
    default:
      return undefined;
  }
}
