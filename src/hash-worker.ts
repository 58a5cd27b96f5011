/**
 * A hashing thread: receives batches of absolute paths, answers with each file's MD5 (or the
 * error that stopped it). Reads with O_NOFOLLOW, like the main thread.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { splitNs } from './scan.js';

export interface HashBatch {
  id: number;
  paths: string[];
}

export interface HashAnswer {
  id: number;
  /** `fp`: the file's size, mtime s/ns, ctime s/ns and inode when the read ended (fstat). */
  results: ({ md5: string; fp: number[] } | { code?: string; message: string })[];
}

const buffer = Buffer.allocUnsafe(1 << 20);

function md5Of(path: string): { md5: string; fp: number[] } {
  const hash = createHash('md5');
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    for (;;) {
      const n = fs.readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
    }
    // Perf: the fingerprint at the end of the read comes back with the MD5, so the main thread
    // checks "unchanged while read" without an lstat of its own.
    const st = fs.fstatSync(fd, { bigint: true });
    const fp = [Number(st.size), ...splitNs(st.mtimeNs), ...splitNs(st.ctimeNs), Number(st.ino)];
    return { md5: hash.digest('hex'), fp };
  } finally {
    fs.closeSync(fd);
  }
}

parentPort!.on('message', (batch: HashBatch) => {
  const results: HashAnswer['results'] = batch.paths.map((path) => {
    try {
      return md5Of(path);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      return { code: e.code, message: e.message };
    }
  });
  parentPort!.postMessage({ id: batch.id, results } satisfies HashAnswer);
});
