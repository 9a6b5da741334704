// The HTTP(S) proxy of the environment, for every connection hoist makes (registries, their token servers, ADD
// <url>, the Actions cache probe): HTTPS_PROXY / HTTP_PROXY (either case) and NO_PROXY, as undici's
// EnvHttpProxyAgent reads them, with what docker's Go client and @actions/http-client add: loopback (localhost,
// 127.0.0.1, ::1) is never proxied. Plain-HTTP origins go to the proxy as absolute-URI requests (no CONNECT, which
// proxies often allow to port 443 only); HTTPS ones through a CONNECT tunnel.
import { Agent, type Dispatcher, EnvHttpProxyAgent } from './undici.js';

export interface DispatcherOptions {
  connections?: number;
  keepAliveTimeout?: number;
  /** TLS certificates not checked (an --insecure-registry) */
  insecure?: boolean;
}

/** Whether the environment names a proxy. */
export function proxyConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.https_proxy || env.HTTPS_PROXY || env.http_proxy || env.HTTP_PROXY);
}

export class ProxyError extends Error {
  override readonly name = 'ProxyError';
}

/**
 * A proxy variable's value as a URL: `host:port` means http://host:port, as curl and Go's http package read it;
 * anything else that is not an http(s) URL is an error naming the variable (never its value: it may hold a password).
 */
function proxyURL(name: string, value: string | undefined): string | undefined {
  if (!value) return undefined;
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ProxyError(`${name} is not a proxy URL (expected http://[user:password@]host:port): fix or unset it`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ProxyError(
      `${name} names a ${url.protocol.slice(0, -1)} proxy; only http:// and https:// proxies are supported: fix or unset it`,
    );
  if (!url.hostname)
    throw new ProxyError(`${name} has no host (expected http://[user:password@]host:port): fix or unset it`);
  return url.href;
}

export function httpDispatcher(options: DispatcherOptions = {}, env: NodeJS.ProcessEnv = process.env): Dispatcher {
  const base = {
    ...(options.connections ? { connections: options.connections } : {}),
    ...(options.keepAliveTimeout ? { keepAliveTimeout: options.keepAliveTimeout } : {}),
    ...(options.insecure ? { connect: { rejectUnauthorized: false } } : {}),
  };
  if (!proxyConfigured(env)) return new Agent(base);
  const noProxy = [env.no_proxy ?? env.NO_PROXY, 'localhost', '127.0.0.1', '[::1]'].filter(Boolean).join(',');
  const httpProxy = proxyURL(env.http_proxy ? 'http_proxy' : 'HTTP_PROXY', env.http_proxy || env.HTTP_PROXY);
  const httpsProxy = proxyURL(env.https_proxy ? 'https_proxy' : 'HTTPS_PROXY', env.https_proxy || env.HTTPS_PROXY);
  return new EnvHttpProxyAgent({
    ...base,
    noProxy,
    ...(httpProxy ? { httpProxy } : {}),
    ...(httpsProxy ? { httpsProxy } : {}),
    // undici's option, which its EnvHttpProxyAgent hands to each ProxyAgent
    ...({ proxyTunnel: false } as object),
    ...(options.insecure ? { requestTls: { rejectUnauthorized: false } } : {}),
  });
}
