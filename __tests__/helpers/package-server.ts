// A package source for cache-mount tests: answers every request with a few bytes and counts the requests, so a
// test can tell whether a RUN downloaded again or found its cache mount restored.
import { createServer } from 'node:http';

export interface PackageServer {
  /** http://127.0.0.1:PORT */
  url: string;
  readonly requests: number;
  stop(): Promise<void>;
}

export async function startPackageServer(): Promise<PackageServer> {
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    res.end('package bytes\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    get requests() {
      return requests;
    },
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
