// What a build sets for every RUN step, as `docker buildx build` flags and build-push-action inputs set it: extra
// /etc/hosts entries (--add-host), the network mode (--network), the size of /dev/shm (--shm-size) and resource
// limits (--ulimit). Each value is checked here with a message naming the flag; RUN --network on a step overrides
// the build's network. They change what a step may do, so they are part of the step's cache key (as in BuildKit's
// exec op: ExtraHosts, Network, ShmSize, Ulimit).

export interface Ulimit {
  /** the limit's name as docker spells it: nofile, nproc, core, … */
  name: string;
  soft: number;
  hard: number;
}

export interface RunSandbox {
  addHosts?: { host: string; ip: string }[];
  network?: 'default' | 'host' | 'none';
  /** bytes */
  shmSize?: number;
  ulimits?: Ulimit[];
}

export class SandboxError extends Error {
  override readonly name = 'SandboxError';
}

/** `host:ip` or `host=ip` (docker's --add-host; an IPv6 address after the first `:` or `=`). */
export function parseAddHost(text: string): { host: string; ip: string } {
  const m = /^([^:=\s]+)[:=](.+)$/.exec(text.trim());
  if (!m) throw new SandboxError(`add-host ${JSON.stringify(text)}: expected HOST:IP (or HOST=IP)`);
  const ip = m[2].replace(/^\[(.*)\]$/, '$1');
  if (!/^[0-9.]+$/.test(ip) && !/^[0-9a-fA-F:.]+$/.test(ip) && ip !== 'host-gateway')
    throw new SandboxError(`add-host ${JSON.stringify(text)}: ${JSON.stringify(ip)} is not an IP address`);
  if (ip === 'host-gateway')
    throw new SandboxError(
      `add-host ${JSON.stringify(text)}: host-gateway is a daemon's bridge address; RUN shares the host's network here, give the IP address`,
    );
  return { host: m[1], ip };
}

const units: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** A size as docker's --shm-size reads it (units.RAMInBytes): a number with an optional b, k, m, g or t (×1024). */
export function parseShmSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?$/i.exec(text.trim());
  if (!m) throw new SandboxError(`shm-size ${JSON.stringify(text)}: expected a size such as 64m or 2g`);
  const bytes = Math.floor(Number(m[1]) * units[m[2].toLowerCase()]);
  if (bytes <= 0) throw new SandboxError(`shm-size ${JSON.stringify(text)}: must be more than zero`);
  return bytes;
}

/** The limits docker's --ulimit knows (github.com/docker/go-units ulimit.go), by their rlimit names. */
export const ulimitNames: Record<string, string> = {
  core: 'RLIMIT_CORE',
  cpu: 'RLIMIT_CPU',
  data: 'RLIMIT_DATA',
  fsize: 'RLIMIT_FSIZE',
  locks: 'RLIMIT_LOCKS',
  memlock: 'RLIMIT_MEMLOCK',
  msgqueue: 'RLIMIT_MSGQUEUE',
  nice: 'RLIMIT_NICE',
  nofile: 'RLIMIT_NOFILE',
  nproc: 'RLIMIT_NPROC',
  rss: 'RLIMIT_RSS',
  rtprio: 'RLIMIT_RTPRIO',
  rttime: 'RLIMIT_RTTIME',
  sigpending: 'RLIMIT_SIGPENDING',
  stack: 'RLIMIT_STACK',
  as: 'RLIMIT_AS',
};

/** `name=soft[:hard]` (docker's --ulimit; -1 is unlimited). */
export function parseUlimit(text: string): Ulimit {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(text.trim());
  if (!m) throw new SandboxError(`ulimit ${JSON.stringify(text)}: expected NAME=SOFT[:HARD], e.g. nofile=1024:2048`);
  if (!ulimitNames[m[1]])
    throw new SandboxError(
      `ulimit ${JSON.stringify(text)}: unknown limit ${m[1]} (${Object.keys(ulimitNames).join(', ')})`,
    );
  const soft = Number(m[2]);
  const hard = m[3] === undefined ? soft : Number(m[3]);
  if (soft !== -1 && hard !== -1 && soft > hard)
    throw new SandboxError(`ulimit ${JSON.stringify(text)}: the soft limit ${soft} is above the hard limit ${hard}`);
  return { name: m[1], soft, hard };
}

/** `default`, `host` or `none`. */
export function parseNetwork(text: string): RunSandbox['network'] {
  const t = text.trim();
  if (t === '' || t === 'default' || t === 'host' || t === 'none') return (t || 'default') as RunSandbox['network'];
  throw new SandboxError(
    `network ${JSON.stringify(t)}: RUN takes default, host or none (hoist has no bridge or named networks: default is the host's network, as BuildKit's default without a CNI setup)`,
  );
}

/** The sandbox's part of a RUN step's cache key: only what was set, so that an unset sandbox keeps the keys it had. */
export function sandboxKey(s: RunSandbox | undefined): object | undefined {
  if (!s) return undefined;
  const k = {
    ...(s.addHosts?.length ? { addHosts: s.addHosts.map((h) => `${h.host}=${h.ip}`) } : {}),
    ...(s.network && s.network !== 'default' ? { network: s.network } : {}),
    ...(s.shmSize ? { shmSize: s.shmSize } : {}),
    ...(s.ulimits?.length ? { ulimits: s.ulimits.map((u) => `${u.name}=${u.soft}:${u.hard}`) } : {}),
  };
  return Object.keys(k).length ? k : undefined;
}
