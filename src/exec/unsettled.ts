// A process must never end 0 with its work undone. Node exits when nothing is left to wait for, even while a promise
// is pending that nothing can settle any more (a stream nobody will end, a lock nobody will release): the command's
// work then simply stops, and the exit code is whatever was set last (0). This turns that case into a loud failure.

/**
 * When Node is about to exit with `work` still pending, says so through `say` and sets the exit code to 70: something
 * hoist waited for could never happen, so what came after it (a push, an output) was not done.
 */
export function failIfUnsettled(work: Promise<unknown>, say: (line: string) => void): void {
  let settled = false;
  work.then(
    () => (settled = true),
    () => (settled = true),
  );
  process.once('beforeExit', () => {
    if (settled) return;
    say(
      'internal error (please report it): hoist stopped with its work unfinished: something it was waiting for can no longer happen, so nothing after it (pushes, outputs, reports) was done',
    );
    process.exitCode = 70;
  });
}
