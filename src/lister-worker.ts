/**
 * The listing thread: walks one tree depth first, in the walk's order (sorted names), and posts
 * each folder's entries as packed numbers (see `lister.ts`). Excluded folders are not descended,
 * exactly as the walk would not; the main thread takes the listings it needs.
 *
 * The thread starts idle and is told its tree by its first message (`ListerStart`): it may be
 * started before the command line is even read (see `prestartListers`).
 */
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { buildExclude } from './filter.js';
import { isVanished } from './errors.js';
import { AHEAD, DIR, FILE, NUMS, SPECIAL, SYMLINK, TAKEN, type ListerStart, type PackedListing } from './lister.js';
import { byName, isTempName, joinRel, splitNs } from './scan.js';

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

function publicLstat(path: string): StatNumbers {
  const st = fs.lstatSync(path, { bigint: true });
  return [
    Number(st.dev), Number(st.mode), 0, 0, 0, 0, 0, Number(st.ino), Number(st.size), 0,
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
    const same = a instanceof Float64Array && [1, 7, 8, 12, 13, 14, 15].every((i) => a[i] === b[i]);
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
 * Perf: post in batches of about this many entries (one message per folder costs more). A batch's
 * listings hold their numbers in one buffer (`numbers`, transferred whole): one allocation and one
 * transfer per batch, not per folder; the main thread frees it when the walk is done with every
 * listing in it (`ThreadLister.discard`).
 */
const BATCH_ENTRIES = 4096;
/**
 * Emptied after each post, never replaced. Perf: a new `[]` is an array of small integers until
 * its first push; the first push into it, after the first post, deoptimized `listFolder` (which
 * had only seen arrays of objects there) and V8 compiled it once more in each thread.
 */
const batch: PackedListing[] = [];
let batchEntries = 0;
let numbers = new Float64Array(BATCH_ENTRIES * NUMS);
/** Numbers of `numbers` used by the listings in `batch`. */
let used = 0;
/** Entries posted so far (compared with what the walk took: see `MAX_AHEAD`). */
let posted = 0;

function flush(): void {
  if (batch.length === 0) return;
  parentPort!.postMessage(batch, [numbers.buffer as ArrayBuffer]);
  numbers = new Float64Array(BATCH_ENTRIES * NUMS);
  used = 0;
  posted += batchEntries;
  batch.length = 0; // (posting copied it)
  batchEntries = 0;
  const taken = job.taken;
  if (taken === undefined) return;
  for (;;) {
    const now = Atomics.load(taken, TAKEN);
    if (posted - now <= Atomics.load(taken, AHEAD)) return;
    Atomics.wait(taken, TAKEN, now);
  }
}

/**
 * A folder's listing, waiting in `batch` to be posted (the main thread gets a plain object).
 * Perf: made by a class, not an object literal, as are `temps` and `undecodable` (`NONE` unless
 * there are some): literals that outlive a young-generation collection teach V8 to allocate the
 * next ones in the old generation (pretenuring), where each became garbage. On the 1M-file pass
 * the peak was ~35 MB above a run with pretenuring off; now it is about the same.
 */
class Listing implements PackedListing {
  constructor(
    readonly dir: string,
    readonly names: string,
    readonly nums: Float64Array,
    readonly temps: string[],
    readonly undecodable: string[],
    readonly error?: { code?: string; message: string },
  ) {}
}
const NONE: string[] = [];

/** A folder that could not be listed, as the main thread's walk reports it. */
function unreadable(relDir: string, error: unknown): PackedListing {
  const e = error as NodeJS.ErrnoException;
  return new Listing(relDir, '', numbers.subarray(used, used), NONE, NONE, { code: e.code, message: e.message });
}

/** Room in `numbers` for `count` more numbers (the batch so far is posted first if need be). */
function reserve(count: number): void {
  if (used + count <= numbers.length) return;
  flush();
  if (count > numbers.length) numbers = new Float64Array(count);
}

function listFolder(relDir: string): string[] {
  const abs = relDir === '' ? job.root : job.root + '/' + relDir;
  const prefix = abs + '/';
  let names: string[];
  try {
    names = fs.readdirSync(abs);
  } catch (error) {
    batch.push(unreadable(relDir, error));
    batchEntries++;
    return [];
  }
  names.sort(byName);
  const kept: string[] = [];
  let temps = NONE;
  let undecodable = NONE;
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
      st = lstatNumbers(prefix + name);
    } catch (error) {
      if (!isVanished(error)) {
        // An lstat failure other than "gone" makes the whole folder unreadable, as inline.
        batch.push(unreadable(relDir, error));
        batchEntries++;
        return [];
      }
      // Gone since readdir: left out. A name that is not UTF-8 cannot be lstat'ed by name at all.
      if (name.includes('\uFFFD')) {
        if (undecodable === NONE) undecodable = [];
        undecodable.push(name);
      }
      continue;
    }
    const kind = kindOfMode(st[1]);
    nums[o] = kind;
    nums[o + 1] = st[8];
    nums[o + 2] = st[1] & 0o7777;
    nums[o + 3] = st[12];
    nums[o + 4] = st[13];
    nums[o + 5] = st[14];
    nums[o + 6] = st[15];
    nums[o + 7] = st[10];
    nums[o + 8] = st[11];
    nums[o + 9] = st[7];
    o += NUMS;
    kept.push(name);
    if (kind === DIR) {
      const childRel = joinRel(relDir, name);
      if (!exclude(childRel, true)) subdirs.push(childRel);
    }
  }
  batch.push(new Listing(relDir, kept.join('\0'), nums.subarray(start, o), temps, undecodable));
  used = o;
  batchEntries += kept.length + 1;
  return subdirs;
}

function walk(relDir: string): void {
  const subdirs = listFolder(relDir);
  // Perf: here, not in `listFolder`, whose optimized code would be thrown away (and compiled
  // again) at the first post: a call it had never seen made.
  if (batchEntries >= BATCH_ENTRIES) flush();
  for (const child of subdirs) walk(child);
}

parentPort!.once('message', (start: ListerStart) => {
  try {
    job = start;
    exclude = buildExclude(job.excludes, job.own);
    lstatNumbers = pickLstat();
    walk('');
    flush();
    parentPort!.postMessage('done');
  } catch (error) {
    // Not a folder that could not be read (those travel as listings): the thread itself failed.
    parentPort!.postMessage({ fatal: error instanceof Error ? error.message : String(error) });
  }
});
