/**
 * Copies written off the main thread: by the addon on libuv's thread pool (`PoolCopier`), or,
 * without it, on threads of our own (`CopyPool`, `copy-worker.ts`) for a pass with many.
 *
 * Perf: a first sync of 100k files spent 41 s on the main thread, one file after another: creating
 * the temporary file (11 s on this disk), reading, hashing, writing. Handed to threads, that work
 * runs on the other core while the main thread flushes, renames and records the copies before.
 * Large files keep their own path (the kernel copies while a thread hashes, see `execute.ts`).
 */
import type { Worker } from 'node:worker_threads';
import { errorCode, StepError } from '../../../errors.js';
import { ChangedWhileReading, COPY_STEPS, tempPathFor, type PendingCopy } from '../execute.js';
import type { CopyAnswer, CopyJob } from './copy-worker.js';
import type { Io } from '../io.js';
import { entryFrom } from '../../../tree/lister.js';
import { splitRel } from '../../../manifest/record-store.js';
import { startThread } from '../../../threads.js';

/** Writes the first half of small copies (`writeCopy`) off the main thread. */
export interface CopyWriter {
  /**
   * The copy's content in its temporary file; throws as `writeCopy` would. Undefined: the main
   * thread must write it (a read-only folder, which only the main thread makes writable; or no
   * way to write it off the main thread), with nothing left behind.
   */
  write(relPath: string, replacing: boolean): Promise<PendingCopy | undefined>;
  close(): Promise<void>;
}

/**
 * Small copies written by the addon on libuv's thread pool (`Io.copyToTemp`), several at once,
 * while the main thread flushes, renames and records the ones before.
 *
 * Perf: with no thread to start (a copying thread boots its own Node, ~50 ms), it pays from the
 * first copy: the 1% change's 800 copies spent ~130 ms of the main thread in opens, reads, writes
 * and MD5, with the other core idle.
 */
export class PoolCopier implements CopyWriter {
  /** `maxBytes`: a source found to hold this many bytes or more (it grew since the walk) is the main thread's to copy. */
  constructor(
    private readonly io: Io,
    private readonly roots: { sourceRoot: string; replicaRoot: string },
    private readonly maxBytes: number,
  ) {}

  async write(relPath: string, replacing: boolean): Promise<PendingCopy | undefined> {
    const tempAbs = tempPathFor(this.roots.replicaRoot, relPath);
    try {
      const { fd, md5, nums } = await this.io.copyToTemp(this.roots.sourceRoot + '/' + relPath, tempAbs, this.maxBytes);
      const source = entryFrom(splitRel(relPath)[1], nums, 0);
      return { relPath, tempAbs, output: fd, source, md5, resumedBytes: 0, replacing, restoreMode: undefined };
    } catch (error) {
      if (errorCode(error) === 'ECHANGED') throw new ChangedWhileReading(relPath);
      const step = COPY_STEPS[(error as { step?: number }).step ?? -1];
      // No copy made (ENOSYS: no addon; ETOOBIG: grown past small), or a read-only folder: the main thread's.
      if (step === undefined || (step === COPY_STEPS[2] && errorCode(error) === 'EACCES')) return undefined;
      throw new StepError(`copying (${step})`, relPath, error);
    }
  }

  async close(): Promise<void> {}
}

type Waiter = { resolve: (answer: CopyAnswer) => void; reject: (error: Error) => void };
type Thread = { worker: Worker; waiting: Map<number, Waiter>; failed?: Error };

export class CopyPool implements CopyWriter {
  private readonly threads: Thread[];
  private nextId = 0;

  private closing = false;

  /** `onFailure`: a thread failed (once per thread); its copies, and those in flight, go to the main thread. */
  constructor(count: number, roots: { sourceRoot: string; replicaRoot: string }, onFailure: (error: Error) => void) {
    this.threads = Array.from({ length: count }, () => {
      // Safety: the descriptors it opens are handed over and closed here; Node must not close
      // them when the thread ends, nor count them as its own.
      const worker = startThread('copy-worker', roots, { trackUnmanagedFds: false });
      const thread: Thread = { worker, waiting: new Map() };
      worker.on('message', (answer: CopyAnswer) => {
        thread.waiting.get(answer.id)?.resolve(answer);
        thread.waiting.delete(answer.id);
      });
      const fail = (error: Error) => {
        if (this.closing || thread.failed) return;
        onFailure(error);
        thread.failed = error;
        for (const waiter of thread.waiting.values()) waiter.reject(error);
        thread.waiting.clear();
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`copying thread exited with status ${code}`)));
      return thread;
    });
  }

  /**
   * The first half of a copy (`writeCopy`), on a thread; throws as `writeCopy` would. Undefined:
   * the main thread must copy it: its folder is read-only (see `ExecContext.unlockParents`), or
   * its thread failed (a descriptor it had open for it is lost until the process ends; the
   * temporary file is rewritten from the start).
   */
  async write(relPath: string, replacing: boolean): Promise<PendingCopy | undefined> {
    const id = this.nextId++;
    const thread = this.threads[id % this.threads.length];
    if (thread.failed) return undefined;
    const answer = await new Promise<CopyAnswer | undefined>((resolve) => {
      thread.waiting.set(id, { resolve, reject: () => resolve(undefined) });
      thread.worker.postMessage({ id, relPath, replacing } satisfies CopyJob);
    });
    if (answer === undefined) return undefined;
    if (answer.written) return { ...answer.written, restoreMode: undefined };
    if (answer.changed) throw new ChangedWhileReading(relPath);
    if (answer.readOnlyParent) return undefined;
    const failed = answer.failed!;
    throw new StepError(failed.step, relPath, Object.assign(new Error(failed.message), { code: failed.code }));
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}
