/**
 * Where the walk gets its folder listings from. Chosen once per pass:
 *
 * - `InlineLister`: lists on the calling thread through the pass's `Io` (tests count and fail calls).
 * - `ThreadLister`: a worker thread walks one whole tree ahead of the walk and hands over its
 *   folders' listings in batches, as numbers and UTF-8 names in two buffers (see `Batch`).
 * - `NativeWalkLister`: the same batches from a native thread (`native/fswalk.c`), which lists
 *   every folder: for a pass without exclude patterns, when the native lister is built.
 *
 * Perf: a no-change pass is little more than readdir + lstat of both trees, and Node's lstat costs
 * ~2 µs of JavaScript per entry on top of the syscall. With one worker per tree the two trees are
 * listed in parallel on the machine's two cores while the main thread only compares (measured on
 * 100k files: see the README's Performance section).
 */
import type { Worker } from 'node:worker_threads';
import { compileExcludes, plainNames, type OwnPath } from './filter.js';
import type { Io } from '../replica/local/io.js';
import { loadNative, type NativeLister, type NativeWalker } from '../native.js';
import { byName, listDir, type Listing } from './scan.js';
import { startThread } from '../threads.js';
import { KINDS, NUMS, type Entry } from '../compare/types.js';

export { KINDS, NUMS };

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
  return entryFrom(listing.names[i], listing.nums, i);
}

