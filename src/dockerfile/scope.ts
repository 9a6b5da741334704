// The variables a stage's instructions see, and the expansion of each instruction's words with them, following
// which fields BuildKit expands (the Expand methods of instructions/commands.go): ENV, LABEL, ARG, WORKDIR, USER,
// VOLUME, STOPSIGNAL, COPY/ADD sources, destination, --chown, --chmod, ADD --checksum, EXPOSE (into words), RUN
// --mount values. RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK commands are left for the shell at run time.
import { DockerfileError } from './errors.js';
import type { ArgInstruction, EnvInstruction, Instruction, KeyValue } from './instructions.js';
import { ExpansionError, ShellLex } from './shell-lex.js';

export interface ScopeOptions {
  escapeToken: string;
  /** the global scope: platform args and global ARGs that have a value */
  globalArgs: ReadonlyMap<string, string>;
  /** --build-arg values */
  buildArgs: ReadonlyMap<string, string>;
  /** the base image's (or base stage's) Env */
  baseEnv?: Iterable<[string, string]>;
  /** the ARG values of the stage this one is built FROM: in its environment, not in its config or history */
  inheritedArgs?: Iterable<[string, string]>;
}

export interface UndefinedVariable {
  name: string;
  line: number;
  instruction: Instruction;
}

export class StageScope {
  readonly lex: ShellLex;
  /** what expansion and RUN see: the base Env, then ENV and ARG in the order they come (later wins) */
  readonly vars: Map<string, string>;
  /** the Env of the image config: the base Env and ENV, never ARG */
  readonly env: Map<string, string>;
  /** ARGs declared in this stage (undefined: declared without a value) */
  readonly args = new Map<string, string | undefined>();
  /** ARG values of the base stage (see ScopeOptions.inheritedArgs) */
  readonly inheritedArgs: Map<string, string>;
  /** references to variables that were not set, for the UndefinedVar check */
  readonly undefinedVars: UndefinedVariable[] = [];
  private readonly options: ScopeOptions;

  constructor(options: ScopeOptions) {
    this.options = options;
    this.lex = new ShellLex(options.escapeToken);
    this.env = new Map(options.baseEnv ?? []);
    this.vars = new Map(this.env);
    this.inheritedArgs = new Map(options.inheritedArgs ?? []);
    // An ENV of the base stage wins over its ARG of the same name, as for the stage's own (see the builder's RUN).
    for (const [k, v] of this.inheritedArgs) if (!this.env.has(k)) this.vars.set(k, v);
  }

  /** The ARG values the stage's environment holds now, inherited ones included: what a stage FROM this one gets. */
  argValues(): Map<string, string> {
    const out = new Map(this.inheritedArgs);
    for (const [k, v] of this.args) if (v !== undefined) out.set(k, v);
    return out;
  }

  /** One word, expanded with the stage's variables; a DockerfileError at the instruction for a bad word. */
  expand(word: string, at: Instruction): string {
    return this.process(word, at).result;
  }

  private process(word: string, at: Instruction) {
    try {
      const r = this.lex.process(word, this.vars);
      for (const name of r.unmatched) this.undefinedVars.push({ name, line: at.line, instruction: at });
      return r;
    } catch (e) {
      if (e instanceof ExpansionError) {
        throw new DockerfileError(
          e.message,
          { line: at.line, endLine: at.endLine },
          {
            hint: 'check the quotes and ${…} braces; escape a literal $ as \\$',
          },
        );
      }
      throw e;
    }
  }

  private expandPairs(pairs: KeyValue[], at: Instruction): KeyValue[] {
    return pairs.map((p) => ({ ...p, key: this.expand(p.key, at), value: this.expand(p.value, at) }));
  }

  /** The instruction with its expandable words expanded. Does not change the scope (see apply). */
  expandInstruction<T extends Instruction>(ins: T): T {
    const x = (w: string) => this.expand(w, ins);
    const opt = (w: string | undefined) => (w === undefined ? undefined : x(w));
    switch (ins.kind) {
      case 'env':
      case 'label':
        return { ...ins, pairs: this.expandPairs(ins.pairs, ins) };
      case 'workdir':
        return { ...ins, path: x(ins.path) };
      case 'user':
        return { ...ins, user: x(ins.user) };
      case 'stopsignal':
        return { ...ins, signal: x(ins.signal) };
      case 'volume': {
        const volumes = ins.volumes.map(x);
        if (volumes.some((v) => v.trim() === '')) {
          throw new DockerfileError('VOLUME specified can not be an empty string', {
            line: ins.line,
            endLine: ins.endLine,
          });
        }
        return { ...ins, volumes };
      }
      case 'expose':
        return { ...ins, ports: ins.ports.flatMap((p) => this.process(p, ins).words) };
      case 'copy':
        return { ...ins, sources: ins.sources.map(x), dest: x(ins.dest), chown: opt(ins.chown), chmod: opt(ins.chmod) };
      case 'add':
        return {
          ...ins,
          sources: ins.sources.map(x),
          dest: x(ins.dest),
          chown: opt(ins.chown),
          chmod: opt(ins.chmod),
          checksum: opt(ins.checksum),
        };
      case 'run':
        return { ...ins, mounts: ins.mounts.map(x), network: opt(ins.network), security: opt(ins.security) };
      default:
        return ins;
    }
  }

  /** ENV: all pairs are expanded with the variables as they were before the instruction. */
  applyEnv(ins: EnvInstruction): KeyValue[] {
    const pairs = this.expandPairs(ins.pairs, ins);
    for (const p of pairs) {
      this.env.set(p.key, p.value);
      this.vars.set(p.key, p.value);
    }
    return pairs;
  }

  /**
   * ARG: each name gets the --build-arg value, else its expanded default, else the global ARG's value; each
   * later name of the same instruction already sees the earlier ones.
   */
  applyArg(ins: ArgInstruction): { key: string; value?: string }[] {
    const out: { key: string; value?: string }[] = [];
    for (const a of ins.args) {
      const key = a.key;
      let value: string | undefined;
      if (this.options.buildArgs.has(key)) value = this.options.buildArgs.get(key);
      else if (a.value !== undefined) value = this.expand(a.value, ins);
      else if (this.options.globalArgs.has(key)) value = this.options.globalArgs.get(key);
      this.args.set(key, value);
      if (value !== undefined) this.vars.set(key, value);
      out.push(value === undefined ? { key } : { key, value });
    }
    return out;
  }

  /** Runs the scope forward over one instruction (ENV and ARG change it; others do not). */
  apply(ins: Instruction): void {
    if (ins.kind === 'env') this.applyEnv(ins);
    else if (ins.kind === 'arg') this.applyArg(ins);
  }
}
