/**
 * Memory between passes of a long-running folder-sync (every `interval`, `--watch`).
 *
 * A pass that reads or changes much (a first pass adopting a replica: 2M files hashed at 1M files)
 * leaves hundreds of MiB of garbage in V8's heap: listings, changes, hash results. Nothing
 * allocates while the process sleeps, so V8 would collect it only when the next big pass runs,
 * and the process would stay near its peak until then (2.1 GiB resident at 1M files). The records
 * the pass made live on among that garbage, a few on each page, so even a collection frees few
 * pages: after such a pass, one full collection that also compacts every page (V8's
 * `--compact-on-every-full-gc`, for that collection only). V8 gives the emptied pages back at once.
 * Measured at 1M files after an adopting pass: 127 ms, 2.1 GiB resident to 250 MiB, which is what
 * a process whose first pass found nothing to do holds (the manifest's ~95 bytes a record, the
 * names, one watch per folder, Node itself).
 *
 * The collection is reached the way Jest's leak detector does it: `--expose-gc` set at run time,
 * `gc` taken from a new context. Where that fails, the garbage is left to V8.
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

/** A pass that left this much more heap than the last collection did brings one. */
const GROWTH = 64 * 1024 * 1024;

export class Memory {
  private gc: (() => void) | null | undefined;
  /** The heap used after the last collection. */
  private floor = 0;

  /** After a pass: a full collection if it left much garbage; the ms it took, or 0. */
  afterPass(): number {
    if (used() < this.floor + GROWTH) return 0;
    const gc = this.collector();
    if (gc === null) return 0;
    const started = performance.now();
    v8.setFlagsFromString('--compact-on-every-full-gc');
    try {
      gc();
    } finally {
      v8.setFlagsFromString('--no-compact-on-every-full-gc');
    }
    this.floor = used();
    return Math.max(1, Math.round(performance.now() - started));
  }

  private collector(): (() => void) | null {
    if (this.gc === undefined) {
      try {
        v8.setFlagsFromString('--expose-gc');
        this.gc = vm.runInNewContext('gc') as () => void;
      } catch {
        this.gc = null;
      }
    }
    return this.gc;
  }
}

function used(): number {
  return v8.getHeapStatistics().used_heap_size;
}

/** The process's memory, as `--log-level debug` shows it between passes. */
export function memoryLine(): string {
  const m = process.memoryUsage();
  const mib = (n: number) => `${Math.round(n / 1048576)} MiB`;
  return `resident ${mib(m.rss)} (JavaScript heap ${mib(m.heapUsed)} used of ${mib(m.heapTotal)}; buffers ${mib(m.arrayBuffers)}; other native ${mib(m.external - m.arrayBuffers)})`;
}
