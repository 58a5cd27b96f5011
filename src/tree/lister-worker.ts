/**
 * The listing thread: walks one tree depth first, in the walk's order (sorted names), and posts
 * each folder's entries as packed numbers (see `batches.ts`). Excluded folders are not descended,
 * exactly as the walk would not; the main thread takes the listings it needs.
 *
 * The thread starts idle and is told its tree by its first message (`ListerStart`): it may be
 * started before the command line is even read (see `prestartListers`).
 */
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { buildExclude } from './filter.js';
import { isVanished } from '../errors.js';
import { AHEAD, BATCH_ENTRIES, TAKEN, type ListerStart, type ListingExtra, type PackedBatch } from './batches.js';
import { AT, DIR, FILE, NUMS, SPECIAL, SYMLINK } from './entry.js';
import { decodeName, fromTransport, fsPath, hasEscapes, toTransport } from './names.js';
import { byName, inodeNumber, isTempName, joinRel, splitNs } from './scan.js';
import { loadNative, type NativeAnswer, type NativeList } from '../native.js';

let job: ListerStart;
let exclude: ReturnType<typeof buildExclude>;

/**
 * lstat as numbers: [dev, mode, nlink, uid, gid, rdev, blksize, ino, size, blocks, atime s, ns,
 * mtime s, ns, ctime s, ns, …].
 *
 * Perf: Node's own fs binding returns exactly that (whole seconds and nanoseconds as exact doubles)
 * without building a Stats object with BigInts and Dates: ~25% less per entry on the hot path of
 * every pass. It is internal API, so it is used only if it answers like `fs.lstatSync` for the root;
 * otherwise the public call is used.
 */
type StatNumbers = ArrayLike<number>;
let lstatNumbers: (path: string) => StatNumbers;

function publicLstat(path: string | Buffer): StatNumbers {
  const st = fs.lstatSync(path, { bigint: true });
  return [
    Number(st.dev), Number(st.mode), Number(st.nlink), Number(st.uid), Number(st.gid), 0, 0, inodeNumber(st.ino), Number(st.size), 0,
    ...splitNs(st.atimeNs), ...splitNs(st.mtimeNs), ...splitNs(st.ctimeNs),
  ];
}

function pickLstat(): (path: string) => StatNumbers {
  try {
    const noDeprecation = process.noDeprecation;
    process.noDeprecation = true; // process.binding warns once; this use is deliberate and checked
    const binding = (process as unknown as { binding(name: string): { lstat?: (...args: unknown[]) => unknown } }).binding('fs');
    process.noDeprecation = noDeprecation;
    const raw = binding.lstat;
    if (typeof raw !== 'function') return publicLstat;
    const fast = (path: string) => raw.call(binding, path, false, undefined, true) as Float64Array;
    const a = fast(job.root);
    const b = publicLstat(job.root);
    const same = a instanceof Float64Array && [0, 1, 2, 3, 4, 7, 8, 12, 13, 14, 15].every((i) => a[i] === b[i]);
    return same ? fast : publicLstat;
  } catch {
    return publicLstat;
  }
}

const S_IFMT = 0o170000;
function kindOfMode(mode: number): number {
  switch (mode & S_IFMT) {
    case 0o100000:
      return FILE;
    case 0o040000:
      return DIR;
    case 0o120000:
      return SYMLINK;
    default:
      return SPECIAL;
  }
}

/**
 * Room for a batch's names to begin with (grown for a folder that needs more). A batch (see
 * `BATCH_ENTRIES`) holds its numbers in `numbers` and its names in `text`.
 */
const TEXT_BYTES = 1 << 17;
let numbers = new Float64Array(BATCH_ENTRIES * NUMS);
/** Numbers of `numbers` used by the batch's listings. */
let used = 0;
let text = Buffer.allocUnsafeSlow(TEXT_BYTES);
/** Bytes of `text` used by the batch's listings. */
let textUsed = 0;
/**
 * Per folder of the batch, where its parts end: its path and its names in `text`, its numbers in
 * `numbers` (each begins where the folder before it ends). Emptied after each post, never replaced:
 * a new `[]` is an array of small integers until its first push, and that push deoptimized the
 * function doing it (as it did `listFolder`, when the batch was an array of objects replaced after
 * each post).
 */
const ends: number[] = [];
/** The batch's folders with temporary files, names that are not UTF-8, or an error (rare). */
const extras: ListingExtra[] = [];
/** Entries posted so far (compared with what the walk took: see `MAX_AHEAD`). */
let posted = 0;

