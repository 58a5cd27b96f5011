/**
 * A copy into the local replica, in two halves so a batch can be flushed together in between:
 * `writeCopy` (content into a temporary file beside the target, hashed as it goes, permissions)
 * and `finishCopy` (mtime, rename over the target, check). Each throws a `StepError` naming its
 * step after removing its temporary file.
 */
import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { ChangedWhileReading, Interrupted, StepError, errorCode } from '../../errors.js';
import { sameFingerprint } from '../../compare/fingerprint.js';
import { toEntry } from '../../tree/scan.js';
import type { InstalledCopy, PendingCopy } from '../replica.js';
import { closeQuietly, removeQuietly, setOwner, split, tempPathFor, type LocalContext } from './context.js';
import type { Io } from './io.js';
import { backup } from './ops.js';
import { ReadOnlyParent, inWritableParent, removeTemp, unlockParent } from './writable.js';

/** A cut-short copy's temporary file is resumed only from this size on; smaller ones are redone. */
export const RESUME_MIN_BYTES = 1 << 20;

/**
 * Perf: from this size on (with threads), a copy goes through the kernel while a thread hashes.
 * Below it, the fixed costs (starting `cat`, about 3 ms; a round trip to the hashing thread; the
 * thread itself, started once per pass) outweigh the overlap: a 16 MiB file takes about 50 ms read,
 * hashed and written here, about 25 ms the other way; small files also batch better here.
 */
export const KERNEL_COPY_MIN_BYTES = 16 << 20;

/**
 * A copy is two halves, `writeCopy` then `finishCopy`, so the pass can flush a batch of them
 * together in between: temporary file in the target's folder, content hashed while copied (the
 * source is read once: here, or by a thread while the kernel copies a large file), permissions,
 * flush, mtime, then rename over the target.
 *
 * Resume (rsync's --append-verify idea): when `resumable` holds a temporary file that a crashed or
 * killed copy of this target left behind, its bytes are compared with the source's as both are
 * read; the matching prefix is kept, and writing starts at the first difference. The whole source
 * is still hashed, so the recorded MD5 is the source's, verified end to end.
 *
 * `LocalPendingCopy` is a copy whose content is in its temporary file, not yet flushed nor renamed.
 */
export interface LocalPendingCopy extends PendingCopy {
  readonly tempAbs: string;
  /** The temporary file, open. */
  readonly output: number;
  readonly replacing: boolean;
  /** Gives a read-only folder made writable for the copy its mode back. */
  readonly restoreMode: (() => void) | undefined;
}

/** `writeCopy`'s steps that the addon's copy (`Io.copyToTemp`) names by their index. */
export const COPY_STEPS = ['opening', 'reading', 'creating temporary file for', 'writing', 'setting permissions of'] as const;

/** How `writeCopy` may copy: resuming a temporary file a crashed copy left (`resume`), or in the kernel (`kernel`). */
export interface WriteOptions {
  replacing: boolean;
  /** The target's temporary file, left by a crashed copy, is to be resumed if it can be. */
  resume?: boolean;
  /**
   * Copies of at least `minBytes` go through the kernel (`Io.copyInKernel`) while `hash` reads the
   * same open file on a thread (see `copyInKernel`). Absent: read, hashed and written on this thread.
   */
  kernel?: { minBytes: number; hash(fd: number, signal: AbortSignal): Promise<string> };
}

/**
 * First half of a copy: the source's content into the temporary file in the target's folder,
 * hashed as it goes (the source is read once), then its permission bits. The caller flushes it
 * (`fsync`), then calls `finishCopy`; on any failure the temporary file is removed.
 */
