/** A listing thread (`lister-worker.ts`) walking one tree ahead of the walk; threads started early (`prestartListers`). */
import type { Worker } from 'node:worker_threads';
import { startThread } from '../threads.js';
import { AHEAD, BatchLister, crossesWake, DETACH_AT_ONCE, leadOf, missing, TAKEN, type ListerJob, type ListerStart, type PackedBatch } from './batches.js';
import type { FolderListing } from './entry.js';

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
