/**
 * A hashing thread: receives batches of absolute paths, or one file the main thread has open,
 * and answers with each file's MD5 (or the error that stopped it). Reads paths with O_NOFOLLOW,
 * like the main thread.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { fsPath } from '../tree/names.js';
import { inodeNumber, splitNs } from '../tree/scan.js';

export interface HashBatch {
  id: number;
  paths: string[];
}

/**
 * A file the main thread has open as `fd` and is copying in the kernel meanwhile; `cancel[0]`
 * set to 1 stops the read (the copy failed or the pass stops).
 */
export interface HashOpenFile {
  id: number;
  fd: number;
  cancel: Int32Array;
}

export interface HashAnswer {
  id: number;
  /** `fp`: the file's size, mtime s/ns, ctime s/ns and inode when the read ended (fstat). */
  results: ({ md5: string; fp: number[] } | { code?: string; message: string })[];
}

const buffer = Buffer.allocUnsafe(1 << 20);

function md5Of(path: string | Buffer, flags: number, cancel?: Int32Array): { md5: string; fp: number[] } {
  const hash = createHash('md5');
  const fd = fs.openSync(path, flags);
  try {
    for (;;) {
      if (cancel !== undefined && Atomics.load(cancel, 0) === 1) throw Object.assign(new Error('hashing cancelled'), { code: 'ECANCELED' });
      const n = fs.readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
    }
    // Perf: the fingerprint at the end of the read comes back with the MD5, so the main thread
    // checks "unchanged while read" without an lstat of its own.
    const st = fs.fstatSync(fd, { bigint: true });
    const fp = [Number(st.size), ...splitNs(st.mtimeNs), ...splitNs(st.ctimeNs), inodeNumber(st.ino)];
    return { md5: hash.digest('hex'), fp };
  } finally {
    fs.closeSync(fd);
  }
}

function answer(hash: () => { md5: string; fp: number[] }): HashAnswer['results'][number] {
  try {
    return hash();
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return { code: e.code, message: e.message };
  }
}

parentPort!.on('message', (request: HashBatch | HashOpenFile) => {
  if ('fd' in request) {
    // Safety: /proc/self/fd/<fd> is followed on purpose (no O_NOFOLLOW): it is no path looked up
    // again but the very file the main thread opened with O_NOFOLLOW, reopened with an offset of
    // its own (threads share the process's descriptors, so /proc/self is ours too).
    const result = answer(() => md5Of(`/proc/self/fd/${request.fd}`, fs.constants.O_RDONLY, request.cancel));
    parentPort!.postMessage({ id: request.id, results: [result] } satisfies HashAnswer);
    return;
  }
  const results = request.paths.map((path) => answer(() => md5Of(fsPath(path), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)));
  parentPort!.postMessage({ id: request.id, results } satisfies HashAnswer);
});