function flush(): void {
  if (ends.length === 0) return;
  const batch: PackedBatch = { text: text.subarray(0, textUsed), nums: numbers.subarray(0, used), ends: Int32Array.from(ends), extras };
  parentPort!.postMessage(batch, [text.buffer as ArrayBuffer, numbers.buffer as ArrayBuffer]);
  numbers = new Float64Array(BATCH_ENTRIES * NUMS);
  used = 0;
  text = Buffer.allocUnsafeSlow(TEXT_BYTES);
  textUsed = 0;
  posted += batchEntries();
  ends.length = 0; // (posting copied them)
  extras.length = 0;
  const taken = job.taken;
  if (taken === undefined) return;
  for (;;) {
    const now = Atomics.load(taken, TAKEN);
    if (posted - now <= Atomics.load(taken, AHEAD)) return;
    Atomics.wait(taken, TAKEN, now);
  }
}

/** What the worker counts as the batch's entries: its folders' names, plus the folders themselves. */
function batchEntries(): number {
  return used / NUMS + ends.length / 3;
}

/**
 * Adds a folder to the batch: its path and names (joined by NUL) to `text`; its numbers, already
 * in `numbers`, end at `numsEnd` (the rest as `endFolder`).
 */
function addFolder(relDir: string, joined: string, numsEnd: number, temps: string[], escaped: boolean, error: ListingExtra['error']): void {
  const dir = toTransport(relDir);
  // At most 3 bytes of UTF-8 per UTF-16 code unit.
  roomForText(3 * (dir.length + joined.length));
  const dirEnd = textUsed + text.write(dir, textUsed);
  endFolder(dirEnd, dirEnd + text.write(joined, dirEnd), numsEnd, temps, escaped, error);
}

/**
 * Ends the folder being added, already written: its path ends at `dirEnd` in `text` and its names
 * at `namesEnd`, its numbers at `numsEnd` in `numbers`. Temporary files, names that are not UTF-8 or an
 * error go to `extras`.
 */
function endFolder(dirEnd: number, namesEnd: number, numsEnd: number, temps: string[], escaped: boolean, error: ListingExtra['error']): void {
  if (temps !== NONE || escaped || error !== undefined) extras.push(new Extra(ends.length / 3, temps, escaped ? true : undefined, error));
  ends.push(dirEnd, namesEnd, numsEnd);
  textUsed = namesEnd;
  used = numsEnd;
}

/** Room in `text` for `bytes` more bytes after the batch's (it grows, keeping them). */
function roomForText(bytes: number): void {
  if (textUsed + bytes <= text.length) return;
  const bigger = Buffer.allocUnsafeSlow(Math.max(2 * text.length, textUsed + bytes));
  text.copy(bigger, 0, 0, textUsed);
  text = bigger;
}

/**
 * The folder being added has temporary files, names that are not UTF-8, or could not be read. Perf: made
 * by a class, not an object literal: literals that outlive a young-generation collection teach V8
 * to allocate the next ones in the old generation (pretenuring), where each becomes garbage.
 */
class Extra implements ListingExtra {
  constructor(
    readonly at: number,
    readonly temps: string[],
    readonly escaped?: true,
    readonly error?: { code?: string; message: string },
  ) {}
}
const NONE: string[] = [];

/** A folder that could not be listed, as the main thread's walk reports it. */
function unreadable(relDir: string, error: unknown): void {
  const e = error as NodeJS.ErrnoException;
  addFolder(relDir, '', used, NONE, false, { code: e.code, message: e.message });
}

/** Room in `numbers` for `count` more numbers (the batch so far is posted first if need be). */
function reserve(count: number): void {
  if (used + count <= numbers.length) return;
  flush();
  if (count > numbers.length) numbers = new Float64Array(count);
}

/** `relDir`'s absolute path. */
function absolute(relDir: string): string {
  return relDir === '' ? job.root : job.root + '/' + relDir;
}

