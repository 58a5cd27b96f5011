/**
 * What the threaded listers share (`ThreadLister`, `NativeWalkLister`): batches of folder listings
 * packed in two buffers, taken one folder at a time in the walk's order, and freed once the walk
 * is done with every listing in them.
 */
import { NUMS, type FolderListing } from './entry.js';
import type { Lister, ListerSpec } from './lister.js';
import { fromTransport } from './names.js';
import { inWalkOrder } from './native-folder.js';

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

/** What the worker is told: the tree and the same exclude lists the main thread compiled. */
export interface ListerJob extends ListerSpec {
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
export const WAKE_EVERY = 4096;

/** How far a lister's producer may run ahead: before the walk begins (`max`), and once it has (`walk`). */
export function leadOf(job: ListerJob): { max: number; walk: number } {
  const max = job.maxAhead ?? MAX_AHEAD;
  return { max, walk: Math.min(job.walkAhead ?? WALK_AHEAD, max) };
}

/** Whether a count going from `before` to `after` crosses a multiple of `WAKE_EVERY`. */
export function crossesWake(before: number, after: number): boolean {
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
export const DETACH_AT_ONCE = 8;
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
  /** The few folders with temporary files, names that are not UTF-8, or that could not be read. */
  extras: ListingExtra[];
}

export interface ListingExtra {
  /** The folder's index in its batch. */
  at: number;
  temps: string[];
  /** Some of its names are not UTF-8: they are in transport form (`fromTransport`), not in the walk's order. */
  escaped?: true;
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
    return fromTransport(this.text.toString('utf8', this.textStart(at), this.dirEnd(at)));
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
    if (extra?.escaped) {
      const ordered = inWalkOrder(names, nums);
      return new ThreadListing(ordered.names, ordered.nums, extra.temps, this);
    }
    return new ThreadListing(names, nums, extra?.temps ?? NONE, this);
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
    public batch: Batch | undefined,
  ) {}
}

/**
 * What the threaded listers share: batches of listings that arrive in the walk's order, taken one
 * folder at a time, and freed once the walk is done with every listing in them. A subclass feeds
 * them in (`receive`) and lets its producer run further ahead as the walk takes them (`credit`).
 */
export abstract class BatchLister implements Lister {
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


export function missing(relDir: string): Error {
  return Object.assign(new Error(`ENOENT: no such folder, ${relDir || '.'}`), { code: 'ENOENT' });
}
