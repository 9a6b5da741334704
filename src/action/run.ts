// The Action: inputs → (through sudo when the plan has RUN and the runner user is not root) tags, labels and
// credentials → one engine build → outputs, job summary, annotations. The only module with the runner's I/O;
// everything it decides is in the pure modules beside it (inputs, tags, login, report).
import { readdirSync } from 'node:fs';
import path from 'node:path';
import * as core from '@actions/core';
import * as github from '@actions/github';
import { type CacheFromSpec, type CacheToSpec, parseCacheFrom, parseCacheTo } from '../cache/backend.js';
import { isDockerfileError, lint, readDockerfile } from '../dockerfile/index.js';
import { canSudo, rerunWithSudo } from '../exec/sudo.js';
import { type OutputSpec, withPushAndLoad } from '../export/outputs.js';
import { parseGitContext } from '../solver/git-context.js';
import { mergedIndex } from '../export/merge.js';
import { pushImage } from '../export/push.js';
import { formatPlatform } from '../image/platform.js';
import { formatReference, formatRepository, parseReference } from '../image/reference.js';
import { build, type BuildOutcome, NeedsRootError, planRunsSteps } from '../index.js';
import { RegistryClient } from '../registry/client.js';
import { mirrorsFromEnv } from '../registry/transport.js';
import { collectAfter, StoreLimitError, storeLimit } from '../store/collect.js';
import { defaultStoreDir, Store } from '../store/store.js';
import { readInside } from '../solver/context.js';
import { commitTime, gitContext, repoInfo } from './github.js';
import { type ActionInputs, type InputName, InputError, readInputs } from './inputs.js';
import { parseAnnotation } from '../image/annotations.js';
import { parseBuildContext } from '../solver/named-contexts.js';
import type { ProvenanceOptions } from '../export/provenance.js';
import { ActionCredentials } from './login.js';
import { CommandGuard } from './commands.js';
import { type OutputName, outputNames, StageLog, summaryMarkdown } from './report.js';
import { annotationLevels, computeMeta, defaultTagRules, type Meta } from './tags.js';
import { version } from '../version.js';

/** What the build prints goes out with workflow commands stopped; hoist's own commands with them on (commands.ts). */
const guard = new CommandGuard();
const warn = (m: string) => guard.command(() => core.warning(m));

