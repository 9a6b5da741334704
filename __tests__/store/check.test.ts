// `hoist store check` (store/check.ts): a store a build left is clean; each kind of damage is named with its path and
// the e2fsck exit codes (0 clean, 1 all repaired, 4 left broken); --repair removes it, after which the store checks
// clean and the same build succeeds; what a killed build left (a temp dir, a mount in it) is found and cleaned.
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeContext as context } from '../helpers/context.js';
import { hoist, hoistOk } from '../helpers/hoist.js';
import { run } from '../helpers/tools.js';
import { layerTar } from '../helpers/images.js';
import { digestOf } from '../../src/image/digest.js';
import { Store } from '../../src/store/store.js';

const app = {
  Dockerfile:
    'FROM scratch AS build\nCOPY a.txt /a.txt\nFROM scratch\nCOPY --from=build /a.txt /b.txt\nCOPY c.txt /c.txt\n',
  'a.txt': 'first file\n',
  'c.txt': 'second file\n',
};

/** a pid no process has (the kernel's default pid_max is 4194304) */
const deadPid = 4194300;

describe('hoist store check', () => {
  test('a built store is clean; damage of each kind is named (4), repaired (1), clean again (0), and the build runs again', async () => {
    const store = mkdtempSync(path.join(tmpdir(), 'hoist-check-'));
    const dir = context(app);
    const built = await hoistOk(['build', '--progress', 'quiet', '--store', store, '-t', 'checked:1', dir]);
    const clean = await hoist(['store', 'check', '--store', store]);
    expect(clean.code).toBe(0);
    expect(clean.out).toMatch(
      /^checked \d+ blobs, 1 image records, \d+ cache records, \d+ lowers, \d+ layer indexes, \d+ unpacked layers, \d+ notes: nothing broken\n$/,
    );

    // A layer blob with a byte changed, a record cut short, a note that names nothing, an index without its tar, a
    // lower whose tar is not its diffID, and an image whose manifest is gone.
    const blobDir = path.join(store, 'blobs', 'sha256');
    const records = readdirSync(path.join(store, 'records'));
    const layerOf = (f: string) =>
      (JSON.parse(readFileSync(path.join(store, 'records', f), 'utf8')).layer as { digest: string } | undefined)
        ?.digest;
    const layerBlob = records.map(layerOf).find((d) => d !== undefined) as string;
    const bytes = readFileSync(path.join(blobDir, layerBlob.slice(7)));
    bytes[bytes.length - 5] ^= 0xff;
    writeFileSync(path.join(blobDir, layerBlob.slice(7)), bytes);
    const record = records.find((f) => layerOf(f) !== layerBlob) as string;
    const dangling = records.filter((f) => layerOf(f) === layerBlob);
    writeFileSync(path.join(store, 'records', record), '{"key": "sha256:');
    mkdirSync(path.join(store, 'verified'), { recursive: true });
    writeFileSync(path.join(store, 'verified', 'a'.repeat(64)), 'not a digest');
    const hex = (s: string) => createHash('sha256').update(s).digest('hex');
    writeFileSync(path.join(store, 'lowers', `${hex('gone')}.erofs`), 'an index');
    writeFileSync(path.join(store, 'lowers', `${hex('x')}.tar`), 'not x');
    writeFileSync(path.join(store, 'lowers', `${hex('x')}.erofs`), 'an index');
    // a whole pair stays untouched
    writeFileSync(path.join(store, 'lowers', `${hex('whole')}.tar`), 'whole');
    writeFileSync(path.join(store, 'lowers', `${hex('whole')}.erofs`), 'an index');
    writeFileSync(
      path.join(store, 'images', 'b'.repeat(64)),
      JSON.stringify({
        name: 'docker.io/library/lost:1',
        target: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${'c'.repeat(64)}`,
          size: 10,
        },
      }),
    );
    // (old enough for --repair: nothing a running build may be writing)
    await new Promise((r) => setTimeout(r, 20));

    const found = await hoist(['store', 'check', '--store', store]);
    expect(found.code).toBe(4);
    const lines = found.out.split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        `broken: blobs/sha256/${layerBlob.slice(7)}: its bytes do not hash to ${layerBlob}`,
        `broken: records/${record}: a cache record that is not one, or not under its key`,
        `broken: verified/${'a'.repeat(64)}: a verified note that names no diffID`,
        `broken: lowers/${hex('gone')}.erofs: an EROFS index without its tar`,
        `broken: lowers/${hex('x')}.tar: a lower's tar that does not hash to sha256:${hex('x')}`,
        `broken: images/${'b'.repeat(64)}: image docker.io/library/lost:1: its manifest sha256:${'c'.repeat(64)} is missing or damaged`,
        ...dangling.map(
          (f) => `broken: records/${f}: a cache record of the layer ${layerBlob}, which the store lacks whole`,
        ),
      ]),
    );
    expect(found.out).not.toContain(hex('whole'));
    expect(found.out).toMatch(new RegExp(`: 0 removed, ${7 + dangling.length} broken\n$`));
    expect(dangling.length).toBeGreaterThan(0);
    expect(existsSync(path.join(blobDir, layerBlob.slice(7)))).toBe(true); // a check alone changes nothing

    const repaired = await hoist(['store', 'check', '--repair', '--store', store]);
    expect(repaired.code).toBe(1);
    expect(repaired.out).toMatch(new RegExp(`: ${7 + dangling.length} removed, 0 broken\n$`));
    expect(repaired.out).toContain(
      `removed: blobs/sha256/${layerBlob.slice(7)}: its bytes do not hash to ${layerBlob}`,
    );
    expect(existsSync(path.join(store, 'lowers', `${hex('whole')}.tar`))).toBe(true);
    expect((await hoist(['store', 'check', '--store', store])).code).toBe(0);
    // the same build: what was removed is made again, and the image is the same
    expect((await hoistOk(['build', '--progress', 'quiet', '--store', store, '-t', 'checked:1', dir])).out).toBe(
      built.out,
    );
    expect((await hoist(['store', 'check', '--store', store])).code).toBe(0);
  });

  test("an unpacked layer whose files are not its layer's sizes (a power loss after it was named) is broken, and repaired", async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'hoist-check-'));
    const store = await Store.open(root);
    const tar = layerTar({
      'etc/config': 'a setting\n'.repeat(100),
      'bin/tool': '#!/bin/sh\necho tool\n',
      'empty/.wh.gone': '',
    });
    const diffID = digestOf(tar);
    let snap: string;
    try {
      snap = (await store.snapshot(diffID, () => Readable.from([tar]), { whiteouts: 'overlay' })).path;
    } finally {
      await store.close();
    }
    expect((await hoist(['store', 'check', '--store', root])).out).toMatch(/ 1 unpacked layers, .*nothing broken\n$/);
    truncateSync(path.join(snap, 'etc/config'), 0);
    const found = await hoist(['store', 'check', '--store', root]);
    expect(found.code).toBe(4);
    expect(found.out).toContain(
      `broken: snapshots/${diffID.slice(7)}: an unpacked layer that is not its layer's: etc/config has 0 bytes, its layer 1000\n`,
    );
    rmSync(path.join(snap, 'bin/tool'));
    writeFileSync(path.join(snap, 'etc/config'), 'a setting\n'.repeat(100));
    expect((await hoist(['store', 'check', '--store', root])).out).toContain(
      `an unpacked layer that is not its layer's: bin/tool is missing\n`,
    );
    expect((await hoist(['store', 'check', '--repair', '--store', root])).code).toBe(1);
    expect(existsSync(snap)).toBe(false);
    expect((await hoist(['store', 'check', '--store', root])).code).toBe(0);
    // one without its index (a snapshot's index is written before it is named): nothing to hold it to
    mkdirSync(path.join(root, 'snapshots', 'e'.repeat(64)));
    expect((await hoist(['store', 'check', '--store', root])).out).toContain(
      `broken: snapshots/${'e'.repeat(64)}: an unpacked layer without its layer index (nothing to hold it to)\n`,
    );
  });

  test('what a killed build left is found (4) and cleaned (1): its temp dir, and a mount in it when root', async () => {
    const store = mkdtempSync(path.join(tmpdir(), 'hoist-check-left-'));
    await hoistOk(['build', '--progress', 'quiet', '--store', store, context(app)]);
    const left = path.join(store, 'tmp', `${deadPid}-build-x`);
    mkdirSync(path.join(left, 'merged'), { recursive: true });
    const root = process.getuid?.() === 0;
    if (root) run('mount', ['-t', 'tmpfs', 'tmpfs', path.join(left, 'merged')]);
    const found = await hoist(['store', 'check', '--store', store]);
    expect(found.code).toBe(4);
    expect(found.out).toContain(
      `left by killed builds: ${root ? '1 mount, ' : ''}1 temp dir (hoist store check --repair cleans them up)`,
    );
    const repaired = await hoist(['store', 'check', '--repair', '--store', store]);
    expect(repaired.code).toBe(1);
    expect(repaired.out).toContain(`cleaned up after killed builds: ${root ? '1 mount, ' : ''}1 temp dir`);
    expect(existsSync(left)).toBe(false);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(left);
    expect((await hoist(['store', 'check', '--store', store])).code).toBe(0);
  });

  test('a wrong word is a usage error (2) that names the command', async () => {
    const r = await hoist(['store', 'fix', '--store', mkdtempSync(path.join(tmpdir(), 'hoist-check-usage-'))]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/hoist store fix: unknown; usage: hoist store check \[--repair\]/);
  });
});
