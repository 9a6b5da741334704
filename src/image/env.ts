// An image's environment: the `KEY=value` list of its config, and the values the builder puts there when nothing
// else says otherwise.

/** The PATH of an image that sets none (BuildKit gives it to scratch images and RUN steps on Linux). */
export const defaultPathEnv = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A config's Env list as a map, in order (a later entry of a name wins; an entry without `=` has value ''). */
export function parseEnv(list: readonly string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of list ?? []) {
    const eq = e.indexOf('=');
    if (eq < 0) out.set(e, '');
    else out.set(e.slice(0, eq), e.slice(eq + 1));
  }
  return out;
}

/** The map back into a config's Env list. */
export function formatEnv(env: ReadonlyMap<string, string>): string[] {
  return [...env].map(([k, v]) => `${k}=${v}`);
}
