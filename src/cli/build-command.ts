// `hoist build [OPTIONS] CONTEXT`: docker buildx build's flags where they exist. The image is recorded in the
// store under every -t name, then written to each output (--push, --output, --metadata-file, --iidfile).
import { ActionCredentials } from '../action/login.js';
import { annotationLevels, computeMeta, defaultTagRules, type Meta } from '../action/tags.js';
import type { CredentialSource } from '../registry/credentials.js';
import { dotenvReport, gitlabJob } from './gitlab.js';
import { type Isolation, isolations } from '../exec/executor.js';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build, NeedsRootError } from '../index.js';
import { defaultStoreDir } from '../store/store.js';
import { collectAfter, StoreLimitError, storeLimit } from '../store/collect.js';
import { canSudo, rerunWithSudo } from '../exec/sudo.js';
import { parseSecretFlag, type SecretSource } from '../exec/mounts.js';
import { parseSshFlag } from '../exec/ssh.js';
import { parseAnnotation } from '../image/annotations.js';
import { type ProvenanceOptions, requestedAttestations } from '../export/provenance.js';
import { parseBuildContext } from '../solver/named-contexts.js';
import { parseAddHost, parseNetwork, parseShmSize, parseUlimit, type RunSandbox } from '../exec/sandbox.js';
import { type OutputSpec, parseOutput, withPushAndLoad } from '../export/outputs.js';
import { parseGitContext } from '../solver/git-context.js';
import { formatBytes } from './format.js';
import { type CacheFromSpec, type CacheToSpec, parseCacheFrom, parseCacheTo } from '../cache/backend.js';
import { formatReference, parseReference } from '../image/reference.js';
import { parseArgv, keyValueOptions, type ParsedArgs, UsageError } from './argv.js';
import { parsePlatform } from '../image/platform.js';
import { commonOptions, commonUsage, withImageContext } from './image-context.js';
import type { CommandIO } from './io.js';
import { createProgress, type ProgressMode } from './progress.js';

