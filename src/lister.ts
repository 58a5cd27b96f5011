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
import type { OwnPath } from './filter.js';
import type { Io } from './io.js';
import { listDir, type Listing } from './scan.js';
import { startThread } from './threads.js';
import type { Entry, Kind } from './types.js';

/**
 * Perf: the first buffer detached in a thread (here: a batch's numbers, sent by a listing thread,
 * discarded by the walk) tells V8 that typed arrays can now be detached, and it throws away every
 * optimized function that assumed they could not: in a no-change pass that was ~20 of the walk's
 * and the manifest's hottest, compiled again a moment later. One tiny buffer detached as this
 * module loads (in the main thread and in each listing thread, which both import it), before
 * anything is optimized, spares that: 0.79 s against 0.80 s at 100k (medians of 11), 20 ms of CPU.
 */
{
  const buffer = new ArrayBuffer(8);
  structuredClone(buffer, { transfer: [buffer] });
}

export interface Lister {
  /** The listing of `relDir` (`''` = the root). Throws (or rejects) like readdir did. */
  list(relDir: string): FolderListing | Promise<FolderListing>;
  /** The walk is done with `listing`, which must not be read again: its memory may go now. */
  discard(listing: FolderListing): void;
  /** Stops the thread, if any. */
  close(): Promise<void>;
}

/**
 * One folder's listing as the walk reads it: names in `byName` order and `NUMS` numbers per entry
 * at `i * NUMS` (see `entryAt`); temporary files of ours are in `temps`, not in `names`.
 *
 * Perf: an `Entry` object and a Map entry per listed name cost more main-thread time (building
 * them, and the garbage collector) than comparing them. The walk pairs the two sides' sorted names
 * by a merge join and reads the numbers in place; an `Entry` is made only for what changed.
 */
export interface FolderListing {
  names: string[];
  nums: Float64Array;
  temps: string[];
  /** Names that are not valid UTF-8 (decoded with U+FFFD, they cannot be opened by name). */
  undecodable: string[];
}

/** `kindAt` codes, the indexes of `KINDS`. */
export const FILE = 0;
export const DIR = 1;
export const SYMLINK = 2;
export const SPECIAL = 3;

export function kindAt(listing: FolderListing, i: number): number {
  return listing.nums[i * NUMS];
}

/** The `Entry` of the `i`th name. */
export function entryAt(listing: FolderListing, i: number): Entry {
  const n = listing.nums;
  const o = i * NUMS;
  return {
    name: listing.names[i],
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
  };
}

/** An `Entry` the walk refills in place to compare without allocating (see `fillEntry`). */
export type ScratchEntry = { -readonly [K in keyof Entry]: Entry[K] };

/** Overwrites `target` with the `i`th entry; only for a comparison, never kept. */
export function fillEntry(target: ScratchEntry, listing: FolderListing, i: number): Entry {
  const n = listing.nums;
  const o = i * NUMS;
  target.name = listing.names[i];
  target.kind = KINDS[n[o]];
  target.size = n[o + 1];
  target.mode = n[o + 2];
  target.mtimeS = n[o + 3];
  target.mtimeN = n[o + 4];
  target.ctimeS = n[o + 5];
  target.ctimeN = n[o + 6];
  target.atimeS = n[o + 7];
  target.atimeN = n[o + 8];
  target.ino = n[o + 9];
  return target;
}

