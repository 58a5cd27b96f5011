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

export class HashPool {
  private readonly workers: Worker[];

  constructor(readonly threads: number) {
    this.workers = Array.from({ length: threads }, () => startThread('hash-worker'));
  }

  /** Hashes every job; results in the same order. Calls `progress` after each batch. */
  async hashAll(jobs: HashJob[], shouldStop: () => boolean): Promise<(HashResult | undefined)[]> {
    const batches: { start: number; paths: string[] }[] = [];
    for (let i = 0; i < jobs.length; ) {
      const start = i;
      let bytes = 0;
      const paths: string[] = [];
      while (i < jobs.length && paths.length < BATCH_FILES && (paths.length === 0 || bytes + jobs[i].size <= BATCH_BYTES)) {
        bytes += jobs[i].size;
        paths.push(jobs[i].absPath);
        i++;
      }
      batches.push({ start, paths });
    }
    const results: (HashResult | undefined)[] = new Array(jobs.length);
    let next = 0;
    const runOn = async (worker: Worker): Promise<void> => {
      while (next < batches.length && !shouldStop()) {
        const index = next++;
        const batch = batches[index];
        const answer = await ask(worker, { id: index, paths: batch.paths });
        answer.results.forEach((r, k) => {
          results[batch.start + k] = 'md5' in r ? { md5: r.md5, fp: r.fp } : { error: Object.assign(new Error(r.message), { code: r.code }) };
        });
      }
    };
    // Two loops per thread keep each one busy while an answer travels back.
    await Promise.all(this.workers.flatMap((worker) => [runOn(worker), runOn(worker)]));
    return results;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}

const pending = new WeakMap<Worker, Map<number, { resolve: (answer: HashAnswer) => void; reject: (error: Error) => void }>>();

function ask(worker: Worker, batch: HashBatch): Promise<HashAnswer> {
  let waiting = pending.get(worker);
  if (waiting === undefined) {
    const map = new Map<number, { resolve: (answer: HashAnswer) => void; reject: (error: Error) => void }>();
    waiting = map;
    pending.set(worker, map);
    worker.on('message', (answer: HashAnswer) => {
      map.get(answer.id)?.resolve(answer);
      map.delete(answer.id);
    });
    worker.on('error', (error) => {
      for (const waiter of map.values()) waiter.reject(error);
      map.clear();
    });
  }
  const map = waiting;
  return new Promise((resolve, reject) => {
    map.set(batch.id, { resolve, reject });
    worker.postMessage(batch);
  });
}
