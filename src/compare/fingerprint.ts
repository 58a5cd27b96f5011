/**
 * Change detection: when may the cache vouch for a file's content (reading it is `src/hash/`'s job).
 *
 * A file's fingerprint is its size, mtime and ctime (nanoseconds) and inode. Any write, chmod,
 * rename-over or `touch -d` moves at least the ctime, which nobody can set back.
 */
import { FileRecord, type RecordFields } from './types.js';
import { type Entry } from '../tree/entry.js';

/** Whether `entry` (a source file) still has the fingerprint the record was made with. */
export function sourceMatches(record: RecordFields, entry: Entry): boolean {
  // Perf: plain number compares, cheapest-to-differ first; this runs once per file per pass.
  return (
    record.trusted &&
    record.ctimeN === entry.ctimeN &&
    record.ctimeS === entry.ctimeS &&
    record.mtimeN === entry.mtimeN &&
    record.mtimeS === entry.mtimeS &&
    record.size === entry.size &&
    record.ino === entry.ino
  );
}

/** Whether `entry` (a replica file) still has the fingerprint recorded after our last write. */
export function replicaMatches(record: RecordFields, entry: Entry): boolean {
  return (
    record.repCtimeN === entry.ctimeN &&
    record.repCtimeS === entry.ctimeS &&
    record.repMtimeN === entry.mtimeN &&
    record.repMtimeS === entry.mtimeS &&
    record.size === entry.size &&
    record.repIno === entry.ino
  );
}

/** The record for content `md5` seen on both sides with these fingerprints. */
export function makeRecord(md5: string, source: Entry, replica: Entry, trusted: boolean): FileRecord {
  return new FileRecord(
    md5,
    source.size,
    source.mtimeS,
    source.mtimeN,
    source.ctimeS,
    source.ctimeN,
    source.ino,
    trusted,
    replica.mtimeS,
    replica.mtimeN,
    replica.ctimeS,
    replica.ctimeN,
    replica.ino,
  );
}

/** Whether two observations of the same file show the same fingerprint (it did not change between). */
export function sameFingerprint(a: Entry, b: Entry): boolean {
  return a.size === b.size && a.mtimeS === b.mtimeS && a.mtimeN === b.mtimeN && a.ctimeS === b.ctimeS && a.ctimeN === b.ctimeN && a.ino === b.ino;
}

/**
 * Racy timestamps (git's "racy clean"): a file changed within one timestamp granule of the moment
 * we read it may be written again in that same granule without its fingerprint moving, so its
 * fingerprint is not trusted next pass and it is read again. The ctime decides: the kernel sets it
 * to "now" on every change (an mtime can be anything, even in the future). Linux filesystems with
 * nanosecond timestamps tick every 1-10 ms (the kernel's coarse clock): 100 ms leaves room for that
 * and for clock adjustment. A ctime with no sub-second part is taken to come from a coarse
 * filesystem (FAT's 2 s, HFS+'s 1 s), which gets a 2 s window, and the same 100 ms of room: the
 * kernel's clock can stamp a write made just after a granule's end with that granule.
 */
export const RACY_WINDOW_MS = 100;
export const COARSE_RACY_WINDOW_MS = 2000 + RACY_WINDOW_MS;

export function isRacy(entry: Entry, readAtMs: number): boolean {
  const ctime = entry.ctimeS * 1000 + entry.ctimeN / 1e6;
  return ctime + (entry.ctimeN === 0 ? COARSE_RACY_WINDOW_MS : RACY_WINDOW_MS) > readAtMs;
}

/**
 * What the cache knows of one side's content: its MD5 when the side's fingerprint is the one the
 * record was made with, else nothing (the side must be read to know).
 */
export type CacheLookup = (record: RecordFields | undefined, entry: Entry, side: 'src' | 'rep') => string | undefined;

/** The normal strategy: trust a record whose fingerprint matches exactly (restic's fileChanged). */
export const trustCache: CacheLookup = (record, entry, side) => {
  if (record === undefined) return undefined; // never seen
  if (side === 'src' ? !sourceMatches(record, entry) : !replicaMatches(record, entry)) return undefined; // moved, or racy
  return record.md5;
};

/** `--checksum`: the cache vouches for nothing, every file is read. */
export const distrustCache: CacheLookup = () => undefined;
