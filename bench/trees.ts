/**
 * The benchmark's trees: generated once, deterministically, into `<cache>/trees/<name>/`, and
 * reused by every later run while `<cache>/trees/<name>.done` carries the current TREE_VERSION.
 *
 * Layout of the cache folder (all of it is disposable):
 *   trees/<name>/        the pristine tree; never modified after it is built
 *   trees/<name>.list    one line per regular file: `size<TAB>mtime-seconds<TAB>relative/path`
 *   trees/<name>.done    marker, written last: JSON with the version stamp and the totals
 *   work/t100k/          a `cp -a` copy of t100k that the mutating scenarios edit and restore
 *
 * Same seed, same bytes: names, shapes, sizes, contents and mtimes all come from seeded
 * generators (see prng.ts), so two machines benchmark the same trees.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Prng } from './prng.js';
import { run } from './proc.js';

/** Bump whenever the generator changes what it produces: cached trees are then rebuilt. */
export const TREE_VERSION = 1;

export type TreeName = 't100k' | 't1m' | 'big';

/** One regular file of a tree, as recorded in its `.list` file. */
export interface FileEntry {
  /** Path relative to the tree's root, `/`-separated. */
  rel: string;
  size: number;
  /** Modification time, whole seconds since the epoch (every generated file gets its own). */
  mtime: number;
}

/** What the `.done` marker records. */
export interface TreeInfo {
  version: number;
  name: TreeName;
  files: number;
  folders: number;
  bytes: number;
  maxDepth: number;
  /** Seconds the generation took (informational). */
  seconds: number;
}

/** Shape and size distribution of a many-file tree. */
interface ManySpec {
  kind: 'many';
  files: number;
  /** Folder nesting: files sit in folders of depth 1..maxDepth; leaf folders at minDepth or deeper. */
  minDepth: number;
  maxDepth: number;
  /** Entries (files + subfolders) per folder. */
  minEntries: number;
  maxEntries: number;
  /** Size of the random pool file contents are cut from (at least the largest file). */
  poolBytes: number;
  /** Draws one file's size. */
  size: (rng: Prng) => number;
  /** Rough bytes on disk, for the free-space check (4 KiB blocks for small files). */
  diskBytes: number;
}

