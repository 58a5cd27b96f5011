/** Small copies written on copying threads of ours (`copy-worker.ts`), for a pass with many when the addon's copies are not there. */
import type { Worker } from 'node:worker_threads';
import { ChangedWhileReading, StepError } from '../../../errors.js';
import { startThread } from '../../../threads.js';
import type { LocalContext } from '../context.js';
import type { LocalPendingCopy } from '../copy.js';
import type { Copier, CopyOutcome, LocalCopyJob } from './copier.js';
import type { CopyAnswer, CopyRequest } from './copy-worker.js';

type Waiter = { resolve: (answer: CopyAnswer) => void; reject: (error: Error) => void };
type Thread = { worker: Worker; waiting: Map<number, Waiter>; failed?: Error };

export class CopyPool implements Copier {
  readonly name = 'copying threads';
  private readonly threads: Thread[];
  private nextId = 0;

  private closing = false;

  /** `onFailure`: a thread failed (once per thread); its copies, and those in flight, go to the main thread. */
  constructor(
    count: number,
    ctx: LocalContext,
    private readonly maxBytes: number,
    onFailure: (error: Error) => void,
  ) {
    const roots = { sourceRoot: ctx.sourceRoot, replicaRoot: ctx.replicaRoot };
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
   * The first half of a copy (`writeCopy`), on a thread; fails as `writeCopy` would. Declined:
   * the main thread must copy it: its folder is read-only (see `LocalContext.unlockParents`), or
   * its thread failed (a descriptor it had open for it is lost until the process ends; the
   * temporary file is rewritten from the start).
   */
  takes(job: LocalCopyJob): boolean {
    return job.size < this.maxBytes && !job.resume;
  }

  async write({ relPath, replacing }: LocalCopyJob): Promise<CopyOutcome> {
    const id = this.nextId++;
    const thread = this.threads[id % this.threads.length];
    if (thread.failed) return { kind: 'declined' };
    const answer = await new Promise<CopyAnswer | undefined>((resolve) => {
      thread.waiting.set(id, { resolve, reject: () => resolve(undefined) });
      thread.worker.postMessage({ id, relPath, replacing } satisfies CopyRequest);
    });
    if (answer === undefined) return { kind: 'declined' };
    if (answer.written) return { kind: 'written', pending: { ...answer.written, restoreMode: undefined } as LocalPendingCopy };
    if (answer.changed) return { kind: 'failed', error: new ChangedWhileReading(relPath) };
    if (answer.readOnlyParent) return { kind: 'declined' };
    const failed = answer.failed!;
    return { kind: 'failed', error: new StepError(failed.step, relPath, Object.assign(new Error(failed.message), { code: failed.code })) };
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}
