// What a GitHub runner gives a step, for the tests that run the Action as a runner would (action.test.ts, and
// workflows.test.ts which runs ci.yml's jobs as written): the step's files (event, GITHUB_OUTPUT, GITHUB_ENV, the
// summary), the GITHUB_* variables, and GITHUB_OUTPUT read back as @actions/core writes it.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface StepFiles {
  event: string;
  output: string;
  env: string;
  summary: string;
}

/** A step's files in `dir` (the event's payload written, the others empty). */
export function stepFiles(dir: string, payload: unknown, suffix = ''): StepFiles {
  const files = {
    event: path.join(dir, `event${suffix}.json`),
    output: path.join(dir, `output${suffix}`),
    env: path.join(dir, `env${suffix}`),
    summary: path.join(dir, `summary${suffix}.md`),
  };
  writeFileSync(files.event, JSON.stringify(payload));
  for (const f of [files.output, files.env, files.summary]) writeFileSync(f, '');
  return files;
}

/** The GITHUB_* variables (and RUNNER_TEMP) a runner sets for a step. */
export function githubEnv(o: {
  workspace: string;
  eventName: string;
  ref: string;
  sha: string;
  repository: string;
  files: StepFiles;
  runnerTemp: string;
  runId?: string;
}): Record<string, string> {
  return {
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: o.workspace,
    GITHUB_EVENT_NAME: o.eventName,
    GITHUB_EVENT_PATH: o.files.event,
    GITHUB_REF: o.ref,
    GITHUB_SHA: o.sha,
    GITHUB_REPOSITORY: o.repository,
    ...(o.runId ? { GITHUB_RUN_ID: o.runId } : {}),
    GITHUB_ACTOR: 'octocat',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_API_URL: 'http://127.0.0.1:9/api',
    GITHUB_OUTPUT: o.files.output,
    GITHUB_ENV: o.files.env,
    GITHUB_STEP_SUMMARY: o.files.summary,
    RUNNER_TEMP: o.runnerTemp,
  };
}

/** GITHUB_OUTPUT (or GITHUB_ENV) as @actions/core writes it: `name<<delimiter`, the value's lines, the delimiter. */
export function readOutputs(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n') : [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<]+)<<(.+)$/.exec(lines[i]);
    if (!m) continue;
    const value: string[] = [];
    while (i + 1 < lines.length && lines[++i] !== m[2]) value.push(lines[i]);
    out[m[1]] = value.join('\n');
  }
  return out;
}
