// docker/build-push-action's own getArgs table (its __tests__/context.test.ts at the commit named in
// data/build-push-action.json: the inputs of each row and the buildx argv it makes from them), read by hoist's
// readInputs: every list is split as build-push-action splits it (quotes, lines, commas) and every value lands where
// buildx's flag would put it, the context too (the event's Git context by default, its token as GIT_AUTH_TOKEN.<host>).
// What belongs to buildx alone (--iidfile, --metadata-file, --builder, the default provenance attestation) is not hoist's; inputs hoist refuses (attestations,
// cgroup-parent) must fail naming themselves, and the rest of their row is read without them.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { type ActionInputs, type InputName, readInputs } from '../../src/action/inputs.js';
import { parseAddHost, parseShmSize, parseUlimit } from '../../src/exec/sandbox.js';
import { parseOutput } from '../../src/export/outputs.js';
import { parseGitContext } from '../../src/solver/git-context.js';
import { formatPlatform } from '../../src/image/platform.js';

interface Row {
  n: number;
  buildx: string;
  inputs: Record<string, string>;
  argv: string[];
  env?: Record<string, string>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const rows = (JSON.parse(readFileSync(path.join(here, 'data', 'build-push-action.json'), 'utf8')) as { rows: Row[] })
  .rows;

/** Inputs hoist refuses (it would not build what they ask for), by the message's start. */
const refused: Record<string, (value: string) => boolean> = {
  attests: (v) => v !== '' && !/type=(provenance|sbom)/.test(v),
  'cgroup-parent': (v) => v !== '',
};

/** A Git context by what it names (remote, ref, directory): buildx before 0.29 spells `?ref=` as `#`. */
function gitForm(context: string) {
  const g = parseGitContext(context);
  return g ? { remote: g.remote, ref: g.ref, subdir: g.subdir } : context;
}

/** The argv's flags as what they set, keeping only what hoist has to read the same way. */
function fromArgv(argv: string[]) {
  const out = {
    context: gitForm(argv[argv.length - 1]),
    sbom: false,
    provenance: undefined as string | undefined,
    buildArgs: [] as string[],
    labels: [] as string[],
    tags: [] as string[],
    outputs: [] as string[],
    platforms: [] as string[],
    secrets: [] as string[],
    addHosts: [] as string[],
    ulimits: [] as string[],
    annotations: [] as string[],
    shmSize: undefined as string | undefined,
    network: undefined as string | undefined,
    file: undefined as string | undefined,
    push: false,
    load: false,
  };
  for (let i = 1; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    switch (flag) {
      case '--build-arg':
        out.buildArgs.push(value);
        break;
      case '--label':
        out.labels.push(value);
        break;
      case '--tag':
        out.tags.push(value);
        break;
      case '--output':
        out.outputs.push(value);
        break;
      case '--platform':
        out.platforms.push(...value.split(','));
        break;
      case '--secret':
        out.secrets.push(value.replace(/,src=<secret-file>$/, ''));
        break;
      case '--add-host':
        out.addHosts.push(value);
        break;
      case '--ulimit':
        out.ulimits.push(value);
        break;
      case '--annotation':
        out.annotations.push(value);
        break;
      case '--shm-size':
        out.shmSize = value;
        break;
      case '--network':
        out.network = value;
        break;
      case '--file':
        out.file = value;
        break;
      case '--push':
        out.push = true;
        continue;
      case '--load':
        out.load = true;
        continue;
      // the default attestation (inline-only, which build-push-action adds by itself) is not hoist's default
      case '--attest':
        if (/^type=provenance,/.test(value) && !/inline-only=true|disabled=true/.test(value))
          out.provenance = /mode=max/.test(value) ? 'max' : 'min';
        if (/^type=sbom,/.test(value) && !/disabled=true/.test(value)) out.sbom = true;
        break;
      case '--iidfile':
      case '--metadata-file':
      case '--builder':
      case '--cgroup-parent':
        break;
      default:
        if (i === argv.length - 1) continue; // the context
        throw new Error(`a flag this test does not know: ${flag}`);
    }
    i++;
  }
  return out;
}

/** hoist's reading, spelled as the argv above spells it. */
function asArgv(i: ActionInputs) {
  const secrets = [...i.secrets].map(([id, s]) =>
    'env' in s && s.env ? `id=${id},env=${s.env}` : 'file' in s && s.file ? `id=${id},src=${s.file}` : `id=${id}`,
  );
  return {
    context: gitForm(i.context),
    sbom: i.sbom,
    provenance: i.provenance?.mode,
    buildArgs: [...i.buildArgs].map(([k, v]) => `${k}=${v}`),
    labels: i.labels,
    tags: i.tags,
    outputs: i.outputs,
    platforms: i.platforms.map(formatPlatform),
    secrets,
    addHosts: i.sandbox.addHosts ?? [],
    ulimits: i.sandbox.ulimits ?? [],
    annotations: i.annotations,
    shmSize: i.sandbox.shmSize,
    network: i.sandbox.network,
    file: i.file,
    push: i.push,
    load: i.load,
  };
}

test.each(rows.map((r) => [r.n, r] as const))('row %i is read as build-push-action reads it', (_n, r) => {
  const env = { ...(r.env ?? {}) };
  const given = { ...r.inputs };
  for (const [name, isRefused] of Object.entries(refused)) {
    if (given[name] === undefined || !isRefused(given[name])) continue;
    expect(() => readInputs((n: InputName) => given[n] ?? '', env)).toThrow(`input ${name}: `);
    delete given[name];
  }
  // the workflow run the table's rows were made in (build-push-action's test fixture: no commit id)
  Object.assign(env, { GITHUB_REPOSITORY: 'docker/build-push-action', GITHUB_REF: 'refs/heads/master', ...env });
  const ours = asArgv(readInputs((n: InputName) => given[n] ?? '', env));
  // build-push-action drops annotations (with a warning) for a buildx older than 0.12, as the row's buildx is
  if (semver.lt(r.buildx, '0.12.0')) ours.annotations = [];
  // and attestations for one older than 0.10
  if (semver.lt(r.buildx, '0.10.0')) Object.assign(ours, { provenance: undefined, sbom: false });
  const theirs = fromArgv(r.argv);
  expect(ours).toEqual({
    ...theirs,
    outputs: theirs.outputs.map((o) => parseOutput(o)),
    addHosts: theirs.addHosts.map((h) => parseAddHost(h)),
    ulimits: theirs.ulimits.map((u) => parseUlimit(u)),
    shmSize: theirs.shmSize === undefined ? undefined : parseShmSize(theirs.shmSize),
    network: theirs.network === undefined || theirs.network === 'default' ? undefined : theirs.network,
  });
});

test('the values of quoted multi-line secrets and build args are kept whole, the secrets untrimmed', () => {
  const i = readInputs((n: InputName, untrimmed?: boolean) => {
    const v =
      (
        {
          secrets:
            'GIT_AUTH_TOKEN=abcdefghi,jklmno=0123456789\n"MYSECRET=aaaaaaaa\nbbbbbbb\nccccccccc"\nFOO=bar\n"KEY=line\n"\n',
          'build-args': '"MULTILINE=aaaa\nbbbb\nccc"',
        } as Record<string, string>
      )[n] ?? '';
    return untrimmed ? v : v.trim();
  });
  expect(Object.fromEntries(i.secrets)).toEqual({
    GIT_AUTH_TOKEN: { value: 'abcdefghi,jklmno=0123456789' },
    MYSECRET: { value: 'aaaaaaaa\nbbbbbbb\nccccccccc' },
    FOO: { value: 'bar' },
    KEY: { value: 'line\n' },
  });
  expect(Object.fromEntries(i.buildArgs)).toEqual({ MULTILINE: 'aaaa\nbbbb\nccc' });
});

test("a secrets item that is not ID=VALUE is skipped with a warning that does not repeat it; a build arg alone is the environment's", () => {
  const i = readInputs(
    (n: InputName) =>
      (({ secrets: 'novalue-secret\nOK=1\nEMPTY=', 'build-args': 'FROM_ENV\nNOT_SET\nA=1' }) as Record<string, string>)[
        n
      ] ?? '',
    { FROM_ENV: 'env value' },
  );
  expect(Object.fromEntries(i.secrets)).toEqual({ OK: { value: '1' } });
  expect(i.notApplied).toEqual([
    'input secrets: item 1 is not ID=VALUE (skipped)',
    'input secrets: item 3 is not ID=VALUE (skipped)',
  ]);
  expect(Object.fromEntries(i.buildArgs)).toEqual({ FROM_ENV: 'env value', A: '1' });
  expect(readInputs((n: InputName) => (n === 'context' ? '{{defaultContext}}:docker' : '')).context).toBe('docker');
  expect(readInputs((n: InputName) => (n === 'context' ? '{{ defaultContext }}' : '')).context).toBe('.');
});

test('an output\'s quoted "name=a,b" is two names (buildx reads --output as CSV)', () => {
  expect(
    parseOutput(
      'type=image,"name=localhost:5000/name/app:latest,localhost:5000/name/app:foo",push-by-digest=true,name-canonical=true,push=true',
    ),
  ).toEqual({
    type: 'registry',
    names: ['localhost:5000/name/app:latest', 'localhost:5000/name/app:foo'],
    byDigest: true,
  });
});