export async function writeCopy(ctx: LocalContext, relPath: string, options: WriteOptions): Promise<LocalPendingCopy> {
  const { replacing, kernel: kernelCopy } = options;
  const { io, buffer } = ctx;
  const sourceAbs = ctx.sourceRoot + '/' + relPath;
  const tempAbs = tempPathFor(ctx.replicaRoot, relPath);
  const [, name] = split(relPath);

  let step = 'opening';
  let input: number | undefined;
  let output: number | undefined;
  let restoreMode: (() => void) | undefined;
  try {
    input = io.openRead(sourceAbs);
    step = 'reading';
    const before = toEntry(name, io.fstat(input));
    step = 'creating temporary file for';
    const leftOver = options.resume === true;
    let reusable = leftOver ? (kernelCopy ? await settledSize(io, tempAbs) : partialSize(io, tempAbs)) : 0;
    const resuming = reusable > 0;
    const kernel = kernelCopy !== undefined && !resuming && before.size >= kernelCopy.minBytes ? kernelCopy : undefined;
    // Safety: the kernel copy's temporary file is a new inode, private (0600) whatever mode a stale
    // one had, so nobody else can open it before its bytes are all in and its mode is set. A
    // left-over one not resumed is unlinked too: a `cat` orphaned by a kill -9 may still write
    // into it, and must write into nothing we keep.
    if (kernel || (leftOver && !resuming)) removeQuietly(io, tempAbs);
    try {
      output = io.openWrite(tempAbs, resuming ? 'resume' : 'create');
    } catch (error) {
      restoreMode = unlockParent(ctx, relPath, error);
      output = io.openWrite(tempAbs, resuming ? 'resume' : 'create');
    }
    step = 'writing';
    let md5 = kernel ? await copyInKernel(ctx, kernel.hash, input, output, before.size) : undefined;
    // A failed kernel copy of a file that changed meanwhile is not worth doing again byte by byte.
    if (kernel && md5 === undefined && !sameFingerprint(before, toEntry(name, io.fstat(input)))) throw new ChangedWhileReading(relPath);
    let position = 0;
    let resumedBytes = 0;
    if (md5 === undefined) {
      const hash = createHash('md5');
      for (;;) {
        step = 'reading';
        const n = io.read(input, buffer, position);
        if (n === 0) break;
        const chunk = n === buffer.length ? buffer : buffer.subarray(0, n);
        hash.update(chunk);
        if (reusable >= position + n && samePrefix(ctx, output, position, chunk)) {
          resumedBytes = position + n;
        } else {
          reusable = 0; // from the first difference on, everything is written
          step = 'writing';
          writeAll(io, output, chunk, n, position);
        }
        position += n;
        if (await ctx.tick()) throw new Interrupted();
      }
      md5 = hash.digest('hex');
    }
    // Safety: the old temporary file may be longer than the source (or differ from byte 0 on):
    // cut it to exactly what was written.
    if (resuming) io.ftruncate(output, position);
    step = 'reading';
    const after = toEntry(name, io.fstat(input));
    if (!sameFingerprint(before, after)) throw new ChangedWhileReading(relPath);
    // syncthing's order: permissions before the rename, flush, mtime last (nothing moves it after).
    step = 'setting permissions of';
    io.fchmod(output, before.mode);
    return { relPath, tempAbs, output, source: before, md5, resumedBytes, replacing, restoreMode };
  } catch (error) {
    if (output !== undefined) closeQuietly(io, output);
    removeQuietly(io, tempAbs);
    restoreMode?.();
    if (error instanceof ChangedWhileReading || error instanceof Interrupted || error instanceof ReadOnlyParent) throw error;
    throw new StepError(`copying (${step})`, relPath, error);
  } finally {
    if (input !== undefined) closeQuietly(io, input);
  }
}

/**
 * Second half of a copy, once its content is flushed: owner (set-id bits given back after it), mtime,
 * close, (backup), rename, check.
 *
 * Perf: the rename runs on libuv's thread pool (`Io.renameAsync`), so a batch's renames run at
 * once and beside this thread's work. Renaming over an existing file costs ~180 µs on ext4 (the
 * old inode is freed): 140 ms of main-thread time for the 800 copies of the 1% change. A rename
 * refused by a read-only folder is retried here, on this thread, as every other operation that
 * changes a folder's mode: the thread pool only ever renames. With `--backup-dir`, a file that
 * replaces one moved to the backup is renamed here at once.
 */
export async function finishCopy(ctx: LocalContext, pending: LocalPendingCopy): Promise<InstalledCopy> {
  const { io } = ctx;
  const { relPath, tempAbs, source } = pending;
  const replicaAbs = ctx.replicaRoot + '/' + relPath;
  let open = true;
  let step = 'setting owner of';
  try {
    const uid = ctx.owners.uid(source) ?? -1;
    const gid = ctx.owners.gid(source) ?? -1;
    if (uid !== -1 || gid !== -1) {
      setOwner(ctx, () => io.fchown(pending.output, uid, gid));
      // A chown clears the set-user-ID and set-group-ID bits: given back.
      step = 'setting permissions of';
      if (source.mode & 0o6000) io.fchmod(pending.output, source.mode);
    }
    step = 'setting mtime of';
    io.futimes(pending.output, source);
    step = 'closing';
    open = false;
    io.close(pending.output);
    const backedUp = pending.replacing && ctx.backupRoot !== undefined;
    if (backedUp) {
      step = 'backing up the old version of';
      backup(ctx, relPath);
    }
    step = 'renaming into place';
    try {
      // Safety: a file just moved to the backup is replaced at once, here: a crash meanwhile leaves
      // this one file missing from the replica, not every file of a batch whose renames wait their
      // turn on the thread pool.
      if (backedUp) io.rename(tempAbs, replicaAbs);
      else await io.renameAsync(tempAbs, replicaAbs);
    } catch (error) {
      // Another copy of the same batch may have made a read-only folder writable and already put
      // its mode back: the rename retries the same way.
      if (errorCode(error) !== 'EACCES') throw error;
      inWritableParent(ctx, relPath, () => io.rename(tempAbs, replicaAbs));
    }
    step = 'checking';
    const replica = toEntry(source.name, io.lstat(replicaAbs));
    return { md5: pending.md5, source, replica, resumedBytes: pending.resumedBytes };
  } catch (error) {
    if (open) closeQuietly(io, pending.output);
    removeTemp(ctx, relPath, tempAbs);
    throw new StepError(`copying (${step})`, relPath, error);
  } finally {
    pending.restoreMode?.();
  }
}

