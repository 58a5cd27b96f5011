/**
 * Where the walk gets its folder listings from. Chosen once per pass:
 *
 * - `InlineLister`: lists on the calling thread through the pass's `Io` (tests count and fail calls).
 * - `ThreadLister`: a worker thread walks one whole tree ahead of the walk and hands over each
 *   folder's listing as packed numbers.
 *
 * Perf: a no-change pass is little more than readdir + lstat of both trees, and Node's lstat costs
 * ~2 µs of JavaScript per entry on top of the syscall. With one worker per tree the two trees are
 * listed in parallel on the machine's two cores while the main thread only compares (measured on
 * 100k files: see the README's Performance section).
 */
import type { Worker } from 'node:worker_threads';
import type { Io } from './io.js';
import { listDir, type Listing } from './scan.js';
import { startThread } from './threads.js';
import type { Entry, Kind } from './types.js';

export interface Lister {
  /** The listing of `relDir` (`''` = the root). Throws (or rejects) like readdir did. */
  list(relDir: string): Listing | Promise<Listing>;
  /** Stops the thread, if any. */
  close(): Promise<void>;
}

export class InlineLister implements Lister {
  constructor(
    private readonly io: Io,
    private readonly root: string,
  ) {}

  list(relDir: string): Listing {
    return listDir(this.io, relDir === '' ? this.root : this.root + '/' + relDir);
  }

  async close(): Promise<void> {}
}

/** What the worker is told: the tree and the same exclude lists the main thread compiled. */
export interface ListerJob {
  root: string;
  excludes: string[];
  own: string[];
}

/** One folder as the worker sends it (names joined by NUL, `NUMS` numbers per entry). */
export interface PackedListing {
  dir: string;
  names: string;
  nums: Float64Array;
  temps: string[];
  vanished: string[];
  undecodable: string[];
  error?: { code?: string; message: string };
}

/** Numbers per entry: kind, size, mode, mtime s/ns, ctime s/ns, atime s/ns, inode. */
export const NUMS = 10;
export const KINDS: Kind[] = ['file', 'dir', 'symlink', 'special'];

export function unpack(packed: PackedListing): Listing {
  const entries = new Map<string, Entry>();
  if (packed.names !== '') {
    const names = packed.names.split('\0');
    const n = packed.nums;
    for (let i = 0, o = 0; i < names.length; i++, o += NUMS) {
      entries.set(names[i], {
        name: names[i],
        kind: KINDS[n[o]],
        size: n[o + 1],
        mode: n[o + 2],
        mtimeS: n[o + 3],
        mtimeN: n[o + 4],
        ctimeS: n[o + 5],
        ctimeN: n[o + 6],
        atimeS: n[o + 7],
        atimeN: n[o + 8],
        ino: n[o + 9],
      });
    }
  }
  return { entries, temps: packed.temps, vanished: packed.vanished, undecodable: packed.undecodable };
}

export class ThreadLister implements Lister {
  private readonly worker: Worker;
  private readonly ready = new Map<string, PackedListing>();
  private readonly waiting = new Map<string, { resolve: (listing: Listing) => void; reject: (error: Error) => void }>();
  private done = false;
  private failure: Error | undefined;

  constructor(job: ListerJob) {
    this.worker = startThread('lister-worker', job);
    this.worker.on('message', (batch: PackedListing[] | 'done' | { fatal: string }) => {
      if (typeof batch === 'object' && !Array.isArray(batch)) {
        this.fail(new Error(`listing ${job.root} failed: ${batch.fatal}`));
        return;
      }
      if (batch === 'done') {
        this.done = true;
        for (const [dir, waiter] of this.waiting) waiter.reject(missing(dir));
        this.waiting.clear();
        return;
      }
      for (const packed of batch) {
        const waiter = this.waiting.get(packed.dir);
        if (waiter === undefined) {
          this.ready.set(packed.dir, packed);
          continue;
        }
        this.waiting.delete(packed.dir);
        try {
          waiter.resolve(settle(packed));
        } catch (error) {
          waiter.reject(error as Error);
        }
      }
    });
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => {
      if (!this.done && code !== 0) this.fail(new Error(`listing thread exited with status ${code}`));
    });
  }

  list(relDir: string): Listing | Promise<Listing> {
    const packed = this.ready.get(relDir);
    if (packed !== undefined) {
      this.ready.delete(relDir);
      return settle(packed);
    }
    if (this.failure) throw this.failure;
    // The worker lists every folder it finds; one it never sent vanished or was never a folder.
    if (this.done) throw missing(relDir);
    return new Promise((resolve, reject) => this.waiting.set(relDir, { resolve, reject }));
  }

  async close(): Promise<void> {
    this.ready.clear();
    await this.worker.terminate();
  }

  private fail(error: Error): void {
    this.failure = error;
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}

function settle(packed: PackedListing): Listing {
  if (packed.error) throw Object.assign(new Error(packed.error.message), { code: packed.error.code });
  return unpack(packed);
}

function missing(relDir: string): Error {
  return Object.assign(new Error(`ENOENT: no such folder, ${relDir || '.'}`), { code: 'ENOENT' });
}
