/**
 * The native addon (`native/`, built by `npm install` into `build/`), typed by what each of its
 * jobs offers, each in its own C file:
 * - `NativeList` (`list.c`): lists one folder straight into a listing thread's batch buffers;
 * - `NativeWalk` (`walker.c`): walks a whole tree in a thread of its own (`NativeWalkLister`);
 * - `NativePool` (`pool.c`): syncfs and batches of metadata fixes on libuv's thread pool;
 * - `NativeTimes` (`times.c`): times set to the nanosecond;
 * - `NativeWatch` (`watch.c`): inotify read by a thread of its own, lost events (overflow) seen;
 * - `NativeCopy` (`copy.c`): a small copy's first half on libuv's thread pool, when built with
 *   OpenSSL's headers.
 * Optional: without a C compiler the build is skipped; each job then has a JavaScript way.
 */
import { createRequire } from 'node:module';
import { PACKAGE_ROOT } from './package.js';
import type { PackedBatch } from './tree/batches.js';

/**
 * What `list` answers: where the folder's names end in `text` and its numbers in `nums`, the names
 * of its subfolders and of its temporary files (each undefined when there are none), and whether a
 * name is not UTF-8 (it is in transport form, `fromTransport` in `tree/names.ts`: in the text and
 * among the subfolders); or `[-1, bytes, numbers]` when `text` or `nums` lacks room for the
 * folder, which needs that many from the offsets given (nothing was written).
 */
export type NativeAnswer =
  | [textEnd: number, numsEnd: number, subdirs: string[] | undefined, temps: string[] | undefined, escaped: true | undefined]
  | [-1, textNeeded: number, numsNeeded: number];

/** `list.c`: one folder listed (by a listing thread). */
export interface NativeList {
  /**
   * Lists folder `path`: its names in `byName` order, joined by NUL, into `text` from `textAt`;
   * `NUMS` numbers per name into `nums` from `numsAt`. Leaves out our temporary files and entries
   * gone since the folder was read; a name that is not UTF-8 is in transport form. `path` is a string,
   * or a Buffer of its bytes. Throws as `fs` does (with `code`)
   * if the folder cannot be read, or an lstat fails for another reason than the entry being gone.
   */
  list(path: string | Buffer, text: Uint8Array, textAt: number, nums: Float64Array, numsAt: number): NativeAnswer;
}

/** `walker.c`: a whole tree walked by a thread of the addon's own. */
export interface NativeWalk {
  /**
   * Starts a thread walking the tree at `root` (absolute) depth first in the walk's order, every
   * folder listed as `list` does, into batches of about `batchEntries` entries (names and
   * folders); it waits while more than `ahead` entries ahead of what `walkCredit` says was taken.
   * Folders named as one of `skip` are listed in their parent, not descended into (nothing else is
   * left out). The walker stops when `walkStop` is called, or when it is garbage-collected.
   */
  walkStart(root: string, batchEntries: number, ahead: number, skip: string[]): NativeWalker;
  /**
   * The next batch, waiting up to `waitMs` for one to be posted; true when the walk is done and
   * every batch taken; a message if the walker itself failed (out of memory); undefined if none
   * came in time. A folder whose names are not all UTF-8 comes with them in transport form, and
   * `escaped` set in its extra.
   */
  walkNext(walker: NativeWalker, waitMs: number): PackedBatch | true | string | undefined;
  /** The main thread has taken (or let go of) `taken` entries in all. */
  walkCredit(walker: NativeWalker, taken: number): void;
  /** The walker may be up to `ahead` entries ahead from now on. */
  walkAhead(walker: NativeWalker, ahead: number): void;
  /** Stops the walker at its next folder, dropping what it posted. */
  walkStop(walker: NativeWalker): void;
}

/** `pool.c`: calls made on libuv's thread pool, many files a trip. */
export interface NativePool {
  /**
   * syncfs(2) of the filesystem holding `fd`, on libuv's thread pool: 0 once done, else the errno
   * it failed with. `fd` must stay open until it settles.
   */
  syncFs(fd: number): Promise<number>;
  /**
   * For each of `paths` in turn, on libuv's thread pool, with 11 numbers from `input[i*11]`: its
   * lstat, which must show the fingerprint in numbers 5..10 (size, mtime s/ns, ctime s/ns, inode);
   * its permission bits set to number 0 (unless negative), its atime and mtime to numbers 1..4
   * (seconds, nanoseconds; kept to the microsecond); then its lstat into `nums` from `i * NUMS`.
   * Undefined when every path went through, else an array with, at each index that failed, the
   * error Node's fs would have thrown (`syscall` lstat, chmod or utime: the steps after it were not
   * made), or one with code ECHANGED for a file whose fingerprint was not the one given.
   */
  fixMetas(paths: string[], input: Float64Array, nums: Float64Array): Promise<(Error | undefined)[] | undefined>;
}

