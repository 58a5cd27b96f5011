/**
 * The disk, as the pass sees it. Every file-system call of a pass goes through an `Io`, so tests
 * can count file opens and inject failures (EACCES as root, ENOSPC, EIO) without mocking modules.
 *
 * Perf: synchronous calls on purpose. A pass is a long run of tiny syscalls (readdir, lstat);
 * the thread-pool round trip of `fs.promises` costs more than the syscall itself (measured ~3x
 * slower for a 100k-file walk). The pass yields to the event loop between entries instead.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { getSystemErrorName } from 'node:util';
import { loadNative, nativeCopy, nativeTimes } from '../../native.js';
import { catCopy } from './cat.js';
import { decodeName, fsPath } from '../../tree/names.js';
import { NUMS } from '../../tree/entry.js';
import type { MetaFix as ReplicaMetaFix } from '../replica.js';

export interface Io {
  readdir(absPath: string): string[];
  lstat(absPath: string): fs.BigIntStats;
  fstat(fd: number): fs.BigIntStats;
  readlink(absPath: string): string;
  /** Opens for reading (hashing, copying). */
  openRead(absPath: string): number;
  /**
   * Opens a temporary file for writing, private (0600) until it is renamed into place:
   * `create` truncates it, `resume` keeps what a crashed copy left in it.
   */
  openWrite(absPath: string, flags: 'create' | 'resume'): number;
  read(fd: number, buffer: Buffer, position: number | null): number;
  /** Writes at `position` (a byte offset). */
  write(fd: number, buffer: Buffer, length: number, position: number): number;
  ftruncate(fd: number, length: number): void;
  fsync(fd: number): void;
  /**
   * Copies `input`, from its first byte to its end, into `output` (both as opened here) in the
   * kernel and off this thread; `signal` stops it. Rejects when the copy failed, saying nothing of
   * what was written; stops early, without an error, when the source shrinks meanwhile.
   */
  copyInKernel(input: number, output: number, signal: AbortSignal): Promise<void>;
  /** fsync on libuv's thread pool: several files flushed at once share the journal commits. */
  fsyncAsync(fd: number): Promise<void>;
  /**
   * Writes out the whole filesystem holding `fd` (syncfs), on libuv's thread pool; `fd` stays open
   * until it settles. Rejects if it could not, or if the native addon that makes the call is not
   * built or not used (ENOSYS).
   */
  syncFs(fd: number): Promise<void>;
  /**
   * Each of `fixes` made in turn as `fixMeta` makes one (lstat to check it is the file the walk saw,
   * lchown unless no owner nor group is given, chmod unless no mode is given, utimes, lstat; a
   * failed step ends that file's: code ECHANGED if it changed; an owner that could not be set ends
   * nothing: its error has syscall chown, and the file's lstat is there), on libuv's thread pool. Rejects if it could not, or with ENOSYS if the native
   * addon that makes the calls is not built or not used (as `syncFs`).
   */
  fixMetas(fixes: readonly MetaFix[]): Promise<MetaFixed>;
  /**
   * The first half of a new copy (`writeCopy`'s, no temporary file resumed), on libuv's thread
   * pool: `sourceAbs` read once, hashed and written into `tempAbs` (created private, truncated),
   * checked unchanged from start to end of the read, then given its permission bits. Resolves to
   * the open temporary file; rejects, after removing it, with the error Node's fs would have thrown
   * and its `step` (an index of `COPY_STEPS`). Without a `step`, it made no copy for the caller to
   * make otherwise: code ECHANGED, the source changed while read; ETOOBIG, it holds `maxBytes` or
   * more (it grew since the walk); ENOSYS, the addon is not built or not used, or cannot hash here
   * (`nativeCopy`).
   */
  copyToTemp(sourceAbs: string, tempAbs: string, maxBytes: number): Promise<TempCopy>;
  fchmod(fd: number, mode: number): void;
  /** Times to the nanosecond with the native addon, else to the microsecond (libuv). */
  futimes(fd: number, times: Times): void;
  fchown(fd: number, uid: number, gid: number): void;
  /** An entry's owner and group, never following a link (-1 leaves either as it is). */
  lchown(absPath: string, uid: number, gid: number): void;
  close(fd: number): void;
  rename(fromAbs: string, toAbs: string): void;
  /** rename on libuv's thread pool (a copy's last step, see `finishCopy`). */
  renameAsync(fromAbs: string, toAbs: string): Promise<void>;
  unlink(absPath: string): void;
  /** unlink on libuv's thread pool (a run of deletes, see `LocalReplica.remove`). */
  unlinkAsync(absPath: string): Promise<void>;
  rmdir(absPath: string): void;
  mkdir(absPath: string, mode: number): void;
  chmod(absPath: string, mode: number): void;
  utimes(absPath: string, times: Times): void;
  lutimes(absPath: string, times: Times): void;
  symlink(target: string, absPath: string): void;
  /** A new name `absPath` for the file at `existingAbs` (link(2)). */
  link(existingAbs: string, absPath: string): void;
  /** Flushes a folder's entries (after renames into it), on libuv's thread pool. */
  fsyncDir(absPath: string): Promise<void>;
}

