// RUN for another platform: the kernel runs a foreign binary through the interpreter binfmt_misc names for it
// (qemu-user's, as setup-qemu-action registers it, or Debian's qemu-user-static), so the container needs nothing
// of its own. The handler must be registered with the F flag (the interpreter opened when registered): inside the
// container's root the interpreter's path does not exist. hoist registers Debian's handlers itself when asked.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { formatPlatform, hostPlatform, type Platform } from '../image/platform.js';
import { ExecError } from './overlay.js';
import { runProcess } from './process.js';
import { onPath } from './process.js';

/** qemu's name for an architecture (binfmt_misc's handler is qemu-<name>) */
const qemuNames: Record<string, string> = {
  amd64: 'x86_64',
  arm64: 'aarch64',
  arm: 'arm',
  '386': 'i386',
  ppc64le: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  mips64le: 'mips64el',
  loong64: 'loongarch64',
};

const binfmt = '/proc/sys/fs/binfmt_misc';

/** Whether this machine runs the platform's binaries itself (its own architecture, or 32-bit x86 on x86-64). */
export function runsNatively(p: Platform, host: Platform = hostPlatform()): boolean {
  if (p.os !== host.os) return false;
  return p.architecture === host.architecture || (p.architecture === '386' && host.architecture === 'amd64');
}

/** qemu-user's own program for the platform (qemu-aarch64-static, qemu-aarch64) on PATH: proot's -q runs a step under it. */
export function qemuUserProgram(p: Platform): string | undefined {
  const name = qemuNames[p.architecture];
  return name ? (onPath(`qemu-${name}-static`) ?? onPath(`qemu-${name}`)) : undefined;
}

/** The interpreter binfmt_misc runs the platform's binaries with, when one is registered, enabled and fixed (F). */
export function registeredEmulator(p: Platform): string | undefined {
  const name = qemuNames[p.architecture];
  if (!name) return undefined;
  let text: string;
  try {
    text = readFileSync(`${binfmt}/qemu-${name}`, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  if (lines[0] !== 'enabled') return undefined;
  const flags =
    lines
      .find((l) => l.startsWith('flags:'))
      ?.slice(6)
      .trim() ?? '';
  if (!flags.includes('F')) return undefined;
  return lines
    .find((l) => l.startsWith('interpreter '))
    ?.slice(12)
    .trim();
}

/**
 * Registers the handler Debian's qemu-user-static ships for the platform (/usr/lib/binfmt.d/qemu-<name>.conf, with
 * the F flag; the package installed with apt-get first when it is missing), mounting binfmt_misc first when it is
 * not: what setup-qemu-action does, without a container. Root only. True when the platform can then be emulated.
 */
export async function registerEmulator(p: Platform): Promise<boolean> {
  const name = qemuNames[p.architecture];
  const conf = `/usr/lib/binfmt.d/qemu-${name}.conf`;
  if (!name || process.getuid?.() !== 0) return false;
  // Not installed (a GitHub-hosted runner): Debian's or Ubuntu's package, as an apt-get user would install it.
  if (!existsSync(conf) && existsSync('/usr/bin/apt-get')) {
    const install = ['install', '-y', '-qq', '--no-install-recommends', 'qemu-user-static'];
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    if (
      (await runProcess('apt-get', install, { env })).status !== 0 &&
      (await runProcess('apt-get', ['update', '-qq'], { env })).status === 0
    )
      await runProcess('apt-get', install, { env });
  }
  if (!existsSync(conf)) return false;
  if (!existsSync(`${binfmt}/register`)) await runProcess('mount', ['-t', 'binfmt_misc', 'binfmt_misc', binfmt]);
  if (!existsSync(`${binfmt}/qemu-${name}`)) {
    try {
      writeFileSync(`${binfmt}/register`, readFileSync(conf, 'utf8').trim());
    } catch {
      return false;
    }
  }
  return registeredEmulator(p) !== undefined;
}

/**
 * Makes sure a RUN for `platform` can run here: natively, through a registered emulator, or (with `register`)
 * through one hoist registers. Answers the interpreter when emulated; else throws what to do.
 */
export async function ensureEmulation(platform: Platform, register: boolean): Promise<string | undefined> {
  if (runsNatively(platform)) return undefined;
  const found =
    registeredEmulator(platform) ??
    (register && (await registerEmulator(platform)) ? registeredEmulator(platform) : undefined);
  if (found) return found;
  const name = qemuNames[platform.architecture] ?? platform.architecture;
  throw new ExecError(
    `RUN for ${formatPlatform(platform)} needs emulation on this ${formatPlatform(hostPlatform())} machine, and binfmt_misc has no qemu-${name} handler (with the F flag): ` +
      `install qemu-user-static (apt-get install qemu-user-static) and pass --emulate (the Action: emulate: true) to have hoist register it, ` +
      `or register it before the build (docker/setup-qemu-action, or docker run --privileged tonistiigi/binfmt --install ${platform.architecture})`,
  );
}