export async function run(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  core.info(`hoist ${version}`);
  let workspace = env.GITHUB_WORKSPACE || process.cwd();
  let inputs: ActionInputs | undefined;
  try {
    inputs = readInputs((n: InputName, untrimmed?: boolean) => core.getInput(n, { trimWhitespace: !untrimmed }));
    for (const s of [inputs.password, inputs.githubToken, ...[...inputs.secrets.values()].map((v) => v.value)])
      if (s) core.setSecret(s);
    workspace = path.resolve(workspace);
    // The matrix recipe's last job: no build, one index of what the legs pushed by digest.
    if (inputs.merge.length || inputs.mergeDigestsDir) {
      await merge(inputs, env, workspace);
      return;
    }
    // A Git context (the default: the event's) is fetched by the build; its Dockerfile is read inside it.
    const fromGit = parseGitContext(inputs.context) !== undefined;
    const context = fromGit ? inputs.context : path.resolve(workspace, inputs.context);
    const dockerfile = fromGit
      ? inputs.file
      : inputs.file
        ? path.resolve(workspace, inputs.file)
        : path.join(context, 'Dockerfile');
    // named contexts: a directory is relative to the workspace
    const namedContexts = new Map(
      inputs.buildContexts.map((c) => {
        try {
          return parseBuildContext(c, workspace);
        } catch (e) {
          throw new InputError(`input build-contexts: ${(e as Error).message}`);
        }
      }),
    );
    const plan = {
      context,
      dockerfile,
      buildArgs: inputs.buildArgs,
      target: inputs.target,
      platform: inputs.platform,
      namedContexts,
    };
    // RUN needs root: decided from the plan before anything is fetched, so that the build runs once (a Git context's
    // Dockerfile is not here to read: its build runs through sudo where there is sudo).
    if (process.getuid?.() !== 0 && (fromGit ? canSudo() : planRunsSteps(plan))) {
      if (!canSudo()) throw new NeedsRootError();
      core.info('The Dockerfile has RUN steps, which need root: running the build through sudo');
      process.exitCode = await rerunWithSudo([], ownedPaths(env, inputs, workspace), storeKeepOwners(env));
      return;
    }
    for (const m of inputs.notApplied) warn(m);
    if (!fromGit && dockerfile !== undefined) checkDockerfile(context, dockerfile, inputs, workspace);

    const meta = inputs.images.length ? await metadata(inputs, workspace) : undefined;
    const tags = [...new Set([...inputs.tags, ...(meta?.tags ?? [])].map((t) => normalTag(t)))];
    const labels = new Map(
      (meta ? meta.labels : inputs.labels).map(
        (l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const,
      ),
    );
    // The annotations input as build-push-action's (--annotation); with images, metadata-action's annotations (the OCI
    // ones and these lines) at the levels DOCKER_METADATA_ANNOTATIONS_LEVELS names, as its labels go on the image.
    const annotations = (meta ? meta.annotationsAt(annotationLevels()) : inputs.annotations).map((a) => {
      try {
        return parseAnnotation(a);
      } catch (e) {
        throw new InputError(`input annotations: ${(e as Error).message}`);
      }
    });
    // push makes the outputs' first image output push (buildx's --push), or is one; push-by-digest is the push (with
    // push: true too, once, untagged), to the repositories of the tags or of the output's names
    const outputs: OutputSpec[] = withPushAndLoad(inputs.outputs, inputs);
    const unnamed = outputs.find((o) => o.type === 'registry' && !o.names?.length);
    if (unnamed && tags.length === 0)
      throw new InputError(
        `${inputs.pushByDigest ? 'push-by-digest' : 'push'} is true but there is nothing to push to: give the tags input, or images (with tag-rules that match this event), or name=… in outputs`,
      );
    const caches = cacheSpecs(inputs, env);

    const credentials = new ActionCredentials({ ...inputs, actor: github.context.actor }, env);
    if (credentials.loginRegistry) core.info(`Logging in to ${credentials.loginRegistry} as ${inputs.username}`);
    // (a self-hosted runner's docker.io mirror, as its daemon's registry-mirrors)
    const client = new RegistryClient({ credentials, mirrors: mirrorsFromEnv(env) });
    const store = await Store.open(path.resolve(env.HOIST_STORE || defaultStoreDir()));
    const limit = await storeLimit(env.HOIST_STORE_MAX, store.root).catch(async (e: unknown) => {
      await store.close();
      throw e instanceof StoreLimitError ? new InputError(`HOIST_STORE_MAX: ${e.message}`) : e;
    });
    const log = new StageLog({
      info: (l) => guard.info(l),
      startGroup: (n) => guard.command(() => core.startGroup(n)),
      endGroup: () => guard.command(() => core.endGroup()),
    });
    let outcome: BuildOutcome;
    try {
      outcome = await build({
        context,
        ...(dockerfile !== undefined ? { dockerfile } : {}),
        // a re-run with debug logging on (RUNNER_DEBUG) says where the time went
        profile: process.env.RUNNER_DEBUG === '1',
        tags,
        buildArgs: inputs.buildArgs,
        target: inputs.target,
        platform: inputs.platform,
        namedContexts,
        ...(inputs.platforms.length > 1 ? { platforms: inputs.platforms } : {}),
        emulate: inputs.emulate,
        sandbox: inputs.sandbox,
        isolation: inputs.isolation,
        labels,
        annotations,
        ...provenanceOf(inputs, env),
        ...(inputs.sbom ? { sbom: true } : {}),
        outputs,
        cacheFrom: caches.from,
        cacheTo: caches.to,
        noCache: inputs.noCache,
        noCacheFilter: inputs.noCacheFilters,
        secrets: inputs.secrets,
        ssh: inputs.ssh,
        sourceDateEpoch: /^\d+$/.test(env.SOURCE_DATE_EPOCH ?? '') ? Number(env.SOURCE_DATE_EPOCH) : undefined,
        store,
        client,
        events: {
          warning: warn,
          log: (m) => guard.info(m),
          stepStart: (st) => log.start(st),
          output: (st, line) => log.output(st, line),
          step: (st) => log.done(st),
          built: () => log.close(),
        },
      }).finally(() => log.close());
      for (const w of client.warnings()) warn(`registry: ${w}`);
    } finally {
      // a self-hosted runner's store stays under its limit (HOIST_STORE_MAX; a hosted runner's starts empty)
      await collectAfter(store, limit, (l) => guard.info(l));
      await store.close();
      await client.close();
    }
    setOutputs(outcome, meta, labels, inputs);
    const c = outcome.cache;
    guard.info(`cache: ${c.hits} of ${c.hits + c.misses} steps cached; digest ${outcome.digest}`);
    guard.resume();
    if (env.GITHUB_STEP_SUMMARY && env.DOCKER_BUILD_SUMMARY !== 'false') {
      await core.summary.addRaw(summaryMarkdown(outcome, { pushed: outcome.pushed.length > 0 })).write();
    }
  } catch (e) {
    // A base image's ONBUILD RUN is not in the plan: found only when the build reaches it, it needs sudo all the
    // same (nothing was pushed yet: steps come before outputs).
    if (e instanceof NeedsRootError && process.getuid?.() !== 0 && canSudo()) {
      guard.resume(); // the build under sudo prints with a guard of its own
      core.info('A step needs root: running the build again through sudo');
      process.exitCode = await rerunWithSudo([], ownedPaths(env, inputs, workspace), storeKeepOwners(env));
      return;
    }
    fail(e, workspace);
  }
}

/** What the build under sudo writes that the runner user must own afterwards (the store, the outputs' files). */
function ownedPaths(env: NodeJS.ProcessEnv, inputs?: ActionInputs, workspace = '.'): string[] {
  return [
    path.resolve(env.HOIST_STORE || defaultStoreDir()),
    ...(inputs?.outputs ?? []).flatMap((o) => ('dest' in o && o.dest ? [path.resolve(workspace, o.dest)] : [])),
  ];
}

/** In the store, what keeps the image's own owners (unpacked layers, cache mounts): left to root. */
function storeKeepOwners(env: NodeJS.ProcessEnv): string[] {
  const store = path.resolve(env.HOIST_STORE || defaultStoreDir());
  return [path.join(store, 'snapshots'), path.join(store, 'cache-mounts')];
}

function normalTag(t: string): string {
  try {
    return formatReference(parseReference(t));
  } catch (e) {
    throw new InputError(`tag ${JSON.stringify(t)}: ${(e as Error).message}`);
  }
}

/** The Dockerfile's build checks as annotations at their lines, before the build. */
function checkDockerfile(context: string, dockerfile: string, inputs: ActionInputs, workspace: string): void {
  const text = readInside(context, dockerfile);
  if (text === undefined) return; // the build says so
  const result = lint(readDockerfile(text, dockerfile), { buildArgs: inputs.buildArgs, target: inputs.target });
  for (const w of result.warnings)
    guard.command(() =>
      core.warning(`[${w.check}] ${w.message}`, {
        file: path.relative(workspace, w.file),
        startLine: w.line,
        title: w.check,
      }),
    );
  if (result.failOnWarnings && result.warnings.length > 0)
    throw new Error("build checks failed (the Dockerfile's check directive sets error=true)");
}

/**
 * The tag rules' result for this event. org.opencontainers.image.created is the commit's time (the event's, else the
 * API's, else the checkout's git), so that the same commit built again gives the same image (metadata-action stamps
 * the run's time: every rerun a new digest); `created: now` keeps the run's time.
 */
async function metadata(inputs: ActionInputs, workspace: string): Promise<Meta> {
  const ctx = github.context;
  const repo = await repoInfo(ctx, inputs.githubToken, warn);
  const git = gitContext(ctx);
  if (!git.commitDateFrom) {
    const t = await commitTime(ctx, git.sha, inputs.githubToken, workspace);
    if ('date' in t) {
      git.commitDate = t.date;
      git.commitDateFrom = t.from;
    } else if (inputs.created === 'commit')
      guard.info(
        `created: the commit's time is not known (${t.why}); org.opencontainers.image.created is the run's time`,
      );
  }
  if (inputs.created === 'commit' && git.commitDateFrom) {
    git.created = git.commitDate;
    guard.info(
      `created: org.opencontainers.image.created is the commit's time, ${git.commitDate.toISOString()} (from the ${git.commitDateFrom}), so that a rebuild of this commit gives the same image (created: now for the run's time)`,
    );
  }
  return computeMeta(
    {
      images: inputs.images,
      tags: inputs.tagRules.length ? inputs.tagRules : defaultTagRules,
      flavor: inputs.flavor,
      labels: inputs.labels,
      annotations: inputs.annotations,
    },
    git,
    repo.info,
    warn,
  );
}

/** `cache: auto`: the Actions cache, read and written (mode=max, cache mounts kept), scoped per image and platform. */
function cacheSpecs(inputs: ActionInputs, env: NodeJS.ProcessEnv): { from: CacheFromSpec[]; to: CacheToSpec[] } {
  if (inputs.cacheFrom.length || inputs.cacheTo.length || inputs.cache === 'off')
    return { from: inputs.cacheFrom, to: inputs.cacheTo };
  if (!env.ACTIONS_RUNTIME_TOKEN || !(env.ACTIONS_RESULTS_URL || env.ACTIONS_CACHE_URL)) {
    core.info(
      'cache: auto: the Actions cache service is not available to this step (no ACTIONS_RUNTIME_TOKEN); building without a cache',
    );
    return { from: [], to: [] };
  }
  return { from: [parseCacheFrom('type=gha')], to: [parseCacheTo('type=gha,mode=max')] };
}

/**
 * `merge`: the images named (REPO@sha256:…), and those the digest files in `merge-digests-dir` name (files called
 * after the hex of each leg's digest, in the repository of `images` or of the first tag: the docker docs' matrix
 * example), pushed as one index under the tags (the tag rules apply to it as to a build).
 */
async function merge(inputs: ActionInputs, env: NodeJS.ProcessEnv, workspace: string): Promise<void> {
  const meta = inputs.images.length ? await metadata(inputs, workspace) : undefined;
  const tags = [...new Set([...inputs.tags, ...(meta?.tags ?? [])].map((t) => normalTag(t)))];
  if (tags.length === 0)
    throw new InputError(
      'merge: nothing to push the index to: give the tags input, or images (with tag-rules that match this event)',
    );
  const sources = [...inputs.merge];
  if (inputs.mergeDigestsDir) {
    const dir = path.resolve(workspace, inputs.mergeDigestsDir);
    const repo = formatRepository(parseReference(meta?.images[0] ?? tags[0]));
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      throw new InputError(
        `input merge-digests-dir: cannot read ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
    for (const n of names.sort()) {
      const hex = n.replace(/^sha256[:_-]/, '');
      if (!/^[0-9a-f]{64}$/.test(hex))
        throw new InputError(
          `input merge-digests-dir: ${n} in ${dir} is not a digest (a file named after a leg's digest, hex)`,
        );
      sources.push(`${repo}@sha256:${hex}`);
    }
  }
  if (sources.length === 0)
    throw new InputError('merge: no images to merge (merge lists none, merge-digests-dir holds none)');
  const credentials = new ActionCredentials({ ...inputs, actor: github.context.actor }, env);
  const client = new RegistryClient({ credentials });
  try {
    const { image, platforms } = await mergedIndex(
      client,
      sources.map((s) => parseReference(s)),
    );
    guard.info(
      `merging ${sources.length} images (${platforms.map(formatPlatform).join(', ')}) into ${tags.join(', ')}`,
    );
    const pushed = await pushImage(
      client,
      image,
      tags.map((t) => parseReference(t)),
    );
    guard.info(
      `pushed ${pushed.references.join(', ')} (${pushed.blobs.uploaded} blobs uploaded, ${pushed.blobs.mounted} mounted, ${pushed.blobs.exists} already there)`,
    );
    const labels = new Map<string, string>();
    const descriptor = { mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size };
    setOutputs(
      {
        digest: pushed.digest,
        imageID: pushed.digest,
        tags,
        metadata: {
          'containerimage.digest': pushed.digest,
          'containerimage.descriptor': descriptor,
          'image.name': tags.join(','),
        },
        cache: { hits: 0, misses: 0, downloadedBytes: 0, uploadedBytes: pushed.uploadedBytes },
      },
      meta,
      labels,
      inputs,
    );
    guard.resume();
  } finally {
    for (const w of client.warnings()) warn(`registry: ${w}`);
    await client.close();
  }
}

/**
 * The provenance the inputs ask for; none unless asked (build-push-action attaches mode=min to what it pushes by
 * default; hoist does not, so that the same commit built again gives the same digest: an attestation records the
 * build's times). The builder id is the workflow run's page.
 */
function provenanceOf(inputs: ActionInputs, env: NodeJS.ProcessEnv): { provenance?: ProvenanceOptions } {
  const p = inputs.provenance;
  if (!p) return {};
  return {
    provenance: {
      ...p,
      builderId:
        p.builderId ??
        `${env.GITHUB_SERVER_URL || 'https://github.com'}/${env.GITHUB_REPOSITORY ?? ''}/actions/runs/${env.GITHUB_RUN_ID ?? ''}/attempts/${env.GITHUB_RUN_ATTEMPT || '1'}`,
    },
  };
}

function setOutputs(
  o: Pick<BuildOutcome, 'digest' | 'imageID' | 'metadata' | 'tags' | 'cache'>,
  meta: Meta | undefined,
  labels: Map<string, string>,
  inputs: ActionInputs,
): void {
  // Tags as written (metadata-action's spelling: user/app:1, not docker.io/user/app:1); annotations at the levels
  // DOCKER_METADATA_ANNOTATIONS_LEVELS names (metadata-action's variable; manifest by default).
  const written = [...new Set([...inputs.tags, ...(meta?.tags ?? [])])];
  const levels = annotationLevels();
  const values: Record<OutputName, string> = {
    digest: o.digest,
    imageid: o.imageID,
    metadata: JSON.stringify(o.metadata),
    tags: written.join('\n'),
    'tag-names': (meta?.json['tag-names'] ?? []).join('\n'),
    labels: [...labels].map(([k, v]) => `${k}=${v}`).join('\n'),
    annotations: (meta ? meta.annotationsAt(levels) : inputs.annotations).join('\n'),
    image: o.tags.length ? `${formatRepository(parseReference(o.tags[0]))}@${o.digest}` : '',
    version: meta?.version ?? '',
    'cache-hits': `${o.cache.hits}/${o.cache.hits + o.cache.misses}`,
    json: JSON.stringify(
      meta
        ? { ...meta.json, annotations: meta.annotationsAt(levels) }
        : { tags: written, 'tag-names': [], labels: Object.fromEntries(labels), annotations: inputs.annotations },
    ),
  };
  // metadata-action also sets its outputs as DOCKER_METADATA_OUTPUT_* variables for later steps (unless told not to)
  const exportMeta = meta !== undefined && !/^(false|0)$/i.test(process.env.DOCKER_METADATA_SET_OUTPUT_ENV ?? '');
  guard.command(() => {
    for (const name of outputNames) core.setOutput(name, values[name]);
    if (exportMeta)
      for (const name of ['version', 'tags', 'tag-names', 'labels', 'annotations', 'json'] as const)
        core.exportVariable(`DOCKER_METADATA_OUTPUT_${name.replace(/\W/g, '_').toUpperCase()}`, values[name]);
  });
}

function fail(e: unknown, workspace: string): void {
  guard.resume();
  if (isDockerfileError(e)) {
    core.error(e.detail + (e.hint ? ` (hint: ${e.hint})` : ''), {
      file: path.relative(workspace, e.file),
      startLine: e.line,
      endLine: e.endLine,
      title: 'Dockerfile error',
    });
    core.setFailed(e.format());
    return;
  }
  // hoist's own errors say what to do; anything else is a bug in hoist: its stack goes to the debug log.
  if (e instanceof Error && ['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError'].includes(e.name))
    core.debug(e.stack ?? '');
  core.setFailed(e instanceof Error ? e.message : String(e));
}
