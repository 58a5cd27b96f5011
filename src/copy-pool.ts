/**
 * Copies written on threads (`copy-worker.ts`), for a pass with many small files to copy.
 *
 * Perf: a first sync of 100k files spent 41 s on the main thread, one file after another: creating
 * the temporary file (11 s on this disk), reading, hashing, writing. Handed to threads, that work
 * runs on the other core while the main thread flushes, renames and records the copies before.
 * Large files keep their own path (the kernel copies while a thread hashes, see `execute.ts`).
 */
import type { Worker } from 'node:worker_threads';
import { StepError } from './errors.js';
import { ChangedWhileReading, type PendingCopy } from './execute.js';
import type { CopyAnswer, CopyJob } from './copy-worker.js';
import { startThread } from './threads.js';

type Waiter = { resolve: (answer: CopyAnswer) => void; reject: (error: Error) => void };
type Thread = { worker: Worker; waiting: Map<number, Waiter>; failed?: Error };

export class CopyPool {
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
