/**
 * Reading files to know their content: one interface, two ways (`inline.ts` on the main thread,
 * `threads.ts` on hashing threads), chosen once per use by `chooseHasher` (`choose.ts`).
 */
import { createHash } from 'node:crypto';
import type { Io } from '../replica/local/io.js';

/** A file to read: its absolute path, and its size as listed (to share the work out, and for progress). */
export interface HashJob {
  absPath: string;
  size: number;
}

/** A file's size, mtime s/ns, ctime s/ns and inode when a read ended: it must be the one the walk saw. */
export type ReadFingerprint = readonly [size: number, mtimeS: number, mtimeN: number, ctimeS: number, ctimeN: number, ino: number];

/** One job's outcome: its MD5 with the file's fingerprint at the end of the read, or why it could not be read. */
export type HashResult = { kind: 'hashed'; md5: string; fp: ReadFingerprint } | { kind: 'failed'; error: Error };

export interface Hasher {
  /** Each job's result, in order; undefined for jobs not read because the pass was stopped. */
  hashAll(jobs: readonly HashJob[]): Promise<(HashResult | undefined)[]>;
  /** Files and bytes read so far (for the progress line). */
  readonly done: { files: number; bytes: number };
  close(): Promise<void>;
}

/** Perf: 1 MiB reads; large enough that syscalls don't dominate, small enough to stay in cache. */
export const CHUNK_SIZE = 1 << 20;

/** Reads a whole file and returns its MD5 (hex). `onChunk` gets each chunk's size, and lets the caller yield or stop. */
export async function hashFile(io: Io, absPath: string, buffer: Buffer, onChunk?: (bytes: number) => Promise<void>): Promise<string> {
  const hash = createHash('md5');
  const fd = io.openRead(absPath);
  try {
    for (;;) {
      const n = io.read(fd, buffer, null);
      if (n === 0) break;
      hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
      if (onChunk) await onChunk(n);
    }
  } finally {
    io.close(fd);
  }
  return hash.digest('hex');
}
