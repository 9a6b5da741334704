// Runs the hoist command in-process with captured output, as a test's user would type it.
import { createReadStream, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { run } from '../../src/cli/main.js';
import type { CommandIO } from '../../src/cli/io.js';
import { readBackPushed } from './readback.js';

export interface HoistResult {
  code: number;
  out: string;
  err: string;
}

/**
 * `readBack: (ref) => ref'` reads what was pushed back at another address (a test that counts the requests a proxy
 * sees has skopeo go to the registry itself); `readBack: false` leaves it to the test.
 */
export async function hoist(
  argv: string[],
  options: { stdin?: string; stdinFile?: string; readBack?: false | ((ref: string) => string) } = {},
): Promise<HoistResult> {
  let out = '';
  let err = '';
  const io: CommandIO = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    readStdin: () => options.stdin ?? '',
    ...(options.stdinFile ? { stdinStream: () => createReadStream(options.stdinFile as string) } : {}),
  };
  const code = await run(argv, io);
  if (code === 0 && options.readBack !== false)
    await readBackPushed(pushedBy(argv, out).map(options.readBack ?? ((r) => r)));
  return { code, out, err };
}

/**
 * What a command pushed (a build, `hoist push`, `hoist merge`), read back by skopeo (readback.ts) whatever the test
 * checks itself: every manifest the suite pushes goes through an independent reader, each platform of an index copied.
 */
function pushedBy(argv: readonly string[], out: string): string[] {
  const values = (flag: string, short?: string) =>
    argv.flatMap((a, i) =>
      a === flag || a === short ? [argv[i + 1]] : a.startsWith(`${flag}=`) ? [a.slice(flag.length + 1)] : [],
    );
  const tags = values('--tag', '-t');
  if (argv[0] === 'merge') return tags;
  if (argv[0] === 'push') {
    const positional = argv
      .slice(1)
      .filter(
        (a, i, all) =>
          !a.startsWith('-') &&
          !['--store', '--insecure-registry', '--registry-mirror', '--platform'].includes(all[i - 1]),
      );
    return positional.slice(-1);
  }
  if (argv[0] !== 'build') return [];
  const digest = /sha256:[0-9a-f]{64}\s*$/.exec(out)?.[0].trim();
  const refs: string[] = [];
  const byDigest = (name: string) => digest && refs.push(`${name.replace(/[:@][^/]*$/, '')}@${digest}`);
  if (argv.includes('--push-by-digest')) tags.forEach(byDigest);
  else if (argv.includes('--push')) refs.push(...tags);
  for (const o of values('--output', '-o')) {
    if (!/(^|,)(type=registry|push=true)(,|$)/.test(o)) continue;
    const names = /(?:^|,)"?name=([^",]+)/.exec(o)?.[1].split(',') ?? tags;
    if (/push-by-digest=true/.test(o)) names.forEach(byDigest);
    else refs.push(...names);
  }
  return refs;
}

/** The same, failing the test with the output when the exit code is not 0. */
export async function hoistOk(argv: string[], options?: Parameters<typeof hoist>[1]): Promise<HoistResult> {
  const r = await hoist(argv, options);
  if (r.code !== 0) throw new Error(`hoist ${argv.join(' ')} exited ${r.code}\n${r.err}${r.out}`);
  return r;
}

/** `hoist` with some environment variables set for the call (DOCKER_HOST, SOURCE_DATE_EPOCH…). */
export async function hoistWithEnv(env: Record<string, string>, argv: string[]): Promise<HoistResult> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await hoist(argv);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** What `hoist build --metadata-file` writes, as far as the cache tests read it. */
export interface BuildMetadata {
  'containerimage.digest': string;
  'hoist.steps': { stage: string | number; instruction: string; cached: boolean; source: string | null }[];
  'hoist.cache': { hits: number; misses: number; downloadedBytes: number; uploadedBytes: number };
}

/** A cache test's context in `dir`: src/a.txt, src/b.txt and app.txt (unless `files` says otherwise) and the Dockerfile. */
export function writeCacheContext(dir: string, files: Record<string, string>, dockerfile: string): string {
  mkdirSync(path.join(dir, 'src'), { recursive: true });
  const all = { 'src/a.txt': 'a\n', 'src/b.txt': 'b\n', 'app.txt': 'app\n', ...files };
  for (const [k, v] of Object.entries(all)) writeFileSync(path.join(dir, k), v);
  writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
  return dir;
}

/**
 * A CI rerun against a cache, as the cache tests try it with a two-stage app (a `build` stage whose RUN makes
 * /opt/vendor and /out, a final stage copying both from it): build then a one-file change (`direct`), and build, a
 * rerun with nothing changed (`rerun`), then the same change (`after`). `build(ctx, cache)` builds on a fresh
 * store with the cache named `cache` as both --cache-from and --cache-to.
 */
export async function rerunSequence(
  base: string,
  context: (files: Record<string, string>, dockerfile: string) => string,
  build: (ctx: string, cache: string) => Promise<{ meta: BuildMetadata; code: number }>,
) {
  const dockerfile = `FROM ${base} AS build
COPY src/ /src/
RUN mkdir -p /opt/vendor /out && echo vendored > /opt/vendor/lib && cat /src/a.txt /src/b.txt > /out/app
FROM ${base}
COPY --from=build /opt/vendor /opt/vendor
COPY --from=build /out /app
`;
  const same = context({}, dockerfile);
  const changed = context({ 'src/a.txt': 'a, changed\n' }, dockerfile);
  const first = await build(same, 'direct');
  const direct = await build(changed, 'direct');
  await build(same, 'rerun');
  const rerun = await build(same, 'rerun');
  const after = await build(changed, 'rerun');
  return { first, direct, rerun, after };
}
