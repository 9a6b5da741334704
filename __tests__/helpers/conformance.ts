// BuildKit's own test data lives in ../shared/conformance/buildkit beside the project (never copied into it).
// Where that folder is absent the conformance tests are skipped, with a notice that says so.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const conformanceDir =
  process.env.HOIST_CONFORMANCE_DIR ?? path.resolve(root, '..', 'shared', 'conformance', 'buildkit');

export const haveConformance = existsSync(conformanceDir);

if (!haveConformance) {
  process.stderr.write(`NOTICE: ${conformanceDir} is absent: BuildKit conformance tests are skipped\n`);
}

/** `describe`, or `describe.skip` when the conformance data is not there. */
export const describeConformance = haveConformance ? describe : describe.skip;

export function conformancePath(...parts: string[]): string {
  return path.join(conformanceDir, ...parts);
}