export const buildUsage = `Usage: hoist build [OPTIONS] CONTEXT

Builds an image from a Dockerfile.
  -f, --file FILE            the Dockerfile (default: CONTEXT/Dockerfile; - reads standard input)
  -t, --tag NAME[:TAG]       name the image (repeatable); recorded in the store
      --build-arg K=V        (repeatable)
      --target STAGE
      --platform OS/ARCH[,…]  one platform, or several: an image each, pushed as one index
      --emulate              RUN for another architecture: register Debian's qemu-user-static with binfmt_misc
      --isolation MODE       how RUN runs: auto (runc over overlayfs where this machine may mount, else proot,
                             else chroot: a job in a container without privileges) | runc | proot | chroot
      --label K=V            add a label to the image (repeatable)
      --annotation [TYPE[,TYPE][[PLATFORM]]:]K=V   an annotation on the manifest (default), manifest-descriptor,
                             index or index-descriptor (repeatable; with --images, the tag rules' OCI annotations too)
      --build-context NAME=VALUE   what FROM NAME, COPY --from=NAME and from=NAME read: docker-image://REF or a
                             directory (repeatable)
      --provenance VALUE     a SLSA provenance attestation on the pushed image: true | mode=min|max[,builder-id=URL]
                             (also --attest type=provenance,…); none unless asked
      --sbom true            an SBOM attestation (SPDX, the packages dpkg and apk list) on the pushed image
                             (also --attest type=sbom)
      --add-host HOST:IP     an /etc/hosts entry for every RUN (repeatable)
      --network MODE         every RUN's network: default (the host's) | host | none (RUN --network decides for its step)
      --shm-size SIZE        every RUN's /dev/shm size (e.g. 2g; default 64m)
      --ulimit NAME=SOFT[:HARD]   a limit for every RUN, e.g. nofile=1024:2048 (repeatable)
      --push                 push every -t name (same as --output type=registry)
      --push-by-digest       push to each -t name's repository without a tag and print the digest (a matrix
                             leg's push, joined later by hoist merge; same as --output type=registry,push-by-digest=true)
      --load                 load into the Docker daemon at DOCKER_HOST (same as --output type=docker)
  -o, --output SPEC          type=registry | type=docker,dest=FILE | type=oci,dest=FILE[,tar=false] | type=local,dest=DIR
      --images IMAGE[,…]     name the image by tag rules (metadata-action's, as the Action's images input): needs a
                             CI's facts (GitLab CI); in a GitLab job the default is $CI_REGISTRY_IMAGE when no -t
      --tag-rule RULE        a tag rule for --images (repeatable, or one a line; default: branch, pr, semver {{version}},
                             {{major}}.{{minor}}, {{major}}, schedule)
      --flavor LINE          metadata-action's flavor (repeatable: latest=auto|true|false, prefix=, suffix=)
      --dotenv FILE          write HOIST_DIGEST, HOIST_IMAGE_ID, HOIST_TAGS, HOIST_VERSION for later jobs (in a GitLab
                             job: $CI_PROJECT_DIR/hoist.env unless given)
      --metadata-file FILE   write buildx's metadata JSON (digests, names, hoist.steps)
      --iidfile FILE         write the image ID
      --secret id=ID,src=FILE|env=VAR   a secret for RUN --mount=type=secret (never stored in the image)
      --ssh default|ID[=SOCKET|KEY,…]   an SSH agent for RUN --mount=type=ssh (default: SSH_AUTH_SOCK)
      --no-cache             take no step from the cache (results are still recorded)
      --no-cache-filter STAGE   the same for the steps of these stages (repeatable, or comma-separated)
      --cache-from SPEC      a cache to take steps from: type=registry,ref=REF (or REF) | type=local,src=DIR
      --cache-to SPEC        where this build's records go: type=registry,ref=REF[,mode=min|max] | type=inline |
                             type=local,dest=DIR[,mode=min|max]
      --pull                 accepted: base image tags are resolved at every build
      --progress MODE        auto | plain | tty | quiet
  -q, --quiet                no progress: only the image digest is printed (as docker buildx build -q)
      --store-max SIZE       after the build, trim the store to SIZE, least recently used first: 10GB, 512MiB, 15%
                             of its disk, or 0 for never (default: $HOIST_STORE_MAX, else 10% of the disk, at least 2 GB)`;

