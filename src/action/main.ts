// The GitHub Action. This version reads and checks the Dockerfile: parse errors fail the step with an annotation
// on the offending line, and every build check becomes a warning annotation. Building and pushing come with the
// builder (see the README's status).
import { readFileSync } from 'node:fs';
import * as core from '@actions/core';
import { DockerfileError, lint, readDockerfile } from '../dockerfile/index.js';
import { readInputs } from './context.js';

export async function main(): Promise<void> {
  try {
    const inputs = readInputs();
    let text: string;
    try {
      text = readFileSync(inputs.file, 'utf8');
    } catch (e) {
      throw new Error(`cannot read the Dockerfile ${inputs.file}: ${(e as Error).message}; set the "file" input`);
    }
    const df = readDockerfile(text, inputs.file);
    core.startGroup(`Checking ${inputs.file}`);
    const result = lint(df, { buildArgs: inputs.buildArgs, target: inputs.target });
    for (const w of result.warnings) {
      core.warning(`[${w.check}] ${w.message}`, { file: w.file, startLine: w.line, title: w.check });
    }
    core.info(`${df.stages.length} stage(s), ${result.warnings.length} finding(s)`);
    core.endGroup();
    if (result.failOnWarnings && result.warnings.length > 0) core.setFailed('build checks failed (the check directive sets error=true)');
  } catch (e) {
    if (e instanceof DockerfileError) {
      core.error(e.detail + (e.hint ? ` (hint: ${e.hint})` : ''), { file: e.file, startLine: e.line, endLine: e.endLine, title: 'Dockerfile error' });
      core.setFailed(e.format());
      return;
    }
    core.setFailed(e instanceof Error ? e.message : String(e));
  }
}

await main();