/** A single big file. */
interface BigSpec {
  kind: 'big';
  fileName: string;
  bytes: number;
  diskBytes: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** The big tree's only file. */
export const BIG_FILE = 'big-4g.bin';

/** First generated mtime; file i gets BASE_MTIME + 7 i seconds (distinct, all in the past). */
const BASE_MTIME = 1_600_000_000;

export const TREE_SPECS: Record<TreeName, ManySpec | BigSpec> = {
  // 100k mixed files: 99.9% uniform 1–64 KiB, 0.1% uniform 1–4 MiB; ~3.5 GB in all.
  t100k: {
    kind: 'many',
    files: 100_000,
    minDepth: 3,
    maxDepth: 6,
    minEntries: 20,
    maxEntries: 50,
    poolBytes: 16 * MiB,
    size: (rng) => (rng.next() < 0.001 ? rng.int(1 * MiB, 4 * MiB) : rng.int(1 * KiB, 64 * KiB)),
    diskBytes: 3.6e9,
  },
  // 1M small files: 10% empty, the rest uniform 1–2 KiB (one 4 KiB block each on ext4).
  t1m: {
    kind: 'many',
    files: 1_000_000,
    minDepth: 3,
    maxDepth: 6,
    minEntries: 20,
    maxEntries: 50,
    poolBytes: 1 * MiB,
    size: (rng) => (rng.next() < 0.1 ? 0 : rng.int(1 * KiB, 2 * KiB)),
    diskBytes: 4.4e9,
  },
  // One 4 GiB file, alone in its folder.
  big: { kind: 'big', fileName: BIG_FILE, bytes: 4 * GiB, diskBytes: 4 * GiB },
};

/** Paths of a tree's pieces inside the cache folder. */
export function treePaths(cacheDir: string, name: TreeName): { dir: string; list: string; marker: string } {
  const base = path.join(cacheDir, 'trees', name);
  return { dir: base, list: base + '.list', marker: base + '.done' };
}

/** The marker's contents when the tree is complete and current, else undefined. */
export function readMarker(marker: string): TreeInfo | undefined {
  try {
    const info = JSON.parse(fs.readFileSync(marker, 'utf8')) as TreeInfo;
    return info.version === TREE_VERSION ? info : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Makes sure the tree exists and is current: reuses it when its marker says so, otherwise removes
 * whatever is there and generates it. Returns the marker's contents and whether it was built now.
 */
export function ensureTree(cacheDir: string, name: TreeName, log: (line: string) => void): { info: TreeInfo; built: boolean } {
  const { dir, list, marker } = treePaths(cacheDir, name);
  const existing = readMarker(marker);
  if (existing && fs.existsSync(dir) && fs.existsSync(list)) return { info: existing, built: false };

  const spec = TREE_SPECS[name];
  fs.rmSync(marker, { force: true });
  if (fs.existsSync(dir)) {
    log(`tree ${name}: incomplete or outdated, removing it`);
    run('rm', ['-rf', '--', dir]);
  }
  requireFreeSpace(cacheDir, spec.diskBytes, `generating tree ${name}`);
  fs.mkdirSync(dir, { recursive: true });

  const started = performance.now();
  const totals = spec.kind === 'many' ? generateMany(name, spec, dir, list, log) : generateBig(name, spec, dir, list, log);
  const info: TreeInfo = { version: TREE_VERSION, name, ...totals, seconds: round2((performance.now() - started) / 1000) };
  // Perf: one sync after the whole tree rather than per file; it makes the marker's promise
  // ("the tree is complete") hold across a crash and keeps the writeback out of the first timings.
  run('sync', []);
  fs.writeFileSync(marker, JSON.stringify(info, null, 2) + '\n');
  log(`tree ${name}: ${info.files.toLocaleString('en-US')} files, ${info.folders.toLocaleString('en-US')} folders, ` +
    `${(info.bytes / 1e9).toFixed(2)} GB, depth ≤ ${info.maxDepth}, built in ${info.seconds} s`);
  return { info, built: true };
}

/** Reads a tree's `.list` file. */
export function readList(listPath: string): FileEntry[] {
  const out: FileEntry[] = [];
  for (const line of fs.readFileSync(listPath, 'utf8').split('\n')) {
    if (line === '') continue;
    const tab1 = line.indexOf('\t');
    const tab2 = line.indexOf('\t', tab1 + 1);
    out.push({ size: Number(line.slice(0, tab1)), mtime: Number(line.slice(tab1 + 1, tab2)), rel: line.slice(tab2 + 1) });
  }
  return out;
}

/** Throws a clear error when the cache's filesystem has less than `bytes` (+2 GB margin) free. */
export function requireFreeSpace(cacheDir: string, bytes: number, what: string): void {
  fs.mkdirSync(cacheDir, { recursive: true });
  const st = fs.statfsSync(cacheDir);
  const free = st.bavail * st.bsize;
  const margin = 2e9;
  if (free < bytes + margin) {
    throw new Error(`not enough free space for ${what}: need about ${((bytes + margin) / 1e9).toFixed(1)} GB, ` +
      `${(free / 1e9).toFixed(1)} GB free in ${cacheDir} (set BENCH_DIR to a bigger disk)`);
  }
}

// ---------------------------------------------------------------------------------------------
// Many-file trees

/**
 * Walks the shape of a many-file tree depth first, calling `onFolder` before a folder's contents
 * and `onFile` for each file. The shape is planned top-down from a file budget:
 *  - the root holds only folders (20–50 of them), sharing the budget;
 *  - a folder at depth ≥ minDepth whose budget fits in one folder is a leaf holding only files;
 *  - any other folder draws 20–50 entries: a random number of subfolders (a log-uniform
 *    "branching factor", so some branches end at depth 3 and others reach 6) plus files, and
 *    splits the rest of its budget among the subfolders with random weights;
 *  - bounds keep every subfolder's budget between what its depth must hold at least and what
 *    the depths left below it can hold, so no branch ends above minDepth or below maxDepth.
 * The sequence of calls depends only on the spec and the seed.
 */
function walkShape(
  spec: ManySpec,
  rng: Prng,
  onFolder: (rel: string, depth: number) => void,
  onFile: (rel: string, depth: number) => void,
): void {
  const { minDepth, maxDepth, minEntries, maxEntries } = spec;

  // Fewest files a subtree rooted at `depth` can hold: a leaf's minimum, or a chain of folders
  // each with one subfolder and the rest files down to minDepth.
  const minFiles = (depth: number): number => (depth >= minDepth ? minEntries : minEntries - 1 + minFiles(depth + 1));
  // A safe (not tight) bound on what a subtree at `depth` can hold without going past maxDepth:
  // half-full folders all the way down.
  const capFiles = (depth: number): number => (depth >= maxDepth ? maxEntries : (maxEntries / 2) * capFiles(depth + 1));

  // Branching factors: per level, shrink a depth-1 folder's budget to one leaf in 2 to 5 more
  // levels (leaves at depth 3 to 6); the low end is stretched (×0.7) so deep branches are common.
  // Tuned with shapeStats(): t100k has files at every depth 1–6, ~29 entries per folder on average.
  const perTopFolder = spec.files / ((minEntries + maxEntries) / 2);
  const shrink = perTopFolder / ((minEntries + maxEntries) / 2);
  const factorLow = Math.max(1, 0.7 * shrink ** (1 / (maxDepth - 1)));
  const factorHigh = shrink ** (1 / (minDepth - 1));

  const visit = (rel: string, depth: number, budget: number): void => {
    if (depth > 0) onFolder(rel, depth);
    const prefix = depth === 0 ? '' : rel + '/';
    let fileNo = 0;
    const emitFiles = (count: number): void => {
      for (let i = 0; i < count; i++, fileNo++) {
        onFile(`${prefix}${rng.word(3, 10)}-${fileNo}.${EXTENSIONS[rng.int(0, EXTENSIONS.length - 1)]}`, depth);
      }
    };

    if (depth >= minDepth && budget <= maxEntries) {
      emitFiles(budget);
      return;
    }
    if (depth >= maxDepth) throw new Error(`tree shape: ${budget} files left at depth ${depth} (generator bug)`);

    const entries = rng.int(minEntries, maxEntries);
    const childMin = minFiles(depth + 1);
    const childCap = capFiles(depth + 1);
    let folders = depth === 0 ? entries : Math.max(1, Math.round(rng.logUniform(factorLow, factorHigh)));
    folders = Math.max(folders, Math.ceil(budget / childCap));
    folders = Math.max(1, Math.min(folders, Math.floor(budget / childMin), maxEntries));
    // Fewer subfolders when their minimum shares would leave too few files for this folder's
    // own entries (keeps folders at 20+ entries), as long as the rest still fits below.
    while (depth > 0 && folders > 1 && budget - folders * childMin < entries - folders && (folders - 1) * childCap >= budget) {
      folders--;
    }
    let files = depth === 0 ? 0 : Math.max(0, entries - folders);
    files = Math.min(files, budget - folders * childMin);
    const shares = split(rng, budget - files, folders, childMin, childCap);

    emitFiles(files);
    shares.forEach((share, i) => visit(`${prefix}${rng.word(3, 8)}-${i}`, depth + 1, share));
  };

  visit('', 0, spec.files);
}

const EXTENSIONS = ['txt', 'json', 'jpg', 'png', 'bin', 'dat', 'log', 'csv', 'md', 'ts'];

/** Splits `total` into `parts` random shares, each within [min, max] (the caller makes it possible). */
function split(rng: Prng, total: number, parts: number, min: number, max: number): number[] {
  const shares = new Array<number>(parts).fill(min);
  let left = total - parts * min;
  if (left < 0 || total > parts * max) throw new Error(`tree shape: cannot split ${total} into ${parts} × [${min}, ${max}]`);
  const weights = shares.map(() => 0.25 + rng.next());
  const weightSum = weights.reduce((a, b) => a + b, 0);
  const extra = left;
  for (let i = 0; i < parts; i++) {
    const add = Math.min(max - shares[i], Math.floor((extra * weights[i]) / weightSum));
    shares[i] += add;
    left -= add;
  }
  // Rounding (and the rare clamp) leaves a remainder: hand it out one by one.
  for (let i = rng.int(0, parts - 1); left > 0; i = (i + 1) % parts) {
    if (shares[i] < max) {
      shares[i]++;
      left--;
    }
  }
  return shares;
}

/** Generates a many-file tree into `dir` and its `.list` file; returns the totals. */
function generateMany(name: TreeName, spec: ManySpec, dir: string, listPath: string, log: (line: string) => void): Omit<TreeInfo, 'version' | 'name' | 'seconds'> {
  // Separate generators for the shape and for the contents, so each is a simple sequence.
  const shapeRng = new Prng(`${name}/shape/v${TREE_VERSION}`);
  const dataRng = new Prng(`${name}/data/v${TREE_VERSION}`);
  // Perf: contents are cut from one random pool at random offsets (a 32-byte header naming the
  // file makes every file distinct); filling the pool once beats generating gigabytes.
  const pool = new Prng(`${name}/pool/v${TREE_VERSION}`).fill(Buffer.allocUnsafe(spec.poolBytes));
  const header = Buffer.alloc(HEADER_BYTES);

  const listFd = fs.openSync(listPath, 'w');
  let listChunk = '';
  let files = 0;
  let folders = 0;
  let bytes = 0;
  let maxDepth = 0;
  let lastReport = performance.now();

  walkShape(
    spec,
    shapeRng,
    (rel) => {
      fs.mkdirSync(path.join(dir, rel));
      folders++;
    },
    (rel, depth) => {
      const size = spec.size(dataRng);
      const offset = dataRng.int(0, spec.poolBytes - Math.max(size, HEADER_BYTES));
      const mtime = BASE_MTIME + 7 * files;
      writeContent(path.join(dir, rel), fillHeader(header, `${name} #${files}`), pool, offset, size, mtime);
      listChunk += `${size}\t${mtime}\t${rel}\n`;
      files++;
      bytes += size;
      maxDepth = Math.max(maxDepth, depth);
      if (listChunk.length > 1 << 20) {
        fs.writeSync(listFd, listChunk);
        listChunk = '';
      }
      const now = performance.now();
      if (now - lastReport > 3000) {
        lastReport = now;
        log(`tree ${name}: ${files.toLocaleString('en-US')} / ${spec.files.toLocaleString('en-US')} files, ${(bytes / 1e9).toFixed(2)} GB`);
      }
    },
  );
  fs.writeSync(listFd, listChunk);
  fs.closeSync(listFd);
  if (files !== spec.files) throw new Error(`tree ${name}: generated ${files} files, expected ${spec.files} (generator bug)`);
  return { files, folders, bytes, maxDepth };
}

/** Bytes at the start of each generated file that name it (tree and index), padded with `.`. */
export const HEADER_BYTES = 32;

/** Writes `text` into the header buffer, padded with dots and ending in a newline. */
export function fillHeader(header: Buffer, text: string): Buffer {
  header.fill(0x2e);
  header.write(text.slice(0, HEADER_BYTES - 1), 0, 'latin1');
  header[HEADER_BYTES - 1] = 0x0a;
  return header;
}

/**
 * Creates (or truncates) a file holding `size` bytes: the header, then the pool from `offset`.
 * Sets its mtime when given (through the open descriptor: no second path lookup).
 */
export function writeContent(file: string, header: Buffer, pool: Buffer, offset: number, size: number, mtime?: number): void {
  const fd = fs.openSync(file, 'w', 0o644);
  try {
    const head = Math.min(size, HEADER_BYTES);
    if (size > 0) writeAll(fd, [header.subarray(0, head), pool.subarray(offset, offset + size - head)]);
    if (mtime !== undefined) fs.futimesSync(fd, mtime, mtime);
  } finally {
    fs.closeSync(fd);
  }
}

/** writev until everything is written (a regular file normally takes it all at once). */
function writeAll(fd: number, buffers: Buffer[]): void {
  let pending = buffers.filter((b) => b.length > 0);
  while (pending.length > 0) {
    let written = fs.writevSync(fd, pending);
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (written >= b.length) written -= b.length;
      else {
        rest.push(b.subarray(written));
        written = 0;
      }
    }
    pending = rest;
  }
}

// ---------------------------------------------------------------------------------------------
// The big file

/** Writes the single big file: a 1 MiB random block, stamped with its block and 4 KiB numbers. */
function generateBig(name: TreeName, spec: BigSpec, dir: string, listPath: string, log: (line: string) => void): Omit<TreeInfo, 'version' | 'name' | 'seconds'> {
  const block = new Prng(`${name}/block/v${TREE_VERSION}`).fill(Buffer.allocUnsafe(MiB));
  const file = path.join(dir, spec.fileName);
  const fd = fs.openSync(file, 'w', 0o644);
  let lastReport = performance.now();
  try {
    const blocks = spec.bytes / MiB;
    for (let b = 0; b < blocks; b++) {
      // Perf: reuse one buffer; stamping a counter into every 4 KiB page makes every page of the
      // file distinct (no accidental dedup or block matching) for 256 small writes per MiB.
      for (let page = 0; page < MiB; page += 4 * KiB) block.writeUInt32LE(b, page);
      let done = 0;
      while (done < MiB) done += fs.writeSync(fd, block, done, MiB - done);
      const now = performance.now();
      if (now - lastReport > 3000) {
        lastReport = now;
        log(`tree ${name}: ${((b + 1) / 1024).toFixed(2)} / ${(blocks / 1024).toFixed(0)} GiB`);
      }
    }
    fs.futimesSync(fd, BASE_MTIME, BASE_MTIME);
  } finally {
    fs.closeSync(fd);
  }
  fs.writeFileSync(listPath, `${spec.bytes}\t${BASE_MTIME}\t${spec.fileName}\n`);
  return { files: 1, folders: 0, bytes: spec.bytes, maxDepth: 0 };
}

/** Dry run of the shape only (no disk): counts, for checking the generator. */
export function shapeStats(name: TreeName): { files: number; folders: number; depth: Record<number, number>; entries: { min: number; max: number; mean: number } } {
  const spec = TREE_SPECS[name];
  if (spec.kind !== 'many') throw new Error(`${name} is not a many-file tree`);
  const perFolder = new Map<string, number>();
  const depth: Record<number, number> = {};
  let files = 0;
  const parentOf = (rel: string): string => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');
  walkShape(
    spec,
    new Prng(`${name}/shape/v${TREE_VERSION}`),
    (rel) => {
      perFolder.set(rel, perFolder.get(rel) ?? 0);
      perFolder.set(parentOf(rel), (perFolder.get(parentOf(rel)) ?? 0) + 1);
    },
    (rel, d) => {
      files++;
      depth[d] = (depth[d] ?? 0) + 1;
      perFolder.set(parentOf(rel), (perFolder.get(parentOf(rel)) ?? 0) + 1);
    },
  );
  const counts = [...perFolder.values()];
  return {
    files,
    folders: perFolder.size - 1,
    depth,
    entries: { min: Math.min(...counts), max: Math.max(...counts), mean: round2(counts.reduce((a, b) => a + b, 0) / counts.length) },
  };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
