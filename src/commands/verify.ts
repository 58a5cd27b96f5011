/**
 * `folder-sync verify`: a read-only audit of a replica against its source.
 *
 * Walks both trees in lockstep (one folder at a time, names in `byName` order, links never
 * followed), compares every path present on either side, then reads and hashes every regular file
 * present on both sides: no manifest, no cache, so it also catches what a pass would trust the
 * cache for (bit rot, a replica edited with its mtime put back).
 *
 * Safety: nothing here writes. The only calls are readdir, lstat, readlink and reads of files
 * opened O_RDONLY | O_NOFOLLOW (through `Io.openRead`, or the hashing threads, which open the same way).
 */
import { describe, show } from '../errors.js';
import type { ExcludeMatcher } from '../tree/filter.js';
import { CHUNK_SIZE, hashFile, type HashJob } from '../hash/hasher.js';
import { DEFAULT_HASH_THREADS, HashPool } from '../hash/threads.js';
import { nodeIo, type Io } from '../replica/local/io.js';
import { byName, joinRel, listDir, toEntry, type Listing } from '../tree/scan.js';
import type { Entry, Kind } from '../tree/entry.js';
import { noProgress, type Progress } from '../log/progress.js';

/** The ways a path can differ, in the order a path's differences are listed. */
export const DIFFERENCE_KINDS = ['missing', 'extra', 'type', 'content', 'mode', 'mtime', 'link target', 'unreadable'] as const;
export type DifferenceKind = (typeof DIFFERENCE_KINDS)[number];


/**
 * One way the replica differs from the source at one path.
 * `detail` gives the source's value first, then the replica's (`644 vs 600`); for `unreadable`,
 * the side and the error (`replica: EACCES: permission denied, scandir …`).
 */
export interface Difference {
  kind: DifferenceKind;
  /** POSIX, relative to the roots; `''` is the roots themselves. */
  relPath: string;
  detail: string;
}

export interface VerifyOptions {
  /** Absolute path of an existing folder. */
  source: string;
  /** Absolute path of an existing folder. */
  replica: string;
  /** Excluded paths are skipped on both sides, and excluded folders are not descended into. */
  exclude: ExcludeMatcher;
  /** Default `nodeIo`. The hashing threads read files themselves, so only `threads: false` reads through it. */
  io?: Io;
  /** Hash on `HashPool` worker threads (default true); false hashes on the main thread. */
  threads?: boolean;
  /** Called as each difference is found: walk findings during the walk, content ones after hashing. */
  onDifference?: (d: Difference) => void;
  /** Checked between entries and files; once true, `verify` returns what it found so far. */
  shouldStop?: () => boolean;
  /** Hashing threads (default `DEFAULT_HASH_THREADS`). */
  hashThreads?: number;
  /** A terminal's progress line (scanning, then hashing). */
  progress?: Progress;
}

export interface VerifyResult {
  /** Sorted: walk order (folders before their contents, names by `byName`), then `DifferenceKind` order. */
  differences: Difference[];
  /** Paths compared below the roots (either side; excluded paths, temporary files and special files skipped not counted). */
  entries: number;
  /** Files read and hashed to the end (both sides counted). */
  filesHashed: number;
  /** Their sizes as the walk's lstat saw them. */
  bytesHashed: number;
}

type Side = 'source' | 'replica';

/** A regular file on both sides, to hash once the walk is done. */
interface FilePair {
  seq: number;
  relPath: string;
  sourceSize: number;
  replicaSize: number;
}

type Hashed = { md5: string } | { error: unknown } | undefined;

/** Compares `source` and `replica`; never writes to either. Per-entry failures are `unreadable` differences. */
export async function verify(options: VerifyOptions): Promise<VerifyResult> {
  return new Audit(options).run();
}

/** One line: `content  photos/a.jpg (md5 0cc1… vs 9e10…)`, control characters escaped. */
export function formatDifference(d: Difference): string {
  return `${d.kind.padEnd(8)} ${show(d.relPath)}${d.detail === '' ? '' : ` (${show(d.detail)})`}`;
}

const KIND_NAMES: Record<Kind, string> = { file: 'file', dir: 'folder', symlink: 'symlink', special: 'special file' };

function entryDetail(entry: Entry): string {
  return entry.kind === 'file' ? `file, ${entry.size} bytes` : KIND_NAMES[entry.kind];
}

const octal = (mode: number): string => mode.toString(8).padStart(3, '0');
const isoSeconds = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

/** Two MD5s abbreviated to 4 hex digits, or as many more as it takes to tell them apart. */
function md5Detail(a: string, b: string): string {
  let n = 4;
  while (n < a.length && a.slice(0, n) === b.slice(0, n)) n++;
  return `md5 ${a.slice(0, n)}… vs ${b.slice(0, n)}…`;
}

const yieldNow = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

class Stopped extends Error {}

