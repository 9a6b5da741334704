// Pushing an image from any source to registry repositories: for every manifest, its blobs first (skipped when
// present, mounted when the source is another repository of the same registry, else streamed), then the child
// manifests by digest, and the root manifest or index under each tag (or only by digest) last. Nothing is
// tagged until everything it refers to is there.
import type { Descriptor, ParsedManifest } from '../image/manifest.js';
import { familiarReference, type Reference } from '../image/reference.js';
import type { ImageSource } from '../image/source.js';
import type { BlobPushResult, Repo, RegistryClient } from '../registry/client.js';
import { settleAll } from '../registry/limit.js';
import { RegistryError } from '../registry/errors.js';

export interface PushReport {
  /** the root manifest or index digest */
  digest: string;
  mediaType: string;
  size: number;
  /** every reference written, `name:tag` and `name@digest` */
  references: string[];
  blobs: Record<BlobPushResult, number>;
  /** bytes sent in uploads */
  uploadedBytes: number;
  /** manifests put again after the registry said it lacked a blob they name (its own race) */
  putAgain?: number;
}

export interface PushOptions {
  /** progress lines */
  log?: (line: string) => void;
}

function sameRepo(a: Repo, b: Repo): boolean {
  return a.registry === b.registry && a.repository === b.repository;
}

/** The manifests below a root, each once, children before parents. */
async function manifestsOf(source: ImageSource, root: ParsedManifest): Promise<ParsedManifest[]> {
  if (root.kind === 'manifest') return [root];
  const out: ParsedManifest[] = [];
  for (const d of root.index.manifests) {
    const child = await source.manifest(d);
    out.push(...(await manifestsOf(source, child)));
  }
  out.push(root);
  return out;
}

/**
 * Pushes `source` to every destination (same or different registries). Tags of a destination are written only
 * after all of its blobs and child manifests are in place.
 */
export async function pushImage(
  client: RegistryClient,
  source: ImageSource,
  destinations: readonly Reference[],
  options: PushOptions = {},
): Promise<PushReport> {
  const root = source.root;
  const manifests = await manifestsOf(source, root);
  const report: PushReport = {
    digest: root.digest,
    mediaType: root.mediaType,
    size: root.bytes.length,
    references: [],
    blobs: { exists: 0, mounted: 0, uploaded: 0 },
    uploadedBytes: 0,
  };
  const byRepo = new Map<string, Reference[]>();
  for (const d of destinations) {
    const k = `${d.registry}/${d.repository}`;
    byRepo.set(k, [...(byRepo.get(k) ?? []), d]);
  }
  for (const refs of byRepo.values()) {
    const repo: Repo = refs[0];
    const blobs = new Map<string, Descriptor>();
    for (const m of manifests) {
      if (m.kind !== 'manifest') continue;
      for (const d of [m.manifest.config, ...m.manifest.layers]) {
        if (d.urls?.length && d.mediaType.includes('foreign')) continue; // foreign layers stay where their urls say
        blobs.set(d.digest, d);
      }
    }
    const pushBlobs = (again = false) =>
      settleAll(
        [...blobs.values()].map(async (d) => {
          const origin = source.originOf?.(d.digest) ?? source.origin;
          const mountFrom = origin && !sameRepo(origin, repo) ? [origin] : [];
          const result = await client.pushBlob(repo, d, () => source.openBlob(d), mountFrom);
          if (again && result === 'exists') return;
          report.blobs[result]++;
          if (result === 'uploaded') report.uploadedBytes += d.size;
          options.log?.(`${d.digest.slice(7, 19)}: ${result === 'exists' ? 'already there' : result}`);
        }),
      );
    await pushBlobs();
    // A registry may not see a blob it has just taken (distribution's filesystem driver rewrites a repository's link
    // to a blob in place, so a manifest put while another push of the same blob commits finds it empty; an
    // eventually consistent backend): the manifest is refused with MANIFEST_BLOB_UNKNOWN. Then the blobs are made
    // present again (asked for, pushed where missing) and the manifest put once more, twice at most.
    const put = async (target: string, m: ParsedManifest) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await client.putManifest(repo, target, m.bytes, m.mediaType);
        } catch (e) {
          if (
            attempt >= 2 ||
            !(e instanceof RegistryError) ||
            !e.errors.some((x) => x.code === 'MANIFEST_BLOB_UNKNOWN' || x.code === 'BLOB_UNKNOWN')
          )
            throw e;
          options.log?.(
            `${familiarReference({ registry: repo.registry, repository: repo.repository })}: the registry did not find a blob the manifest names; pushing the blobs again`,
          );
          report.putAgain = (report.putAgain ?? 0) + 1;
          await new Promise((r) => setTimeout(r, 250 * (attempt + 1)));
          await pushBlobs(true);
        }
      }
    };
    for (const m of manifests) if (m !== root) await put(m.digest, m);
    const tagged = refs.filter((r) => r.tag !== undefined);
    if (tagged.length === 0) {
      await put(root.digest, root);
      report.references.push(familiarReference({ ...repo, digest: root.digest }));
    }
    for (const r of tagged) {
      await put(r.tag as string, root);
      report.references.push(familiarReference({ ...repo, tag: r.tag }));
    }
  }
  return report;
}
