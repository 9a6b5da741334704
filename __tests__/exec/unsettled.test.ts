// The command and the Action never end 0 with their work undone: when Node is about to exit while the work's promise
// is still pending (nothing left that could settle it), the process says so and exits 70.
import { failIfUnsettled } from '../../src/exec/unsettled.js';

test('pending work at exit is a loud failure; settled work is left alone', async () => {
  const said: string[] = [];
  const before = process.exitCode;
  try {
    failIfUnsettled(new Promise(() => undefined), (l) => said.push(l));
    failIfUnsettled(Promise.resolve(0), (l) => said.push(`settled: ${l}`));
    const failed = Promise.reject(new Error('failed work'));
    failed.catch(() => undefined);
    failIfUnsettled(failed, (l) => said.push(`rejected: ${l}`));
    await new Promise((r) => setImmediate(r));
    process.emit('beforeExit', 0);
    expect(said).toEqual([
      expect.stringMatching(/^internal error \(please report it\): hoist stopped with its work unfinished/),
    ]);
    expect(process.exitCode).toBe(70);
  } finally {
    process.exitCode = before;
  }
});
