// Instruction flags (`--from=x`, `--link`, `--mount=…` repeated), with BuildKit's rules: unknown and duplicated
// flags are errors, booleans take true/false or nothing, strings need a value, list flags may repeat.
import { LineSyntaxError } from './line-parsers.js';
import { closest } from './suggest.js';

export type FlagKind = 'bool' | 'string' | 'list';

export class FlagSet {
  private readonly kinds = new Map<string, FlagKind>();
  private readonly strings = new Map<string, string>();
  private readonly lists = new Map<string, string[]>();
  private readonly bools = new Map<string, boolean>();
  readonly used: string[] = [];

  constructor(
    private readonly instruction: string,
    spec: Record<string, FlagKind>,
  ) {
    for (const [name, kind] of Object.entries(spec)) this.kinds.set(name, kind);
  }

  parse(flags: readonly string[]): this {
    for (const raw of flags) {
      if (!raw.startsWith('--')) throw new LineSyntaxError(`arg should start with -- : ${raw}`);
      if (raw === '--') break;
      const body = raw.slice(2);
      const eq = body.indexOf('=');
      const name = eq < 0 ? body : body.slice(0, eq);
      const value = eq < 0 ? undefined : body.slice(eq + 1);
      const kind = this.kinds.get(name);
      if (!kind) {
        const near = closest(name, this.kinds.keys());
        const known = [...this.kinds.keys()].map((k) => `--${k}`).join(', ');
        // The flag as written, `--` and all (BuildKit ≥ 0.17, moby/buildkit#5369), and suggest.WrapError's hint.
        throw new LineSyntaxError(
          `unknown flag: --${name}`,
          near
            ? `did you mean ${near}?`
            : known
              ? `${this.instruction} takes ${known}`
              : `${this.instruction} takes no flags`,
        );
      }
      if (this.used.includes(name) && kind !== 'list') throw new LineSyntaxError(`duplicate flag specified: ${name}`);
      this.used.push(name);
      if (kind === 'bool') {
        if (value === '') throw new LineSyntaxError(`missing a value on flag: --${name}`);
        const v = (value ?? 'true').toLowerCase();
        if (v !== 'true' && v !== 'false') {
          throw new LineSyntaxError(
            `expecting boolean value for flag ${name}, not: ${value}`,
            `write --${name} or --${name}=false`,
          );
        }
        this.bools.set(name, v === 'true');
      } else {
        if (value === undefined)
          throw new LineSyntaxError(`missing a value on flag: --${name}`, `write --${name}=VALUE`);
        if (kind === 'string') this.strings.set(name, value);
        else this.lists.set(name, [...(this.lists.get(name) ?? []), value]);
      }
    }
    return this;
  }

  string(name: string): string | undefined {
    return this.strings.get(name);
  }

  bool(name: string): boolean {
    return this.bools.get(name) ?? false;
  }

  list(name: string): string[] {
    return this.lists.get(name) ?? [];
  }
}
