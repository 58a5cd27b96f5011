/**
 * Which hasher reads a set of files: chosen once per set, here, from how many there are, their
 * bytes, and whether threads may be used (the real disk; tests read through a spy `Io` inline).
 */
import type { Io } from '../replica/local/io.js';
import type { Hasher } from './hasher.js';
import { InlineHasher } from './inline.js';
import { DEFAULT_HASH_THREADS, HashPool } from './threads.js';

/**
 * Files are read on hashing threads from this many of them, or this many bytes. Perf: starting
 * the threads costs ~50 ms (each boots its own Node); read on the main thread, 300 files touched
 * (11 MB) took 0.91 s against 0.95 s with the threads, 1,000 (36 MB) the same 1.01–1.02 s, 3,000
 * (108 MB) 1.24 s against 1.20 s (100k-file tree, medians of 5). Two big files are worth two
 * threads sooner: MD5 alone runs ~550 MB/s a core.
 */
export const HASH_THREADS_FROM = 1024;
export const HASH_THREADS_FROM_BYTES = 64 << 20;

export interface HasherChoice {
  io: Io;
  /** Threads may be used (the real disk). */
  threads: boolean;
  /** How many hashing threads (`--hash-threads`; default `DEFAULT_HASH_THREADS`). */
  hashThreads?: number;
  /** From this many files, threads (default `HASH_THREADS_FROM`; 0: always, with `threads`). */
  threadsFrom?: number;
  tick(): Promise<boolean>;
  shouldStop(): boolean;
  debug?(message: string): void;
}

/** A hasher for `count` files of `bytes` in all: threads when there are enough to be worth them, else the main thread. */
export function chooseHasher(count: number, bytes: number, c: HasherChoice): Hasher {
  const worth = count > 0 && (count >= (c.threadsFrom ?? HASH_THREADS_FROM) || (count > 1 && bytes >= HASH_THREADS_FROM_BYTES));
  if (!c.threads || !worth) {
    if (count > 0) c.debug?.(`${count} files to read: on the main thread`);
    return new InlineHasher(c.io, c.tick);
  }
  const threads = c.hashThreads ?? DEFAULT_HASH_THREADS;
  c.debug?.(`${count} files to read: on ${threads} hashing threads`);
  return new HashPool(threads, c.shouldStop);
}
