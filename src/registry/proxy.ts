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

export function httpDispatcher(options: DispatcherOptions = {}, env: NodeJS.ProcessEnv = process.env): Dispatcher {
  const base = {
    ...(options.connections ? { connections: options.connections } : {}),
    ...(options.keepAliveTimeout ? { keepAliveTimeout: options.keepAliveTimeout } : {}),
    ...(options.insecure ? { connect: { rejectUnauthorized: false } } : {}),
  };
  if (!proxyConfigured(env)) return new Agent(base);
  const noProxy = [env.no_proxy ?? env.NO_PROXY, 'localhost', '127.0.0.1', '[::1]'].filter(Boolean).join(',');
  return new EnvHttpProxyAgent({
    ...base,
    noProxy,
    // undici's option, which its EnvHttpProxyAgent hands to each ProxyAgent
    ...({ proxyTunnel: false } as object),
    ...(options.insecure ? { requestTls: { rejectUnauthorized: false } } : {}),
  });
}
