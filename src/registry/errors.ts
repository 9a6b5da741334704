// Typed registry errors. They carry the registry's own error code (distribution-spec "Error Codes") and a
// message a person can act on. Nothing here ever holds a credential: requests are described by method and
// URL path only.

export interface RegistryErrorDetail {
  code: string;
  message?: string;
  detail?: unknown;
}

export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  readonly status: number;
  /** the first error code of the registry's JSON body (`MANIFEST_UNKNOWN`, `DENIED`, …), or '' */
  readonly code: string;
  readonly errors: RegistryErrorDetail[];
  readonly registry: string;
  constructor(options: {
    status: number;
    errors?: RegistryErrorDetail[];
    registry: string;
    what: string;
    hint?: string;
  }) {
    const errors = options.errors ?? [];
    const code = errors[0]?.code ?? '';
    const said = errors.map((e) => [e.code, e.message].filter(Boolean).join(': ') + detailText(e.detail)).join('; ');
    const hint = options.hint ?? hintFor(options.status, code, options.registry);
    super(`${options.what}: ${options.status}${said ? ` ${said}` : ''}${hint ? ` (${hint})` : ''}`);
    this.status = options.status;
    this.code = code;
    this.errors = errors;
    this.registry = options.registry;
  }
}

/**
 * The digest a registry's error detail names (distribution names there the blob a manifest names that it lacks);
 * any other detail is left out: a registry's words are not quoted into a log beyond their message.
 */
function detailText(detail: unknown): string {
  return typeof detail === 'string' && /^sha(256|512):[0-9a-f]{64,128}$/.test(detail) ? ` (${detail})` : '';
}

/** A connection-level failure (refused, reset, TLS) after the retries ran out. */
export class RegistryConnectionError extends Error {
  override readonly name = 'RegistryConnectionError';
  constructor(
    readonly registry: string,
    what: string,
    override readonly cause: unknown,
  ) {
    super(`${what}: cannot reach ${registry}${proxyNote(registry)}: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/** Where a connection went: through the environment's proxy, unless NO_PROXY or loopback kept it direct. */
function proxyNote(registry: string): string {
  const host = registry
    .replace(/:\d+$/, '')
    .replace(/^\[|\]$/g, '')
    .toLowerCase();
  const proxy = process.env.https_proxy || process.env.HTTPS_PROXY || process.env.http_proxy || process.env.HTTP_PROXY;
  if (!proxy || ['localhost', '127.0.0.1', '::1'].includes(host)) return '';
  const no = (process.env.no_proxy ?? process.env.NO_PROXY ?? '').split(/[,\s]+/).filter(Boolean);
  if (
    no.some(
      (n) => n === '*' || host === n.replace(/^\.|:\d+$/g, '') || host.endsWith(`.${n.replace(/^\.|:\d+$/g, '')}`),
    )
  )
    return '';
  let shown = proxy;
  try {
    const u = new URL(proxy);
    u.username = '';
    u.password = '';
    shown = u.toString().replace(/\/$/, '');
  } catch {}
  return ` through the proxy ${shown} (HTTPS_PROXY/HTTP_PROXY; NO_PROXY to go around it)`;
}

function hintFor(status: number, code: string, registry: string): string | undefined {
  if (code === 'DENIED' || status === 403) {
    return registry === 'ghcr.io'
      ? 'denied: check the token has packages:write and that the package grants this repository access'
      : 'denied: the credentials lack permission for this repository';
  }
  if (status === 401 || code === 'UNAUTHORIZED')
    return `authentication required: run "hoist login ${registry}" or pass a username and password`;
  if (code === 'NAME_UNKNOWN')
    return 'the repository does not exist in this registry; some registries (ECR) need it created before a push';
  if (code === 'MANIFEST_UNKNOWN' || code === 'BLOB_UNKNOWN' || status === 404)
    return 'not found: check the name, tag and digest';
  if (code === 'TOOMANYREQUESTS' || status === 429) return 'rate limited: authenticate, or wait and retry';
  if (code === 'MANIFEST_BLOB_UNKNOWN') return 'the registry lacks a blob the manifest refers to';
  return undefined;
}

/** Reads a registry error body (JSON `{"errors":[…]}` or anything else) without failing. */
export function parseErrorBody(text: string): RegistryErrorDetail[] {
  try {
    const v = JSON.parse(text) as { errors?: unknown; details?: unknown };
    if (Array.isArray(v.errors)) {
      return v.errors
        .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
        .slice(0, 10)
        .map((e) => ({
          code: String(e.code ?? '').slice(0, 100),
          message: typeof e.message === 'string' ? e.message.slice(0, 500) : undefined,
          detail: e.detail,
        }));
    }
  } catch {
    // not JSON
  }
  const t = text.trim().slice(0, 200);
  return t ? [{ code: '', message: t }] : [];
}
