/**
 * The only code that changes the replica. Each function does one operation atomically and
 * returns what it observed afterwards (for the manifest); failures throw a `StepError` naming
 * the step and the path, after cleaning up their temporary file.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { StepError, errorCode, show } from '../../errors.js';
import { sameFingerprint } from '../../compare/fingerprint.js';
import { toSeconds, type Io } from './io.js';
import { TEMP_PREFIX, toEntry } from '../../tree/scan.js';
import type { Entry } from '../../compare/types.js';

export interface ExecContext {
  io: Io;
  sourceRoot: string;
  replicaRoot: string;
  /** Flush file contents before the rename (off with --no-fsync). */
  fsync: boolean;
  /** A reusable read buffer (Perf: one allocation per pass, not per file). */
  buffer: Buffer;
  /** A second one, for comparing a resumed temporary file; allocated when first needed. */
  compareBuffer?: Buffer;
  /** Lets the event loop run during long copies. */
  tick(): Promise<boolean>;
  /**
   * Copies of at least `minBytes` go through the kernel (`Io.copyInKernel`) while `hash` reads the
   * same open file on a thread (see `copyInKernel`). Absent (a pass without threads, as in tests
   * with a spy `Io`; no /proc): every copy is read, hashed and written on this thread.
   */
  kernelCopy?: { minBytes: number; hash(fd: number, signal: AbortSignal): Promise<string> };
  /**
   * `--backup-dir` for this pass (`<dir>/<time>`): what would be deleted or overwritten is moved
   * here instead, at the same relative path.
   */
  backupRoot?: string;
  /**
   * False on a copying thread: a read-only folder is not made writable there to create a
   * temporary file in it (`ReadOnlyParent` is thrown instead), so that only the main thread ever
   * changes and restores a folder's mode (two threads doing it at once could each take the other's
   * change for the folder's own mode).
   */
  unlockParents?: boolean;
}

/** A copy's folder is read-only and `unlockParents` is false: the main thread copies it instead. */
export class ReadOnlyParent extends Error {
  override name = 'ReadOnlyParent';
}

/**
 * A replica file that changed since the walk saw it, found just before its metadata was fixed (or
 * it was moved): left as it is (the record made after the fix would vouch for content nobody read).
 */
export class ChangedInReplica extends Error {
  override name = 'ChangedInReplica';
  constructor(readonly relPath: string) {
    super(`${relPath} changed in the replica during the pass`);
  }
}

/** A move whose rename failed: the file is still where it was (see `moveEntry`). */
export class RenameFailed extends StepError {
  override name = 'RenameFailed';
}

/** The source changed while we read it: not an error, the next pass copies the settled file. */
export class ChangedWhileReading extends Error {
  override name = 'ChangedWhileReading';
  constructor(readonly relPath: string) {
    super(`${relPath} changed while it was being read; it will be copied next pass`);
  }
}

/**
 * Our temporary name for a file about to land at `name`: in the same folder (so the rename is
 * atomic), hidden, recognisable (`isTempName`), fixed length whatever the name's length, and the
 * same for the same target (a retry reuses, never accumulates).
 */
export function tempName(name: string): string {
  return TEMP_PREFIX + createHash('md5').update(name).digest('hex').slice(0, 16) + '.tmp';
}

function split(relPath: string): [dir: string, name: string] {
  const slash = relPath.lastIndexOf('/');
  return slash < 0 ? ['', relPath] : [relPath.slice(0, slash), relPath.slice(slash + 1)];
}

export function tempPathFor(replicaRoot: string, relPath: string): string {
  const [dir, name] = split(relPath);
  return replicaRoot + (dir ? '/' + dir : '') + '/' + tempName(name);
}

/** The parent folder of a replica path (for flushing its entries). */
export function replicaParent(replicaRoot: string, relPath: string): string {
  const [dir] = split(relPath);
  return replicaRoot + (dir ? '/' + dir : '');
}

export interface CopyResult {
  md5: string;
  /** The source as it was read (fstat), unchanged from start to end of the read. */
  source: Entry;
  /** The replica file after the rename. */
  replica: Entry;
  /** Bytes of a crashed copy's temporary file that were verified equal and kept (0: none). */
  resumedBytes: number;
}

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
 * `PendingCopy` is a copy whose content is in its temporary file, not yet flushed nor renamed.
 */
export interface PendingCopy {
  relPath: string;
  tempAbs: string;
  output: number;
  /** The source as it was read, unchanged from start to end of the read. */
  source: Entry;
  md5: string;
  resumedBytes: number;
  replacing: boolean;
  restoreMode: (() => void) | undefined;
}