class Audit {
  private readonly io: Io;
  private readonly stop: () => boolean;
  private readonly report: (d: Difference) => void;
  private readonly roots: Record<Side, string>;
  /** Differences with their path's walk position, sorted once at the end. */
  private readonly found: { seq: number; difference: Difference }[] = [];
  private readonly pairs: FilePair[] = [];
  /** Walk position of the last path visited; the roots are 0. */
  private seq = 0;
  private filesHashed = 0;
  private bytesHashed = 0;
  private sinceYield = 0;
  private stopped = false;

  constructor(private readonly o: VerifyOptions) {
    this.io = o.io ?? nodeIo;
    this.stop = o.shouldStop ?? (() => false);
    this.report = o.onDifference ?? (() => {});
    this.roots = { source: o.source, replica: o.replica };
  }

  async run(): Promise<VerifyResult> {
    const source = this.lstatRoot('source');
    const replica = this.lstatRoot('replica');
    if (source !== undefined && replica !== undefined) {
      if (source.mode !== replica.mode) this.add(0, 'mode', '', `${octal(source.mode)} vs ${octal(replica.mode)}`);
      const progress = this.o.progress ?? noProgress;
      progress.begin('scanning', () => ({ files: this.seq, bytes: 0 }));
      try {
        await this.folder('', 0);
      } finally {
        progress.end();
      }
    }
    if (!this.stopped) await this.hashPairs();
    // Content differences are found after the walk: put every path's differences back in walk order.
    this.found.sort((a, b) => a.seq - b.seq || DIFFERENCE_KINDS.indexOf(a.difference.kind) - DIFFERENCE_KINDS.indexOf(b.difference.kind));
    return { differences: this.found.map((f) => f.difference), entries: this.seq, filesHashed: this.filesHashed, bytesHashed: this.bytesHashed };
  }

  private add(seq: number, kind: DifferenceKind, relPath: string, detail: string): void {
    const difference: Difference = { kind, relPath, detail };
    this.found.push({ seq, difference });
    this.report(difference);
  }

  private unreadable(seq: number, side: Side, relPath: string, error: unknown): void {
    this.add(seq, 'unreadable', relPath, `${side}: ${describe(error)}`);
  }

  private abs(side: Side, relPath: string): string {
    const root = this.roots[side];
    if (relPath === '') return root;
    return (root.endsWith('/') ? root : root + '/') + relPath;
  }

  private async shouldStop(): Promise<boolean> {
    if (this.stopped) return true;
    // Perf: a promise per entry would cost more than the lstat; let signals in every 256 entries.
    if (++this.sinceYield >= 256) {
      this.sinceYield = 0;
      await yieldNow();
    }
    this.stopped = this.stop();
    return this.stopped;
  }

  private lstatRoot(side: Side): Entry | undefined {
    try {
      return toEntry('', this.io.lstat(this.abs(side, '')));
    } catch (error) {
      this.unreadable(0, side, '', error);
      return undefined;
    }
  }

  private list(side: Side, relPath: string, seq: number): Listing | undefined {
    try {
      return listDir(this.io, this.abs(side, relPath));
    } catch (error) {
      this.unreadable(seq, side, relPath, error);
      return undefined;
    }
  }

  private readlink(side: Side, relPath: string, seq: number): string | undefined {
    try {
      return this.io.readlink(this.abs(side, relPath));
    } catch (error) {
      this.unreadable(seq, side, relPath, error);
      return undefined;
    }
  }

  /** A folder on both sides: both listings (each failure reported), then every name in either. */
  private async folder(relPath: string, seq: number): Promise<void> {
    const source = this.list('source', relPath, seq);
    const replica = this.list('replica', relPath, seq);
    if (source === undefined || replica === undefined) return;
    // Names that are not valid UTF-8 cannot be opened by the name readdir gave: unreadable, never a silent skip.
    const badSource = new Set(source.undecodable);
    const badReplica = new Set(replica.undecodable);
    const names = [...new Set([...source.entries.keys(), ...badSource, ...replica.entries.keys(), ...badReplica])].sort(byName);
    for (const name of names) {
      if (await this.shouldStop()) return;
      const childRel = joinRel(relPath, name);
      const s = source.entries.get(name);
      const r = replica.entries.get(name);
      if (this.o.exclude(childRel, (s ?? r)?.kind === 'dir')) continue;
      // The mirror skips special files and leaves whatever the replica has at their path.
      if (s?.kind === 'special') continue;
      const childSeq = ++this.seq;
      if (badSource.has(name) || badReplica.has(name)) {
        const error = 'its name is not valid UTF-8';
        if (badSource.has(name)) this.unreadable(childSeq, 'source', childRel, error);
        if (badReplica.has(name)) this.unreadable(childSeq, 'replica', childRel, error);
        continue;
      }
      await this.compare(childSeq, childRel, s, r);
    }
  }