/** `times.c`: times set to the nanosecond. */
export interface NativeTimes {
  /** utimensat (or futimens, for a descriptor): 0, or the errno it failed with. A path is a string or a Buffer. */
  utimens(target: number | string | Buffer, noFollow: boolean, atimeS: number, atimeN: number, mtimeS: number, mtimeN: number): number;
}

/** `watch.c`: inotify, one descriptor for every watch, read by a thread of the addon's own. */
export interface NativeWatch {
  /** Starts reading; `onEvents` gets each read's raw `struct inotify_event`s, on the main thread. */
  watchOpen(onEvents: (events: Buffer) => void): NativeWatchHandle;
  /** inotify_add_watch: the watch descriptor, or the errno negated. A path is a string or a Buffer. */
  watchAdd(watch: NativeWatchHandle, path: string | Buffer, mask: number): number;
  watchRemove(watch: NativeWatchHandle, wd: number): void;
  /** Stops the thread and closes the descriptor. */
  watchClose(watch: NativeWatchHandle): void;
}

/** A watch started by `watchOpen` (opaque). */
export type NativeWatchHandle = { readonly nativeWatch: unique symbol };

/** `copy.c`: a small copy's first half on libuv's thread pool. */
export interface NativeCopy {
  /**
   * On libuv's thread pool: `source` (opened O_NOFOLLOW) read, MD5-hashed into `md5` and written
   * into `temp` (created 0600, truncated, O_NOFOLLOW); its fstat before the read into `nums` (as
   * `list` writes an entry's); its fstat after, which must show the same fingerprint; `temp` given
   * the source's permission bits. The open descriptor of `temp`; or rejected, `temp` closed and
   * removed, with the error Node's fs would have thrown plus `step` (an index of `COPY_STEPS` in
   * `replica/local/copy.ts`); or, with no `step`, code ECHANGED if the source changed while read, ETOOBIG if
   * it holds `maxBytes` or more, ENOMD5 if OpenSSL gave no MD5. Absent from an addon built without
   * OpenSSL's headers.
   */
  copyToTemp(source: string, temp: string, nums: Float64Array, md5: Uint8Array, maxBytes: number): Promise<number>;
}

/** The addon as built: every job, `copyToTemp` only where OpenSSL's headers were found. */
export type Addon = { /** `NATIVE_VERSION` of the source it was built from. */ version: number } & NativeList & NativeWalk & NativePool & NativeTimes & NativeWatch & Partial<NativeCopy>;

/** A walker started by `walkStart` (opaque). */
export type NativeWalker = { readonly nativeWalker: unique symbol };

/** Where `npm install` builds it. */
export const NATIVE_PATH = new URL('build/Release/fswalk.node', PACKAGE_ROOT);

/**
 * The version of the addon this code speaks (`FSWALK_VERSION` in `native/addon.c`). A build left
 * from older sources (a `git pull` without `npm install`) answers another and is not used.
 */
export const NATIVE_VERSION = 10;

/**
 * The addon, unless it was not built, fails to load, was built from other sources than this
 * code's, or `FOLDER_SYNC_NATIVE=0`.
 */
export function loadNative(): Addon | undefined {
  const found = probeNative();
  return typeof found === 'string' ? undefined : found;
}

/**
 * The addon's copies (`copyToTemp`), when it is built with them and this Node has the OpenSSL they
 * hash with (a Node built without crypto exports none: the addon would fail at its first copy).
 */
export function nativeCopy(): NativeCopy | undefined {
  const native = loadNative();
  return native?.copyToTemp !== undefined && process.versions.openssl !== undefined ? (native as NativeCopy) : undefined;
}

/** The addon's nanosecond times. */
export function nativeTimes(): NativeTimes | undefined {
  return loadNative();
}

/** The addon, or why it is not used. */
export function probeNative(): Addon | string {
  if (process.env.FOLDER_SYNC_NATIVE === '0') return 'FOLDER_SYNC_NATIVE=0';
  // Perf: looked up once (a `createRequire` and a resolution cost ~8 us, and each small copy asks).
  return (probed ??= requireNative());
}

let probed: Addon | string | undefined;

function requireNative(): Addon | string {
  const notBuilt = 'the native lister is not built, or not for this version: run npm install';
  try {
    const native = createRequire(import.meta.url)(NATIVE_PATH.pathname) as Addon;
    return native.version === NATIVE_VERSION ? native : notBuilt;
  } catch {
    return notBuilt;
  }
}
