// Build arguments that exist without an ARG: the platform args (always in the global scope; a stage sees them
// after `ARG TARGETARCH` etc.) and the proxy args (usable in RUN without a declaration, kept out of history).
import { formatPlatform, type Platform } from '../image/platform.js';

export const proxyArgs: readonly string[] = [
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'FTP_PROXY',
  'ftp_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
];

export const platformArgNames: readonly string[] = [
  'BUILDPLATFORM',
  'BUILDOS',
  'BUILDARCH',
  'BUILDVARIANT',
  'TARGETPLATFORM',
  'TARGETOS',
  'TARGETARCH',
  'TARGETVARIANT',
  'TARGETSTAGE',
];

/** Names a --build-arg may carry without any ARG consuming it, and without a warning. */
export function isPredefinedArg(name: string): boolean {
  return (
    proxyArgs.includes(name) ||
    platformArgNames.includes(name) ||
    name.startsWith('BUILDKIT_') ||
    name === 'SOURCE_DATE_EPOCH'
  );
}

/**
 * The automatic args of the global scope (BuildKit's defaultArgs, dockerfile2llb convert.go): the platforms, and
 * TARGETSTAGE, the name of the stage the build is for (--target, else the last stage's name, `default` when it has none).
 */
export function platformArgs(build: Platform, target: Platform, targetStage = ''): Map<string, string> {
  return new Map([
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
    ['TARGETSTAGE', targetStage],
  ]);
}
