/**
 * Listing on the calling thread by the addon (`list` in `native/list.c`): one folder when the walk
 * asks for it, into buffers this lister keeps. For a scoped pass (`--watch`), which lists a few
 * folders: no thread to start, and a third of the CPU of `InlineLister`'s readdir and an lstat by
 * path per name (a burst of 1,000 folders, 57,000 entries on both sides: 0.38 s through `fs`).
 */
import type { NativeAnswer, NativeList } from '../native.js';
import { NUMS, type FolderListing } from './entry.js';
import type { Lister } from './lister.js';
import { fromTransport, fsPath } from './names.js';
import { byName } from './scan.js';

export class NativeFolderLister implements Lister {
  private text = Buffer.alloc(64 * 1024);
  private nums = new Float64Array(1024 * NUMS);

  constructor(
    private readonly native: NativeList,
    private readonly root: string,
  ) {}

  list(relDir: string): FolderListing {
    const abs = fsPath(relDir === '' ? this.root : this.root + '/' + relDir);
    for (;;) {
      const answer = this.native.list(abs, this.text, 0, this.nums, 0);
      if (answer[0] === -1) {
        // Too big for the buffers: grown to what it needs, and listed again.
        const [, bytes, count] = answer as [number, number, number];
        if (bytes > this.text.length) this.text = Buffer.alloc(Math.max(bytes, 2 * this.text.length));
        if (count > this.nums.length) this.nums = new Float64Array(Math.max(count, 2 * this.nums.length));
        continue;
      }
      const [namesEnd, numsEnd, , temps, escaped] = answer as Exclude<NativeAnswer, [-1, number, number]>;
      const names = namesEnd === 0 ? [] : this.text.toString('utf8', 0, namesEnd).split('\0');
      const nums = this.nums.slice(0, numsEnd);
      if (!escaped) return { names, nums, temps: temps ?? [] };
      return { ...inWalkOrder(names, nums), temps: temps ?? [] };
    }
  }

  discard(): void {}

  async close(): Promise<void> {}
}

/**
 * A listing whose names are not all UTF-8 (in transport form): decoded (`fromTransport`) and put
 * in the walk's order with their numbers (the addon sorts by bytes, the walk by UTF-16 code units).
 */
export function inWalkOrder(transported: string[], nums: Float64Array): { names: string[]; nums: Float64Array } {
  const names = transported.map(fromTransport);
  const order = names.map((_, i) => i).sort((a, b) => byName(names[a], names[b]));
  const sorted = new Float64Array(nums.length);
  order.forEach((from, to) => sorted.set(nums.subarray(from * NUMS, (from + 1) * NUMS), to * NUMS));
  return { names: order.map((i) => names[i]), nums: sorted };
}
