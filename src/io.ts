/**
 * The disk, as the pass sees it. Every file-system call of a pass goes through an `Io`, so tests
 * can count file opens and inject failures (EACCES as root, ENOSPC, EIO) without mocking modules.
 *
 * Perf: synchronous calls on purpose. A pass is a long run of tiny syscalls (readdir, lstat);
 * the thread-pool round trip of `fs.promises` costs more than the syscall itself (measured ~3x
 * slower for a 100k-file walk). The pass yields to the event loop between entries instead.
 */
import * as fs from 'node:fs';

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
  /** fsync on libuv's thread pool: several files flushed at once share the journal commits. */
  fsyncAsync(fd: number): Promise<void>;
  fchmod(fd: number, mode: number): void;
  futimes(fd: number, atime: Time, mtime: Time): void;
  close(fd: number): void;
  rename(fromAbs: string, toAbs: string): void;
  unlink(absPath: string): void;
  rmdir(absPath: string): void;
  mkdir(absPath: string, mode: number): void;
  chmod(absPath: string, mode: number): void;
  utimes(absPath: string, atime: Time, mtime: Time): void;
  lutimes(absPath: string, atime: Time, mtime: Time): void;
  symlink(target: string, absPath: string): void;
  /** Flushes a folder's entries (after renames into it). */
  fsyncDir(absPath: string): void;
}

export const nodeIo: Io = {
  readdir: (p) => fs.readdirSync(p),
  lstat: (p) => fs.lstatSync(p, { bigint: true }),
  fstat: (fd) => fs.fstatSync(fd, { bigint: true }),
  readlink: (p) => fs.readlinkSync(p),
  // Safety: O_NOFOLLOW: a path that became a symlink since the walk is refused (ELOOP), never
  // followed out of the tree.
  openRead: (p) => fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW),
  openWrite: (p, flags) =>
    fs.openSync(
      p,
      flags === 'create'
        ? fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW
        : fs.constants.O_RDWR | fs.constants.O_NOFOLLOW,
      0o600,
    ),
  read: (fd, buffer, position) => fs.readSync(fd, buffer, 0, buffer.length, position),
  write: (fd, buffer, length, position) => fs.writeSync(fd, buffer, 0, length, position),
  ftruncate: (fd, length) => fs.ftruncateSync(fd, length),
  fsync: (fd) => fs.fsyncSync(fd),
  fsyncAsync: (fd) => new Promise((resolve, reject) => fs.fsync(fd, (error) => (error ? reject(error) : resolve()))),
  fchmod: (fd, mode) => fs.fchmodSync(fd, mode),
  futimes: (fd, atime, mtime) => fs.futimesSync(fd, atime, mtime),
  close: (fd) => fs.closeSync(fd),
  rename: (from, to) => fs.renameSync(from, to),
  unlink: (p) => fs.unlinkSync(p),
  rmdir: (p) => fs.rmdirSync(p),
  mkdir: (p, mode) => fs.mkdirSync(p, { mode }),
  chmod: (p, mode) => fs.chmodSync(p, mode),
  utimes: (p, atime, mtime) => fs.utimesSync(p, atime, mtime),
  lutimes: (p, atime, mtime) => fs.lutimesSync(p, atime, mtime),
  symlink: (target, p) => fs.symlinkSync(target, p),
  fsyncDir: (p) => {
    const fd = fs.openSync(p, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
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

/** A time as utimes takes it. */
export type Time = number | string;