/**
 * The content of a large file, copied in the kernel while a hashing thread reads the same open
 * file; both run at once and are awaited together. The source is still read from the disk once:
 * whichever reader is behind finds the pages the other one brought in.
 *
 * Returns the MD5, or undefined when the copy or the hash failed (the temporary file is then
 * emptied): the caller copies byte by byte instead, which either succeeds or fails naming its
 * step and the system's error as before (`copying (writing)`: ENOSPC). A stop request kills the
 * copy and the hash at once (Interrupted, the temporary file is removed by the caller).
 */
async function copyInKernel(
  ctx: LocalContext,
  hash: (fd: number, signal: AbortSignal) => Promise<string>,
  input: number,
  output: number,
  size: number,
): Promise<string | undefined> {
  const stop = new AbortController();
  const copying = ctx.io.copyInKernel(input, output, stop.signal);
  const hashing = hash(input, stop.signal);
  // Either one failing ends the other: the copy is redone byte by byte.
  copying.catch(() => stop.abort());
  hashing.catch(() => stop.abort());
  let interrupted = false;
  const [copied, hashed] = await whileWaiting(ctx, Promise.allSettled([copying, hashing]), () => {
    interrupted = true;
    stop.abort();
  });
  if (interrupted) throw new Interrupted();
  // Safety: a copy that ended short (or long) is not taken; if the source changed, the caller's
  // fingerprint check says so.
  if (copied.status === 'fulfilled' && hashed.status === 'fulfilled' && Number(ctx.io.fstat(output).size) === size) return hashed.value;
  ctx.io.ftruncate(output, 0);
  return undefined;
}

/** Waits for `work`, asking the pass every 50 ms whether to stop; `onStop` runs once if so. */
async function whileWaiting<T>(ctx: LocalContext, work: Promise<T>, onStop: () => void): Promise<T> {
  let done = false;
  const settled = work.finally(() => (done = true));
  let stopped = false;
  while (!done) {
    await Promise.race([settled, delay(50)]);
    if (!done && !stopped && (await ctx.tick())) {
      stopped = true;
      onStop();
    }
  }
  return settled;
}

/** Gives up a pending copy: its temporary file is removed, the replica keeps what it had. */
export function abandonCopy(ctx: LocalContext, pending: LocalPendingCopy): void {
  closeQuietly(ctx.io, pending.output);
  removeTemp(ctx, pending.relPath, pending.tempAbs);
  pending.restoreMode?.();
}

/**
 * `partialSize`, once the file has stopped changing: a kernel copy's `cat` outlives a kill -9 of
 * folder-sync and goes on writing the file for a few seconds. Resumed while it writes, the old
 * source's bytes could land after our check; so a file still growing after ~10 s is not resumed
 * (it is unlinked and the copy starts afresh).
 */
async function settledSize(io: Io, tempAbs: string): Promise<number> {
  let last = '';
  for (let waited = 0; waited <= 10_000; waited += 500) {
    let now: string;
    try {
      const stats = io.lstat(tempAbs);
      now = `${stats.size}:${stats.mtimeNs}`;
    } catch {
      return 0;
    }
    if (now === last) return partialSize(io, tempAbs);
    last = now;
    await delay(500);
  }
  return 0;
}

/** Size of a left-over temporary file worth resuming, or 0. */
function partialSize(io: Io, tempAbs: string): number {
  try {
    const stats = io.lstat(tempAbs);
    const size = Number(stats.size);
    return stats.isFile() && size >= RESUME_MIN_BYTES ? size : 0;
  } catch {
    return 0;
  }
}

/** Whether the temporary file already holds `chunk` at `position`. */
function samePrefix(ctx: LocalContext, fd: number, position: number, chunk: Buffer): boolean {
  const existing = (ctx.compareBuffer ??= Buffer.allocUnsafe(ctx.buffer.length)).subarray(0, chunk.length);
  let got = 0;
  while (got < chunk.length) {
    const n = ctx.io.read(fd, got === 0 ? existing : existing.subarray(got), position + got);
    if (n === 0) return false;
    got += n;
  }
  return existing.equals(chunk);
}


function writeAll(io: Io, fd: number, chunk: Buffer, length: number, position: number): void {
  let written = 0;
  while (written < length) {
    const n = io.write(fd, written === 0 ? chunk : chunk.subarray(written), length - written, position + written);
    if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
    written += n;
  }
}

