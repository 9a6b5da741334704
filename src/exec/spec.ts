// The OCI runtime spec of a RUN step, shaped like BuildKit's (executor/oci/spec.go with containerd's defaults):
// pid/ipc/uts/mount namespaces (and network unless --network=host/default on a host without a sandbox network),
// the default capability set, /proc, /dev as tmpfs, /dev/pts, /dev/shm, /dev/mqueue, /sys read-only, masked and
// read-only /proc paths, the generated /etc/hosts and the host's /etc/resolv.conf bound read-only.

import { type Ulimit, ulimitNames } from './sandbox.js';

export interface RunSpecOptions {
  root: string;
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids?: number[];
  hostname: string;
  hostsFile: string;
  resolvConf: string;
  network: 'host' | 'none';
  /** RUN --mount mounts, in order */
  mounts?: object[];
  /** /dev/shm's size in bytes (64 MiB, containerd's default, unless set) */
  shmSize?: number;
  ulimits?: Ulimit[];
}

const defaultCaps = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const maskedPaths = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/sys/firmware',
  '/proc/scsi',
];
const readonlyPaths = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

const unlimited = 'RLIM_INFINITY';

/** The spec as runc's config.json: RLIM_INFINITY as the largest uint64 (a JavaScript number cannot hold it). */
export function specJSON(spec: object): string {
  return JSON.stringify(spec).replace(/"RLIM_INFINITY"/g, '18446744073709551615');
}

export function runSpec(o: RunSpecOptions): object {
  const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (o.network === 'none') namespaces.push({ type: 'network' });
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: o.uid, gid: o.gid, additionalGids: o.additionalGids ?? [] },
      args: o.args,
      env: o.env,
      cwd: o.cwd,
      capabilities: { bounding: defaultCaps, effective: defaultCaps, permitted: defaultCaps },
      noNewPrivileges: false,
      // -1 is unlimited (RLIM_INFINITY, written as the uint64 runc reads: specJSON)
      ...(o.ulimits?.length
        ? {
            rlimits: o.ulimits.map((u) => ({
              type: ulimitNames[u.name],
              soft: u.soft < 0 ? unlimited : u.soft,
              hard: u.hard < 0 ? unlimited : u.hard,
            })),
          }
        : {}),
    },
    root: { path: o.root, readonly: false },
    hostname: o.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
      },
      {
        destination: '/dev/shm',
        type: 'tmpfs',
        source: 'shm',
        options: [
          'nosuid',
          'noexec',
          'nodev',
          'mode=1777',
          `size=${o.shmSize ? `${Math.ceil(o.shmSize / 1024)}k` : '65536k'}`,
        ],
      },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/etc/hosts', type: 'bind', source: o.hostsFile, options: ['rbind', 'ro'] },
      { destination: '/etc/resolv.conf', type: 'bind', source: o.resolvConf, options: ['rbind', 'ro'] },
      ...(o.mounts ?? []),
    ],
    linux: {
      namespaces,
      maskedPaths,
      readonlyPaths,
    },
  };
}
