// RUN end to end as root with Debian's runc over a real overlay mount, on a busybox base pushed to a local
// docker-registry: heredocs, --network, and the --mount kinds (tmpfs, cache, bind, secret), failures, and
// cleanup when the build is killed. Expectations are written here where Docker 20.10's BuildKit cannot serve
// as the oracle (heredocs, --network).
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fsObject, readSaved } from '../helpers/flatten.js';
import { hoist, hoistWithEnv } from '../helpers/hoist.js';
import { pushBusyboxBase } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, pathWithout, run } from '../helpers/tools.js';

const asRoot = process.getuid?.() === 0;

(asRoot ? describeWith(['docker-registry', 'runc', 'busybox', 'python3']) : describe.skip)('RUN', () => {
  let reg: TestRegistry;
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-run-'));
  const store = path.join(work, 'store');
  let base = '';
  beforeAll(async () => {
    reg = await startRegistry('anonymous');
    base = `${reg.host}/base/busybox:1`;
    await pushBusyboxBase(base, store, work);
  }, 60_000);
  afterAll(async () => reg?.stop());

  let n = 0;
  function writeContext(dockerfile: string, files: Record<string, string | Buffer> = {}): string {
    const dir = path.join(work, `ctx${n++}`);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'Dockerfile'), dockerfile.replaceAll('{{BASE}}', base));
    for (const [k, v] of Object.entries(files)) writeFileSync(path.join(dir, k), v);
    return dir;
  }
  async function build(dockerfile: string, files: Record<string, string | Buffer> = {}, args: string[] = []) {
    const dir = writeContext(dockerfile, files);
    const tar = path.join(work, `out${n}.tar`);
    const r = await hoist([
      'build',
      '--progress',
      'plain',
      '--store',
      store,
      ...args,
      '-o',
      `type=docker,dest=${tar}`,
      dir,
    ]);
    if (r.code !== 0) return { r, fs: {}, config: {}, tar };
    const x = path.join(work, `x${n}`);
    mkdirSync(x);
    const saved = await readSaved(tar, x);
    return { r, fs: fsObject(saved.fs), config: saved.config, tar };
  }
  const content = (tar: string, file: string) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hoist-run-c-'));
    run('sh', [
      '-c',
      `mkdir -p ${dir}/t && tar -xf ${tar} -C ${dir}/t && for l in $(cd ${dir}/t && python3 -c "import json;print(' '.join(json.load(open('manifest.json'))[0]['Layers']))"); do tar -xzf ${dir}/t/$l -C ${dir} 2>/dev/null || true; done`,
    ]);
    return readFileSync(path.join(dir, file), 'utf8');
  };

  test('heredocs: a lone script, a #! script, and a heredoc fed to a command', async () => {
    const { r, fs, tar } = await build(`FROM {{BASE}}
RUN <<EOF
echo one > /one
echo two >> /one
EOF
RUN <<EOF
#!/bin/sh
echo "from $0" > /shebang
EOF
RUN cat <<EOF > /fed
fed $((1 + 1))
EOF
RUN <<-EOF
echo "
\tbar" > /bar-run
EOF
RUN <<-EOF
#!/bin/sh
echo "
\tbar" > /bar2-run
EOF
`);
    expect(r.err).toMatch(/DONE/);
    expect(r.code).toBe(0);
    expect(content(tar, 'one')).toBe('one\ntwo\n');
    expect(content(tar, 'shebang')).toBe('from /dev/pipes/EOF\n');
    expect(content(tar, 'fed')).toBe('fed 2\n');
    // <<- strips leading tabs from a heredoc that is the script itself too (BuildKit's testHeredocIndent).
    expect(content(tar, 'bar-run')).toBe('\nbar\n');
    expect(content(tar, 'bar2-run')).toBe('\nbar\n');
    expect(fs['dev/pipes']).toBeUndefined();
  });

  test('--network=none has only loopback; output is streamed into the progress', async () => {
    const { r, tar } = await build(
      'FROM {{BASE}}\nRUN --network=none ls /sys/class/net > /nets && echo visible-line\n',
    );
    expect(r.code).toBe(0);
    expect(content(tar, 'nets')).toBe('lo\n');
    // One stage: BuildKit names no stage in the prefix (prefixCommand with stageName "").
    expect(r.err).toMatch(/^#(\d+) \[2\/2\] RUN --network=none[\s\S]*^#\1 visible-line$/m);
  });

  test('tmpfs, bind (read-only and rw) and cache mounts: their content never reaches the layer; the cache persists', async () => {
    const df = `FROM {{BASE}}
RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && ls /scratch > /tmpfs-list
RUN --mount=type=tmpfs,target=/sized,size=1m grep ' /sized ' /proc/mounts > /sized-mount
RUN --mount=type=bind,source=data.txt,target=/mnt/data.txt cat /mnt/data.txt > /copied
RUN --mount=type=bind,target=/ctx,rw echo changed > /ctx/data.txt && cat /ctx/data.txt > /rw-seen
RUN --mount=type=cache,target=/cache,id=counter sh -c 'echo x >> /cache/count; wc -l < /cache/count > /count-now'
`;
    const first = await build(df, { 'data.txt': 'from the context\n' });
    expect(first.r.code).toBe(0);
    expect(content(first.tar, 'tmpfs-list')).toBe('t\n');
    expect(content(first.tar, 'sized-mount')).toMatch(/^tmpfs \/sized tmpfs \S*\bsize=1024k\b/);
    expect(content(first.tar, 'copied')).toBe('from the context\n');
    expect(content(first.tar, 'rw-seen')).toBe('changed\n');
    for (const p of ['scratch', 'sized', 'mnt', 'mnt/data.txt', 'ctx', 'cache']) expect(first.fs[p]).toBeUndefined();
    // --no-cache: the step runs again (its key is the same: a cache mount's content is never part of it).
    const second = await build(df, { 'data.txt': 'from the context\n' }, ['--no-cache']);
    expect(Number(content(second.tar, 'count-now').trim())).toBe(Number(content(first.tar, 'count-now').trim()) + 1);
  });

  test('a cache mount with source=SUBDIR shows that directory of the cache (made when missing), resolved inside the cache', async () => {
    // BuildKit dockerfile2llb convert_runmount.go: source on a cache mount is llb.SourcePath, a path in the cache.
    const id = `subdir-${n}`;
    const marker = `/etc/hoist-cache-escape-${n}`;
    const { r, tar } = await build(`FROM {{BASE}}
RUN --mount=type=cache,id=${id},target=/c,source=deep/er sh -c 'echo in-sub > /c/f'
RUN --mount=type=cache,id=${id},target=/all sh -c 'cat /all/deep/er/f > /seen; ln -s /etc /all/link'
RUN --mount=type=cache,id=${id},target=/l,source=link/${path.basename(marker)} sh -c 'echo x > /l/x'
RUN --mount=type=cache,id=${id},target=/all sh -c 'ls /all/etc > /escaped'
`);
    expect(r.code).toBe(0);
    expect(content(tar, 'seen')).toBe('in-sub\n');
    // link -> /etc leads to the cache's own etc, never the host's.
    expect(content(tar, 'escaped')).toBe(`${path.basename(marker)}\n`);
    expect(existsSync(marker)).toBe(false);
  });

  test('cache sharing: locked steps take turns; private steps in use at the same time get caches of their own', async () => {
    // Two stages run in parallel. Under sharing=private both meet in a shared rendezvous cache first, so they are
    // provably inside their steps at once, and each must see only its own log.
    const step = (name: string, id: string, sharing: string, meet: boolean) => `FROM {{BASE}} AS ${name}
RUN --mount=type=cache,id=${id},target=/c,sharing=${sharing} --mount=type=cache,id=${id}-meet,target=/r sh -c '${meet ? `touch /r/${name}; for i in $(busybox seq 200); do [ -e /r/${name === 'a' ? 'b' : 'a'} ] && break; sleep 0.05; done; ` : ''}echo ${name}-start >> /c/log; sleep 1; echo ${name}-end >> /c/log; cat /c/log > /log'
`;
    const df = (
      id: string,
      sharing: string,
      meet: boolean,
      sharingB = sharing,
    ) => `${step('a', id, sharing, meet)}${step('b', id, sharingB, meet)}FROM scratch
COPY --from=a /log /a.log
COPY --from=b /log /b.log
`;
    const locked = await build(df(`locked-${n}`, 'locked', false));
    expect(locked.r.code).toBe(0);
    const logs = [content(locked.tar, 'a.log'), content(locked.tar, 'b.log')].sort((x, y) => x.length - y.length);
    // The second holder saw the first one's whole turn before its own: never interleaved.
    expect(logs[1]).toMatch(/^(a|b)-start\n\1-end\n(a|b)-start\n\2-end\n$/);
    expect(logs[1].startsWith(logs[0])).toBe(true);
    const priv = await build(df(`private-${n}`, 'private', true));
    expect(priv.r.code).toBe(0);
    expect(content(priv.tar, 'a.log')).toBe('a-start\na-end\n');
    expect(content(priv.tar, 'b.log')).toBe('b-start\nb-end\n');
    // A private step does not take the cache a shared step is using at the same time.
    const mixed = await build(df(`mixed-${n}`, 'shared', true, 'private'));
    expect(mixed.r.code).toBe(0);
    expect(content(mixed.tar, 'a.log')).toBe('a-start\na-end\n');
    expect(content(mixed.tar, 'b.log')).toBe('b-start\nb-end\n');
    // Nothing is left holding the caches.
    expect(run('sh', ['-c', `ls ${store}/cache-mounts | grep -c '\\.lock$' || true`]).trim()).toBe('0');
    expect(run('sh', ['-c', `cat ${store}/cache-mounts/*.users/* 2>/dev/null | wc -l`]).trim()).toBe('0');
  }, 60_000);

  test("ssh mounts: a socket of the step's own with the mount's owner and mode; skipped without --ssh unless required", async () => {
    const agentDir = mkdtempSync(path.join(tmpdir(), 'hoist-agent-test-'));
    const sock = path.join(agentDir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
    try {
      const df = `FROM {{BASE}}
RUN --mount=type=ssh,uid=1000,gid=65534,mode=0660 busybox stat -c '%F %a %u %g' "$SSH_AUTH_SOCK" > /sock && echo "$SSH_AUTH_SOCK" > /sock-path
RUN --mount=type=ssh,id=other,target=/agent test -e /agent || echo skipped > /other
`;
      const withAgent = await hoistWithEnv({ SSH_AUTH_SOCK: sock }, [
        'build',
        '--store',
        store,
        '--progress',
        'quiet',
        '--ssh',
        'default',
        '-o',
        `type=docker,dest=${path.join(work, 'ssh.tar')}`,
        writeContext(df),
      ]);
      expect(withAgent.err).toBe('');
      expect(withAgent.code).toBe(0);
      expect(content(path.join(work, 'ssh.tar'), 'sock')).toBe('socket 660 1000 65534\n');
      expect(content(path.join(work, 'ssh.tar'), 'sock-path')).toBe('/run/buildkit/ssh_agent.0\n');
      expect(content(path.join(work, 'ssh.tar'), 'other')).toBe('skipped\n');
      const required = await build('FROM {{BASE}}\nRUN --mount=type=ssh,required=true true\n');
      expect(required.r.code).toBe(1);
      expect(required.r.err).toMatch(/Dockerfile:2[\s\S]*pass --ssh default/);
      const noAgent = await hoistWithEnv({ SSH_AUTH_SOCK: '' }, [
        'build',
        '--store',
        store,
        '--progress',
        'quiet',
        '--ssh',
        'default',
        writeContext('FROM {{BASE}}\nRUN --mount=type=ssh true\n'),
      ]);
      expect(noAgent.code).toBe(1);
      expect(noAgent.err).toMatch(/SSH_AUTH_SOCK is not set/);
      expect(run('sh', ['-c', `ls -d /tmp/hoist-ssh-${process.pid}-* 2>/dev/null | wc -l`]).trim()).toBe('0');
    } finally {
      agent.kill();
    }
  });

  test('a secret is readable in the step and nowhere in the image, its config or the output', async () => {
    const secretFile = path.join(work, 'token');
    writeFileSync(secretFile, 'hunter2-very-secret');
    const { r, fs, config, tar } = await build(
      'FROM {{BASE}}\nRUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /secret-length && ls -l /run/secrets/tok | cut -c1-10 > /secret-mode\n',
      {},
      ['--secret', `id=tok,src=${secretFile}`],
    );
    expect(r.code).toBe(0);
    expect(content(tar, 'secret-length').trim()).toBe('19');
    expect(content(tar, 'secret-mode').trim()).toBe('-r--------');
    expect(fs['run/secrets/tok']).toBeUndefined();
    expect(JSON.stringify(config)).not.toContain('hunter2');
    expect(r.err + r.out).not.toContain('hunter2');
    expect(run('sh', ['-c', `tar -xOf ${tar} | gzip -dc 2>/dev/null | grep -c hunter2 || true`]).trim()).toBe('0');
    // A step that prints the secret: the log shows *** in its output and in the failure's last lines.
    const printed = await build(
      'FROM {{BASE}}\nRUN --mount=type=secret,id=tok cat /run/secrets/tok && echo && exit 4\n',
      {},
      ['--secret', `id=tok,src=${secretFile}`],
    );
    expect(printed.r.code).toBe(1);
    expect(printed.r.err).toMatch(/^#\d+ \*\*\*$/m);
    expect(printed.r.err).toMatch(/exit code: 4\n\*\*\*/);
    expect(printed.r.err).not.toContain('hunter2');
    // As env=: the value in the step's environment; the step's name shows the variable as **** (BuildKit's
    // withSecretEnvMask), other variables expanded as processCmdEnv expands them.
    const asEnv = await build(
      'FROM {{BASE}}\nENV WHO=me\nRUN --mount=type=secret,id=tok,env=TOKEN echo "$WHO $TOKEN" | wc -c > /len\n',
      {},
      ['--secret', `id=tok,src=${secretFile}`],
    );
    expect(asEnv.r.code).toBe(0);
    expect(content(asEnv.tar, 'len').trim()).toBe('23');
    expect(asEnv.r.err).toMatch(
      /^#\d+ \[2\/2\] RUN --mount=type=secret,id=tok,env=TOKEN echo "me \*\*\*\*" \| wc -c > \/len$/m,
    );
    // Quotes as written, variables expanded, an unset one left as it is (dispatchRun: RawQuotes, SkipUnsetEnv)
    const named = await build(`FROM {{BASE}}\nARG V=base\nRUN echo "$V" '$V' $UNSET > /n\n`);
    expect(named.r.err).toMatch(/^#\d+ \[2\/2\] RUN echo "base" '\$V' \$UNSET > \/n$/m);
    expect(asEnv.r.err + JSON.stringify(asEnv.config)).not.toContain('hunter2');
    const missing = await build('FROM {{BASE}}\nRUN --mount=type=secret,id=nope,required=true true\n');
    expect(missing.r.code).toBe(1);
    expect(missing.r.err).toMatch(/secret nope: not found \(the mount is required\)/);
  });

  test('RUN over a hundred and twenty layers (more lower dirs than fit in mount options as full paths)', async () => {
    const files = Object.fromEntries(Array.from({ length: 120 }, (_, i) => [`f${i}`, `${i}\n`]));
    const copies = Object.keys(files)
      .map((f) => `COPY ${f} /many/${f}`)
      .join('\n');
    const { r, tar } = await build(
      `FROM {{BASE}}\n${copies}\nRUN ls /many | wc -l > /count && cat /many/f0 /many/f119 > /ends\n`,
      files,
    );
    expect(r.err).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(content(tar, 'count').trim()).toBe('120');
    expect(content(tar, 'ends')).toBe('0\n119\n');
  }, 120_000);

  test('a WORKDIR the step must make again is made inside the image even through an absolute symlink', async () => {
    const outside = `/hoist-escape-${process.pid}`;
    const { r, fs } = await build(
      `FROM {{BASE}}\nRUN ln -s ${outside} /esc\nWORKDIR /esc/w\nRUN rm -rf ${outside}\nRUN pwd > /seen\n`,
    );
    expect(r.code).toBe(0);
    expect(existsSync(outside)).toBe(false);
    expect(fs[`${outside.slice(1)}/w`]).toMatchObject({ type: 'directory' });
  });

  test("RUN as a user the image does not define fails, as docker's does (file operations fall back to 0:0 instead)", async () => {
    const { r } = await build('FROM {{BASE}}\nUSER ghost\nWORKDIR /made-by-ghost\nRUN true\n');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/Dockerfile:4: unable to find user ghost: no matching entries in passwd file/);
  });

  test('without a USER, RUN runs as root with the groups the image lists root in', async () => {
    // Current BuildKit's executor/oci/user.go GetUser: an empty user is looked up as "0" (Docker 20.10's was not).
    const { r, tar } = await build('FROM {{BASE}}\nCOPY passwd group /etc/\nRUN id -G > /groups\n', {
      passwd: 'root:x:0:0:root:/root:/bin/sh\n',
      group: 'root:x:0:\nwheel:x:10:root\ndisk:x:6:root,adm\nother:x:7:adm\n',
    });
    expect(r.code).toBe(0);
    expect(content(tar, 'groups').trim().split(' ').sort()).toEqual(['0', '10', '6']);
  });

  test("id as BuildKit's testUserAdditionalGids has it: the primary group is among the groups (CVE-2023-25173)", async () => {
    // busybox's own passwd and group (root in wheel only), and its test's four cases
    const { r } = await build(
      `FROM {{BASE}}\nCOPY passwd group /etc/\nSHELL ["/bin/sh", "-euxc"]
RUN test "$(id)" = "uid=0(root) gid=0(root) groups=0(root),10(wheel)"
USER 1234
RUN test "$(id)" = "uid=1234 gid=0(root) groups=0(root)"
USER 1234:1234
RUN test "$(id)" = "uid=1234 gid=1234 groups=1234"
USER daemon
RUN test "$(id)" = "uid=1(daemon) gid=1(daemon) groups=1(daemon)"
`,
      {
        passwd:
          'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n',
        group:
          'root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\ndisk:x:6:\nwheel:x:10:root\nusers:x:100:\nnogroup:x:65534:\n',
      },
    );
    expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
  });

  test('a failing RUN names its line and exit code and leaves no mount or container', async () => {
    const { r } = await build('FROM {{BASE}}\nRUN echo about to fail \\\n  && exit 3\n');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/Dockerfile:2[\s\S]*exit code: 3[\s\S]*about to fail/);
    // Every line of the instruction, as BuildKit's source map shows it.
    expect(r.err).toContain(' 2 | >>> RUN echo about to fail \\\n 3 | >>>   && exit 3\n');
    expect(run('sh', ['-c', `grep ${store} /proc/mounts || true`]).trim()).toBe('');
    expect(run('sh', ['-c', `runc list -q | grep '^hoist-${process.pid}-' || true`]).trim()).toBe('');
  });

  test("without the attr tools, xattrs go through python3 (as on GitHub's ubuntu runners); with neither, RUN says what to install", async () => {
    // A child process: jest's process.env is not what child processes of this one inherit. PATH: every command
    // this machine has, except getfattr and setfattr (and python3 for the second half).
    const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js');
    const hoistWithPath = (bin: string, args: string[]) =>
      spawnSync(process.execPath, [cli, ...args], { env: { ...process.env, PATH: bin }, encoding: 'utf8' });
    const noAttr = pathWithout(['getfattr', 'setfattr']);
    expect(run('sh', ['-c', `PATH=${noAttr} command -v getfattr || echo none`]).trim()).toBe('none');
    // A directory deleted and made again is an opaque directory in the upper dir (read back through python3); a
    // fresh store unpacks the pushed layer and marks it opaque again (written through python3), or the RUN
    // would see /d/a from the layer below.
    const image = `${reg.host}/opaque/one:1`;
    const pushed = hoistWithPath(noAttr, [
      'build',
      '--store',
      path.join(work, 'opq-1'),
      '--progress',
      'plain',
      '-t',
      image,
      '--push',
      writeContext('FROM {{BASE}}\nRUN mkdir /d && touch /d/a\nRUN rm -rf /d && mkdir /d && touch /d/b\n'),
    ]);
    expect(pushed.stderr).toMatch(/pushed/);
    expect(pushed.status).toBe(0);
    const tar = path.join(work, 'opq.tar');
    const again = hoistWithPath(noAttr, [
      'build',
      '--store',
      path.join(work, 'opq-2'),
      '--progress',
      'plain',
      '-o',
      `type=docker,dest=${tar}`,
      writeContext(`FROM ${image}\nRUN test ! -e /d/a && test -e /d/b && touch /d/c\n`),
    ]);
    expect(again.stderr).toMatch(/DONE/);
    expect(again.status).toBe(0);
    const x = mkdtempSync(path.join(work, 'opq-x-'));
    expect(
      Object.keys(fsObject((await readSaved(tar, x)).fs))
        .filter((k) => k.startsWith('d/'))
        .sort(),
    ).toEqual(['d/b', 'd/c']);

    const neither = pathWithout(['getfattr', 'setfattr', 'python3']);
    // said in one line before anything is fetched (the base named here does not exist: the build never gets there)
    const r = hoistWithPath(neither, [
      'build',
      '--store',
      store,
      '--progress',
      'quiet',
      writeContext(`FROM ${reg.host}/never/pushed:1\nRUN true\n`),
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      'hoist build: RUN needs python3, or getfattr and setfattr (apt-get install attr), to read and write overlayfs whiteouts\n',
    );
    // A build whose RUN steps all come from the store runs none: it needs nothing of them (the check is made when a
    // stage has a step to run). One with a step to run says what to install before its base's layers come.
    const cached = writeContext('FROM {{BASE}}\nRUN echo cached > /c\n');
    const cachedStore = path.join(work, 'cached-neither');
    expect(hoistWithPath(noAttr, ['build', '--store', cachedStore, '--progress', 'quiet', cached]).status).toBe(0);
    const rebuilt = hoistWithPath(neither, ['build', '--store', cachedStore, '--progress', 'plain', cached]);
    expect(`${rebuilt.status}\n${rebuilt.stderr}`).toMatch(/^0\n[\s\S]*#2 CACHED/);
    const fresh = hoistWithPath(neither, [
      'build',
      '--store',
      path.join(work, 'fresh-neither'),
      '--progress',
      'quiet',
      cached,
    ]);
    expect(fresh.status).toBe(1);
    expect(fresh.stderr).toMatch(/RUN needs python3, or getfattr and setfattr/);
    // (its manifest and config only: no layer)
    const blobs = path.join(work, 'fresh-neither', 'blobs', 'sha256');
    expect(
      (existsSync(blobs) ? readdirSync(blobs) : []).filter((b) => statSync(path.join(blobs, b)).size > 64 * 1024),
    ).toEqual([]);
    rmSync(noAttr, { recursive: true });
    rmSync(neither, { recursive: true });
  }, 60_000);

  test('a user with passwordless sudo builds RUN steps through sudo; the store stays theirs; without sudo a clear message', async () => {
    if (!run('sh', ['-c', 'command -v sudo || true']).trim()) return; // sudo is installed by the test command when root
    for (const [user, sudo] of [
      ['hoistsudo', true],
      ['hoistnosudo', false],
    ] as const) {
      run('sh', ['-c', `id ${user} >/dev/null 2>&1 || useradd -m ${user}`]);
      if (sudo) writeFileSync(`/etc/sudoers.d/${user}`, `${user} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'hoist-sudo-ctx-'));
    // The second RUN checks the owners its lower layers show: a second build reuses the snapshots of the first.
    writeFileSync(
      path.join(dir, 'Dockerfile'),
      `FROM ${base}\nRUN echo via-sudo > /who\nRUN test "$(busybox stat -c %u /bin/busybox):$(busybox stat -c %u /who)" = 0:0\n`,
    );
    run('chmod', ['-R', 'a+rX', dir]);
    const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js');
    const as = (user: string, store: string) => {
      run('sh', ['-c', `mkdir -p ${store} && chown ${user} ${store}`]);
      return run('sh', [
        '-c',
        `runuser -u ${user} -- ${process.execPath} ${cli} build --progress plain --store ${store} ${dir} 2>&1; echo "exit=$?"`,
      ]);
    };
    const homes = mkdtempSync(path.join(tmpdir(), 'hoist-sudo-stores-'));
    run('chmod', ['755', homes]);
    const ok = as('hoistsudo', path.join(homes, 'sudo-store'));
    expect(ok).toMatch(/running the build again with sudo/);
    expect(ok).toMatch(/exit=0/);
    // The store is the user's again, except the unpacked layers and cache mounts: they keep the image's owners.
    const s = `${homes}/sudo-store`;
    expect(
      run('sh', [
        '-c',
        `find ${s} \\( -path ${s}/snapshots -o -path ${s}/cache-mounts \\) -prune -o ! -user hoistsudo -print | wc -l`,
      ]).trim(),
    ).toBe('0');
    expect(run('sh', ['-c', `find ${s}/snapshots -mindepth 2 -user hoistsudo | wc -l`]).trim()).toBe('0');
    expect(as('hoistsudo', s)).toMatch(/exit=0/);
    // prune by the user empties what is theirs and says what only root can remove.
    const pruned = run('sh', [
      '-c',
      `runuser -u hoistsudo -- ${process.execPath} ${cli} prune --all --store ${s} 2>&1; echo "exit=$?"`,
    ]);
    expect(pruned).toMatch(/owned by root[\s\S]*sudo hoist prune[\s\S]*exit=0/);
    const no = as('hoistnosudo', path.join(homes, 'nosudo-store'));
    expect(no).toMatch(/RUN needs root[\s\S]*exit=1/);

    // A cancelled job signals the user's hoist: the build under sudo stops too and cleans up.
    const cancelled = mkdtempSync(path.join(tmpdir(), 'hoist-sudo-ctx-'));
    writeFileSync(path.join(cancelled, 'Dockerfile'), `FROM ${base}\nRUN echo started && sleep 97\n`);
    run('chmod', ['-R', 'a+rX', cancelled]);
    const store2 = path.join(homes, 'sudo-store');
    const child = spawn(
      'setpriv',
      [
        '--reuid=hoistsudo',
        '--regid=hoistsudo',
        '--init-groups',
        '--',
        process.execPath,
        cli,
        'build',
        '--progress',
        'plain',
        '--store',
        store2,
        cancelled,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HOME: '/home/hoistsudo' } },
    );
    let err = '';
    await new Promise<void>((resolve) =>
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (/#\d+ started/.test(err)) resolve();
      }),
    );
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(143);
    expect(run('sh', ['-c', `grep ${store2} /proc/mounts || true`]).trim()).toBe('');
    expect(run('sh', ['-c', 'pgrep -f "[s]leep 97" || true']).trim()).toBe('');
    expect(run('sh', ['-c', `ls -A ${store2}/tmp`]).trim()).toBe('');
    for (const d of [dir, cancelled, homes]) rmSync(d, { recursive: true, force: true });
  }, 90_000);

  test.each(['SIGTERM', 'SIGINT'] as const)(
    '%s in the middle of a RUN, with a stage mounted for COPY --from: the build stops and leaves no mount, container or temp dir',
    async (signal) => {
      const dir = path.join(work, `killed-${signal}`);
      mkdirSync(dir);
      writeFileSync(
        path.join(dir, 'Dockerfile'),
        `FROM ${base} AS a\nRUN echo a > /a\nFROM ${base}\nCOPY --from=a /a /a\nRUN echo started && sleep 60\n`,
      );
      const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js');
      const child = spawn(process.execPath, [cli, 'build', '--progress', 'plain', '--store', store, dir], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      await new Promise<void>((resolve) =>
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          if (/#\d+ started\n/.test(err)) resolve();
        }),
      );
      child.kill(signal);
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code).toBe(signal === 'SIGINT' ? 130 : 143);
      expect(run('sh', ['-c', `grep ${store} /proc/mounts || true`]).trim()).toBe('');
      expect(run('sh', ['-c', `runc list -q | grep '^hoist-${child.pid}-' || true`]).trim()).toBe('');
      expect(run('sh', ['-c', `ls -A ${store}/tmp`]).trim()).toBe('');
    },
    60_000,
  );

  test('one stage fails while another runs: the other is stopped and its mounts undone first; the failure is the error, at its line', async () => {
    for (let i = 0; i < 3; i++) {
      const { r } = await build(
        'FROM {{BASE}} AS a\nRUN sleep 3 && echo a > /a\nFROM {{BASE}}\nRUN nosuchcommand\nCOPY --from=a /a /a\n',
        {},
        ['--no-cache'],
      );
      expect(r.code).toBe(1);
      expect(r.err).toMatch(
        /Dockerfile:4: process "\/bin\/sh -c nosuchcommand" did not complete successfully: exit code: 127/,
      );
      expect(r.err).not.toMatch(/EBUSY|can't create \/a/);
      // nothing of the build is left mounted or running
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(path.join(store, 'tmp'));
      expect(spawnSync('runc', ['list', '-q'], { encoding: 'utf8' }).stdout).not.toMatch(
        new RegExp(`^hoist-${process.pid}-`, 'm'),
      );
    }
  }, 120_000);

  test('through chroot, a step that swaps its mount target and /etc/resolv.conf for links out leaves the host alone when hoist takes them out', async () => {
    // Without a mount, chroot's mounts are copied in and out: what hoist removes, writes back and touches after the
    // step is checked to be what it made, with no link on the way (a step can swap a directory for a link to a
    // host path meanwhile).
    const victim = mkdtempSync(path.join(work, 'victim-'));
    writeFileSync(path.join(victim, 'keep.txt'), 'host file\n');
    const hostFile = path.join(work, `host-resolv-${n}`);
    writeFileSync(hostFile, 'host resolv\n');
    const { r } = await build(
      `FROM {{BASE}}
RUN echo 'nameserver 127.0.0.1' > /etc/resolv.conf
RUN --mount=type=tmpfs,target=/tmp rm -rf /tmp && ln -s ${victim} /tmp && rm /etc/resolv.conf && ln -s ${hostFile} /etc/resolv.conf
`,
      {},
      ['--isolation', 'chroot'],
    );
    expect(r.code).toBe(0);
    expect(readFileSync(path.join(victim, 'keep.txt'), 'utf8')).toBe('host file\n');
    expect(readFileSync(hostFile, 'utf8')).toBe('host resolv\n');
  });

  test.each(['chroot', 'proot'])(
    'through %s, stages from one base are unpacked ahead, one after another, each into its own directory',
    async (isolation) => {
      // The stages' directories are unpacked while earlier stages run (DirectoryExecutor.warm): each still sees only
      // its own steps, and the last one what it copied.
      const { r, fs, tar } = await build(
        `FROM {{BASE}} AS a
RUN echo a > /a-made && sleep 1
FROM {{BASE}} AS b
RUN test ! -e /a-made && echo b > /b-made
FROM b AS c
RUN test -e /b-made && test ! -e /a-made && echo c > /c-made
FROM {{BASE}}
COPY --from=a /a-made /copied/
COPY --from=c /b-made /c-made /copied/
RUN test ! -e /a-made && test ! -e /b-made && cat /copied/a-made /copied/b-made /copied/c-made > /all
`,
        {},
        ['--isolation', isolation, '--no-cache'],
      );
      expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
      expect(content(tar, 'all')).toBe('a\nb\nc\n');
      expect(
        Object.keys(fs)
          .filter((p) => /made$/.test(p))
          .sort(),
      ).toEqual(['copied/a-made', 'copied/b-made', 'copied/c-made']);
      expect(run('sh', ['-c', `ls -A ${store}/tmp`]).trim()).toBe('');
    },
    60_000,
  );

  test.each(['runc', 'proot', 'chroot'])(
    "through %s, the build's --add-host, --ulimit, --shm-size and --network reach every RUN, and are part of its cache key",
    async (isolation) => {
      const dockerfile = `FROM {{BASE}}
RUN grep -v '^#' /etc/hosts > /hosts && ulimit -n > /nofile && (df -k /dev/shm | tail -1 | awk '{print $2}') > /shm
`;
      const args = [
        '--isolation',
        isolation,
        '--add-host',
        'docker:10.180.0.1',
        '--add-host',
        'foo=10.0.0.1',
        '--ulimit',
        'nofile=512:1024',
        '--shm-size',
        '128m',
        '--network',
        'none',
      ];
      const { r, tar } = await build(dockerfile, {}, [...args, '--no-cache']);
      expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
      expect(content(tar, 'hosts')).toBe(
        '127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n10.180.0.1\tdocker\n10.0.0.1\tfoo\n',
      );
      expect(content(tar, 'nofile').trim()).toBe('512');
      if (isolation === 'runc') expect(content(tar, 'shm').trim()).toBe(String(128 * 1024));
      else expect(r.err).toContain(`shm-size cannot be honoured by ${isolation}`);
      // the same build again: every step from the store; another host: the RUN again
      const again = await build(dockerfile, {}, args);
      expect(again.r.err).toMatch(/#\d+ CACHED/);
      const other = await build(dockerfile, {}, [...args.slice(0, 2), '--add-host', 'docker:10.180.0.2']);
      expect(other.r.code).toBe(0);
      expect(content(other.tar, 'hosts')).toContain('10.180.0.2\tdocker\n');
    },
    120_000,
  );

  test('bad --add-host, --ulimit, --shm-size and --network values fail before the build, naming the flag', async () => {
    for (const [flag, value, message] of [
      ['--add-host', 'nohost', 'add-host "nohost": expected HOST:IP (or HOST=IP)'],
      ['--add-host', 'h:not-an-ip', 'is not an IP address'],
      ['--ulimit', 'files=1', 'unknown limit files'],
      ['--ulimit', 'nofile=10:5', 'the soft limit 10 is above the hard limit 5'],
      ['--shm-size', 'lots', 'shm-size "lots": expected a size such as 64m or 2g'],
      ['--network', 'bridge', 'network "bridge": RUN takes default, host or none'],
    ]) {
      const { r } = await build('FROM {{BASE}}\nRUN true\n', {}, [flag, value]);
      expect(r.code).toBe(2);
      expect(r.err).toContain(message);
      expect(r.err).not.toMatch(/\n\s+at /);
    }
  });

  test('a RUN on an image without /etc leaves no /etc: the mount points it needed go, their parents too (moby/buildkit#3307)', async () => {
    const busybox = readFileSync(run('sh', ['-c', 'command -v busybox']).trim());
    const { r, fs } = await build(
      'FROM scratch\nCOPY --chmod=755 busybox /busybox\nRUN ["/busybox", "true"]\nRUN --mount=type=tmpfs,target=/made/for/mount ["/busybox", "true"]\n',
      { busybox },
    );
    expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
    // (the runtime's own /dev, /proc and /sys stay, as BuildKit's stub cleaner leaves them: executor/stubs.go)
    expect(
      Object.keys(fs)
        .filter((p) => !p.startsWith('busybox'))
        .sort(),
    ).toEqual(['dev', 'proc', 'sys']);
  }, 60_000);
});
