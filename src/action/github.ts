// The event a workflow runs for, as tags.ts needs it, from @actions/github's context (GITHUB_* variables and the
// event payload at GITHUB_EVENT_PATH), and the repository's description, page and license for the OCI labels:
// from the payload's `repository` (push, pull_request, release and most events carry it), else from the REST API
// with the github-token, as metadata-action does (a failure there is a warning: the labels it would fill are left
// out). The commit date is the head commit's (push), else the run's time.
import * as github from '@actions/github';
import type { GitContext, RepoInfo } from './tags.js';

type Context = typeof github.context;

interface PayloadRepository {
  name?: string;
  description?: string | null;
  html_url?: string;
  default_branch?: string;
  license?: { spdx_id?: string | null } | null;
}

export function gitContext(ctx: Context, env: NodeJS.ProcessEnv = process.env, now = new Date()): GitContext {
  const p = ctx.payload as { repository?: PayloadRepository; head_commit?: { timestamp?: string }; base_ref?: string | null; pull_request?: { base?: { ref?: string }; head?: { sha?: string } } };
  const commitDate = p.head_commit?.timestamp ? new Date(p.head_commit.timestamp) : now;
  const shortSha = Number(env.DOCKER_METADATA_SHORT_SHA_LENGTH);
  // A pull request's GITHUB_SHA is the merge commit; metadata-action tags the head commit when asked to.
  const prHead = env.DOCKER_METADATA_PR_HEAD_SHA === 'true' ? p.pull_request?.head?.sha : undefined;
  return {
    eventName: ctx.eventName,
    ref: ctx.ref,
    sha: prHead ?? ctx.sha,
    defaultBranch: p.repository?.default_branch,
    baseRef: p.base_ref ?? env.GITHUB_BASE_REF ?? p.pull_request?.base?.ref,
    commitDate: Number.isNaN(commitDate.getTime()) ? now : commitDate,
    now,
    ...(Number.isInteger(shortSha) && shortSha > 0 ? { shortShaLength: shortSha } : {}),
  };
}

function fromRepository(r: PayloadRepository): RepoInfo {
  return {
    ...(r.name ? { name: r.name } : {}),
    ...(r.description ? { description: r.description } : {}),
    ...(r.html_url ? { htmlUrl: r.html_url } : {}),
    ...(r.license?.spdx_id && r.license.spdx_id !== 'NOASSERTION' ? { license: r.license.spdx_id } : {}),
  };
}

export async function repoInfo(ctx: Context, token: string | undefined, warn: (m: string) => void): Promise<{ info: RepoInfo; defaultBranch?: string }> {
  const r = (ctx.payload as { repository?: PayloadRepository }).repository;
  if (r?.html_url) return { info: fromRepository(r), defaultBranch: r.default_branch };
  const fallback: RepoInfo = { name: ctx.repo.repo, htmlUrl: `${ctx.serverUrl}/${ctx.repo.owner}/${ctx.repo.repo}` };
  if (!token) return { info: fallback };
  try {
    const { data } = await github.getOctokit(token, { baseUrl: ctx.apiUrl, request: { retries: 0 } }).rest.repos.get({ ...ctx.repo, request: { signal: AbortSignal.timeout(10_000) } });
    return { info: fromRepository(data as PayloadRepository), defaultBranch: data.default_branch };
  } catch (e) {
    warn(`cannot read the repository's details from ${ctx.apiUrl}: ${(e as Error).message}; the description and license labels are left out`);
    return { info: fallback };
  }
}