/** The packed form of a listing made through the `Io` (the same shape the threads hand over). */
export function packListing(listing: Listing): FolderListing {
  const names = [...listing.entries.keys()];
  const nums = new Float64Array(names.length * NUMS);
  let o = 0;
  for (const e of listing.entries.values()) {
    nums[o] = KINDS.indexOf(e.kind);
    nums[o + 1] = e.size;
    nums[o + 2] = e.mode;
    nums[o + 3] = e.mtimeS;
    nums[o + 4] = e.mtimeN;
    nums[o + 5] = e.ctimeS;
    nums[o + 6] = e.ctimeN;
    nums[o + 7] = e.atimeS;
    nums[o + 8] = e.atimeN;
    nums[o + 9] = e.ino;
    o += NUMS;
  }
  return { names, nums, temps: listing.temps, undecodable: listing.undecodable };
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

/** What the worker is told: the tree and the same exclude lists the main thread compiled. */
export interface ListerJob {
  root: string;
  excludes: string[];
  own: OwnPath[];
  /** `MAX_AHEAD` unless given (tests use a small one). */
  maxAhead?: number;
  /** `WALK_AHEAD` unless given (or `maxAhead`, if smaller). */
  walkAhead?: number;
}

/** The first (and only) message a listing thread gets: its job and the count it shares with the walk. */
export interface ListerStart extends ListerJob {
  taken?: Int32Array;
}

/** The two trees' listers of a pass. */
export interface Listers {
  source: Lister;
  replica: Lister;
}

/** A listing thread on each tree, compiling the same exclude lists. */
export function threadListers(source: string, replica: string, lists: { excludes: string[]; own: OwnPath[] }): Listers {
  const sourceLister = new ThreadLister({ root: source, ...lists });
  try {
    return { source: sourceLister, replica: new ThreadLister({ root: replica, ...lists }) };
  } catch (error) {
    void sourceLister.close();
    throw error;
  }
}

/** Stops both (a listing thread left running would keep the process alive). */
export async function closeListers(listers: Listers | undefined): Promise<void> {
  await Promise.all([listers?.source.close(), listers?.replica.close()]);
}

/** Listing threads started ahead of need (`prestartListers`), not yet given a tree. */
const spares: { worker: Worker; drop: () => void }[] = [];

/**
 * Starts `count` listing threads now, idle until a pass gives each its tree; `bin.ts` calls this
 * before it loads the rest of the program.
 *
 * Perf: a thread takes ~50 ms to boot (a Node environment of its own), and a pass started its two
 * only once the CLI's modules were loaded and its options read: they began listing ~190 ms after
 * the process began, ~160 ms when started here (booted at ~110 ms, while the program loads). The
 * no-change pass at 100k: 0.81 s against 0.84 s (medians of 9, alternating).
 * A spare does not keep the process alive, and one no pass takes costs only its memory.
 */
export function prestartListers(count: number): void {
  for (let i = 0; i < count; i++) {
    const worker = startThread('lister-worker');
    worker.unref();
    // One that fails before it is taken is dropped; the pass then starts its own.
    const drop = (): void => {
      const at = spares.findIndex((spare) => spare.worker === worker);
      if (at >= 0) spares.splice(at, 1);
    };
    worker.once('error', drop);
    worker.once('exit', drop);
    spares.push({ worker, drop });
  }
}

/** Started listing threads no pass has taken yet (for the tests). */
export function spareListers(): number {
  return spares.length;
}

/** A started idle thread if there is one, else a new one; given `start` and kept alive from now on. */
function listingThread(start: ListerStart): Worker {
  const spare = spares.shift();
  // Only our own listeners come off (Node's own, which start the message port, stay).
  spare?.worker.off('error', spare.drop).off('exit', spare.drop);
  const worker = spare?.worker ?? startThread('lister-worker');
  worker.ref();
  worker.postMessage(start);
  return worker;
}

/**
 * Entries a listing thread may be ahead of the walk (about 100 bytes each). Perf: while the main
 * thread loads a big manifest (1.3 s for 1M records) the threads list ahead, and on the 1M-file
 * tree they got 280k–410k entries ahead: 512k keeps that head start, and bounds what a tree of
 * any size can queue (~50 MB a side) if the walk falls behind.
 */
export const MAX_AHEAD = 1 << 19;
/**
 * The lead once the walk has begun. Perf: a listing that waits in `ready` for two young-generation
 * collections is promoted to the old one, where it becomes garbage that only a full collection
 * frees. On the 1M-file pass the walk fell ~100k entries behind (half a second), so most listings
 * were promoted: the heap grew by ~45 MB, and by over 100 MB in one run of five. A short queue
 * lets them die young; the threads still list while the walk compares.
 */
export const WALK_AHEAD = 1 << 15;
/** See `ThreadLister.credit`. */
const WAKE_EVERY = 4096;
/** Batch buffers detached at once (~320 KB each; one `structuredClone` costs more than a detach). */
const DETACH_AT_ONCE = 8;
/** Slots of the shared `Int32Array`: entries the walk has taken (or let go of), and the lead allowed. */
export const TAKEN = 0;
export const AHEAD = 1;

/** What the worker counts as one listing's entries: its names, plus the folder itself. */
export function entriesOf(packed: PackedListing): number {
  return packed.nums.length / NUMS + 1;
}

/** One folder as the worker sends it (names joined by NUL, `NUMS` numbers per entry). */
export interface PackedListing {
  dir: string;
  names: string;
  nums: Float64Array;
  temps: string[];
  undecodable: string[];
  error?: { code?: string; message: string };
}

/** Numbers per entry: kind, size, mode, mtime s/ns, ctime s/ns, atime s/ns, inode. */
export const NUMS = 10;
export const KINDS: Kind[] = ['file', 'dir', 'symlink', 'special'];

export function unpack(packed: PackedListing): FolderListing {
  const names = packed.names === '' ? [] : packed.names.split('\0');
  return { names, nums: packed.nums, temps: packed.temps, undecodable: packed.undecodable };
}

export class ThreadLister implements Lister {
  private readonly worker: Worker;
  private readonly ready = new Map<string, PackedListing>();
  /** Shared with the worker: `[TAKEN, AHEAD]` (see `MAX_AHEAD`, `WALK_AHEAD`). */
  private readonly taken = new Int32Array(new SharedArrayBuffer(8));
  private readonly walkAhead: number;
  /**
   * Listings in `ready` still counted against the worker's lead; the others there were let go of
   * (credited) while the walk waited for a later one.
   */
  private readonly held = new Set<PackedListing>();
  private readonly waiting = new Map<string, { resolve: (listing: FolderListing) => void; reject: (error: Error) => void }>();
  private done = false;
  private failure: Error | undefined;
  /** Per batch buffer, its listings the walk has not discarded yet (see `discard`). */
  private readonly listingsIn = new WeakMap<ArrayBuffer, number>();
  /** Batch buffers the walk is done with, detached a few at once. */
  private spent: ArrayBuffer[] = [];
  private readonly discarded = new WeakSet<FolderListing>();
  private readonly detachAtOnce: number;

  /** `detachAtOnce`: see `DETACH_AT_ONCE` (tests use 1). */
  constructor(job: ListerJob, options: { detachAtOnce?: number } = {}) {
    this.detachAtOnce = options.detachAtOnce ?? DETACH_AT_ONCE;
    Atomics.store(this.taken, AHEAD, job.maxAhead ?? MAX_AHEAD);
    this.walkAhead = Math.min(job.walkAhead ?? WALK_AHEAD, job.maxAhead ?? MAX_AHEAD);
    this.worker = listingThread({ ...job, taken: this.taken });
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
      // Every listing of a batch has its numbers in the same buffer.
      if (batch.length > 0) this.listingsIn.set(batch[0].nums.buffer as ArrayBuffer, batch.length);
      for (const packed of batch) {
        const waiter = this.waiting.get(packed.dir);
        if (waiter === undefined) {
          this.ready.set(packed.dir, packed);
          // While the walk waits for a later folder, what arrives before it is skipped too.
          if (this.waiting.size > 0) this.credit(packed);
          else this.held.add(packed);
          continue;
        }
        this.waiting.delete(packed.dir);
        this.credit(packed);
        try {
          waiter.resolve(settle(packed));
        } catch (error) {
          waiter.reject(error as Error);
        }
      }
      // Safety: what the waiting walk let go of makes room, and the worker must see it (`credit`).
      if (this.waiting.size > 0) Atomics.notify(this.taken, TAKEN);
    });
    this.worker.on('error', (error) => this.fail(error));
    // Any end before 'done' is a failure, whatever its status: a waiting walk must not wait forever.
    this.worker.on('exit', (code) => {
      // (After a fatal report the thread ends with 0: that report is the reason kept.)
      if (!this.done && this.failure === undefined) this.fail(new Error(`listing thread ended (status ${code}) before ${job.root} was listed`));
    });
  }

  list(relDir: string): FolderListing | Promise<FolderListing> {
    // The walk has begun: from now on the worker keeps the shorter lead.
    Atomics.store(this.taken, AHEAD, this.walkAhead);
    const packed = this.ready.get(relDir);
    if (packed !== undefined) {
      this.ready.delete(relDir);
      this.take(packed);
      return settle(packed);
    }
    if (this.failure) throw this.failure;
    // The worker lists every folder it finds; one it never sent vanished or was never a folder.
    if (this.done) throw missing(relDir);
    // The walk needs a listing the worker has not sent: what it holds ready, it skipped (or takes
    // later, out of order), so it no longer counts against the worker's lead (no deadlock), and
    // neither does what arrives until the listing it waits for (see the message handler).
    for (const held of this.held) this.credit(held);
    this.held.clear();
    // Safety: the walk is about to wait, so the worker must not: it is woken whatever was credited.
    Atomics.notify(this.taken, TAKEN);
    return new Promise((resolve, reject) => this.waiting.set(relDir, { resolve, reject }));
  }

  /** The walk took a listing from `ready`: it no longer counts against the worker's lead (if it still did). */
  private take(packed: PackedListing): void {
    if (this.held.delete(packed)) this.credit(packed);
  }

  /**
   * Frees the worker's room by `packed`'s entries, and wakes it if it waits for room.
   *
   * Perf: the worker is woken when the count crosses a multiple of `WAKE_EVERY` (it waits for room
   * for about a batch anyway), not at every folder taken: a wake per folder cost ~15,000 more
   * context switches on the 1M-file pass. `list` wakes it whenever the walk is about to wait.
   */
  private credit(packed: PackedListing): void {
    const entries = entriesOf(packed);
    const before = Atomics.add(this.taken, TAKEN, entries);
    if (Math.floor(before / WAKE_EVERY) !== Math.floor((before + entries) / WAKE_EVERY)) Atomics.notify(this.taken, TAKEN);
  }

  /**
   * Perf: a batch's numbers come in one buffer the worker allocated; in the main thread it is
   * "external" memory, freed only once V8 collects the buffer's object, which had been promoted
   * while its listings waited in `ready`: on the 1M-file pass ~70 MB of spent listings waited for
   * a full collection. Once the walk is done with every listing of a batch, its buffer is detached
   * here (a transfer to nowhere) and freed at the next young-generation collection.
   */
  discard(listing: FolderListing): void {
    // Safety: counted once per listing, or a batch would be freed under listings still in use.
    if (this.discarded.has(listing)) return;
    this.discarded.add(listing);
    const buffer = listing.nums.buffer as ArrayBuffer;
    const left = this.listingsIn.get(buffer);
    if (left === undefined) return;
    if (left > 1) {
      this.listingsIn.set(buffer, left - 1);
      return;
    }
    this.listingsIn.delete(buffer);
    this.spent.push(buffer);
    if (this.spent.length < this.detachAtOnce) return;
    structuredClone(this.spent, { transfer: this.spent });
    this.spent = [];
  }

  async close(): Promise<void> {
    this.spent = [];
    this.ready.clear();
    this.held.clear();
    // terminate() also ends a worker blocked in Atomics.wait (its test passes without any wake-up).
    await this.worker.terminate();
  }

  private fail(error: Error): void {
    this.failure = error;
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}

function settle(packed: PackedListing): FolderListing {
  if (packed.error) throw Object.assign(new Error(packed.error.message), { code: packed.error.code });
  return unpack(packed);
}

function missing(relDir: string): Error {
  return Object.assign(new Error(`ENOENT: no such folder, ${relDir || '.'}`), { code: 'ENOENT' });
}