export async function buildCommand(argv: string[], io: CommandIO): Promise<number> {
  const a = parseArgv(
    argv,
    {
      ...commonOptions,
      file: { value: true, short: 'f' },
      tag: { value: true, repeat: true, short: 't' },
      'build-arg': { value: true, repeat: true },
      target: { value: true },
      platform: { value: true, repeat: true },
      label: { value: true, repeat: true },
      push: {},
      'push-by-digest': {},
      load: {},
      output: { value: true, repeat: true, short: 'o' },
      'metadata-file': { value: true },
      images: { value: true, repeat: true },
      'tag-rule': { value: true, repeat: true },
      flavor: { value: true, repeat: true },
      dotenv: { value: true },
      iidfile: { value: true },
      'no-cache': {},
      'no-cache-filter': { value: true, repeat: true },
      'cache-from': { value: true, repeat: true },
      'cache-to': { value: true, repeat: true },
      pull: {},
      secret: { value: true, repeat: true },
      ssh: { value: true, repeat: true },
      progress: { value: true },
      quiet: { short: 'q' },
      emulate: {},
      isolation: { value: true },
      'store-max': { value: true },
      'add-host': { value: true, repeat: true },
      'build-context': { value: true, repeat: true },
      provenance: { value: true },
      attest: { value: true, repeat: true },
      sbom: { value: true },
      annotation: { value: true, repeat: true },
      network: { value: true },
      'shm-size': { value: true },
      ulimit: { value: true, repeat: true },
    },
    'build',
  );
  if (a.flags.has('help')) {
    io.out(`${buildUsage}\n\n${commonUsage}\n`);
    return 0;
  }
  if (a.positional.length !== 1) throw new UsageError('usage: hoist build [OPTIONS] CONTEXT (see hoist build --help)');
  const context = a.positional[0];
  const job = gitlabJob();
  const tags = (a.options.get('tag') ?? []).map((t) => formatReference(parseReference(t)));
  // Tag rules (the Action's): the images given, or in a GitLab job without -t the project's own image.
  const images = (a.options.get('images') ?? [])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
  if (images.length === 0 && tags.length === 0 && job?.image) images.push(job.image);
  let meta: Meta | undefined;
  if (images.length > 0) {
    if (!job)
      throw new UsageError(
        "--images names the image by tag rules, which need the CI's facts (a GitLab job: GITLAB_CI and its variables); outside CI give -t NAME:TAG",
      );
    meta = asUsage(() =>
      computeMeta(
        {
          images,
          tags: tagRules(a.options.get('tag-rule')) ?? defaultTagRules,
          flavor: a.options.get('flavor') ?? [],
          labels: [],
          annotations: [],
        },
        job.git,
        job.repo,
        (m) => io.err(`warning: ${m}\n`),
      ),
    );
    tags.push(...meta.tags.map((t) => formatReference(parseReference(t))).filter((t) => !tags.includes(t)));
  }
  // --push-by-digest is the push: with --push too, the image is still pushed once, untagged
  const outputs: OutputSpec[] = withPushAndLoad(
    (a.options.get('output') ?? []).map((o) => asUsage(() => parseOutput(o))),
    { push: a.flags.has('push'), pushByDigest: a.flags.has('push-by-digest'), load: a.flags.has('load') },
  );
  const network = asUsage(() => parseNetwork(a.options.get('network')?.at(-1) ?? ''));
  const shm = a.options.get('shm-size')?.at(-1);
  const sandbox: RunSandbox = {
    addHosts: (a.options.get('add-host') ?? []).map((h) => asUsage(() => parseAddHost(h))),
    ...(network !== 'default' ? { network } : {}),
    ...(shm ? { shmSize: asUsage(() => parseShmSize(shm)) } : {}),
    ulimits: (a.options.get('ulimit') ?? []).map((u) => asUsage(() => parseUlimit(u))),
  };
  const secrets = new Map((a.options.get('secret') ?? []).map((o) => asUsage(() => parseSecretFlag(o))));
  const ssh = new Map((a.options.get('ssh') ?? []).map((o) => asUsage(() => parseSshFlag(o))));
  const cacheFrom = (a.options.get('cache-from') ?? []).map((o) => asUsage(() => parseCacheFrom(o)));
  const cacheTo = (a.options.get('cache-to') ?? []).map((o) => asUsage(() => parseCacheTo(o)));
  // In a GitLab job the cache defaults to the project's registry, every stage kept (mode=max).
  if (job?.image && cacheFrom.length === 0 && cacheTo.length === 0) {
    cacheFrom.push(parseCacheFrom(`type=registry,ref=${job.image}/cache`));
    cacheTo.push(parseCacheTo(`type=registry,ref=${job.image}/cache,mode=max`));
  }
  const progressMode = a.flags.has('quiet') ? 'quiet' : (a.options.get('progress')?.[0] ?? 'auto');
  if (!['auto', 'plain', 'tty', 'quiet'].includes(progressMode))
    throw new UsageError(`--progress ${progressMode}: expected auto, plain, tty or quiet`);
  // `-f -`: the Dockerfile from standard input, as docker build reads it (read once: a build run again under sudo
  // gets the text through the environment file sudo.ts hands over, not from a standard input already consumed).
  const stdinDockerfile =
    a.options.get('file')?.[0] === '-' ? (process.env[stdinDockerfileVar] ?? io.readStdin()) : undefined;
  const epochText = process.env.SOURCE_DATE_EPOCH;
  const sourceDateEpoch = epochText !== undefined && /^\d+$/.test(epochText) ? Number(epochText) : undefined;
  try {
    const dotenv = a.options.get('dotenv')?.[0] ?? (job ? path.join(job.projectDir, 'hoist.env') : undefined);
    return await buildWith(a, io, {
      tags,
      outputs,
      secrets,
      ssh,
      sandbox,
      cacheFrom,
      cacheTo,
      progressMode,
      sourceDateEpoch,
      context,
      stdinDockerfile,
      meta,
      dotenv,
      credentials: job?.login ? new ActionCredentials(job.login) : undefined,
    });
  } catch (e) {
    if (!(e instanceof NeedsRootError) || !canSudo()) throw e;
    io.err('hoist: RUN needs root; running the build again with sudo\n');
    io.resumeCommands?.(); // the build under sudo guards its own output
    if (stdinDockerfile !== undefined) process.env[stdinDockerfileVar] = stdinDockerfile;
    const store = path.resolve(a.options.get('store')?.[0] ?? defaultStoreDir());
    const owned = [
      store,
      ...outputs.flatMap((o) => ('dest' in o && o.dest ? [path.resolve(o.dest)] : [])),
      ...['metadata-file', 'iidfile'].flatMap((k) => a.options.get(k) ?? []),
    ];
    return rerunWithSudo(['build', ...argv, ...(a.options.has('store') ? [] : ['--store', store])], owned, [
      path.join(store, 'snapshots'),
      path.join(store, 'cache-mounts'),
    ]);
  }
}

