// Annotations on the image's manifests and index, as `docker buildx build --annotation` takes them
// (moby/buildkit docs/annotations.md): `[TYPE[,TYPE…][[PLATFORM]]:]KEY=VALUE`, TYPE one of manifest (the default),
// manifest-descriptor (the index's descriptor of each manifest), index (the index itself) and index-descriptor (an
// OCI layout's descriptor of the index); a platform limits a manifest or manifest-descriptor annotation to that
// platform's image. What an output has no place for is left out, as BuildKit leaves it out: index and
// manifest-descriptor annotations without an index (one platform), index-descriptor ones outside an OCI layout.
import { type Platform, parsePlatform, samePlatform } from './platform.js';

export const annotationTypes = ['manifest', 'manifest-descriptor', 'index', 'index-descriptor'] as const;
export type AnnotationType = (typeof annotationTypes)[number];

export interface Annotation {
  types: AnnotationType[];
  platform?: Platform;
  key: string;
  value: string;
}

export class AnnotationError extends Error {
  override readonly name = 'AnnotationError';
}

export function parseAnnotation(text: string): Annotation {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new AnnotationError(`annotation ${JSON.stringify(text)}: expected [TYPE[[PLATFORM]]:]KEY=VALUE`);
  const head = text.slice(0, eq);
  const value = text.slice(eq + 1);
  const m = /^(?:([a-z,-]+)(?:\[([^\]]+)\])?:)?([^:\s][^\s]*)$/.exec(head);
  if (!m)
    throw new AnnotationError(
      `annotation ${JSON.stringify(text)}: expected [TYPE[[PLATFORM]]:]KEY=VALUE, TYPE one of ${annotationTypes.join(', ')}`,
    );
  const types = (m[1] ?? 'manifest').split(',');
  for (const t of types)
    if (!(annotationTypes as readonly string[]).includes(t))
      throw new AnnotationError(
        `annotation ${JSON.stringify(text)}: unknown type ${JSON.stringify(t)} (${annotationTypes.join(', ')})`,
      );
  let platform: Platform | undefined;
  if (m[2] !== undefined) {
    try {
      platform = parsePlatform(m[2]);
    } catch (e) {
      throw new AnnotationError(`annotation ${JSON.stringify(text)}: ${(e as Error).message}`);
    }
  }
  return { types: types as AnnotationType[], ...(platform ? { platform } : {}), key: m[3], value };
}

/** The annotations of one type for the image of `platform` (those limited to another platform left out). */
export function annotationsFor(
  all: readonly Annotation[],
  type: AnnotationType,
  platform?: Platform,
): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const a of all) {
    if (!a.types.includes(type)) continue;
    if (a.platform && (!platform || !samePlatform(a.platform, platform))) continue;
    out[a.key] = a.value;
  }
  return Object.keys(out).length ? out : undefined;
}