function listFolder(relDir: string): string[] {
  const abs = absolute(relDir);
  let names: string[];
  let escaped = false;
  try {
    names = fs.readdirSync(fsPath(abs));
    // A name that is not UTF-8 decodes with U+FFFD: the folder is read again, names as bytes (rare).
    if (names.some((name) => name.includes('\uFFFD'))) {
      names = fs.readdirSync(fsPath(abs), { encoding: 'buffer' }).map(decodeName);
      escaped = names.some(hasEscapes);
    }
  } catch (error) {
    unreadable(relDir, error);
    return [];
  }
  names.sort(byName);
  const prefix = abs + '/';
  const kept: string[] = [];
  let temps = NONE;
  reserve(names.length * NUMS);
  const nums = numbers;
  const start = used;
  const subdirs: string[] = [];
  let o = start;
  for (const name of names) {
    if (isTempName(name)) {
      if (temps === NONE) temps = [];
      temps.push(name);
      continue;
    }
    let st: StatNumbers;
    try {
      st = escaped && hasEscapes(name) ? publicLstat(fsPath(prefix + name)) : lstatNumbers(prefix + name);
    } catch (error) {
      if (!isVanished(error)) {
        // An lstat failure other than "gone" makes the whole folder unreadable, as inline.
        unreadable(relDir, error);
        return [];
      }
      continue; // gone since readdir: left out
    }
    const kind = kindOfMode(st[1]);
    nums[o + AT.kind] = kind;
    nums[o + AT.size] = st[8];
    nums[o + AT.mode] = st[1] & 0o7777;
    nums[o + AT.mtimeS] = st[12];
    nums[o + AT.mtimeN] = st[13];
    nums[o + AT.ctimeS] = st[14];
    nums[o + AT.ctimeN] = st[15];
    nums[o + AT.atimeS] = st[10];
    nums[o + AT.atimeN] = st[11];
    nums[o + AT.ino] = st[7];
    nums[o + AT.uid] = st[3];
    nums[o + AT.gid] = st[4];
    nums[o + AT.nlink] = st[2];
    nums[o + AT.dev] = st[0];
    o += NUMS;
    kept.push(escaped ? toTransport(name) : name);
    if (kind === DIR) {
      const childRel = joinRel(relDir, name);
      if (!exclude(childRel, true)) subdirs.push(childRel);
    }
  }
  addFolder(relDir, kept.join('\0'), o, temps, escaped, undefined);
  return subdirs;
}

/**
 * `listFolder` by the native lister (`list` in `native/list.c`): the same listing, written straight into the
 * batch's buffers. Perf: ~1.6x less CPU than `listFolder`, whose readdir makes a string per name
 * and whose lstat by absolute path has the kernel walk the whole path again for each name: 0.22 s
 * against 0.35 s per listing thread on the benchmark's 100k-file no-change pass (the threads' own
 * CPU, from /proc), nearly all of it now the kernel's readdir and lstat, as for GNU `find`.
 */
function listFolderNative(relDir: string): string[] {
  const abs = absolute(relDir);
  for (;;) {
    // The folder's path first, then its names (as `addFolder`); `endFolder` moves `textUsed`.
    const dir = toTransport(relDir);
    roomForText(3 * dir.length);
    const dirEnd = textUsed + text.write(dir, textUsed);
    let answer;
    try {
      answer = native!.list(fsPath(abs), text, dirEnd, numbers, used);
    } catch (error) {
      unreadable(relDir, error);
      return [];
    }
    if (answer[0] === -1) {
      // Too big for what is left of the buffers: the batch so far is posted or the text grown.
      const [, bytes, count] = answer as [number, number, number];
      reserve(count);
      roomForText(3 * dir.length + bytes);
      continue;
    }
    const [namesEnd, numsEnd, subdirNames, temps, escaped] = answer as Exclude<NativeAnswer, [-1, number, number]>;
    endFolder(dirEnd, namesEnd, numsEnd, temps ?? NONE, escaped === true, undefined);
    const subdirs: string[] = [];
    if (subdirNames !== undefined) {
      for (const name of subdirNames) {
        const childRel = joinRel(relDir, escaped ? fromTransport(name) : name);
        if (!exclude(childRel, true)) subdirs.push(childRel);
      }
    }
    return subdirs;
  }
}

/** The native lister, when it was built and the job allows it. */
let native: NativeList | undefined;
/** `listFolderNative` or `listFolder`, chosen once. */
let listOne: (relDir: string) => string[] = listFolder;

function walk(relDir: string): void {
  const subdirs = listOne(relDir);
  // Perf: here, not in `listFolder`, whose optimized code would be thrown away (and compiled
  // again) at the first post: a call it had never seen made.
  if (batchEntries() >= BATCH_ENTRIES) flush();
  for (const child of subdirs) walk(child);
}

parentPort!.once('message', (start: ListerStart) => {
  try {
    job = start;
    exclude = buildExclude(job.excludes, job.own);
    native = job.native === false ? undefined : loadNative();
    if (native !== undefined) listOne = listFolderNative;
    else lstatNumbers = pickLstat();
    walk('');
    flush();
    parentPort!.postMessage('done');
  } catch (error) {
    // Not a folder that could not be read (those travel as listings): the thread itself failed.
    parentPort!.postMessage({ fatal: error instanceof Error ? error.message : String(error) });
  }
});