/** --provenance, --sbom and --attest as buildx reads them (export/provenance.ts requestedAttestations). */
function provenanceOption(a: ParsedArgs): { provenance?: ProvenanceOptions; sbom?: boolean } {
  const { provenance, sbom } = asUsage(() =>
    requestedAttestations(
      {
        provenance: a.options.get('provenance')?.at(-1) ?? '',
        sbom: a.options.get('sbom')?.at(-1) ?? '',
        attests: a.options.get('attest') ?? [],
      },
      { provenance: '--provenance', sbom: '--sbom', attests: '--attest' },
    ),
  );
  return { ...(provenance ? { provenance } : {}), ...(sbom ? { sbom } : {}) };
}

/** A flag's value that does not parse is a usage error (exit 2), whichever module read it. */
function asUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

interface BuildOptions {
  tags: string[];
  outputs: OutputSpec[];
  secrets: Map<string, SecretSource>;
  ssh: Map<string, string[]>;
  sandbox: RunSandbox;
  cacheFrom: CacheFromSpec[];
  cacheTo: CacheToSpec[];
  progressMode: string;
  sourceDateEpoch: number | undefined;
  context: string;
  stdinDockerfile: string | undefined;
  /** what the tag rules gave (--images): its OCI labels go on the image, its version into the report */
  meta?: Meta;
  dotenv?: string;
  /** the CI job's registry login (in memory), before the docker config */
  credentials?: CredentialSource;
}

const stdinDockerfileVar = 'HOIST_STDIN_DOCKERFILE';

const fileOption = (a: ParsedArgs): { dockerfile?: string } =>
  a.options.has('file') ? { dockerfile: a.options.get('file')?.[0] as string } : {};

