// An SBOM of the image as an SPDX 2.3 document (BuildKit attaches one with --sbom, made by its syft scanner): the
// packages the image's package databases list — dpkg's status file and distroless status.d entries (Debian, Ubuntu),
// apk's installed database (Alpine) — each with its version, architecture and a purl (pkg:deb/…, pkg:apk/…). What it
// does not cover, and says in the document's comment: rpm databases (Fedora, RHEL: a SQLite or Berkeley DB file),
// language packages (npm, pip, Go modules…) and files no package manager installed.
import { randomUUID } from 'node:crypto';

export interface SbomPackage {
  type: 'deb' | 'apk';
  name: string;
  version: string;
  arch?: string;
  source?: string;
  license?: string;
}

/** How many packages an SBOM lists at most: real images have a few thousand; an image's database is its own to write. */
export const maxSbomPackages = 50_000;

/**
 * Stanzas of a Debian control-style file (blank-line separated `Key: value`, continuation lines kept with the key),
 * only the `keys` asked for kept, read line by line without splitting the whole text; `visit` answering false stops.
 */
function eachStanza(text: string, keys: ReadonlySet<string>, visit: (s: Map<string, string>) => boolean): void {
  let cur = new Map<string, string>();
  let last = '';
  let seen = false;
  for (let at = 0; at <= text.length; ) {
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    const line = text.slice(at, end);
    at = end + 1;
    if (line.trim() === '') {
      if (seen && !visit(cur)) return;
      cur = new Map();
      seen = false;
      last = '';
      if (end === text.length) break;
      continue;
    }
    seen = true;
    if (/^\s/.test(line)) {
      if (last && keys.has(last)) cur.set(last, `${cur.get(last)}\n${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim();
    if (keys.has(last)) cur.set(last, line.slice(colon + 1).trim());
  }
  if (seen) visit(cur);
}

const dpkgKeys = new Set(['Package', 'Version', 'Status', 'Source', 'Architecture']);

/** dpkg's status (or a status.d entry): the packages installed (Status ending in `installed`), at most `limit` of them. */
export function parseDpkgStatus(text: string, limit = maxSbomPackages): SbomPackage[] {
  const out: SbomPackage[] = [];
  if (limit <= 0) return out;
  eachStanza(text, dpkgKeys, (s) => {
    const name = s.get('Package');
    const version = s.get('Version');
    const status = s.get('Status');
    if (!name || !version || (status !== undefined && !/\binstalled$/.test(status))) return true;
    const source = s.get('Source')?.split(' ')[0];
    out.push({
      type: 'deb' as const,
      name,
      version,
      ...(s.get('Architecture') ? { arch: s.get('Architecture') } : {}),
      ...(source ? { source } : {}),
    });
    return out.length < limit;
  });
  return out;
}

const apkKeys = new Set(['P', 'V', 'A', 'L', 'o']);

/** apk's installed database: records of `X:value` lines (P name, V version, A arch, L license, o origin), at most `limit`. */
export function parseApkInstalled(text: string, limit = maxSbomPackages): SbomPackage[] {
  const out: SbomPackage[] = [];
  if (limit <= 0) return out;
  eachStanza(text, apkKeys, (f) => {
    const name = f.get('P');
    const version = f.get('V');
    if (!name || !version) return true;
    out.push({
      type: 'apk' as const,
      name,
      version,
      ...(f.get('A') ? { arch: f.get('A') } : {}),
      ...(f.get('L') ? { license: f.get('L') } : {}),
      ...(f.get('o') ? { source: f.get('o') } : {}),
    });
    return out.length < limit;
  });
  return out;
}

/** /etc/os-release's ID and VERSION_ID. */
export function osRelease(text: string | undefined): { id?: string; versionId?: string } {
  const get = (k: string) => new RegExp(`^${k}=("?)([^"\\n]*)\\1$`, 'm').exec(text ?? '')?.[2];
  return { ...(get('ID') ? { id: get('ID') } : {}), ...(get('VERSION_ID') ? { versionId: get('VERSION_ID') } : {}) };
}

function purl(p: SbomPackage, os: { id?: string; versionId?: string }): string {
  const ns = p.type === 'deb' ? (os.id ?? 'debian') : (os.id ?? 'alpine');
  const q = new URLSearchParams();
  if (p.arch) q.set('arch', p.arch);
  if (p.source && p.source !== p.name) q.set(p.type === 'deb' ? 'upstream' : 'origin', p.source);
  if (os.id) q.set('distro', `${os.id}-${os.versionId ?? ''}`.replace(/-$/, ''));
  return `pkg:${p.type}/${encodeURIComponent(ns)}/${encodeURIComponent(p.name)}@${encodeURIComponent(p.version)}${q.size ? `?${q.toString()}` : ''}`;
}

/** The SPDX 2.3 document of these packages; `name` names the image, `notes` what the document does not cover. */
export function spdxDocument(
  packages: readonly SbomPackage[],
  o: { name: string; created: Date; os: { id?: string; versionId?: string }; notes: readonly string[] },
): object {
  const ids = packages.map((p, i) => `SPDXRef-Package-${p.type}-${p.name.replace(/[^A-Za-z0-9.-]/g, '-')}-${i}`);
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: o.name,
    documentNamespace: `https://hoist.invalid/spdx/${encodeURIComponent(o.name)}-${randomUUID()}`,
    creationInfo: { created: o.created.toISOString().replace(/\.\d{3}Z$/, 'Z'), creators: ['Tool: hoist'] },
    comment: `Packages listed by the image's package databases (dpkg, apk). Not covered: ${['rpm databases', 'language packages (npm, pip, Go modules, …)', 'files no package manager installed', ...o.notes].join('; ')}.`,
    packages: packages.map((p, i) => ({
      name: p.name,
      SPDXID: ids[i],
      versionInfo: p.version,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: p.license ?? 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      ...(p.source && p.source !== p.name ? { sourceInfo: `built from source package ${p.source}` } : {}),
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl(p, o.os) }],
    })),
    relationships: ids.map((id) => ({
      spdxElementId: 'SPDXRef-DOCUMENT',
      relationshipType: 'DESCRIBES',
      relatedSpdxElement: id,
    })),
  };
}

export class SbomError extends Error {
  override readonly name = 'SbomError';
}

/**
 * An --sbom setting as buildx takes it: empty, false, 0 or disabled=true is none; true, 1 or type=sbom[,disabled=false]
 * asks for one. generator= (BuildKit's scanner image) is refused: hoist reads the package databases itself.
 */
export function parseSbom(text: string): boolean {
  const t = text.trim();
  if (t === '' || /^(false|0)$/i.test(t)) return false;
  if (/^(true|1)$/i.test(t)) return true;
  let on = true;
  for (const field of t.split(',')) {
    const [k, v = ''] = field.split('=').map((x) => x.trim());
    if (k === 'type' && v === 'sbom') continue;
    if (k === 'disabled' && /^(true|false)$/i.test(v)) on = !/^true$/i.test(v);
    else if (k === 'generator')
      throw new SbomError(
        `sbom ${JSON.stringify(text)}: generator= names BuildKit's scanner image; hoist reads the image's package databases itself: give sbom: true`,
      );
    else throw new SbomError(`sbom ${JSON.stringify(text)}: ${JSON.stringify(field)} is not disabled=true|false`);
  }
  return on;
}
