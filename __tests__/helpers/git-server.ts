// A Git server over HTTP on 127.0.0.1, as GitHub serves repositories to a build: git's own http-backend (smart
// HTTP, run as CGI for each request) behind a small server that, for a private repository, asks for
// `Authorization: Basic base64(x-access-token:TOKEN)` as GitHub does for a workflow's token. Repositories are made
// by the test with the real git and served under /OWNER/NAME.git. Every request's path and whether it carried the
// token are kept, so a test can tell what a client sent.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface GitServer {
  url: string;
  host: string;
  /** one line per request: METHOD PATH (authorized|anonymous) */
  requests: string[];
  /** makes OWNER/NAME.git from `files` committed at `time` (seconds) on `branch`; answers the commit */
  repo(
    name: string,
    files: Record<string, string | { symlink: string }>,
    options?: {
      branch?: string;
      time?: number;
      private?: boolean;
      tag?: string;
      submodule?: { path: string; url: string };
    },
  ): string;
  /** a further commit on the repository's branch */
  commit(name: string, files: Record<string, string>, options?: { branch?: string; time?: number }): string;
  stop(): Promise<void>;
}

const git = (cwd: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
  const r = spawnSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', ...env },
  });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

export async function startGitServer(token: string): Promise<GitServer> {
  const root = mkdtempSync(path.join(tmpdir(), 'hoist-git-'));
  const served = path.join(root, 'served');
  const work = path.join(root, 'work');
  mkdirSync(served);
  mkdirSync(work);
  const privateRepos = new Set<string>();
  const requests: string[] = [];
  const backend = path.join(git(root, ['--exec-path']), 'git-http-backend');
  // (the scheme's name is case-insensitive, RFC 9110)
  const authorized = (req: IncomingMessage) =>
    /^basic /i.test(req.headers.authorization ?? '') &&
    req.headers.authorization?.slice(6) === Buffer.from(`x-access-token:${token}`).toString('base64');
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const repo = /^\/([^/]+\/[^/]+\.git)\//.exec(url.pathname)?.[1];
    const ok = authorized(req);
    requests.push(`${req.method} ${url.pathname} ${ok ? 'authorized' : 'anonymous'}`);
    if (!repo || (privateRepos.has(repo) && !ok)) {
      res.writeHead(repo ? 401 : 404, repo ? { 'WWW-Authenticate': 'Basic realm="git"' } : {}).end();
      return;
    }
    const cgi = spawn(backend, [], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: served,
        GIT_HTTP_EXPORT_ALL: '1',
        REQUEST_METHOD: req.method,
        PATH_INFO: url.pathname,
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] } : {}),
        ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
        REMOTE_ADDR: '127.0.0.1',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(cgi.stdin);
    // CGI: headers, a blank line, the body
    let head = Buffer.alloc(0);
    let sent = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (sent) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString().split('\r\n')) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === 'status') status = parseInt(v, 10);
        else headers[k] = v;
      }
      res.writeHead(status, headers);
      sent = true;
      res.write(head.subarray(end + 4));
    });
    cgi.on('close', () => res.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const url = `http://127.0.0.1:${port}`;
  const author = (time: number) => ({
    GIT_AUTHOR_NAME: 'dev',
    GIT_AUTHOR_EMAIL: 'dev@example.com',
    GIT_COMMITTER_NAME: 'dev',
    GIT_COMMITTER_EMAIL: 'dev@example.com',
    GIT_AUTHOR_DATE: `@${time} +0000`,
    GIT_COMMITTER_DATE: `@${time} +0000`,
  });
  const write = (dir: string, files: Record<string, string | { symlink: string }>) => {
    for (const [name, content] of Object.entries(files)) {
      const p = path.join(dir, name);
      mkdirSync(path.dirname(p), { recursive: true });
      rmSync(p, { force: true });
      if (typeof content === 'string') writeFileSync(p, content);
      else spawnSync('ln', ['-s', content.symlink, p]);
    }
  };
  return {
    url,
    host: `127.0.0.1:${port}`,
    requests,
    repo(name, files, options = {}) {
      const branch = options.branch ?? 'main';
      const dir = path.join(work, name);
      mkdirSync(dir, { recursive: true });
      git(dir, ['init', '-q', '-b', branch]);
      write(dir, files);
      if (options.submodule) {
        // (added from where this server keeps it: git's own clone over HTTP would wait on this very process)
        const { url: subUrl, path: subPath } = options.submodule;
        const local = subUrl.startsWith(`${url}/`) ? path.join(served, new URL(subUrl).pathname) : subUrl;
        git(dir, ['-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', local, subPath]);
        git(dir, ['config', '-f', '.gitmodules', `submodule.${subPath}.url`, subUrl]);
      }
      git(dir, ['add', '-A']);
      git(dir, ['commit', '-q', '-m', 'first'], author(options.time ?? 1_700_000_000));
      if (options.tag) git(dir, ['tag', options.tag]);
      const bare = path.join(served, `${name}.git`);
      git(root, ['clone', '-q', '--bare', dir, bare]);
      // as GitHub: a commit may be fetched by its id
      git(bare, ['config', 'uploadpack.allowAnySHA1InWant', 'true']);
      if (options.private) privateRepos.add(`${name}.git`);
      return git(dir, ['rev-parse', 'HEAD']);
    },
    commit(name, files, options = {}) {
      const dir = path.join(work, name);
      write(dir, files);
      git(dir, ['add', '-A']);
      git(dir, ['commit', '-q', '-m', 'next'], author(options.time ?? 1_700_000_100));
      git(dir, ['push', '-q', path.join(served, `${name}.git`), `HEAD:${options.branch ?? 'main'}`]);
      return git(dir, ['rev-parse', 'HEAD']);
    },
    async stop() {
      await new Promise((r) => server.close(r));
      rmSync(root, { recursive: true, force: true });
    },
  };
}