/** `writeCopy`'s steps that the addon's copy (`Io.copyToTemp`) names by their index. */
export const COPY_STEPS = ['opening', 'reading', 'creating temporary file for', 'writing', 'setting permissions of'] as const;

/**
 * First half of a copy: the source's content into the temporary file in the target's folder,
 * hashed as it goes (the source is read once), then its permission bits. The caller flushes it
 * (`fsync`), then calls `finishCopy`; on any failure the temporary file is removed.
 */
export async function writeCopy(ctx: ExecContext, relPath: string, resumable?: ReadonlySet<string>, replacing = false): Promise<PendingCopy> {
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
    const leftOver = resumable?.has(tempAbs) === true;
    let reusable = leftOver ? (ctx.kernelCopy ? await settledSize(io, tempAbs) : partialSize(io, tempAbs)) : 0;
    const resuming = reusable > 0;
    const kernel = ctx.kernelCopy !== undefined && !resuming && before.size >= ctx.kernelCopy.minBytes ? ctx.kernelCopy : undefined;
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
 * Second half of a copy, once its content is flushed: mtime, close, (backup), rename, check.
 *
 * Perf: the rename runs on libuv's thread pool (`Io.renameAsync`), so a batch's renames run at
 * once and beside this thread's work. Renaming over an existing file costs ~180 µs on ext4 (the
 * old inode is freed): 140 ms of main-thread time for the 800 copies of the 1% change. A rename
 * refused by a read-only folder is retried here, on this thread, as every other operation that
 * changes a folder's mode: the thread pool only ever renames. With `--backup-dir`, a file that
 * replaces one moved to the backup is renamed here at once.
 */
