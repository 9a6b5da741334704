// A build context for a test: the files given, in a new temp directory, every time set to one old instant (so that
// images do not depend on when the test ran).
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from './tools.js';

export function makeContext(files: Record<string, string>, prefix = 'hoist-ctx-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  run('sh', ['-c', 'find . -exec touch -h -d @1700000000 {} +'], { cwd: dir });
  return dir;
}
