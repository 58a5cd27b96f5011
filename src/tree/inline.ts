/** Listing on the calling thread, through an `Io`: one folder when the walk asks for it. */
import type { Io } from '../replica/local/io.js';
import { NUMS, packEntry, type FolderListing } from './entry.js';
import type { Lister } from './lister.js';
import { listDir, type Listing } from './scan.js';

/** The packed form of a listing made through the `Io` (the same shape the threads hand over). */
export function packListing(listing: Listing): FolderListing {
  const names = [...listing.entries.keys()];
  const nums = new Float64Array(names.length * NUMS);
  let o = 0;
  for (const e of listing.entries.values()) {
    packEntry(nums, o, e);
    o += NUMS;
  }
  return { names, nums, temps: listing.temps };
}

export class InlineLister implements Lister {
  constructor(
    private readonly io: Io,
    private readonly root: string,
  ) {}

  list(relDir: string): FolderListing {
    return packListing(listDir(this.io, relDir === '' ? this.root : this.root + '/' + relDir));
  }

  discard(): void {}

  async close(): Promise<void> {}
}
