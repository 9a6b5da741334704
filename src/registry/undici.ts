// The parts of undici hoist uses for HTTP, loaded on their own: undici's index loads fetch, WebSocket, EventSource,
// cookies, mocks and cache stores as well (60 ms of every `hoist` start, in the bundle). What ADD <url> needs
// (fetch) comes from the index, loaded when an ADD downloads.
import type * as Undici from 'undici';
import agent from 'undici/lib/dispatcher/agent.js';
import client from 'undici/lib/dispatcher/client.js';
import dispatcher from 'undici/lib/dispatcher/dispatcher.js';
import envHttpProxyAgent from 'undici/lib/dispatcher/env-http-proxy-agent.js';
import api from 'undici/lib/api/index.js';

// The request methods on every dispatcher, as undici's index puts them there (the same functions).
Object.assign((dispatcher as { prototype: object }).prototype, api);

export type { Dispatcher } from 'undici';
export const Agent = agent as typeof Undici.Agent;
export const Client = client as typeof Undici.Client;
export type Client = Undici.Client;
export const EnvHttpProxyAgent = envHttpProxyAgent as typeof Undici.EnvHttpProxyAgent;

export type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  method?: Undici.Dispatcher.HttpMethod;
  dispatcher: Undici.Dispatcher;
};

/** undici's request(url, options), always through the dispatcher given. */
export function request(url: string | URL, options: RequestOptions): Promise<Undici.Dispatcher.ResponseData> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const { dispatcher: through, ...rest } = options;
  return through.request({
    ...rest,
    origin: u.origin,
    path: `${u.pathname}${u.search}`,
    method: options.method ?? 'GET',
  });
}
