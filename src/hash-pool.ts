/**
 * Hashing on worker threads, for passes that must read many files (a `--checksum` pass, every
 * mtime touched, a first pass adopting a `cp -a` replica).
 *
 * Perf: MD5 runs at one core's speed; two threads on this machine's two cores read and hash about
 * twice as fast as the main thread alone. Paths go in batches (up to 64 files or 64 MiB) so the
 * message round trip is paid per batch, not per small file; each thread keeps two batches queued.
 */
import type { Worker } from 'node:worker_threads';
import { startThread } from './threads.js';
import type { HashAnswer, HashBatch } from './hash-worker.js';

export interface HashJob {
  absPath: string;
  size: number;
}

/** An MD5 with the file's fingerprint at the end of the read (size, mtime s/ns, ctime s/ns, inode). */
export type HashResult = { md5: string; fp: number[] } | { error: Error };

const BATCH_FILES = 64;
const BATCH_BYTES = 64 << 20;

type Waiter = { resolve: (answer: HashAnswer) => void; reject: (error: Error) => void };

export class HashPool {
  private readonly workers: { worker: Worker; waiting: Map<number, Waiter> }[];
  /** Files and bytes hashed so far (for progress). */
  doneFiles = 0;
  doneBytes = 0;

  constructor(readonly threads: number) {
    this.workers = Array.from({ length: threads }, () => {
      const worker = startThread('hash-worker');
      const waiting = new Map<number, Waiter>();
      worker.on('message', (answer: HashAnswer) => {
        waiting.get(answer.id)?.resolve(answer);
        waiting.delete(answer.id);
      });
      worker.on('error', (error) => {
        for (const waiter of waiting.values()) waiter.reject(error);
        waiting.clear();
      });
      return { worker, waiting };
    });
  }

  /** Hashes every job; results in the same order (undefined for jobs skipped once `shouldStop`). */
  async hashAll(jobs: HashJob[], shouldStop: () => boolean): Promise<(HashResult | undefined)[]> {
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
    const runOn = async ({ worker, waiting }: HashPool['workers'][number]): Promise<void> => {
      while (next < batches.length && !shouldStop()) {
        const id = next++;
        const batch = batches[id];
        const answer = await new Promise<HashAnswer>((resolve, reject) => {
          waiting.set(id, { resolve, reject });
          worker.postMessage({ id, paths: batch.paths } satisfies HashBatch);
        });
        this.doneFiles += batch.paths.length;
        this.doneBytes += batch.bytes;
        answer.results.forEach((r, k) => {
          results[batch.start + k] = 'md5' in r ? { md5: r.md5, fp: r.fp } : { error: Object.assign(new Error(r.message), { code: r.code }) };
        });
      }
    };
    // Two loops per thread keep each one busy while an answer travels back.
    await Promise.all(this.workers.flatMap((w) => [runOn(w), runOn(w)]));
    return results;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map(({ worker }) => worker.terminate()));
  }
}
