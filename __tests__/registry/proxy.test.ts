// HTTP_PROXY / HTTPS_PROXY / NO_PROXY, through a real proxy (Debian's tinyproxy) that the test starts: a build whose
// base image, ADD <url> and push all go to an address other than loopback goes through it (its log has every request);
// NO_PROXY naming that address goes around it; loopback never goes through it (as docker's Go client and
// @actions/http-client); a proxy that is not there fails the build clearly and fast.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { httpDispatcher } from '../../src/registry/proxy.js';
import { hoistWithEnv } from '../helpers/hoist.js';
import { pushBusyboxBase } from '../helpers/images.js';
import { freePort, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, run } from '../helpers/tools.js';

/** This machine's first address that is not loopback (the proxy is bypassed for loopback). */
const outward = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
if (!outward) process.stderr.write('NOTICE: no address other than loopback here: the proxy tests are skipped\n');

(outward ? describeWith(['docker-registry', 'tinyproxy', 'busybox', 'skopeo']) : describe.skip)(
  'through an HTTP proxy',
  () => {
    const work = mkdtempSync(path.join(tmpdir(), 'hoist-proxy-'));
    let reg: TestRegistry;
    let proxy: ChildProcess;
    let files: Server;
    let proxyUrl = '';
    let filesUrl = '';
    let remote = '';
    const log = path.join(work, 'proxy.log');
    beforeAll(async () => {
      reg = await startRegistry('anonymous', { listen: '0.0.0.0' });
      await pushBusyboxBase(`${reg.host}/base/busybox:1`, path.join(work, 'seed-store'), work);
      remote = `${outward}:${reg.host.split(':')[1]}`;
      files = createServer((req, res) =>
        req.url === '/f.txt'
          ? res.writeHead(200, { 'last-modified': 'Tue, 01 Dec 2026 10:00:00 GMT' }).end('from afar\n')
          : res.writeHead(404).end(),
      );
      await new Promise<void>((r) => files.listen(0, outward, r));
      filesUrl = `http://${outward}:${(files.address() as { port: number }).port}`;
      const port = await freePort();
      writeFileSync(
        path.join(work, 'tinyproxy.conf'),
        `Port ${port}\nListen 127.0.0.1\nTimeout 30\nLogFile "${log}"\nLogLevel Info\nMaxClients 50\n`,
      );
      proxy = spawn('tinyproxy', ['-d', '-c', path.join(work, 'tinyproxy.conf')], { stdio: 'ignore' });
      proxyUrl = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 50 && !readLog().includes('listening on'); i++) await new Promise((r) => setTimeout(r, 100));
    }, 60_000);
    afterAll(async () => {
      proxy?.kill('SIGTERM');
      files?.close();
      await reg?.stop();
      rmSync(work, { recursive: true, force: true });
    });
    function readLog(): string {
      try {
        return readFileSync(log, 'utf8');
      } catch {
        return '';
      }
    }
    let n = 0;
    function context(): string {
      const dir = path.join(work, `ctx${n++}`);
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'Dockerfile'), `FROM ${remote}/base/busybox:1\nADD ${filesUrl}/f.txt /f.txt\n`);
      return dir;
    }
    const build = (env: Record<string, string>, tag: string) =>
      hoistWithEnv(env, [
        'build',
        '--store',
        path.join(work, `store${n}`),
        '--insecure-registry',
        remote,
        '--progress',
        'plain',
        '-t',
        `${remote}/proxied/app:${tag}`,
        '--push',
        context(),
      ]);

    test('the base image, ADD <url> and the push go through HTTP_PROXY', async () => {
      const before = readLog().length;
      const r = await build({ HTTP_PROXY: proxyUrl }, 'one');
      expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
      const seen = readLog().slice(before);
      expect(seen).toContain(`GET http://${remote}/v2/base/busybox/manifests/1`);
      expect(seen).toContain(`GET ${filesUrl}/f.txt`);
      expect(seen).toMatch(new RegExp(`PUT http://${remote.replace(/\./g, '\\.')}/v2/proxied/app/manifests/one`));
      expect(
        JSON.parse(run('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/proxied/app:one`])).Layers,
      ).toHaveLength(2);
    }, 120_000);

    test('NO_PROXY naming the address goes around the proxy; loopback never goes through it', async () => {
      const before = readLog().length;
      const r = await build({ http_proxy: proxyUrl, no_proxy: `example.com,${outward}` }, 'two');
      expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
      const loop = await hoistWithEnv({ HTTP_PROXY: proxyUrl }, [
        'pull',
        `${reg.host}/proxied/app:two`,
        '--store',
        path.join(work, 'loop-store'),
      ]);
      expect(`${loop.code}\n${loop.err}`).toBe(`0\n${loop.err}`);
      expect(readLog().slice(before)).not.toMatch(/Request \(file descriptor/);
    }, 120_000);

    test('a proxy that is not there fails the build clearly, at once', async () => {
      const started = Date.now();
      const r = await build({ HTTP_PROXY: `http://127.0.0.1:${await freePort()}` }, 'three');
      expect(r.code).toBe(1);
      expect(r.err).toMatch(
        /cannot reach [^ ]+ through the proxy http:\/\/127\.0\.0\.1:\d+ \(HTTPS_PROXY\/HTTP_PROXY; NO_PROXY to go around it\): connect ECONNREFUSED/,
      );
      expect(r.err).not.toMatch(/\n\s+at /);
      expect(Date.now() - started).toBeLessThan(60_000);
    }, 120_000);

    test('a proxy variable that is no proxy URL is a clear error naming it, never its value; host:port is http://host:port', async () => {
      for (const [value, says] of [
        [
          'http://user:s3cret@[bad',
          /^hoist build: HTTPS_PROXY is not a proxy URL \(expected http:\/\/\[user:password@\]host:port\): fix or unset it$/m,
        ],
        [
          'socks5://user:s3cret@127.0.0.1:1080',
          /^hoist build: HTTPS_PROXY names a socks5 proxy; only http:\/\/ and https:\/\/ proxies are supported: fix or unset it$/m,
        ],
      ] as const) {
        const r = await build({ HTTPS_PROXY: value }, 'bad-proxy');
        expect(r.code).toBe(1);
        expect(r.err).toMatch(says);
        expect(r.err).not.toContain('s3cret');
        expect(r.err).not.toMatch(/internal error|\n\s+at /);
      }
      expect(() => httpDispatcher({}, { HTTP_PROXY: '127.0.0.1:3128' })).not.toThrow();
    }, 60_000);
  },
);
