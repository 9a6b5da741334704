// Benchmark: parse, read and lint a generated 5,000-line Dockerfile. Prints figures; asserts nothing.
// Run with `npm run bench:parse` (compiles src/ to lib/ first). Target: parsing well under 100 ms.
import { performance } from 'node:perf_hooks';
import { lint, parse, planBuild, readDockerfile } from '../lib/dockerfile/index.js';

function generate(lines) {
  const out = ['# syntax=docker/dockerfile:1', 'ARG BASE=debian:bookworm'];
  let stage = 0;
  while (out.length < lines) {
    out.push(`FROM \${BASE} AS s${stage}`, 'ARG VERSION=1.2.3', 'ENV PATH=/opt/bin:$PATH LANG=C.UTF-8');
    out.push(
      'RUN apt-get update \\',
      '    && apt-get install -y --no-install-recommends curl ca-certificates \\',
      '    # a comment inside the continuation',
      '    && rm -rf /var/lib/apt/lists/*',
    );
    out.push(
      `COPY --from=${stage === 0 ? 'busybox' : `s${stage - 1}`} --chown=app:app /src/\${VERSION} /dst/`,
      'WORKDIR /app/${VERSION:-dev}',
    );
    out.push('RUN <<EOF', 'set -e', 'echo "$VERSION" > /version', 'EOF');
    out.push('LABEL org.opencontainers.image.title="bench" org.opencontainers.image.version=$VERSION');
    out.push(
      'HEALTHCHECK --interval=30s --timeout=3s CMD ["curl", "-f", "http://localhost/"]',
      'EXPOSE 80 443/tcp',
      '',
    );
    stage++;
  }
  out.length = lines;
  return `${out.join('\n')}\n`;
}

const text = generate(5000);
const time = (fn, runs) => {
  const t = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    fn();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return { median: t[Math.floor(t.length / 2)], min: t[0], max: t[t.length - 1] };
};

// warm up the JIT, as a long-running build would be
for (let i = 0; i < 5; i++) readDockerfile(text);
const fmt = (r) => `median ${r.median.toFixed(1)} ms (min ${r.min.toFixed(1)}, max ${r.max.toFixed(1)})`;
const first = (() => {
  const s = performance.now();
  parse(generate(5000).replace('bench', 'cold'));
  return performance.now() - s;
})();
console.log(`Dockerfile: ${text.split('\n').length - 1} lines, ${(text.length / 1024).toFixed(0)} KiB`);
console.log(`parse (AST):              ${fmt(time(() => parse(text), 30))}`);
console.log(`readDockerfile (stages):  ${fmt(time(() => readDockerfile(text), 30))}`);
console.log(`planBuild:                ${fmt(time(() => planBuild(readDockerfile(text)), 10))}`);
console.log(`lint:                     ${fmt(time(() => lint(readDockerfile(text)), 10))}`);
console.log(`(one more parse after warm-up on new text: ${first.toFixed(1)} ms)`);
