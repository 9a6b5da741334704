// All of the Action's inputs, read in one place into one typed object.
import * as core from '@actions/core';

export interface ActionInputs {
  /** path of the Dockerfile; default <context>/Dockerfile */
  file: string;
  context: string;
  buildArgs: Map<string, string>;
  target?: string;
}

function lines(name: string): string[] {
  return core.getMultilineInput(name).map((l) => l.trim()).filter((l) => l !== '');
}

export function readInputs(): ActionInputs {
  const context = core.getInput('context') || '.';
  const file = core.getInput('file') || `${context.replace(/\/+$/, '')}/Dockerfile`;
  const buildArgs = new Map<string, string>();
  for (const l of lines('build-args')) {
    const eq = l.indexOf('=');
    if (eq <= 0) throw new Error(`build-args: "${l}" is not KEY=VALUE`);
    buildArgs.set(l.slice(0, eq), l.slice(eq + 1));
  }
  return { file, context, buildArgs, target: core.getInput('target') || undefined };
}
