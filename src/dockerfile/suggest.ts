// "did you mean …?" for unknown instructions, flags and stage names.

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

/**
 * The closest candidate (case-insensitive) as BuildKit's suggest.WrapError picks it (util/suggest/error.go): the
 * first with an edit distance under 3, a closer one later replacing it; none when the word is itself a candidate.
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestD = 3;
  for (const c of candidates) {
    const d = distance(w, c.toLowerCase());
    if (d === 0) return undefined;
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}
