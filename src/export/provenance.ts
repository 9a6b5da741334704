// SLSA provenance (and SBOM: export/sbom.ts) attestations, as BuildKit attaches them to a pushed image (moby/buildkit docs/attestations:
// attestation-storage.md, slsa-definitions.md): the image becomes an OCI index holding each platform's image (its
// manifest in OCI media types) and, after them, one attestation manifest per platform (platform unknown/unknown,
// annotated vnd.docker.reference.type=attestation-manifest and vnd.docker.reference.digest=<the image's manifest>),
// whose one layer is an in-toto statement (application/vnd.in-toto+json) with a SLSA v0.2 provenance predicate:
// builder id, buildType hoist's own (hoistBuildType: the steps and parameters are hoist's, not BuildKit's LLB), the images read as materials (purls with digests), the
// invocation (the Dockerfile, frontend dockerfile.v0, args: target, and with mode=max the build args and labels, the
// secrets' and ssh ids — never a value), the build machine's platform, the times, completeness and hermeticity.
// What differs from BuildKit: mode=max's buildConfig holds hoist's steps (instruction, stage, line), not BuildKit's
// LLB definition, and ADD <url> downloads are not among the materials.
import type { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { parseDigest } from '../image/digest.js';
import {
  type Descriptor,
  type ImageManifest,
  inFamily,
  manifestBytes,
  parseManifest,
  type ParsedManifest,
} from '../image/manifest.js';
import { MediaType } from '../image/media-types.js';
import { formatPlatform, type Platform } from '../image/platform.js';
import { parseReference } from '../image/reference.js';
import type { ImageSource } from '../image/source.js';
import type { Store } from '../store/store.js';
import { parseSbom } from './sbom.js';

export interface ProvenanceOptions {
  mode: 'min' | 'max';
  /** builder.id: the build's URL (build-push-action gives the workflow run's) */
  builderId?: string;
}

export class ProvenanceError extends Error {
  override readonly name = 'ProvenanceError';
}

/**
 * A provenance setting as buildx and build-push-action take it: empty, `false`, `0` or `disabled=true` is none;
 * `true`/`1` is mode=min; else `mode=min|max`, `builder-id=URL`, `disabled=true|false`, comma-separated.
 */
export function parseProvenance(text: string): ProvenanceOptions | undefined {
  const t = text.trim();
  if (t === '' || /^(false|0)$/i.test(t)) return undefined;
  if (/^(true|1)$/i.test(t)) return { mode: 'min' };
  const o: ProvenanceOptions = { mode: 'min' };
  for (const field of t.split(',')) {
    const eq = field.indexOf('=');
    const k = (eq < 0 ? field : field.slice(0, eq)).trim();
    const v = eq < 0 ? '' : field.slice(eq + 1).trim();
    if (k === 'type' && v === 'provenance') continue;
    if (k === 'mode' && (v === 'min' || v === 'max')) o.mode = v;
    else if (k === 'builder-id' && v) o.builderId = v;
    else if (k === 'disabled' && /^(true|false)$/i.test(v)) {
      if (/^true$/i.test(v)) return undefined;
    } else if (k === 'inline-only' || k === 'version' || k === 'reproducible') continue;
    else
      throw new ProvenanceError(
        `provenance ${JSON.stringify(text)}: ${JSON.stringify(field)} is not mode=min|max, builder-id=URL or disabled=true|false`,
      );
  }
  return o;
}

/**
 * What provenance/sbom settings and attest items ask for, as buildx reads --provenance, --sbom and --attest: the
 * settings win over an attest item of their type; an attest item of another type is refused (`where` names what to
 * fix in the error: the input or the flag).
 */
export function requestedAttestations(
  given: { provenance: string; sbom: string; attests: readonly string[] },
  where: { provenance: string; sbom: string; attests: string },
): { provenance?: ProvenanceOptions; sbom: boolean } {
  const typeOf = (a: string) => /(?:^|,)\s*type=([a-z-]+)\s*(?:,|$)/.exec(a)?.[1];
  for (const a of given.attests) {
    if (typeOf(a) === 'provenance' || typeOf(a) === 'sbom' || /(?:^|,)\s*disabled=true\s*(?:,|$)/i.test(a)) continue;
    throw new ProvenanceError(
      `${where.attests}: ${JSON.stringify(a)}: hoist makes type=provenance and type=sbom attestations; leave the others out`,
    );
  }
  const item = (type: string) => given.attests.filter((a) => typeOf(a) === type).at(-1) ?? '';
  const read = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw new ProvenanceError(`${what}: ${(e as Error).message}`);
    }
  };
  const provenance = read(given.provenance ? where.provenance : where.attests, () =>
    parseProvenance(given.provenance || item('provenance')),
  );
  const sbom = read(given.sbom ? where.sbom : where.attests, () => parseSbom(given.sbom || item('sbom')));
  return { ...(provenance ? { provenance } : {}), sbom };
}

