/**
 * A copy's first half (the source's content into a temporary file beside its target, hashed, given
 * its bits) can be written four ways, tried in an order kept as data (syncthing's copy methods):
 *
 * | copier | when it takes a copy | where the bytes go |
 * | --- | --- | --- |
 * | `addon-pool.ts` | small, nothing to resume, the addon built with OpenSSL | libuv's thread pool, in C |
 * | `threads.ts` | small, nothing to resume, many copies in the pass, no addon copies | copying threads of ours |
 * | `kernel.ts` | large (16 MiB), threads allowed | the kernel (`cat`), hashed on a thread |
 * | `inline.ts` | any | the main thread |
 *
 * A copier that cannot make a copy it took hands it on (`declined`: a read-only folder, which
 * only the main thread makes writable; a source grown past small since the walk; a thread that
 * died), and the next one that takes it is tried. The list is chosen once per pass (`chooseCopiers`).
 *
 * Perf: a first sync of 100k files spent 41 s on the main thread, one file after another: creating
 * the temporary file (11 s on this disk), reading, hashing, writing. Handed to the pool or to
 * threads, that work runs on the other core while the main thread flushes, renames and records
 * the copies before.
 */
import { canHashOpenFiles } from '../../../hash/threads.js';
import { formatBytes } from '../../../log/units.js';
import { nativeCopy } from '../../../native.js';
import type { LocalContext } from '../context.js';
import type { LocalPendingCopy } from '../copy.js';
import { PoolCopier } from './addon-pool.js';
import { InlineCopier } from './inline.js';
import { KernelCopier } from './kernel.js';
import { CopyPool } from './threads.js';

/** A copy to write: its path, its size as listed, whether it replaces a file, whether a crashed copy's temporary file is to be resumed. */
export interface LocalCopyJob {
  readonly relPath: string;
  readonly size: number;
  readonly replacing: boolean;
  readonly resume: boolean;
}

/** What a copier did with a copy. */
export type CopyOutcome =
  | { kind: 'written'; pending: LocalPendingCopy }
  /** Not made, nothing left behind: the next copier that takes it writes it. */
  | { kind: 'declined' }
  | { kind: 'failed'; error: unknown };

export interface Copier {
  /** For the debug line. */
  readonly name: string;
  takes(job: LocalCopyJob): boolean;
  write(job: LocalCopyJob): Promise<CopyOutcome>;
  close(): Promise<void>;
}

/**
 * Perf: from this size on (with threads), a copy goes through the kernel while a thread hashes.
 * Below it, the fixed costs (starting `cat`, about 3 ms; a round trip to the hashing thread; the
 * thread itself, started once per pass) outweigh the overlap: a 16 MiB file takes about 50 ms read,
 * hashed and written here, about 25 ms the other way; small files also batch better here.
 */
export const KERNEL_COPY_MIN_BYTES = 16 << 20;

/**
 * Without the addon's copies, from this many copies in a pass, small ones are written on copying
 * threads. Perf: fewer are not worth starting them (the 1% change, 800 copies: 1.41 s with them
 * against 1.36 s without, medians of 5). Two threads, one per core of the machine this was tuned
 * on: a first sync of 100k files took 37.5–43.6 s with two against 49.9–58.1 s on the main thread
 * alone (three: 41.8 s).
 */
export const COPY_THREADS_FROM = 1024;
export const COPY_THREADS = 2;

/** What the choice of copiers depends on, besides the machine. */
export interface CopierOptions {
  /** Off the main thread at all (the real disk; tests with a spy `Io` copy inline). */
  threads: boolean;
  /** The addon's copies on libuv's pool when it is built (default true; tests turn it off to reach the threads). */
  addonCopies?: boolean;
  /** Copying threads when the addon's copies are not there (`--copy-threads`; default `COPY_THREADS`; 0: none). */
  copyThreads?: number;
  /** From this many copies in a pass, those threads (default `COPY_THREADS_FROM`). */
  copyThreadsFrom?: number;
  /** Copies from this size on go through the kernel (default `KERNEL_COPY_MIN_BYTES`). */
  kernelCopyMinBytes?: number;
}

/**
 * The copiers of a pass with these copies, in the order they are tried; the last takes any copy.
 * `warn`: a copying thread failed (its copies go on to the next copier).
 */
export function chooseCopiers(ctx: LocalContext, jobs: readonly LocalCopyJob[], o: CopierOptions, log: { debug(m: string): void; warn(m: string): void }): Copier[] {
  const smallBelow = o.kernelCopyMinBytes ?? KERNEL_COPY_MIN_BYTES;
  const copiers: Copier[] = [];
  if (o.threads && jobs.length > 0) {
    const small = jobs.filter((job) => job.size < smallBelow).length;
    const copyThreads = o.copyThreads ?? COPY_THREADS;
    if (small > 0 && o.addonCopies !== false && nativeCopy() !== undefined) {
      copiers.push(new PoolCopier(ctx, smallBelow));
      log.debug(`copies written on the thread pool: ${small} of ${jobs.length} (those under ${formatBytes(smallBelow)})`);
    } else if (copyThreads > 0 && jobs.length >= (o.copyThreadsFrom ?? COPY_THREADS_FROM)) {
      copiers.push(new CopyPool(copyThreads, ctx, smallBelow, (error) => log.warn(`a copying thread failed (${error.message}); its copies are written on the main thread`)));
      log.debug(`${jobs.length} copies: the small ones written on ${copyThreads} copying threads`);
    }
    if (canHashOpenFiles()) copiers.push(new KernelCopier(ctx, smallBelow));
  }
  copiers.push(new InlineCopier(ctx));
  if (jobs.length > 0) log.debug(`copiers, in the order tried: ${copiers.map((copier) => copier.name).join(', ')}`);
  return copiers;
}

/** Writes `job` with the first copier that takes it and does not decline it (the last takes all). */
export async function writeWith(copiers: readonly Copier[], job: LocalCopyJob): Promise<Exclude<CopyOutcome, { kind: 'declined' }>> {
  for (const copier of copiers) {
    if (!copier.takes(job)) continue;
    const outcome = await copier.write(job);
    if (outcome.kind !== 'declined') return outcome;
  }
  throw new Error(`internal: no copier took ${job.relPath}`);
}
