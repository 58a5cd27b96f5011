/**
 * An entry as lstat saw it, and the one packed layout every lister, the addon and the replica's
 * batched calls share: `NUMS` numbers per entry in a `Float64Array`, at the offsets of `AT`
 * (`native/fswalk.h` writes the same).
 *
 * Perf: an `Entry` object and a Map entry per listed name cost more main-thread time (building
 * them, and the garbage collector) than comparing them. The walk reads the numbers in place and
 * makes an `Entry` only for what changed (`entryAt`).
 */

/** What lstat said a directory entry is. `special` covers FIFOs, sockets and devices. */
export type Kind = 'file' | 'dir' | 'symlink' | 'special';

/** The kinds by their code in a packed listing (`AT.kind`). */
export const KINDS: Kind[] = ['file', 'dir', 'symlink', 'special'];
export const FILE = 0;
export const DIR = 1;
export const SYMLINK = 2;
export const SPECIAL = 3;

/** Where each number of an entry sits among its `NUMS`. */
export const AT = { kind: 0, size: 1, mode: 2, mtimeS: 3, mtimeN: 4, ctimeS: 5, ctimeN: 6, atimeS: 7, atimeN: 8, ino: 9, uid: 10, gid: 11, nlink: 12, dev: 13 } as const;
export const NUMS = 14;

/**
 * One directory entry as lstat saw it (never following links). Times are split into whole seconds
 * and nanoseconds so they stay exact as plain numbers (Perf: no BigInt on the hot path).
 */
export interface Entry {
  readonly name: string;
  readonly kind: Kind;
  readonly size: number;
  /** Permission bits only (`mode & 0o7777`). */
  readonly mode: number;
  readonly mtimeS: number;
  readonly mtimeN: number;
  readonly ctimeS: number;
  readonly ctimeN: number;
  readonly atimeS: number;
  readonly atimeN: number;
  readonly ino: number;
  /** Owner and group. */
  readonly uid: number;
  readonly gid: number;
  /** Names the inode has (hard links), and the device it is on: `--hard-links` groups by device and inode. */
  readonly nlink: number;
  readonly dev: number;
}

/**
 * One folder's listing as the walk reads it: names in `byName` order (bytes that are not UTF-8
 * escaped, see `names.ts`) and `NUMS` numbers per entry at `i * NUMS` (see `entryAt`); temporary
 * files of ours are in `temps`, not in `names`.
 */
export interface FolderListing {
  names: string[];
  nums: Float64Array;
  temps: string[];
}

export function kindAt(listing: FolderListing, i: number): number {
  return listing.nums[i * NUMS];
}

/** The `Entry` of the `i`th name. */
export function entryAt(listing: FolderListing, i: number): Entry {
  return entryFrom(listing.names[i], listing.nums, i);
}

/** The `Entry` named `name` whose numbers are the `i`th `NUMS` of `n` (a listing's, a batch of fixes'). */
export function entryFrom(name: string, n: Float64Array, i: number): Entry {
  const o = i * NUMS;
  return {
    name,
    kind: KINDS[n[o + AT.kind]],
    size: n[o + AT.size],
    mode: n[o + AT.mode],
    mtimeS: n[o + AT.mtimeS],
    mtimeN: n[o + AT.mtimeN],
    ctimeS: n[o + AT.ctimeS],
    ctimeN: n[o + AT.ctimeN],
    atimeS: n[o + AT.atimeS],
    atimeN: n[o + AT.atimeN],
    ino: n[o + AT.ino],
    uid: n[o + AT.uid],
    gid: n[o + AT.gid],
    nlink: n[o + AT.nlink],
    dev: n[o + AT.dev],
  };
}

/** An `Entry` the walk refills in place to compare without allocating (see `fillEntry`). */
export type ScratchEntry = { -readonly [K in keyof Entry]: Entry[K] };

export function scratchEntry(): ScratchEntry {
  return { name: '', kind: 'file', size: 0, mode: 0, mtimeS: 0, mtimeN: 0, ctimeS: 0, ctimeN: 0, atimeS: 0, atimeN: 0, ino: 0, uid: 0, gid: 0, nlink: 0, dev: 0 };
}

/** Overwrites `target` with the `i`th entry; only for a comparison, never kept. */
export function fillEntry(target: ScratchEntry, listing: FolderListing, i: number): Entry {
  const n = listing.nums;
  const o = i * NUMS;
  target.name = listing.names[i];
  target.kind = KINDS[n[o + AT.kind]];
  target.size = n[o + AT.size];
  target.mode = n[o + AT.mode];
  target.mtimeS = n[o + AT.mtimeS];
  target.mtimeN = n[o + AT.mtimeN];
  target.ctimeS = n[o + AT.ctimeS];
  target.ctimeN = n[o + AT.ctimeN];
  target.atimeS = n[o + AT.atimeS];
  target.atimeN = n[o + AT.atimeN];
  target.ino = n[o + AT.ino];
  target.uid = n[o + AT.uid];
  target.gid = n[o + AT.gid];
  target.nlink = n[o + AT.nlink];
  target.dev = n[o + AT.dev];
  return target;
}

/** Writes `e` as the entry at `o` (an index into `nums`, a multiple of `NUMS`). */
export function packEntry(nums: Float64Array, o: number, e: Entry): void {
  nums[o + AT.kind] = KINDS.indexOf(e.kind);
  nums[o + AT.size] = e.size;
  nums[o + AT.mode] = e.mode;
  nums[o + AT.mtimeS] = e.mtimeS;
  nums[o + AT.mtimeN] = e.mtimeN;
  nums[o + AT.ctimeS] = e.ctimeS;
  nums[o + AT.ctimeN] = e.ctimeN;
  nums[o + AT.atimeS] = e.atimeS;
  nums[o + AT.atimeN] = e.atimeN;
  nums[o + AT.ino] = e.ino;
  nums[o + AT.uid] = e.uid;
  nums[o + AT.gid] = e.gid;
  nums[o + AT.nlink] = e.nlink;
  nums[o + AT.dev] = e.dev;
}
