// Image references with Docker's grammar and normalisation (distribution/reference v0.6: ParseNormalizedNamed):
//   reference := name [":" tag] ["@" digest],  name := [domain "/"] path-component ("/" path-component)*
// `ubuntu` is docker.io/library/ubuntu:latest; the first component is a registry only when it is `localhost` or
// holds a `.`, a `:` or an upper-case letter. See shared/research/registry.md §3.
import { parseDigest } from './digest.js';

export class ImageReferenceError extends Error {
  override readonly name = 'ImageReferenceError';
  constructor(
    readonly reference: string,
    reason: string,
  ) {
    super(`invalid reference ${JSON.stringify(reference)}: ${reason}`);
  }
}

export const defaultRegistry = 'docker.io';
export const defaultTag = 'latest';

const pathComponent = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const pathRe = new RegExp(`^${pathComponent}(?:/${pathComponent})*$`);
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainRe = new RegExp(`^(?:${domainComponent}(?:\\.${domainComponent})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const tagRe = /^[\w][\w.-]{0,127}$/;
const anyCaseRe = new RegExp(
  `^${pathComponent.replace(/a-z/g, 'a-zA-Z')}(?:/${pathComponent.replace(/a-z/g, 'a-zA-Z')})*$`,
);
const nameMax = 255;

/** A parsed, normalised reference. `tag` is absent when only a digest was given. */
export interface Reference {
  /** the registry host[:port] as written in references (`docker.io`, `ghcr.io`, `127.0.0.1:5000`) */
  registry: string;
  /** the repository path inside the registry (`library/ubuntu`) */
  repository: string;
  tag?: string;
  digest?: string;
}

/** A repository in a registry: where blobs live, what a push mounts from. */
export type Repository = Pick<Reference, 'registry' | 'repository'>;

export function formatRepository(r: Repository): string {
  return `${r.registry}/${r.repository}`;
}

function splitDomain(name: string): [string, string] {
  const slash = name.indexOf('/');
  if (slash < 0) return [defaultRegistry, name];
  const first = name.slice(0, slash);
  if (first !== 'localhost' && !/[.:A-Z]/.test(first)) return [defaultRegistry, name];
  return [first === 'index.docker.io' ? defaultRegistry : first, name.slice(slash + 1)];
}

/**
 * Parses a reference as `docker pull` does. With `defaultToLatest` (the default) a reference without tag or
 * digest gets the tag `latest`.
 */
export function parseReference(text: string, options: { defaultToLatest?: boolean } = {}): Reference {
  if (text === '') throw new ImageReferenceError(text, 'it is empty');
  if (/^[a-f0-9]{64}$/.test(text)) {
    throw new ImageReferenceError(
      text,
      'a 64-character hexadecimal string is an image ID, not a name; use sha256:… or a repository name',
    );
  }
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    try {
      digest = parseDigest(d).text;
    } catch (e) {
      throw new ImageReferenceError(text, (e as Error).message);
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagRe.test(tag)) {
      throw new ImageReferenceError(
        text,
        `the tag ${JSON.stringify(tag)} may hold only letters, digits, '_', '.' and '-', must not start with '.' or '-' and is at most 128 characters`,
      );
    }
  }
  const [registry, repository] = splitDomain(rest);
  if (registry !== defaultRegistry && !domainRe.test(registry)) {
    throw new ImageReferenceError(text, `${JSON.stringify(registry)} is not a valid registry host[:port]`);
  }
  if (!pathRe.test(repository)) {
    if (anyCaseRe.test(repository)) throw new ImageReferenceError(text, 'repository name must be lowercase');
    throw new ImageReferenceError(
      text,
      'the repository name may hold only lower-case letters, digits and the separators ".", "_", "__" and "-", in "/"-separated parts',
    );
  }
  if (repository.length > nameMax)
    throw new ImageReferenceError(text, `the repository name is longer than ${nameMax} characters`);
  const normalizedRepository =
    registry === defaultRegistry && !repository.includes('/') ? `library/${repository}` : repository;
  const ref: Reference = { registry, repository: normalizedRepository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  if (tag === undefined && digest === undefined && options.defaultToLatest !== false) ref.tag = defaultTag;
  return ref;
}

/** `registry/repository` */
export function repositoryName(ref: Pick<Reference, 'registry' | 'repository'>): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The full normalised form: `docker.io/library/ubuntu:latest`, `ghcr.io/o/r@sha256:…`. */
export function formatReference(ref: Reference): string {
  return (
    repositoryName(ref) +
    (ref.tag !== undefined ? `:${ref.tag}` : '') +
    (ref.digest !== undefined ? `@${ref.digest}` : '')
  );
}

/** The short form people type and `docker images` shows: `ubuntu:latest`, `user/app:1`, `ghcr.io/o/r:1`. */
export function familiarName(ref: Pick<Reference, 'registry' | 'repository'>): string {
  if (ref.registry !== defaultRegistry) return repositoryName(ref);
  return ref.repository.startsWith('library/') && ref.repository.split('/').length === 2
    ? ref.repository.slice(8)
    : ref.repository;
}

export function familiarReference(ref: Reference): string {
  return (
    familiarName(ref) +
    (ref.tag !== undefined ? `:${ref.tag}` : '') +
    (ref.digest !== undefined ? `@${ref.digest}` : '')
  );
}

/** The same repository with another tag or digest. */
export function withTag(ref: Reference, tag: string): Reference {
  return { registry: ref.registry, repository: ref.repository, tag };
}

export function withDigest(ref: Reference, digest: string): Reference {
  return { registry: ref.registry, repository: ref.repository, digest };
}

/** What to ask the registry for: the digest when there is one (it wins over the tag, as in ParseDockerRef), else the tag. */
export function referenceTarget(ref: Reference): string {
  return ref.digest ?? ref.tag ?? defaultTag;
}