/** A package URL for an image reference as BuildKit writes them (pkg:docker/NAMESPACE/NAME@VERSION?platform=…). */
export function imagePurl(ref: string, platform: string): string {
  const r = parseReference(ref);
  let repo = r.registry === 'docker.io' ? r.repository.replace(/^library\//, '') : `${r.registry}/${r.repository}`;
  repo = repo
    .split('/')
    .map((seg) => encodeURIComponent(seg))
    .join('/');
  const version = r.digest ?? r.tag ?? 'latest';
  return `pkg:docker/${repo}@${encodeURIComponent(version).replace(/%3A/g, ':')}?platform=${encodeURIComponent(platform)}`;
}

/** What a provenance statement says of the build (the same for every platform but its subject). */
export interface BuildFacts {
  /** the Dockerfile's path in the context, as given */
  dockerfile: string;
  target?: string;
  buildArgs: ReadonlyMap<string, string>;
  labels: ReadonlyMap<string, string>;
  secrets: readonly string[];
  ssh: readonly string[];
  /** the images read, as resolved */
  materials: readonly { ref: string; platform: string; digest: string }[];
  /** whether no step could reach the network (no RUN without --network=none) */
  hermetic: boolean;
  steps: readonly { stage: number | string; instruction: string; line: number }[];
  startedOn: Date;
  finishedOn: Date;
  hostPlatform: Platform;
  /** the build's reference (buildx.build.ref's last part): buildInvocationID, shared by every platform */
  invocationID: string;
}

/** An identifier as buildx's identity.NewID makes them: 25 characters of [a-z0-9]. */
export function newBuildID(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(25)].map((b) => alphabet[b % alphabet.length]).join('');
}

/**
 * The build type: hoist's, not BuildKit's (`https://mobyproject.org/buildkit@v1` names BuildKit's LLB solve, which
 * this is not); a URN, since hoist has no page that would describe the type.
 */
export const hoistBuildType = 'urn:hoist:buildtype:dockerfile:v1';

function statement(subjects: { name: string; digest: string }[], facts: BuildFacts, o: ProvenanceOptions): object {
  const args: Record<string, string> = {};
  if (facts.target) args.target = facts.target;
  if (o.mode === 'max') {
    for (const [k, v] of facts.buildArgs) args[`build-arg:${k}`] = v;
    for (const [k, v] of facts.labels) args[`label:${k}`] = v;
  }
  return {
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType: 'https://slsa.dev/provenance/v0.2',
    subject: subjects.map((s) => ({ name: s.name, digest: { sha256: parseDigest(s.digest).hex } })),
    predicate: {
      builder: { id: o.builderId ?? '' },
      buildType: hoistBuildType,
      materials: facts.materials.map((m) => ({
        uri: imagePurl(m.ref, m.platform),
        digest: { sha256: parseDigest(m.digest).hex },
      })),
      invocation: {
        configSource: { entryPoint: facts.dockerfile },
        parameters: {
          frontend: 'dockerfile.v0',
          args,
          locals: [{ name: 'context' }, { name: 'dockerfile' }],
          ...(o.mode === 'max'
            ? { secrets: facts.secrets.map((id) => ({ id, optional: true })), ssh: facts.ssh.map((id) => ({ id })) }
            : {}),
        },
        environment: { platform: formatPlatform(facts.hostPlatform) },
      },
      ...(o.mode === 'max'
        ? {
            buildConfig: {
              'hoist.steps': facts.steps.map((s) => ({ stage: s.stage, instruction: s.instruction, line: s.line })),
            },
          }
        : {}),
      metadata: {
        buildInvocationID: facts.invocationID,
        buildStartedOn: facts.startedOn.toISOString(),
        buildFinishedOn: facts.finishedOn.toISOString(),
        completeness: { parameters: o.mode === 'max', environment: true, materials: false },
        reproducible: false,
        'https://mobyproject.org/buildkit@v1#hermetic': facts.hermetic,
      },
    },
  };
}