/** The `Entry` named `name` whose numbers are the `i`th `NUMS` of `n` (a listing's, `Io.fixMetas`'). */
export function entryFrom(name: string, n: Float64Array, i: number): Entry {
  const o = i * NUMS;
  return {
    name,
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
  /** false: list in JavaScript even if the native lister is built (tests compare the two). */
  native?: boolean;
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

/**
 * A lister on each tree, in threads: native walkers when `nativeWalker` gives one, else listing
 * threads compiling the same exclude lists.
 */
export function threadListers(source: string, replica: string, lists: { excludes: string[]; own: OwnPath[] }): Listers {
  const native = nativeWalker(lists);
  const lister = (root: string): Lister => (native !== undefined ? new NativeWalkLister({ root, ...lists }, native) : new ThreadLister({ root, ...lists }));
  const sourceLister = lister(source);
  try {
    return { source: sourceLister, replica: lister(replica) };
  } catch (error) {
    void sourceLister.close();
    throw error;
  }
}

/**
 * The native lister, if it is built (`loadNative`) and may walk these trees. It matches no
 * pattern: it lists every folder but those named by plain-name patterns (`plainNames`), so not
 * when another pattern may leave folders out, or a backup dir lies in a tree (it only grows, and
 * no pass needs its listing); our manifest's own folder it lists, and the walk skips.
 *
 * Safety: the walk applies the full matcher to what it takes; a folder the walker skipped but the
 * walk asked for would look vanished (nothing deleted beneath it), never be mirrored wrongly. The
 * plain names are checked against the compiled matcher too, at three depths.
 */
export function nativeWalker(lists: { excludes: readonly string[]; own: readonly OwnPath[] }): NativeLister | undefined {
  const names = plainNames(lists.excludes);
  if (names === undefined || lists.own.some((own) => own.kind === 'backup')) return undefined;
  if (names.length > 0) {
    const exclude = compileExcludes(lists.excludes);
    if (!names.every((name) => exclude(name, true) && exclude(`a/${name}`, true) && exclude(`a/b/${name}`, true))) return undefined;
  }
  return loadNative();
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
 * The lead once the walk has begun. Perf: listings wait outside the heap (see `Batch`), so the
 * lead no longer decides what is promoted (as it did when waiting listings were objects: a 32k
 * lead instead of ~100k kept ~45 MB of them out of the old generation); it bounds the memory
 * they hold, ~3 MB a side. The full 512k measured the same on the 1M-file pass (5.31 s against
 * 5.39 s, medians of 5, within noise).
 */
export const WALK_AHEAD = 1 << 15;
/** See `ThreadLister.credit`. */
const WAKE_EVERY = 4096;

/** How far a lister's producer may run ahead: before the walk begins (`max`), and once it has (`walk`). */
function leadOf(job: ListerJob): { max: number; walk: number } {
  const max = job.maxAhead ?? MAX_AHEAD;
  return { max, walk: Math.min(job.walkAhead ?? WALK_AHEAD, max) };
}

/** Whether a count going from `before` to `after` crosses a multiple of `WAKE_EVERY`. */
function crossesWake(before: number, after: number): boolean {
  return Math.floor(before / WAKE_EVERY) !== Math.floor(after / WAKE_EVERY);
}
/**
 * Perf: a listing thread posts in batches of about this many entries (one message per folder costs
 * more). A batch holds its listings' numbers in one buffer and their folders' and entries' names,
 * UTF-8, in another, both transferred whole: one allocation and one transfer per batch, not per
 * folder, and nothing for the main thread's garbage collector until the walk reads a folder (see
 * `Batch`). The main thread frees both when the walk is done with every listing in them
 * (`BatchLister.discard`).
 */
export const BATCH_ENTRIES = 4096;
/** Batches whose buffers are detached at once (~450 KB each; one `structuredClone` costs more than a detach). */
const DETACH_AT_ONCE = 8;
/** Slots of the shared `Int32Array`: entries the walk has taken (or let go of), and the lead allowed. */
export const TAKEN = 0;
export const AHEAD = 1;

/**
 * A batch of folder listings as a listing thread posts it (see `lister-worker.ts`): their numbers
 * (`NUMS` per entry) in `nums`, their folders' paths and entries' names (UTF-8, a folder's names
 * joined by NUL) in `text`, and per folder where each part ends (`ends`: the path's and the names'
 * end in `text`, the numbers' end in `nums`; each part begins where the folder before ends).
 */
export interface PackedBatch {
  text: Uint8Array;
  nums: Float64Array;
  ends: Int32Array;
  /** The few folders with temporary files, undecodable names, or that could not be read. */
  extras: ListingExtra[];
}

export interface ListingExtra {
  /** The folder's index in its batch. */
  at: number;
  temps: string[];
  /** In any order: `Batch` puts them in the walk's. */
  undecodable: string[];
  error?: { code?: string; message: string };
}

const NONE: string[] = [];

/**
 * A posted batch on the main thread: read one folder at a time, as the walk takes it.
 *
 * Perf: the 1M-file no-change pass peaked at 384–448 MiB in about one run in three (300–345 MiB
 * otherwise): the main thread's heap grew through the walk to ~140 MB of garbage in the old
 * generation, freed only by a full collection. Two things put listings there:
 * - A batch arrived as an object per folder, with its names in one string, all made as the
 *   message came and kept in a map until the walk took them: over half of them lived through two
 *   young-generation collections and were promoted, with the map's hash tables (~70 MB, sampling
 *   heap profiler). Now a batch stays in its two buffers, outside the heap, until the walk reaches
 *   a folder; the strings made then die young.
 * - The listings discarded were remembered in a `WeakSet`. In the runs that went wrong, each
 *   young-generation collection from some point on kept ~4 MB of listings alive and promoted
 *   them at the next (`--trace-gc-nvp`: `new_space_survived`), as if the set held them; with the
 *   new batches but that set, still one run in three. A listing now carries its batch until
 *   discarded (`ThreadListing`), and nothing holds it weakly.
 * Together: 26 runs of 270–311 MiB, no collection in the walk keeping anything; 5.23 s against
 * 5.49 s (medians of 5, alternating with the code before).
 */
class Batch {
  readonly text: Buffer;
  /** The first folder not yet taken (or skipped). */
  next = 0;
  /** Folders the walk has not discarded (see `ThreadLister.discard`). */
  left: number;
  private readonly extras: Map<number, ListingExtra> | undefined = undefined;

  constructor(private readonly packed: PackedBatch) {
    this.text = Buffer.from(packed.text.buffer, packed.text.byteOffset, packed.text.byteLength);
    this.left = this.count;
    if (packed.extras.length === 0) return;
    // The native listers order undecodable names by their bytes, `listFolder` by their decoded
    // strings, as the walk does (names that decode alike are alike, so this gives its order exactly).
    for (const extra of packed.extras) extra.undecodable.sort(byName);
    this.extras = new Map(packed.extras.map((extra) => [extra.at, extra]));
  }

  get count(): number {
    return this.packed.ends.length / 3;
  }

  get nums(): Float64Array {
    return this.packed.nums;
  }

  // Folder `at`'s parts, each beginning where the folder before ends (see `PackedBatch`).
  private textStart(at: number): number {
    return at === 0 ? 0 : this.packed.ends[at * 3 - 2];
  }

  private dirEnd(at: number): number {
    return this.packed.ends[at * 3];
  }

  private namesEnd(at: number): number {
    return this.packed.ends[at * 3 + 1];
  }

  private numsStart(at: number): number {
    return at === 0 ? 0 : this.packed.ends[at * 3 - 1];
  }

  private numsEnd(at: number): number {
    return this.packed.ends[at * 3 + 2];
  }

  dir(at: number): string {
    return this.text.toString('utf8', this.textStart(at), this.dirEnd(at));
  }

  /** What the listing thread counts as a listing's entries: its names, plus the folder itself. */
  entries(at: number): number {
    return (this.numsEnd(at) - this.numsStart(at)) / NUMS + 1;
  }

  /** The listing of folder `at`; throws the error the thread met listing it. */
  listing(at: number): FolderListing {
    const extra = this.extras?.get(at);
    if (extra?.error) throw Object.assign(new Error(extra.error.message), { code: extra.error.code });
    const from = this.dirEnd(at);
    const to = this.namesEnd(at);
    const names = to === from ? [] : this.text.toString('utf8', from, to).split('\0');
    const nums = this.packed.nums.subarray(this.numsStart(at), this.numsEnd(at));
    return new ThreadListing(names, nums, extra?.temps ?? NONE, extra?.undecodable ?? NONE, this);
  }

  /**
   * Folder `at` alone, in a batch of its own (copies of its bytes): a folder passed over may be
   * taken much later, and it must not hold its whole batch (~450 KB) until then.
   */
  alone(at: number): Batch {
    const textStart = this.textStart(at);
    const numsStart = this.numsStart(at);
    const extra = this.extras?.get(at);
    return new Batch({
      text: this.packed.text.slice(textStart, this.namesEnd(at)),
      nums: this.packed.nums.slice(numsStart, this.numsEnd(at)),
      ends: Int32Array.of(this.dirEnd(at) - textStart, this.namesEnd(at) - textStart, this.numsEnd(at) - numsStart),
      extras: extra === undefined ? [] : [{ ...extra, at: 0 }],
    });
  }
}

/** A listing from a `Batch`, which it holds on to until discarded. */
class ThreadListing implements FolderListing {
  constructor(
    readonly names: string[],
    readonly nums: Float64Array,
    readonly temps: string[],
    readonly undecodable: string[],
    public batch: Batch | undefined,
  ) {}
}

/**
 * What the threaded listers share: batches of listings that arrive in the walk's order, taken one
 * folder at a time, and freed once the walk is done with every listing in them. A subclass feeds
 * them in (`receive`) and lets its producer run further ahead as the walk takes them (`credit`).
 */
abstract class BatchLister implements Lister {
  /**
   * Batches with folders not yet taken (or skipped), oldest first. Their folders come in the walk's
   * order; only the replica's folders that the source lacks are taken later (see `skipped`).
   */
  private readonly queue: Batch[] = [];
  /** Folders passed over for a later one, by path (the walk may still take them, out of order). */
  private readonly skipped = new Map<string, Batch>();
  /** Every batch has arrived. */
  protected done = false;
  protected failure: Error | undefined;
  /** Buffers of batches the walk is done with, detached a few at once. */
  private spent: ArrayBuffer[] = [];
  /** Batches not yet done with (see `liveBatches`). */
  private live = 0;

  /** `detachAtOnce`: see `DETACH_AT_ONCE` (tests use 1). */
  constructor(private readonly detachAtOnce: number) {}

  abstract list(relDir: string): FolderListing | Promise<FolderListing>;

  abstract close(): Promise<void>;

  /** The walk took (or let go of) `entries` more entries: the producer may run that much further. */
  protected abstract credit(entries: number): void;

  protected receive(packed: PackedBatch): void {
    this.live++;
    this.queue.push(new Batch(packed));
  }

  /** `relDir`'s listing if it was passed over for a later folder (see `find`). */
  protected passedOver(relDir: string): FolderListing | undefined {
    if (this.skipped.size === 0) return undefined;
    const passed = this.skipped.get(relDir);
    if (passed === undefined) return undefined;
    this.skipped.delete(relDir);
    return this.take(passed, 0);
  }

  /**
   * Takes `relDir` from the queue, skipping the folders before it: its listing (or the error met
   * listing it), or undefined (all skipped) if it has not arrived. Each folder taken or skipped
   * no longer counts against the producer's lead.
   *
   * Safety: a folder skipped is kept in `skipped`, for the walk may ask for it later (the
   * replica's folders the source lacks); and it no longer counts against the lead, so a walk that
   * waits for a later folder cannot deadlock with a producer waiting for room.
   */
  protected find(relDir: string): FolderListing | undefined {
    const queue = this.queue;
    while (queue.length > 0) {
      const batch = queue[0];
      const at = batch.next++;
      if (batch.next === batch.count) queue.shift();
      this.credit(batch.entries(at));
      const dir = batch.dir(at);
      if (dir === relDir) return this.take(batch, at);
      this.skipped.set(dir, batch.alone(at));
      this.live++;
      this.release(batch);
    }
    return undefined;
  }

  /** Folder `at` of `batch`, which is let go of if it cannot be listed (it will not be discarded). */
  private take(batch: Batch, at: number): FolderListing {
    try {
      return batch.listing(at);
    } catch (error) {
      this.release(batch);
      throw error;
    }
  }

  /**
   * Perf: a batch's buffers are "external" memory in the main thread, freed only once V8 collects
   * the objects holding them, which may have been promoted meanwhile: on the 1M-file pass ~70 MB
   * of spent listings once waited for a full collection. Once the walk is done with every listing
   * of a batch, its buffers are detached here (a transfer to nowhere), and freed at the next
   * young-generation collection.
   */
  discard(listing: FolderListing): void {
    if (!(listing instanceof ThreadListing) || listing.batch === undefined) return;
    const batch = listing.batch;
    // Safety: counted once per listing, or a batch would be freed under listings still in use.
    listing.batch = undefined;
    this.release(batch);
  }

  /** One folder of `batch` is done with (discarded, skipped, or could not be listed). */
  private release(batch: Batch): void {
    if (--batch.left > 0) return;
    this.live--;
    this.spent.push(batch.nums.buffer as ArrayBuffer, batch.text.buffer as ArrayBuffer);
    if (this.spent.length < 2 * this.detachAtOnce) return;
    structuredClone(this.spent, { transfer: this.spent });
    this.spent = [];
  }

  /** Batches whose memory is still held: some folder in them is not done with (for the tests). */
  get liveBatches(): number {
    return this.live;
  }

  /** Lets go of every batch (the lister is closing). */
  protected clear(): void {
    this.spent = [];
    this.queue.length = 0;
    this.skipped.clear();
  }
}

/** A listing thread (`lister-worker.ts`) walking one tree. */
export class ThreadLister extends BatchLister {
  private readonly worker: Worker;
  /** Shared with the worker: `[TAKEN, AHEAD]` (see `MAX_AHEAD`, `WALK_AHEAD`). */
  private readonly taken = new Int32Array(new SharedArrayBuffer(8));
  private readonly walkAhead: number;
  /** The walk waiting for a folder not listed yet (it takes one at a time). */
  private waiter: { dir: string; resolve: (listing: FolderListing) => void; reject: (error: Error) => void } | undefined;

  constructor(job: ListerJob, options: { detachAtOnce?: number } = {}) {
    super(options.detachAtOnce ?? DETACH_AT_ONCE);
    const lead = leadOf(job);
    Atomics.store(this.taken, AHEAD, lead.max);
    this.walkAhead = lead.walk;
    this.worker = listingThread({ ...job, taken: this.taken });
    this.worker.on('message', (message: PackedBatch | 'done' | { fatal: string }) => {
      if (message === 'done') {
        this.done = true;
        this.waiter?.reject(missing(this.waiter.dir));
        this.waiter = undefined;
        return;
      }
      if (!('nums' in message)) {
        this.fail(new Error(`listing ${job.root} failed: ${message.fatal}`));
        return;
      }
      this.receive(message);
      const waiter = this.waiter;
      if (waiter === undefined) return;
      // While the walk waits for a folder, what arrives before it is skipped (see `find`).
      let found: FolderListing | undefined;
      try {
        found = this.find(waiter.dir);
      } catch (error) {
        this.waiter = undefined;
        waiter.reject(error as Error);
        return;
      }
      if (found !== undefined) {
        this.waiter = undefined;
        waiter.resolve(found);
        return;
      }
      // Safety: what the waiting walk skipped makes room, and the worker must see it (`credit`).
      Atomics.notify(this.taken, TAKEN);
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
    const passed = this.passedOver(relDir);
    if (passed !== undefined) return passed;
    const found = this.find(relDir);
    if (found !== undefined) return found;
    if (this.failure) throw this.failure;
    // The worker lists every folder it finds; one it never sent vanished or was never a folder.
    if (this.done) throw missing(relDir);
    if (this.waiter !== undefined) throw new Error(`listing ${relDir} asked for while ${this.waiter.dir} is awaited`);
    // Safety: the walk is about to wait, so the worker must not: it is woken whatever was skipped.
    Atomics.notify(this.taken, TAKEN);
    return new Promise((resolve, reject) => {
      this.waiter = { dir: relDir, resolve, reject };
    });
  }

  /**
   * Frees the worker's room by `entries`, and wakes it if it waits for room.
   *
   * Perf: the worker is woken when the count crosses a multiple of `WAKE_EVERY` (it waits for room
   * for about a batch anyway), not at every folder taken: a wake per folder cost ~15,000 more
   * context switches on the 1M-file pass. `list` wakes it whenever the walk is about to wait.
   */
  protected credit(entries: number): void {
    const before = Atomics.add(this.taken, TAKEN, entries);
    if (crossesWake(before, before + entries)) Atomics.notify(this.taken, TAKEN);
  }

  async close(): Promise<void> {
    this.clear();
    // terminate() also ends a worker blocked in Atomics.wait (its test passes without any wake-up).
    await this.worker.terminate();
  }

  private fail(error: Error): void {
    this.failure = error;
    this.waiter?.reject(error);
    this.waiter = undefined;
  }
}

/**
 * How long the walk waits at once for the native walker's next batch, before it lets the event
 * loop run (a signal, the progress line) and waits again.
 */
const WAIT_MS = 50;

/**
 * One tree walked by the native walker (`walkStart` in `native/fswalk.c`): a thread of its own, not
 * a Node one, that lists every folder into the batches a listing thread posts, and the walk takes
 * them as it needs them (`walkNext`). It matches no pattern, so it is used only when every exclude
 * pattern is a plain name, whose folders it does not descend into (see `nativeWalker`).
 *
 * Perf: a listing thread costs ~50 ms of CPU to start (a Node environment of its own), and some
 * JavaScript per folder, on a pass that is CPU-bound on two cores. The 100k-file no-change pass
 * with walkers: CPU 1.02 s against 1.13 s, 0.60 s against 0.62 s (medians of 11, alternating).
 * Starting the source's walker still earlier, in `bin.ts` before the program loads, measured the
 * same (0.56 s and 0.56 s, medians of 15): the program loads in ~20 ms once Node is up.
 */
export class NativeWalkLister extends BatchLister {
  private readonly walker: NativeWalker;
  private readonly walkAhead: number;
  private walking = false;
  /** Entries the walk took or let go of, and what the walker was last told of them. */
  private taken = 0;
  private told = 0;
  private closed = false;

  constructor(
    private readonly job: ListerJob,
    private readonly native: NativeLister,
    options: { detachAtOnce?: number } = {},
  ) {
    super(options.detachAtOnce ?? DETACH_AT_ONCE);
    const lead = leadOf(job);
    this.walkAhead = lead.walk;
    // (Patterns other than plain names are the caller's to rule out: see `nativeWalker`.)
    this.walker = native.walkStart(job.root, BATCH_ENTRIES, lead.max, plainNames(job.excludes) ?? []);
  }

  list(relDir: string): FolderListing | Promise<FolderListing> {
    if (!this.walking) {
      // The walk has begun: from now on the walker keeps the shorter lead.
      this.walking = true;
      this.native.walkAhead(this.walker, this.walkAhead);
    }
    return this.passedOver(relDir) ?? this.pull(relDir, WAIT_MS) ?? this.pullLater(relDir);
  }

  /**
   * Finds `relDir` in what has arrived, taking the walker's batches as they come (waiting up to
   * `waitMs` for each): its listing, or undefined if none came in time.
   */
  private pull(relDir: string, waitMs: number): FolderListing | undefined {
    for (;;) {
      const found = this.find(relDir);
      if (found !== undefined) return found;
      if (this.failure) throw this.failure;
      // (Not ENOENT, which the walk takes for a folder that vanished.)
      if (this.closed) throw new Error(`listing ${this.job.root} stopped: the lister was closed`);
      // The walker lists every folder it finds; one it never sent vanished or was never a folder.
      if (this.done) throw missing(relDir);
      // Safety: the walk is about to wait, so the walker must not: it is told of all taken or skipped.
      this.tell();
      let next;
      try {
        next = this.native.walkNext(this.walker, waitMs);
      } catch (error) {
        // A batch lost (Node could not allocate it): every listing from now on fails.
        this.failure = new Error(`listing ${this.job.root} failed: ${error instanceof Error ? error.message : String(error)}`);
        throw this.failure;
      }
      if (next === undefined) return undefined;
      if (next === true) this.done = true;
      else if (typeof next === 'string') this.failure = new Error(`listing ${this.job.root} failed: ${next}`);
      else this.receive(next);
    }
  }

  private async pullLater(relDir: string): Promise<FolderListing> {
    for (;;) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const found = this.pull(relDir, WAIT_MS);
      if (found !== undefined) return found;
    }
  }

  /** As `ThreadLister.credit`: the walker is told when the count crosses a multiple of `WAKE_EVERY`. */
  protected credit(entries: number): void {
    const before = this.taken;
    this.taken += entries;
    if (crossesWake(before, this.taken)) this.tell();
  }

  private tell(): void {
    if (this.told === this.taken) return;
    this.told = this.taken;
    this.native.walkCredit(this.walker, this.taken);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.clear();
    this.native.walkStop(this.walker);
  }
}

function missing(relDir: string): Error {
  return Object.assign(new Error(`ENOENT: no such folder, ${relDir || '.'}`), { code: 'ENOENT' });
}