/**
 * Node's fs, with names as bytes: a path holding bytes that are not UTF-8 (`names.ts`) goes to the
 * system as its bytes (`fsPath`), and names and link targets come back with such bytes escaped.
 */
export const nodeIo: Io = {
  readdir: (p) => fs.readdirSync(fsPath(p), { encoding: 'buffer' }).map(decodeName),
  lstat: (p) => fs.lstatSync(fsPath(p), { bigint: true }),
  fstat: (fd) => fs.fstatSync(fd, { bigint: true }),
  readlink: (p) => decodeName(fs.readlinkSync(fsPath(p), { encoding: 'buffer' })),
  // Safety: O_NOFOLLOW: a path that became a symlink since the walk is refused (ELOOP), never
  // followed out of the tree.
  openRead: (p) => fs.openSync(fsPath(p), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW),
  openWrite: (p, flags) =>
    fs.openSync(
      fsPath(p),
      flags === 'create'
        ? fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW
        : fs.constants.O_RDWR | fs.constants.O_NOFOLLOW,
      0o600,
    ),
  read: (fd, buffer, position) => fs.readSync(fd, buffer, 0, buffer.length, position),
  write: (fd, buffer, length, position) => fs.writeSync(fd, buffer, 0, length, position),
  ftruncate: (fd, length) => fs.ftruncateSync(fd, length),
  copyInKernel: (input, output, signal) => catCopy(input, output, signal),
  fsync: (fd) => fs.fsyncSync(fd),
  fsyncAsync: (fd) => new Promise((resolve, reject) => fs.fsync(fd, (error) => (error ? reject(error) : resolve()))),
  syncFs: async (fd) => {
    const native = loadNative();
    const errno = native ? await native.syncFs(fd) : os.constants.errno.ENOSYS;
    if (errno !== 0) throw errnoError(errno, 'syncfs');
  },
  fixMetas: async (fixes) => {
    const native = loadNative();
    if (!native) throw errnoError(os.constants.errno.ENOSYS, 'fixMetas');
    const input = new Float64Array(fixes.length * META_INPUTS);
    for (let i = 0, o = 0; i < fixes.length; i++, o += META_INPUTS) {
      const fix = fixes[i];
      input[o] = fix.mode ?? -1;
      input[o + 1] = fix.atimeS;
      input[o + 2] = fix.atimeN;
      input[o + 3] = fix.mtimeS;
      input[o + 4] = fix.mtimeN;
      const seen = fix.seen;
      input[o + 5] = seen.size;
      input[o + 6] = seen.mtimeS;
      input[o + 7] = seen.mtimeN;
      input[o + 8] = seen.ctimeS;
      input[o + 9] = seen.ctimeN;
      input[o + 10] = seen.ino;
      input[o + 11] = fix.uid ?? -1;
      input[o + 12] = fix.gid ?? -1;
    }
    const nums = new Float64Array(fixes.length * NUMS);
    const errors = await native.fixMetas(fixes.map((fix) => fsPath(fix.abs) as string), input, nums);
    return { nums, errors };
  },
  copyToTemp: async (sourceAbs, tempAbs, maxBytes) => {
    const native = nativeCopy();
    if (native === undefined) throw errnoError(os.constants.errno.ENOSYS, 'copyToTemp');
    const nums = new Float64Array(NUMS);
    const md5 = Buffer.alloc(16);
    const fd = await native.copyToTemp(fsPath(sourceAbs) as string, fsPath(tempAbs) as string, nums, md5, maxBytes);
    return { fd, md5: md5.toString('hex'), nums };
  },
  fchmod: (fd, mode) => fs.fchmodSync(fd, mode),
  futimes: (fd, times) => setTimes(fd, false, times),
  fchown: (fd, uid, gid) => fs.fchownSync(fd, uid, gid),
  lchown: (p, uid, gid) => fs.lchownSync(fsPath(p), uid, gid),
  close: (fd) => fs.closeSync(fd),
  rename: (from, to) => fs.renameSync(fsPath(from), fsPath(to)),
  renameAsync: (from, to) => new Promise((resolve, reject) => fs.rename(fsPath(from), fsPath(to), (error) => (error ? reject(error) : resolve()))),
  unlink: (p) => fs.unlinkSync(fsPath(p)),
  unlinkAsync: (p) => new Promise((resolve, reject) => fs.unlink(fsPath(p), (error) => (error ? reject(error) : resolve()))),
  rmdir: (p) => fs.rmdirSync(fsPath(p)),
  mkdir: (p, mode) => fs.mkdirSync(fsPath(p), { mode }),
  chmod: (p, mode) => fs.chmodSync(fsPath(p), mode),
  utimes: (p, times) => setTimes(p, false, times),
  lutimes: (p, times) => setTimes(p, true, times),
  symlink: (target, p) => fs.symlinkSync(fsPath(target), fsPath(p)),
  link: (existing, p) => fs.linkSync(fsPath(existing), fsPath(p)),
  fsyncDir: async (p) => {
    const handle = await fs.promises.open(fsPath(p), 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};

/**
 * Seconds for utimes, from whole seconds and nanoseconds (libuv keeps microseconds of it). Node
 * turns a negative number into "now", but takes a numeric string as it is: times before 1970 go
 * as strings.
 */
export function toSeconds(seconds: number, nanoseconds: number): number | string {
  const value = seconds + Math.trunc(nanoseconds / 1000) / 1e6;
  return value < 0 ? String(value) : value;
}

/**
 * Numbers per fix in the addon's `fixMetas` input: mode (-1: none), atime s/ns, mtime s/ns, then
 * the fingerprint the file must still have: size, mtime s/ns, ctime s/ns, inode; then the owner
 * and group to set (-1: leave).
 */
const META_INPUTS = 13;

/** An error for a positive `errno`, as Node's fs would make it (with `path` when given). */
function errnoError(errno: number, syscall: string, path?: string): NodeJS.ErrnoException {
  const code = getSystemErrorName(-errno); // (libuv's negative numbering, as fs errors carry)
  const message = path === undefined ? `${code}: ${syscall} failed` : `${code}: ${syscall} failed, ${syscall} '${path}'`;
  return Object.assign(new Error(message), { code, errno: -errno, syscall, ...(path === undefined ? {} : { path }) });
}

/**
 * One replica file's metadata to set (`fixMeta`, a batch at a time in `Io.fixMetas`), by its
 * absolute path: the replica's `MetaFix` (only if the file is still the one the walk saw).
 */
export type MetaFix = Omit<ReplicaMetaFix, 'relPath'> & { readonly abs: string };

/**
 * What `Io.fixMetas` did: each file's lstat after its fix, `NUMS` numbers at `i * NUMS` (read them
 * with `entryFrom`), and `errors`, when some failed, the error of each (its `syscall`, chmod, utime
 * or lstat, says at which step).
 */
export interface MetaFixed {
  readonly nums: Float64Array;
  readonly errors: readonly (Error | undefined)[] | undefined;
}

/**
 * A copy's content in its temporary file (`Io.copyToTemp`): the file's open descriptor, the MD5 of
 * what was written, and the source as it was read (`NUMS` numbers: read them with `entryFrom`).
 */
export interface TempCopy {
  readonly fd: number;
  readonly md5: string;
  readonly nums: Float64Array;
}

/** An entry's times as a utimes call takes them: whole seconds and nanoseconds (an `Entry` is one). */
export interface Times {
  readonly atimeS: number;
  readonly atimeN: number;
  readonly mtimeS: number;
  readonly mtimeN: number;
}

/**
 * Sets `target`'s times (a descriptor, or a path followed unless `noFollow`): to the nanosecond
 * through the addon (`utimens`), else through Node, to the microsecond.
 */
function setTimes(target: number | string, noFollow: boolean, t: Times): void {
  const native = nativeTimes();
  if (native !== undefined) {
    const errno = native.utimens(typeof target === 'number' ? target : fsPath(target), noFollow, t.atimeS, t.atimeN, t.mtimeS, t.mtimeN);
    if (errno !== 0) throw errnoError(errno, typeof target === 'number' ? 'futime' : noFollow ? 'lutime' : 'utime', typeof target === 'number' ? undefined : target);
    return;
  }
  const atime = toSeconds(t.atimeS, t.atimeN);
  const mtime = toSeconds(t.mtimeS, t.mtimeN);
  if (typeof target === 'number') fs.futimesSync(target, atime, mtime);
  else if (noFollow) fs.lutimesSync(fsPath(target), atime, mtime);
  else fs.utimesSync(fsPath(target), atime, mtime);
}
