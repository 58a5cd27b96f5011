/**
 * Change detection: when may the cache vouch for a file's content, and reading it when it may not.
 */
import { createHash } from 'node:crypto';
import type { Io } from './io.js';
import type { Entry, FileRecord } from './types.js';

/**
 * A file's fingerprint: kind, size, mtime and ctime in nanoseconds, inode. Any write, chmod,
 * rename-over or `touch -d` moves at least the ctime, which nobody can set back.
 */
export function fingerprint(entry: Entry): string {
  return `f:${entry.size}:${entry.mtimeNs}:${entry.ctimeNs}:${entry.ino}`;
}

/**
 * Racy timestamps (git's "racy clean"): a file whose mtime or ctime lies within one timestamp
 * granule of the moment we looked at it may still be written again without moving them, so its
 * fingerprint is not trusted next pass and it is read again. Linux filesystems with nanosecond
 * timestamps tick every 1-10 ms (the kernel's coarse clock): 100 ms leaves room for that and for
 * clock adjustment. A file whose timestamps have no sub-second part is taken to live on a coarse
 * filesystem (FAT's 2 s, HFS+'s 1 s) and gets the 2 s window.
 */
export const RACY_WINDOW_NS = 100_000_000n;
export const COARSE_RACY_WINDOW_NS = 2_000_000_000n;

export function isRacy(entry: Entry, observedAtNs: bigint): boolean {
  const newest = entry.mtimeNs > entry.ctimeNs ? entry.mtimeNs : entry.ctimeNs;
  const coarse = entry.mtimeNs % 1_000_000_000n === 0n && entry.ctimeNs % 1_000_000_000n === 0n;
  return newest + (coarse ? COARSE_RACY_WINDOW_NS : RACY_WINDOW_NS) > observedAtNs;
}

/** The wall clock in nanoseconds, comparable to file timestamps. */
export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/**
 * What the cache knows of one side's content: its MD5 when the side's fingerprint is the one the
 * record was made with, else nothing (the side must be read to know).
 */
export type CacheLookup = (record: FileRecord | undefined, entry: Entry, side: 'src' | 'rep') => string | undefined;

/** The normal strategy: trust a record whose fingerprint matches exactly. */
export const trustCache: CacheLookup = (record, entry, side) => {
  // A switch of early returns, restic's fileChanged: each reason to distrust is one line.
  if (record === undefined) return undefined; // never seen
  const cached = side === 'src' ? record.src : record.rep;
  if (cached === '') return undefined; // recorded as racy or unknown
  if (cached !== fingerprint(entry)) return undefined; // size, mtime, ctime or inode moved
  return record.md5;
};

/** `--checksum`: the cache vouches for nothing, every file is read. */
export const distrustCache: CacheLookup = () => undefined;

/** Perf: 1 MiB reads; large enough that syscalls don't dominate, small enough to stay in cache. */
export const CHUNK_SIZE = 1 << 20;

/** Reads a whole file and returns its MD5 (hex). `onChunk` lets the caller yield or stop. */
export async function hashFile(io: Io, absPath: string, buffer: Buffer, onChunk?: () => Promise<void>): Promise<string> {
  const hash = createHash('md5');
  const fd = io.openRead(absPath);
  try {
    for (;;) {
      const n = io.read(fd, buffer, null);
      if (n === 0) break;
      hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
      if (onChunk) await onChunk();
    }
  } finally {
    io.close(fd);
  }
  return hash.digest('hex');
}
