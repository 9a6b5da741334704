// Where a build's time goes: each phase's spans (resolving the bases, pulling layers, RUN, writing layers, the
// push, the caches) recorded while the build runs, and reported per phase and per step, in wall seconds. Spans of
// one phase that overlap (three layers pulled at once) count once; phases overlap each other (the push uploads
// while layers still compress), so the phases do not add up to the total. The report goes into --metadata-file's
// `hoist.profile`, and to the log with --debug or HOIST_PROFILE=1 (bench/cache.mjs prints it beside a floor).
import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';

export const phases = [
  // node's start and loading hoist, before the build is asked for
  'start',
  // base images' manifests and configs
  'resolve',
  // the caches' manifests and indexes read (--cache-from)
  'cache-import',
  // layers downloaded and unpacked in one pass (download, inflate, the diffID's hash, the files written)
  'pull',
  // layers unpacked from the store's blobs
  'unpack',
  // the context read and hashed for the cache keys and COPY
  'context',
  // the RUN steps' processes
  'run',
  // a step's changes made a layer: the tree compared, the tar written and hashed (compression runs after, below)
  'layer',
  // new layers compressed and stored (in the background, while the build goes on)
  'compress',
  // the image's outputs: the push, an archive, a load
  'export',
  // the caches written (--cache-to)
  'cache-export',
] as const;
export type Phase = (typeof phases)[number];

interface Span {
  phase: Phase;
  step: string;
  start: number;
  end: number;
  bytes: number;
}

export interface ProfileReport {
  /** the build's wall seconds, from the process's start */
  seconds: number;
  phases: { phase: Phase; seconds: number; spans: number; bytes?: number }[];
  /** each step's own phases (those with a span inside the step) */
  steps: { step: string; phases: Partial<Record<Phase, number>> }[];
}

export class Profile {
  private readonly spans: Span[] = [];
  /** process time (ms since performance's origin) when the build was asked for */
  readonly started = performance.now();

  add(phase: Phase, step: string, start: number, end: number, bytes = 0): void {
    this.spans.push({ phase, step, start, end, bytes });
  }

  report(): ProfileReport {
    const now = performance.now();
    const all = [{ phase: 'start' as Phase, step: '', start: 0, end: this.started, bytes: 0 }, ...this.spans];
    const out: ProfileReport = { seconds: round(now / 1000), phases: [], steps: [] };
    for (const phase of phases) {
      const of = all.filter((s) => s.phase === phase);
      if (of.length === 0) continue;
      const bytes = of.reduce((n, s) => n + s.bytes, 0);
      out.phases.push({ phase, seconds: round(union(of) / 1000), spans: of.length, ...(bytes ? { bytes } : {}) });
    }
    const steps = [...new Set(this.spans.map((s) => s.step).filter((s) => s !== ''))];
    for (const step of steps) {
      const mine = this.spans.filter((s) => s.step === step);
      const by: Partial<Record<Phase, number>> = {};
      for (const phase of phases) {
        const of = mine.filter((s) => s.phase === phase);
        if (of.length) by[phase] = round(union(of) / 1000);
      }
      out.steps.push({ step, phases: by });
    }
    return out;
  }
}

function round(s: number): number {
  return Math.round(s * 1000) / 1000;
}

/** milliseconds covered by at least one span */
function union(spans: readonly Span[]): number {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  let total = 0;
  let from = -1;
  let to = -1;
  for (const s of sorted) {
    if (s.start > to) {
      total += to - from;
      from = s.start;
      to = s.end;
    } else if (s.end > to) to = s.end;
  }
  return total + (to - from);
}

const current = new AsyncLocalStorage<{ profile: Profile; step: string }>();

/** Runs a build with `profile` collecting what runs inside it. */
export function withProfile<T>(profile: Profile, f: () => Promise<T>): Promise<T> {
  return current.run({ profile, step: '' }, f);
}

/** Runs one step: the spans inside count for it too. */
export function inStep<T>(step: string, f: () => Promise<T>): Promise<T> {
  const c = current.getStore();
  return c ? current.run({ profile: c.profile, step }, f) : f();
}

/** Runs `f` as a span of `phase` (nothing is kept outside a build). `bytes`: what it moved, when known after. */
export async function timed<T>(phase: Phase, f: () => Promise<T>, bytes?: (value: T) => number): Promise<T> {
  const c = current.getStore();
  if (!c) return f();
  const start = performance.now();
  let value: T | undefined;
  try {
    value = await f();
    return value;
  } finally {
    c.profile.add(phase, c.step, start, performance.now(), value !== undefined && bytes ? bytes(value) : 0);
  }
}

/** The report as lines for the log: each phase's seconds, then the steps'. */
export function formatProfile(r: ProfileReport): string[] {
  const size = (n?: number) => (n ? ` ${(n / 1048576).toFixed(1)} MiB` : '');
  const lines = [`profile: ${r.seconds.toFixed(2)} s in all; phases (wall seconds, overlapping):`];
  for (const p of r.phases)
    lines.push(
      `profile:   ${p.phase.padEnd(13)} ${p.seconds.toFixed(3).padStart(7)} s  ${String(p.spans).padStart(3)}×${size(p.bytes)}`,
    );
  for (const s of r.steps)
    lines.push(
      `profile: ${s.step}: ${Object.entries(s.phases)
        .map(([k, v]) => `${k} ${(v as number).toFixed(3)}`)
        .join(', ')}`,
    );
  return lines;
}
