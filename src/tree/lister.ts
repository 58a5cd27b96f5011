/**
 * Where the walk gets its folder listings from: one `Lister` per tree, chosen once per pass
 * (`chooseListers` in `choose.ts`):
 *
 * - `InlineLister` (`inline.ts`): lists on the calling thread through an `Io` (tests count and fail
 *   calls; a scoped pass lists only the folders it is given).
 * - `ThreadLister` (`thread-lister.ts`): a worker thread walks one whole tree ahead of the walk and
 *   hands over its folders' listings in batches (`batches.ts`).
 * - `NativeWalkLister` (`native-walker.ts`): the same batches from the addon's own thread, which
 *   matches no pattern: for a pass whose exclude patterns are all plain names.
 *
 * Perf: a no-change pass is little more than readdir + lstat of both trees, and Node's lstat costs
 * ~2 µs of JavaScript per entry on top of the syscall. With one thread per tree the two trees are
 * listed in parallel on the machine's two cores while the main thread only compares.
 */
import type { OwnPath } from './filter.js';
import type { FolderListing } from './entry.js';

export interface Lister {
  /** The listing of `relDir` (`''` = the root). Throws (or rejects) like readdir did. */
  list(relDir: string): FolderListing | Promise<FolderListing>;
  /** The walk is done with `listing`, which must not be read again: its memory may go now. */
  discard(listing: FolderListing): void;
  /** Stops the thread, if any. */
  close(): Promise<void>;
}

/** The two trees' listers of a pass. */
export interface Listers {
  source: Lister;
  replica: Lister;
}

/** What a tree's lister is given: its root and the exclude lists the walk compiled (a thread compiles them again). */
export interface ListerSpec {
  root: string;
  excludes: string[];
  own: OwnPath[];
}

/** Stops both (a listing thread left running would keep the process alive). */
export async function closeListers(listers: Listers | undefined): Promise<void> {
  await Promise.all([listers?.source.close(), listers?.replica.close()]);
}
