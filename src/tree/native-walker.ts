/** One tree walked by the addon's own thread (`native/walker.c`). */
import type { NativeWalk, NativeWalker } from '../native.js';
import { BatchLister, crossesWake, DETACH_AT_ONCE, leadOf, missing, BATCH_ENTRIES, type ListerJob } from './batches.js';
import type { FolderListing } from './entry.js';
import { plainNames } from './filter.js';

/**
 * How long the walk waits at once for the native walker's next batch, before it lets the event
 * loop run (a signal, the progress line) and waits again.
 */
const WAIT_MS = 50;

/**
 * One tree walked by the native walker (`walkStart` in `native/walker.c`): a thread of its own, not
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
    private readonly native: NativeWalk,
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