async function buildWith(
  a: ParsedArgs,
  io: CommandIO,
  {
    tags,
    outputs,
    secrets,
    ssh,
    sandbox,
    cacheFrom,
    cacheTo,
    progressMode,
    sourceDateEpoch,
    context,
    stdinDockerfile,
    meta,
    dotenv,
    credentials,
  }: BuildOptions,
): Promise<number> {
  return withImageContext(
    a,
    io,
    async ({ store, client }) => {
      const quiet = progressMode === 'quiet';
      const progress = createProgress(progressMode as ProgressMode, io);
      let finished = false;
      const finish = (ok: boolean) => {
        if (!finished) progress.finish(ok);
        finished = true;
      };
      const given = a.options.get('store-max')?.[0];
      const limit = await storeLimit(given ?? process.env.HOIST_STORE_MAX, store.root).catch((e: unknown) => {
        throw e instanceof StoreLimitError
          ? new UsageError(`${given !== undefined ? '--store-max' : 'HOIST_STORE_MAX'}: ${e.message}`)
          : e;
      });
      const outcome = await build({
        context,
        // From standard input the Dockerfile is named `Dockerfile` in errors, as docker build names it.
        // (a Git context's Dockerfile is read inside it: -f relative to its directory, Dockerfile by default)
        ...(stdinDockerfile !== undefined
          ? { dockerfile: 'Dockerfile' }
          : parseGitContext(context)
            ? fileOption(a)
            : { dockerfile: a.options.get('file')?.[0] ?? path.join(context, 'Dockerfile') }),
        ...(stdinDockerfile !== undefined ? { dockerfileText: stdinDockerfile } : {}),
        tags,
        buildArgs: keyValueOptions(a.options.get('build-arg') ?? []),
        target: a.options.get('target')?.[0],
        platforms: (a.options.get('platform') ?? [])
          .flatMap((v) => v.split(','))
          .map((v) => v.trim())
          .filter(Boolean)
          .map((v) => asUsage(() => parsePlatform(v))),
        labels: new Map([
          ...(meta?.labels ?? []).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
          ...keyValueOptions(a.options.get('label') ?? []),
        ]),
        ...provenanceOption(a),
        namedContexts: new Map((a.options.get('build-context') ?? []).map((c) => asUsage(() => parseBuildContext(c)))),
        annotations: [...(meta?.annotationsAt(annotationLevels()) ?? []), ...(a.options.get('annotation') ?? [])].map(
          (t) => asUsage(() => parseAnnotation(t)),
        ),
        outputs,
        cacheFrom,
        cacheTo,
        sourceDateEpoch,
        secrets,
        ssh,
        noCache: a.flags.has('no-cache'),
        profile: a.flags.has('debug'),
        emulate: a.flags.has('emulate'),
        sandbox,
        isolation: isolationOption(a.options.get('isolation')?.[0] ?? process.env.HOIST_ISOLATION),
        noCacheFilter: (a.options.get('no-cache-filter') ?? [])
          .flatMap((v) => v.split(','))
          .map((v) => v.trim())
          .filter(Boolean),
        store,
        client,
        events: {
          warning: (m) => io.err(`warning: ${m}\n`),
          log: (m) => void (quiet || io.err(`${m}\n`)),
          stepStart: (st) => progress.start(st),
          output: (step, line) => progress.output(step, line),
          step: (st) => progress.done(st),
          built: () => finish(true),
        },
      })
        .catch((e: unknown) => {
          finish(false);
          throw e;
        })
        .finally(() => collectAfter(store, limit, (line) => void (quiet || io.err(`${line}\n`))));
      if (!quiet)
        for (const name of outcome.unusedBuildArgs) io.err(`warning: build-arg ${name} was not consumed by any ARG\n`);
      // The log's last line: what the cache gave and what moved over the network.
      const c = outcome.cache;
      if (!quiet)
        io.err(
          `cache: ${c.hits} of ${c.hits + c.misses} steps cached, ${formatBytes(c.downloadedBytes)} downloaded, ${formatBytes(c.uploadedBytes)} uploaded\n`,
        );
      const iid = a.options.get('iidfile')?.[0];
      if (iid) await writeFile(iid, outcome.imageID);
      const metaFile = a.options.get('metadata-file')?.[0];
      if (metaFile) await writeFile(metaFile, `${JSON.stringify(outcome.metadata, null, 2)}\n`);
      if (dotenv)
        await writeFile(
          dotenv,
          dotenvReport({
            digest: outcome.digest,
            imageID: outcome.imageID,
            tags,
            ...(meta?.version ? { version: meta.version } : {}),
          }),
        );
      io.out(`${outcome.digest}\n`);
      return 0;
    },
    { ...(credentials ? { credentials } : {}) },
  );
}

/**
 * The --tag-rule values, one rule a line as well (a CI variable or a component's input holds several: `--tag-rule
 * "$RULES"`); undefined when none is given, and none when every value is empty.
 */
function tagRules(values: readonly string[] | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  const rules = values
    .flatMap((v) => v.split('\n'))
    .map((r) => r.trim())
    .filter(Boolean);
  return rules.length ? rules : undefined;
}

/** --isolation (or HOIST_ISOLATION): one of auto, runc, proot, chroot. */
export function isolationOption(value: string | undefined): Isolation {
  if (value === undefined || value === '') return 'auto';
  if (!(isolations as readonly string[]).includes(value))
    throw new UsageError(`--isolation ${value}: expected ${isolations.join(', ')}`);
  return value as Isolation;
}
