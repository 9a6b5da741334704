// Benchmark: a 1 GiB layer through hoist (import, push, registry-to-registry copy) with peak memory, next to
// skopeo copying the same image in the same run. Prints figures; asserts nothing. Needs docker-registry, skopeo
// and GNU time (/usr/bin/time). Run with `npm run bench:push` (builds first). HOIST_BENCH_MIB sets the size.
import { randomFillSync } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TarWriter } from '../lib/layer/tar.js';
import { measured, startRegistry } from './lib.mjs';

const mib = Number(process.env.HOIST_BENCH_MIB ?? 1024);
const work = mkdtempSync(path.join(tmpdir(), 'hoist-bench-'));
const cli = path.resolve('dist/cli.js');

async function makeRootfs(file) {
  const tar = new TarWriter();
  const out = pipeline(tar.stream, createWriteStream(file));
  const size = mib * 1024 * 1024;
  async function* random() {
    const chunk = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < mib; i++) yield randomFillSync(chunk);
  }
  await tar.entry({ name: 'big.bin', type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 0 }, random());
  await tar.finish();
  await out;
}

const [a, b] = await Promise.all([startRegistry(work, 'a'), startRegistry(work, 'b')]);
try {
  const rootfs = path.join(work, 'rootfs.tar');
  await makeRootfs(rootfs);
  const store = path.join(work, 'store');
  const results = [
    measured('hoist import (gzip, store)', process.execPath, [
      cli,
      'import',
      rootfs,
      `${a.host}/bench/big:1`,
      '--store',
      store,
    ]),
    measured('hoist push (upload)', process.execPath, [cli, 'push', `${a.host}/bench/big:1`, '--store', store]),
    measured('hoist copy A→B', process.execPath, [cli, 'copy', `${a.host}/bench/big:1`, `${b.host}/bench/hoist:1`]),
    measured('skopeo copy A→B', 'skopeo', [
      'copy',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${a.host}/bench/big:1`,
      `docker://${b.host}/bench/skopeo:1`,
    ]),
  ];
  console.log(`layer: ${mib} MiB of random bytes (gzip cannot shrink it)`);
  console.log('step'.padEnd(30) + 'seconds'.padStart(9) + 'MiB/s'.padStart(9) + 'peak RSS MiB'.padStart(14));
  for (const r of results)
    console.log(
      r.label.padEnd(30) +
        r.secs.toFixed(1).padStart(9) +
        (mib / r.secs).toFixed(0).padStart(9) +
        r.rssMiB.toFixed(0).padStart(14),
    );
  const h = results[2];
  const s = results[3];
  console.log(
    `hoist/skopeo copy: time ×${(h.secs / s.secs).toFixed(2)}, peak RSS ×${(h.rssMiB / s.rssMiB).toFixed(2)}`,
  );
} finally {
  a.child.kill();
  b.child.kill();
  rmSync(work, { recursive: true, force: true });
}