export async function finishCopy(ctx: ExecContext, pending: PendingCopy): Promise<CopyResult> {
  const { io } = ctx;
  const { relPath, tempAbs, source } = pending;
  const replicaAbs = ctx.replicaRoot + '/' + relPath;
  let open = true;
  let step = 'setting mtime of';
  try {
    io.futimes(pending.output, toSeconds(source.atimeS, source.atimeN), toSeconds(source.mtimeS, source.mtimeN));
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
  ctx: ExecContext,
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
async function whileWaiting<T>(ctx: ExecContext, work: Promise<T>, onStop: () => void): Promise<T> {
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
export function abandonCopy(ctx: ExecContext, pending: PendingCopy): void {
  closeQuietly(ctx.io, pending.output);
  removeTemp(ctx, pending.relPath, pending.tempAbs);
  pending.restoreMode?.();
}

/** Removes a temporary file, through a read-only folder too. */
export function removeTemp(ctx: ExecContext, relPath: string, tempAbs: string): void {
  try {
    inWritableParent(ctx, relPath, () => ctx.io.unlink(tempAbs));
  } catch {
    // gone already, or beyond reach: the next pass sweeps temporary files
  }
}

/**
 * A replica folder mirrored read-only from the source (0555) refuses new entries to a user who is
 * not root. On EACCES there, add u+w to the folder for the operation and give it back its mode
 * after (rsync does the same). Returns the restorer; rethrows anything else.
 */
function unlockParent(ctx: ExecContext, relPath: string, error: unknown): () => void {
  const restore = unlockParentIfLocked(ctx, relPath, error);
  if (restore === undefined) throw error; // writable already: a real permission problem
  return restore;
}

/** `unlockParent`, but undefined (nothing done) when the folder is writable already, or gone. */
function unlockParentIfLocked(ctx: ExecContext, relPath: string, error: unknown): (() => void) | undefined {
  if (errorCode(error) !== 'EACCES') throw error;
  if (ctx.unlockParents === false) throw new ReadOnlyParent(`${show(relPath)}: its folder is read-only`, { cause: error });
  const dir = replicaParent(ctx.replicaRoot, relPath);
  let mode: number;
  try {
    mode = Number(ctx.io.lstat(dir).mode) & 0o7777;
  } catch {
    return undefined;
  }
  if (mode & 0o200) return undefined;
  ctx.io.chmod(dir, mode | 0o200);
  return () => {
    try {
      ctx.io.chmod(dir, mode);
    } catch {
      // the folder went away
    }
  };
}

/**
 * Runs `fn`, retrying once with the parent folders of `relPaths` made writable where they were
 * read-only: a rename's two (the kernel wants write permission on the folder an entry leaves as
 * well as on the one it enters), or one.
 */
function inWritableParents<T>(ctx: ExecContext, relPaths: string[], fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    const restores: (() => void)[] = [];
    try {
      const dirs = new Map(relPaths.map((rel) => [replicaParent(ctx.replicaRoot, rel), rel]));
      for (const rel of dirs.values()) {
        const restore = unlockParentIfLocked(ctx, rel, error);
        if (restore) restores.push(restore);
      }
      if (restores.length === 0) throw error; // writable already: a real permission problem
      return fn();
    } finally {
      for (const restore of restores.reverse()) restore();
    }
  }
}

/** Runs `fn`, retrying once with the parent folder made writable if it was read-only. */
function inWritableParent<T>(ctx: ExecContext, relPath: string, fn: () => T): T {
  return inWritableParents(ctx, [relPath], fn);
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
function samePrefix(ctx: ExecContext, fd: number, position: number, chunk: Buffer): boolean {
  const existing = (ctx.compareBuffer ??= Buffer.allocUnsafe(ctx.buffer.length)).subarray(0, chunk.length);
  let got = 0;
  while (got < chunk.length) {
    const n = ctx.io.read(fd, got === 0 ? existing : existing.subarray(got), position + got);
    if (n === 0) return false;
    got += n;
  }
  return existing.equals(chunk);
}

/** The pass was asked to stop in the middle of a copy; the temporary file is removed. */
export class Interrupted extends Error {
  override name = 'Interrupted';
}

function writeAll(io: Io, fd: number, chunk: Buffer, length: number, position: number): void {
  let written = 0;
  while (written < length) {
    const n = io.write(fd, written === 0 ? chunk : chunk.subarray(written), length - written, position + written);
    if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
    written += n;
  }
}

/** Creates (or replaces) a symlink with the source's target text, via a temporary link and rename. */
export function copyLink(ctx: ExecContext, relPath: string, source: Entry, replacing = false): { target: string; replica: Entry } {
  const { io } = ctx;
  const tempAbs = tempPathFor(ctx.replicaRoot, relPath);
  const replicaAbs = ctx.replicaRoot + '/' + relPath;
  let step = 'reading link';
  try {
    const target = io.readlink(ctx.sourceRoot + '/' + relPath);
    step = 'creating link';
    removeQuietly(io, tempAbs);
    return inWritableParent(ctx, relPath, () => {
      io.symlink(target, tempAbs);
      step = 'setting mtime of link';
      io.lutimes(tempAbs, toSeconds(source.atimeS, source.atimeN), toSeconds(source.mtimeS, source.mtimeN));
      if (replacing && ctx.backupRoot) {
        step = 'backing up the old version of';
        backup(ctx, relPath);
      }
      step = 'renaming link into place';
      io.rename(tempAbs, replicaAbs);
      return { target, replica: toEntry(source.name, io.lstat(replicaAbs)) };
    });
  } catch (error) {
    removeQuietly(io, tempAbs);
    throw new StepError(step, relPath, error);
  }
}

/** Sets a link's own mtime (its target text is already right). */
export function touchLink(ctx: ExecContext, relPath: string, source: Entry): void {
  try {
    ctx.io.lutimes(ctx.replicaRoot + '/' + relPath, toSeconds(source.atimeS, source.atimeN), toSeconds(source.mtimeS, source.mtimeN));
  } catch (error) {
    throw new StepError('setting mtime of link', relPath, error);
  }
}

/** `fixMeta`'s steps, by the call that makes each (`Io.fixMetas` names a failed one's). */
const META_STEPS = { chmod: 'setting permissions of', utime: 'setting mtime of', lstat: 'checking' } as const;

/**
 * Brings a replica file's permission bits and mtime to the source's without rewriting it (many at
 * a time: `Io.fixMetas`, from `applyMetas` in pass.ts). `replica` is the file as the walk saw it;
 * one that changed since is left as it is (`ChangedInReplica`; Safety: see `fixMetas` in
 * native/fswalk.c).
 */
export function fixMeta(ctx: ExecContext, relPath: string, source: Entry, replica: Entry): Entry {
  checkUnchanged(ctx, relPath, replica);
  return setMeta(ctx, relPath, source, replica);
}

/**
 * The error `fixMeta` would have thrown for a file whose fix `Io.fixMetas` reports failed: the
 * step its `syscall` names, or `ChangedInReplica` (code ECHANGED).
 */
export function fixMetaError(relPath: string, error: Error): Error {
  const { code, syscall } = error as NodeJS.ErrnoException;
  if (code === 'ECHANGED') return new ChangedInReplica(relPath);
  return new StepError(syscall === 'chmod' || syscall === 'utime' ? META_STEPS[syscall] : META_STEPS.lstat, relPath, error);
}

/** `fixMeta` without its check: the bits, the times, and the file as it is after. */
function setMeta(ctx: ExecContext, relPath: string, source: Entry, replica: Entry): Entry {
  const { io } = ctx;
  const replicaAbs = ctx.replicaRoot + '/' + relPath;
  let step: string = META_STEPS.chmod;
  try {
    if (source.mode !== replica.mode) io.chmod(replicaAbs, source.mode);
    step = META_STEPS.utime;
    io.utimes(replicaAbs, toSeconds(source.atimeS, source.atimeN), toSeconds(source.mtimeS, source.mtimeN));
    step = META_STEPS.lstat;
    return toEntry(replica.name, io.lstat(replicaAbs));
  } catch (error) {
    throw new StepError(step, relPath, error);
  }
}

/** Creates a folder, private until its permission bits are set at the end of the pass. */
export function makeDir(ctx: ExecContext, relPath: string): void {
  try {
    inWritableParent(ctx, relPath, () => ctx.io.mkdir(ctx.replicaRoot + '/' + relPath, 0o700));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST' && isDir(ctx, relPath)) return;
    throw new StepError('creating folder', relPath, error);
  }
}

function isDir(ctx: ExecContext, relPath: string): boolean {
  try {
    return ctx.io.lstat(ctx.replicaRoot + '/' + relPath).isDirectory();
  } catch {
    return false;
  }
}

export function setDirMode(ctx: ExecContext, relPath: string, mode: number): boolean {
  const abs = relPath ? ctx.replicaRoot + '/' + relPath : ctx.replicaRoot;
  try {
    const current = Number(ctx.io.lstat(abs).mode) & 0o7777;
    if (current === mode) return false;
    ctx.io.chmod(abs, mode);
    return true;
  } catch (error) {
    throw new StepError('setting permissions of folder', relPath, error);
  }
}

/** Removes one replica entry (a folder only once empty: children are deleted first). */
export function deleteEntry(ctx: ExecContext, relPath: string, entry: Entry): boolean {
  const abs = ctx.replicaRoot + '/' + relPath;
  try {
    if (entry.kind !== 'dir' && ctx.backupRoot) backup(ctx, relPath);
    else inWritableParent(ctx, relPath, () => (entry.kind === 'dir' ? ctx.io.rmdir(abs) : ctx.io.unlink(abs)));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false; // already gone
    throw new StepError('deleting', relPath, error);
  }
}

/** Moves a replica entry to `<backupRoot>/<relPath>` (a rename: the backup dir is on the same filesystem). */
function backup(ctx: ExecContext, relPath: string): void {
  const target = ctx.backupRoot + '/' + relPath;
  mkdirSync(dirname(target), { recursive: true });
  inWritableParent(ctx, relPath, () => ctx.io.rename(ctx.replicaRoot + '/' + relPath, target));
}

/**
 * Renames a replica file whose content moved to another path in the source, then gives it the
 * source's permission bits and mtime (`fixMeta`). `replica` is the file as the walk saw it at `from`.
 * Returns the replica file as it is after.
 */
export function moveEntry(ctx: ExecContext, from: string, to: string, source: Entry, replica: Entry): Entry {
  // Before the rename, which moves its ctime.
  checkUnchanged(ctx, from, replica);
  try {
    inWritableParents(ctx, [from, to], () => ctx.io.rename(ctx.replicaRoot + '/' + from, ctx.replicaRoot + '/' + to));
  } catch (error) {
    throw new RenameFailed(`moving ${show(from)} ->`, to, error);
  }
  return setMeta(ctx, to, source, replica);
}

/** Throws `ChangedInReplica` unless the replica file at `relPath` is still `seen` (its fingerprint). */
function checkUnchanged(ctx: ExecContext, relPath: string, seen: Entry): void {
  let now: Entry;
  try {
    now = toEntry(seen.name, ctx.io.lstat(ctx.replicaRoot + '/' + relPath));
  } catch (error) {
    throw new StepError(META_STEPS.lstat, relPath, error);
  }
  if (!sameFingerprint(now, seen)) throw new ChangedInReplica(relPath);
}

export function removeQuietly(io: Io, absPath: string): void {
  try {
    io.unlink(absPath);
  } catch {
    // not there, or not ours to worry about: the next pass sweeps temporary files
  }
}

function closeQuietly(io: Io, fd: number): void {
  try {
    io.close(fd);
  } catch {
    // already closed
  }
}
