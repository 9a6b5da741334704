// `--load` / `type=docker` without dest: the image goes straight into a running Docker daemon, as `docker load`
// sends it — a `hoist save` tar streamed to POST /images/load over DOCKER_HOST (unix socket by default, or tcp).
import { PassThrough } from 'node:stream';
import { Client } from '../registry/undici.js';
import type { Reference } from '../image/reference.js';
import type { ImageSource } from '../image/source.js';
import { saveImages } from './archive.js';

export class DockerLoadError extends Error {
  override readonly name = 'DockerLoadError';
}

function daemonClient(dockerHost: string): Client {
  if (dockerHost.startsWith('unix://')) return new Client('http://localhost', { socketPath: dockerHost.slice(7) });
  if (dockerHost.startsWith('tcp://')) return new Client(`http://${dockerHost.slice(6)}`);
  if (dockerHost.startsWith('http://') || dockerHost.startsWith('https://')) return new Client(dockerHost);
  throw new DockerLoadError(`DOCKER_HOST=${dockerHost}: only unix://, tcp:// and http(s):// are supported`);
}

/** Loads the image into the daemon; returns what it said ("Loaded image: …" lines). */
export async function loadIntoDocker(
  image: ImageSource,
  refs: Reference[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<string[]> {
  const host = env.DOCKER_HOST || 'unix:///var/run/docker.sock';
  const client = daemonClient(host);
  try {
    const body = new PassThrough();
    const saving = saveImages([{ source: image, refs }], body);
    let res: Awaited<ReturnType<Client['request']>>;
    try {
      res = await client.request({
        method: 'POST',
        path: '/images/load?quiet=1',
        headers: { 'content-type': 'application/x-tar' },
        body,
      });
    } catch (e) {
      body.destroy();
      await saving.catch(() => undefined);
      const code = (e as NodeJS.ErrnoException).code;
      throw new DockerLoadError(
        `cannot reach the Docker daemon at ${host} (${code ?? (e as Error).message}); is it running? Use --output type=docker,dest=FILE to write a file instead`,
      );
    }
    const [text] = await Promise.all([res.body.text(), saving]);
    if (res.statusCode !== 200)
      throw new DockerLoadError(`the Docker daemon refused the image: ${res.statusCode} ${text.trim().slice(0, 300)}`);
    const said: string[] = [];
    for (const line of text.split('\n').filter(Boolean)) {
      const m = JSON.parse(line) as { stream?: string; error?: string; errorDetail?: { message?: string } };
      if (m.error || m.errorDetail) throw new DockerLoadError(`docker load: ${m.errorDetail?.message ?? m.error}`);
      if (m.stream?.trim()) said.push(m.stream.trim());
    }
    return said;
  } finally {
    await client.close();
  }
}
