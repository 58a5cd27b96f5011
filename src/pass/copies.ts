/**
 * Copies go in batches: each file's content is written to its temporary file (`Replica.writeCopy`,
 * several under way at once off the main thread), then the whole batch is flushed at once, then
 * each is put in place, recorded and logged, in the plan's order.
 *
 * Perf: one fsync per file in a row costs a journal commit each (most of a first sync's time on
 * ext4); flushed together, a batch shares its commits. And a batch is flushed while the next one is
 * written, and put in place while the one after is flushed, so the disk and the CPU work at the
 * same time. Safety is unchanged: no file is renamed into place before its own bytes are flushed.
 */
import { StepError } from '../errors.js';
import type { InstalledCopy, PendingCopy, Replica, Written } from '../replica/replica.js';
import type { PassContext } from './context.js';
import type { CopyOp, Recorder } from './recorder.js';

/** Copies flushed together. */
const COPY_BATCH_FILES = 64;
const COPY_BATCH_BYTES = 64 << 20;

/** A copy being written, then flushed and put in place. */
interface BatchedCopy {
  op: CopyOp;
  /** Never rejects: it may wait unawaited. */
  written: Promise<Written>;
  startedAt: number;
  /** Set once it is recorded; then `after` runs (`afterCopies`). */
  recorded?: true;
  after?: (() => void)[];
}

/** A copy's first half done, and its flush: `flushError` set if that failed. */
type Flushed = { pending: PendingCopy; flushError?: unknown } | { error: unknown };

/** A batch of copies and its flush under way: one outcome per copy. */
interface FlushingBatch {
  batch: BatchedCopy[];
  flushed: Promise<Flushed[]>;
}

export class CopyBatches {
  private batch: BatchedCopy[] = [];
  private batchBytes = 0;
  /** The batch being flushed while the next one is written. */
  private flushing: FlushingBatch | undefined;
  /** The batch before it, being put in place meanwhile (awaited before any other is, or any other operation). */
  private installing: Promise<void> = Promise.resolve();
  /** The copy added last. */
  private last: BatchedCopy | undefined;
  /** For the progress line: copies written so far, and their bytes. */
  readonly written = { files: 0, bytes: 0 };

  constructor(
    private readonly pass: PassContext,
    private readonly replica: Replica,
    private readonly recorder: Recorder,
  ) {}

  /** Starts `op`'s copy (not awaited: it is written while this thread goes on); a full batch goes on to be flushed. */
  async add(op: CopyOp): Promise<void> {
    this.pass.stats.hashed++;
    const written = this.replica.writeCopy({ relPath: op.relPath, source: op.source, replacing: op.replacing !== undefined }).then(
      (outcome): Written => {
        if (outcome.kind === 'written') {
          this.written.files++;
          this.written.bytes += op.source.size;
        }
        return outcome;
      },
      (error: unknown): Written => ({ kind: 'failed', error }),
    );
    this.last = { op, written, startedAt: Date.now() };
    this.batch.push(this.last);
    this.batchBytes += op.source.size;
    if (this.batch.length >= COPY_BATCH_FILES || this.batchBytes >= COPY_BATCH_BYTES) await this.nextBatch();
  }

  /**
   * A full batch: its flush starts, and the batch flushed meanwhile is put in place while the next
   * one is written. At most one batch is being put in place at a time.
   */
  private async nextBatch(): Promise<void> {
    const previous = this.flushing;
    this.flushing = this.startFlush();
    if (previous) {
      await this.installing;
      this.installing = this.install(previous);
      // It never rejects; were it to (a bug), the rejection waits for the next await of it.
      this.installing.catch(() => {});
    }
  }

  /**
   * `record` runs once every copy started so far is recorded (at once if they are): what is done
   * meanwhile (a folder made) is logged in the plan's order.
   */
  afterCopies(record: () => void): void {
    const last = this.last;
    if (last === undefined || last.recorded) record();
    else (last.after ??= []).push(record);
  }

  /** Every copy started so far flushed, put in place and recorded. */
  async finish(): Promise<void> {
    const previous = this.flushing;
    this.flushing = undefined;
    const current = this.batch.length > 0 ? this.startFlush() : undefined;
    await this.installing;
    if (previous) await this.install(previous);
    if (current) await this.install(current);
  }

  private startFlush(): FlushingBatch {
    const batch = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    const flushed = Promise.all(batch.map(({ written }) => written)).then(async (outcomes) => {
      const pending = outcomes.flatMap((outcome) => (outcome.kind === 'written' ? [outcome.pending] : []));
      const errors = await this.replica.flushCopies(pending);
      let next = 0;
      return outcomes.map((outcome): Flushed => (outcome.kind === 'written' ? { pending: outcome.pending, flushError: errors[next++] } : { error: outcome.error }));
    });
    return { batch, flushed };
  }

  /**
   * Once its files are flushed, puts each in place and records it. Perf: the batch's renames run
   * at once (on libuv's thread pool, for the local replica); each copy is recorded and logged in
   * the batch's order as its rename completes.
   */
  private async install({ batch, flushed: flushing }: FlushingBatch): Promise<void> {
    const flushed = await flushing;
    // Never rejected: each waits unawaited until its turn.
    const installed = batch.map(({ op }, i) => this.put(op, flushed[i]).then(undefined, (error: unknown) => ({ error })));
    for (const [i, copy] of batch.entries()) {
      const { op, startedAt } = copy;
      const result = await installed[i];
      if ('error' in result) this.recorder.failed(op, result.error);
      else this.recorder.copied(op, result, startedAt);
      copy.recorded = true;
      for (const record of copy.after ?? []) record();
      await this.recorder.checkpoint();
    }
  }

  /** A flushed copy put in place (or its temporary file removed if the write or flush failed). */
  private async put(op: CopyOp, outcome: Flushed): Promise<InstalledCopy> {
    if ('error' in outcome) throw outcome.error; // the write failed (its temporary file is gone)
    const { pending } = outcome;
    if (outcome.flushError !== undefined) {
      await this.replica.abandonCopy(pending);
      throw new StepError('copying (flushing)', op.relPath, outcome.flushError);
    }
    return this.replica.installCopy(pending);
  }
}
