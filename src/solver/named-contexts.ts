// --build-context NAME=VALUE (docker buildx build's flag, build-push-action's build-contexts): what FROM NAME,
// COPY --from=NAME and RUN --mount from=NAME read instead of an image or stage of that name. A value is an image
// (docker-image://REF) or a local directory (a path, relative to the working directory); an OCI layout, a Git or
// HTTP URL and bake's target: are refused, saying what to give instead.
import { statSync } from 'node:fs';
import path from 'node:path';
import { type NamedContext, namedContextKey } from '../dockerfile/plan.js';

export class NamedContextError extends Error {
  override readonly name = 'NamedContextError';
}

export function parseBuildContext(text: string, cwd: string = process.cwd()): [string, NamedContext] {
  const eq = text.indexOf('=');
  if (eq <= 0 || eq === text.length - 1)
    throw new NamedContextError(
      `build context ${JSON.stringify(text)}: expected NAME=VALUE (docker-image://REF or a directory)`,
    );
  const name = namedContextKey(text.slice(0, eq));
  const value = text.slice(eq + 1).trim();
  if (value.startsWith('docker-image://')) {
    const ref = value.slice('docker-image://'.length);
    if (!ref) throw new NamedContextError(`build context ${name}: docker-image:// needs an image reference`);
    return [name, { kind: 'image', ref }];
  }
  if (value.startsWith('oci-layout://'))
    throw new NamedContextError(
      `build context ${name}: oci-layout:// is not supported yet; push the image to a registry (or hoist load it) and give docker-image://REF`,
    );
  if (/^(https?|git|ssh):\/\//.test(value) || /^git@/.test(value))
    throw new NamedContextError(
      `build context ${name}: a Git or HTTP URL is not supported; check it out and give its directory`,
    );
  if (value.startsWith('target:'))
    throw new NamedContextError(`build context ${name}: target: is bake's; name the stage in the Dockerfile instead`);
  const dir = path.resolve(cwd, value);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {}
  if (!isDir)
    throw new NamedContextError(
      `build context ${name}: ${value} is not a directory (give a directory, or docker-image://REF for an image)`,
    );
  return [name, { kind: 'local', dir }];
}