/** A manifest of ours whose blobs come from elsewhere: the built image's (its manifest retyped), or the store's. */
class Manifested implements ImageSource {
  constructor(
    readonly root: ParsedManifest,
    private readonly blobs: Pick<ImageSource, 'openBlob' | 'readBlob' | 'originOf'>,
  ) {}
  async manifest(): Promise<ParsedManifest> {
    return this.root;
  }
  openBlob(desc: Descriptor): Promise<Readable> {
    return this.blobs.openBlob(desc);
  }
  readBlob(desc: Descriptor): Promise<Buffer> {
    return this.blobs.readBlob(desc);
  }
  originOf(digest: string) {
    return this.blobs.originOf?.(digest);
  }
}

/** The store's blobs (an attestation's config and statements). */
const storeBlobs = (store: Store): Pick<ImageSource, 'openBlob' | 'readBlob'> => ({
  openBlob: async (desc) => store.openBlob(desc.digest),
  readBlob: (desc) => store.readBlob(desc.digest),
});

async function ociTyped(image: ImageSource, store: Store): Promise<ImageSource> {
  if (image.root.kind !== 'manifest') throw new ProvenanceError('internal: provenance is attached to image manifests');
  const m = image.root.manifest;
  const bytes = manifestBytes(inFamily(m, true));
  await store.writeBlob(bytes);
  return new Manifested(parseManifest(bytes, MediaType.ociManifest), image);
}

export interface Attested {
  /** each platform's image, in OCI media types, and its attestation manifest */
  entries: { image: ImageSource; platform: Platform; attestation: ImageSource }[];
}

/** What to attach: a provenance statement (the build's facts, the mode), an SBOM document per platform. */
export interface AttestationParts {
  provenance?: { facts: BuildFacts; options: ProvenanceOptions };
  sbom?: (platform: Platform) => object;
}

/**
 * Each platform's image in OCI media types and its attestation manifest (for an OCI index: the images, then the
 * attestations, each described as unknown/unknown with the image it refers to): the SBOM's statement first, then
 * the provenance's, as BuildKit orders them.
 */
export async function attestImages(
  images: readonly { image: ImageSource; platform: Platform }[],
  names: readonly string[],
  parts: AttestationParts,
  store: Store,
): Promise<Attested> {
  const entries: Attested['entries'] = [];
  for (const { image, platform } of images) {
    const typed = await ociTyped(image, store);
    const p = formatPlatform(platform);
    const subjects = (names.length ? names.map((n) => imagePurl(n, p)) : ['_']).map((name) => ({
      name,
      digest: typed.root.digest,
    }));
    const statements: { predicateType: string; body: object }[] = [];
    if (parts.sbom) {
      statements.push({
        predicateType: 'https://spdx.dev/Document',
        body: {
          _type: 'https://in-toto.io/Statement/v0.1',
          predicateType: 'https://spdx.dev/Document',
          subject: subjects.map((s) => ({ name: s.name, digest: { sha256: parseDigest(s.digest).hex } })),
          predicate: parts.sbom(platform),
        },
      });
    }
    if (parts.provenance) {
      const { facts, options } = parts.provenance;
      statements.push({
        predicateType: 'https://slsa.dev/provenance/v0.2',
        body: statement(
          subjects,
          {
            ...facts,
            materials: facts.materials.filter(
              (m) => m.platform === p || facts.materials.every((x) => x.platform !== p),
            ),
          },
          options,
        ),
      });
    }
    const layers: Descriptor[] = [];
    for (const st of statements) {
      const written = await store.writeBlob(Buffer.from(JSON.stringify(st.body)));
      layers.push({
        mediaType: 'application/vnd.in-toto+json',
        digest: written.digest,
        size: written.size,
        annotations: { 'in-toto.io/predicate-type': st.predicateType },
      });
    }
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'unknown',
        os: 'unknown',
        config: {},
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      }),
    );
    const cfg = await store.writeBlob(config);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: cfg.digest, size: cfg.size },
      layers,
    };
    const bytes = manifestBytes(manifest);
    await store.writeBlob(bytes);
    entries.push({
      image: typed,
      platform,
      attestation: new Manifested(parseManifest(bytes, MediaType.ociManifest), storeBlobs(store)),
    });
  }
  return { entries };
}