  /**
   * One path: early returns for what makes the rest meaningless (one side only, kind changed),
   * then each property of its kind. A folder's contents are compared only when it is on both sides.
   */
  private async compare(seq: number, relPath: string, s: Entry | undefined, r: Entry | undefined): Promise<void> {
    if (s === undefined) return this.add(seq, 'extra', relPath, entryDetail(r!));
    if (r === undefined) return this.add(seq, 'missing', relPath, entryDetail(s));
    if (s.kind !== r.kind) return this.add(seq, 'type', relPath, `${KIND_NAMES[s.kind]} vs ${KIND_NAMES[r.kind]}`);
    switch (s.kind) {
      case 'file':
        if (s.size !== r.size) this.add(seq, 'content', relPath, `size ${s.size} vs ${r.size} bytes`);
        if (s.mode !== r.mode) this.add(seq, 'mode', relPath, `${octal(s.mode)} vs ${octal(r.mode)}`);
        // The mirror guarantees mtimes to the second (libuv sets microseconds, some filesystems keep 1-2 s).
        if (s.mtimeS !== r.mtimeS) this.add(seq, 'mtime', relPath, `${isoSeconds(s.mtimeS)} vs ${isoSeconds(r.mtimeS)}`);
        this.pairs.push({ seq, relPath, sourceSize: s.size, replicaSize: r.size });
        return;
      case 'dir':
        // Folder mtimes move with every change inside: only permissions are compared.
        if (s.mode !== r.mode) this.add(seq, 'mode', relPath, `${octal(s.mode)} vs ${octal(r.mode)}`);
        return this.folder(relPath, seq);
      case 'symlink': {
        const sourceTarget = this.readlink('source', relPath, seq);
        const replicaTarget = this.readlink('replica', relPath, seq);
        if (sourceTarget !== undefined && replicaTarget !== undefined && sourceTarget !== replicaTarget) {
          this.add(seq, 'link target', relPath, `'${sourceTarget}' vs '${replicaTarget}'`);
        }
        return;
      }
      case 'special':
        return; // never reached: a special source file is skipped before
    }
  }

  /** Hashes both sides of every file pair fully, then reports content and read failures. */
  private async hashPairs(): Promise<void> {
    const jobs: HashJob[] = [];
    for (const pair of this.pairs) {
      jobs.push({ absPath: this.abs('source', pair.relPath), size: pair.sourceSize }, { absPath: this.abs('replica', pair.relPath), size: pair.replicaSize });
    }
    const hashed = this.o.threads === false ? await this.hashHere(jobs) : await this.hashOnThreads(jobs);
    this.pairs.forEach((pair, i) => {
      const s = hashed[2 * i];
      const r = hashed[2 * i + 1];
      if (s !== undefined && 'md5' in s) this.counted(pair.sourceSize);
      if (r !== undefined && 'md5' in r) this.counted(pair.replicaSize);
      // Different sizes were reported by the walk already.
      if (s !== undefined && r !== undefined && 'md5' in s && 'md5' in r && pair.sourceSize === pair.replicaSize && s.md5 !== r.md5) {
        this.add(pair.seq, 'content', pair.relPath, md5Detail(s.md5, r.md5));
      }
      if (s !== undefined && 'error' in s) this.unreadable(pair.seq, 'source', pair.relPath, s.error);
      if (r !== undefined && 'error' in r) this.unreadable(pair.seq, 'replica', pair.relPath, r.error);
    });
  }

  private counted(bytes: number): void {
    this.filesHashed++;
    this.bytesHashed += bytes;
  }

  private async hashOnThreads(jobs: HashJob[]): Promise<Hashed[]> {
    if (jobs.length === 0) return [];
    const pool = new HashPool(this.o.hashThreads ?? DEFAULT_HASH_THREADS, this.stop);
    const progress = this.o.progress ?? noProgress;
    const totalBytes = jobs.reduce((sum, job) => sum + job.size, 0);
    progress.begin('hashing', () => ({ files: pool.done.files, bytes: pool.done.bytes, totalFiles: jobs.length, totalBytes }));
    try {
      return (await pool.hashAll(jobs)).map((r) => (r === undefined ? undefined : r.kind === 'hashed' ? { md5: r.md5 } : { error: r.error }));
    } finally {
      progress.end();
      await pool.close();
    }
  }

  private async hashHere(jobs: HashJob[]): Promise<Hashed[]> {
    const buffer = Buffer.allocUnsafe(CHUNK_SIZE);
    const hashed: Hashed[] = [];
    // Yield after every chunk (1 MiB: the promise costs nothing next to the read) so a signal can stop a large file.
    const onChunk = async (): Promise<void> => {
      await yieldNow();
      if (this.stop()) throw new Stopped();
    };
    for (const job of jobs) {
      if (this.stop()) break;
      try {
        hashed.push({ md5: await hashFile(this.io, job.absPath, buffer, onChunk) });
      } catch (error) {
        if (error instanceof Stopped) break;
        hashed.push({ error });
      }
      await yieldNow();
    }
    return hashed;
  }
}
