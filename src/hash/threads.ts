/**
 * Hashing on worker threads, for passes that must read many files (a `--checksum` pass, every
 * mtime touched, a first pass adopting a `cp -a` replica), and for large copies: the kernel copies
 * the file while a thread hashes it.
 *
 * Perf: MD5 runs at one core's speed; two threads on this machine's two cores read and hash about
 * twice as fast as the main thread alone. Paths go in batches (up to 64 files or 64 MiB) so the
 * message round trip is paid per batch, not per small file; each thread keeps two batches queued.
 */
import { existsSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { startThread } from '../threads.js';
import type { HashAnswer, HashBatch, HashOpenFile } from './hash-worker.js';
import type { Hasher, HashJob, HashResult, ReadFingerprint } from './hasher.js';

/**
 * Perf: two hashing threads by default, one per core of the machine this was tuned on: MD5 is
 * CPU-bound at ~500 MB/s a core, so more threads than cores only add switching, and the main
 * thread has little to do meanwhile. `--hash-threads` changes it (measured in the README).
 */
export const DEFAULT_HASH_THREADS = 2;

const BATCH_FILES = 64;
const BATCH_BYTES = 64 << 20;

type Waiter = { resolve: (answer: HashAnswer) => void; reject: (error: Error) => void };
/** `failed`: the thread died; later requests are refused rather than left waiting forever. */
type Thread = { worker: Worker; waiting: Map<number, Waiter>; failed?: Error };

/** Whether a thread can reopen a file the main thread has open (`hashOpenFile`): Linux's /proc. */
export function canHashOpenFiles(): boolean {
  return existsSync('/proc/self/fd');
}

export class HashPool implements Hasher {
  private readonly workers: Thread[];
  private nextId = 0;
  readonly done = { files: 0, bytes: 0 };

  /** `shouldStop`: once true, no more batches are sent (`hashAll` answers undefined for their jobs). */
  constructor(
    readonly threads: number,
    private readonly shouldStop: () => boolean = () => false,
  ) {
    this.workers = Array.from({ length: threads }, () => {
      const worker = startThread('hash-worker');
      const thread: Thread = { worker, waiting: new Map<number, Waiter>() };
      worker.on('message', (answer: HashAnswer) => {
        thread.waiting.get(answer.id)?.resolve(answer);
        thread.waiting.delete(answer.id);
      });
      worker.on('error', (error) => {
        thread.failed = error;
        for (const waiter of thread.waiting.values()) waiter.reject(error);
        thread.waiting.clear();
      });
      return thread;
    });
  }

  /** Hashes every job; results in the same order (undefined for jobs skipped once `shouldStop`). */
  async hashAll(jobs: readonly HashJob[]): Promise<(HashResult | undefined)[]> {
    const shouldStop = this.shouldStop;
    const batches: { start: number; paths: string[]; bytes: number }[] = [];
    for (let i = 0; i < jobs.length; ) {
      const start = i;
      let bytes = 0;
      const paths: string[] = [];
      while (i < jobs.length && paths.length < BATCH_FILES && (paths.length === 0 || bytes + jobs[i].size <= BATCH_BYTES)) {
        bytes += jobs[i].size;
        paths.push(jobs[i].absPath);
        i++;
      }
      batches.push({ start, paths, bytes });
    }
    const results: (HashResult | undefined)[] = new Array(jobs.length);
    let next = 0;
    const runOn = async (thread: Thread): Promise<void> => {
      while (next < batches.length && !shouldStop()) {
        const batch = batches[next++];
        const answer = await this.ask(thread, { id: this.nextId++, paths: batch.paths });
        this.done.files += batch.paths.length;
        this.done.bytes += batch.bytes;
        answer.results.forEach((r, k) => (results[batch.start + k] = toResult(r)));
      }
    };
    // Two loops per thread keep each one busy while an answer travels back.
    await Promise.all(this.workers.flatMap((w) => [runOn(w), runOn(w)]));
    return results;
  }

  /**
   * Hashes a file this process has open as `fd` (a thread reopens it through /proc/self/fd, see
   * `canHashOpenFiles`) while the caller copies it; `signal` stops the read within a chunk.
   */
  async hashOpenFile(fd: number, signal: AbortSignal): Promise<HashResult> {
    const cancel = new Int32Array(new SharedArrayBuffer(4));
    const onAbort = () => Atomics.store(cancel, 0, 1);
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const id = this.nextId++;
      const answer = await this.ask(this.workers[id % this.workers.length], { id, fd, cancel });
      return toResult(answer.results[0]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  private ask(thread: Thread, request: HashBatch | HashOpenFile): Promise<HashAnswer> {
    if (thread.failed) return Promise.reject(thread.failed);
    return new Promise<HashAnswer>((resolve, reject) => {
      thread.waiting.set(request.id, { resolve, reject });
      thread.worker.postMessage(request);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map(({ worker }) => worker.terminate()));
  }
}

function toResult(r: HashAnswer['results'][number]): HashResult {
  return 'md5' in r ? { kind: 'hashed', md5: r.md5, fp: r.fp as unknown as ReadFingerprint } : { kind: 'failed', error: Object.assign(new Error(r.message), { code: r.code }) };
}
