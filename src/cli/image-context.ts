// What the image commands share: the store and the registry client, built from the common options
// (--store, --insecure-registry, --registry-mirror, --debug) and closed when the command ends.
import { parsePlatform, type Platform } from '../image/platform.js';
import { RegistryClient } from '../registry/client.js';
import { mirrorsFromEnv } from '../registry/transport.js';
import { type CredentialSource, DockerCredentials } from '../registry/credentials.js';
import { defaultStoreDir, Store } from '../store/store.js';
import type { OptionSpec, ParsedArgs } from './argv.js';
import type { CommandIO } from './io.js';

export const commonOptions: Record<string, OptionSpec> = {
  store: { value: true },
  'insecure-registry': { value: true, repeat: true },
  'registry-mirror': { value: true, repeat: true },
  debug: {},
  help: { short: 'h' },
};

export const commonUsage = `Common options:
  --store DIR                 the local store (default: $HOIST_STORE or ~/.cache/hoist)
  --insecure-registry HOST    allow plain HTTP / unverified TLS for HOST (loopback always is)
  --registry-mirror URL       a docker.io mirror tried first for pulls (default: $HOIST_REGISTRY_MIRROR, comma-separated)
  --debug                     print each registry request (never credentials)`;

export interface ImageContext {
  store: Store;
  client: RegistryClient;
}

export function platformOption(a: ParsedArgs): Platform | undefined {
  const p = a.options.get('platform')?.[0];
  return p === undefined ? undefined : parsePlatform(p);
}

export async function withImageContext<T>(
  a: ParsedArgs,
  io: CommandIO,
  task: (ctx: ImageContext) => Promise<T>,
  options: { store?: boolean; credentials?: CredentialSource } = {},
): Promise<T> {
  const client = new RegistryClient({
    credentials: options.credentials ?? new DockerCredentials(),
    insecureRegistries: a.options.get('insecure-registry') ?? [],
    mirrors: a.options.get('registry-mirror') ?? mirrorsFromEnv(),
    debug: a.flags.has('debug') ? (line) => io.err(`debug: ${line}\n`) : undefined,
  });
  const store =
    options.store === false ? undefined : await Store.open(a.options.get('store')?.[0] ?? defaultStoreDir());
  try {
    const result = await task({ store: store as Store, client });
    for (const w of client.warnings()) io.err(`registry warning: ${w}\n`);
    return result;
  } finally {
    await store?.close();
    await client.close();
  }
}
