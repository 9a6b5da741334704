// Platforms (`os/arch[/variant]`) as containerd normalises them: `linux/x86_64` is linux/amd64,
// `linux/arm64/v8` is linux/arm64, `linux/arm` is linux/arm/v7.

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export class PlatformError extends Error {
  override readonly name = 'PlatformError';
}

function normalizeArch(arch: string, variant: string | undefined): [string, string | undefined] {
  const a = arch.toLowerCase();
  const v = variant?.toLowerCase();
  switch (a) {
    case 'i386':
    case 'i686':
    case '386':
      return ['386', undefined];
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      return ['amd64', v === 'v1' ? undefined : v];
    case 'aarch64':
    case 'arm64':
      return ['arm64', v === 'v8' || v === '8' ? undefined : v];
    case 'armhf':
      return ['arm', 'v7'];
    case 'armel':
      return ['arm', 'v6'];
    case 'arm':
      if (v === undefined || v === '' || v === '7') return ['arm', 'v7'];
      if (v === '5' || v === '6' || v === '8') return ['arm', `v${v}`];
      return ['arm', v];
    default:
      return [a, v === '' ? undefined : v];
  }
}

/** Parses and normalises `os/arch[/variant]`; a bare `arch` is taken as linux/arch. */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split('/');
  if (parts.some((p) => p === '') || parts.length > 3) {
    throw new PlatformError(`invalid platform ${JSON.stringify(text)}: expected os/arch[/variant], e.g. linux/amd64`);
  }
  let os = 'linux';
  let arch: string;
  let variant: string | undefined;
  if (parts.length === 1) {
    if (['linux', 'windows', 'darwin', 'freebsd'].includes(parts[0].toLowerCase())) {
      throw new PlatformError(
        `invalid platform ${JSON.stringify(text)}: missing the architecture, e.g. ${parts[0]}/amd64`,
      );
    }
    arch = parts[0];
  } else {
    [os, arch, variant] = parts;
    os = os.toLowerCase();
    if (os === 'macos') os = 'darwin';
  }
  if (!/^[a-z0-9_.-]+$/i.test(os) || !/^[a-z0-9_.-]+$/i.test(arch) || (variant && !/^[a-z0-9_.-]+$/i.test(variant))) {
    throw new PlatformError(
      `invalid platform ${JSON.stringify(text)}: only letters, digits, '.', '_' and '-' are allowed`,
    );
  }
  const [a, v] = normalizeArch(arch, variant);
  return v ? { os, architecture: a, variant: v } : { os, architecture: a };
}

export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/** Two platforms are the same after normalisation (`linux/arm64/v8` matches `linux/arm64`). */
export function samePlatform(a: Platform, b: Platform): boolean {
  const x = parsePlatform(formatPlatform(a));
  const y = parsePlatform(formatPlatform(b));
  return x.os === y.os && x.architecture === y.architecture && (x.variant ?? '') === (y.variant ?? '');
}

const nodeArch: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/** The platform this process runs on (containers here are always linux). */
export function hostPlatform(): Platform {
  return parsePlatform(`linux/${nodeArch[process.arch] ?? process.arch}`);
}
