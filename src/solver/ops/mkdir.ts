// WORKDIR's directory, made where the path leads inside the image: symlinked parents (a merged /usr's /lib →
// usr/lib) are followed as BuildKit's mkdir follows them, never replaced by a directory. Always a layer, empty when
// the directory was there already: BuildKit's mkdir is a filesystem step.
import type { MkdirOp } from '../../dockerfile/translate.js';
import type { LayerEntry } from '../../layer/writer.js';
import { writeLayer } from '../../layer/writer.js';
import { ownerOf } from './copy.js';
import type { OpContext, OpResult } from './op.js';

export async function execMkdir(op: MkdirOp, x: OpContext): Promise<OpResult> {
  const fs = await x.state.fs(x.store);
  const parts = fs.resolve(op.path, true).split('/').filter(Boolean);
  const owner = await ownerOf(op.user, x);
  const entries: LayerEntry[] = [];
  for (let i = 1; i <= parts.length && !fs.isDirectory(parts.join('/')); i++) {
    const dir = parts.slice(0, i).join('/');
    if (fs.isDirectory(dir)) {
      // Repeated with its own attributes (see planCopy): the layer must stand on its own as an overlay lower dir.
      const existing = fs.lookup(dir);
      if (i < parts.length && existing?.header.type === 'directory')
        entries.push({ header: { ...existing.header, name: dir, size: 0 } });
      continue;
    }
    entries.push({
      header: {
        name: dir,
        type: 'directory',
        mode: 0o755,
        uid: owner.uid,
        gid: owner.gid,
        size: 0,
        mtime: x.sourceDateEpoch ?? x.time,
      },
    });
  }
  return {
    layer: await writeLayer(x.store, entries, { sourceDateEpoch: x.sourceDateEpoch, level: x.layerLevel }),
    time: x.time,
  };
}
