// The step of issue 34's race (no-mount-race.test.ts, and in a container in unprivileged.test.ts): run as a user,
// it leaves a chain of processes behind, each forking the next, that swap the directory hoist made to hold the step's
// cache mount for a symlink to `canary` (a directory of the machine) and back; the first of them kills the step's
// tracer when it has one (proot, which runs as the step's user).

/** The busybox applets the race's base needs. */
export const raceApplets = ['sh', 'cat', 'mkdir', 'rm', 'ln', 'mv', 'chown', 'date', 'sed', 'printf', 'base64', 'echo'];

/**
 * The Dockerfile of the race: the chain runs `seconds` after the step, as `uid` (each test its own: the suite's files
 * run two at once, and a test that counts the processes of its step's user on the machine must not count another's,
 * in a container or not).
 */
export function raceDockerfile(base: string, canary: string, seconds = 3, uid = 4321): string {
  // Each generation forks the next, then swaps /home/u/p (the directory hoist made to hold the mount's target) for
  // a link to the canary and back, in the step's working directory (still the stage's after proot lets go).
  const chain = [
    '#!/bin/sh',
    'cd /home/u || exit 0',
    '[ "$(date +%s)" -lt "$1" ] || exit 0',
    'if [ -n "$2" ]; then t=$(sed -n "s/^TracerPid:[[:space:]]*//p" /proc/self/status 2>/dev/null); [ "${t:-0}" -gt 0 ] && kill -9 "$t"; fi',
    'sh /home/u/chain "$1" </dev/null >/dev/null 2>&1 &',
    'i=0; while [ $i -lt 8 ]; do rm -f q 2>/dev/null; mv p q 2>/dev/null; ln -s ' +
      canary +
      ' p 2>/dev/null; rm -f p 2>/dev/null; mv q p 2>/dev/null; i=$((i+1)); done',
    '',
  ].join('\n');
  return `FROM ${base}
RUN mkdir -p /home/u && printf '%s' '${Buffer.from(chain).toString('base64')}' | base64 -d > /home/u/chain && chown -R ${uid}:${uid} /home/u
USER ${uid}:${uid}
RUN --mount=type=cache,id=race,target=/home/u/p/c,uid=${uid} echo x > /home/u/p/c/mine; sh /home/u/chain $(( $(date +%s) + ${seconds} )) first </dev/null >/dev/null 2>&1; echo ran
`;
}
