/**
 * `folder-sync verify`: a read-only audit of a replica against its source.
 *
 * Walks both trees in lockstep with the pass's own walk (`Walker`, trusting no cache: every file on
 * both sides is a pair to read), reports every path that differs, then reads and hashes every
 * regular file present on both sides: no manifest, so it also catches what a pass would trust the
 * cache for (bit rot, a replica edited with its mtime put back).
 *
 * Safety: nothing here writes. The only calls are readdir, lstat, readlink and reads of files
 * opened O_RDONLY | O_NOFOLLOW (through `Io.openRead`, or the hashing threads, which open the same way).
 */
import { distrustCache } from '../compare/fingerprint.js';
import { LinkIndex } from '../compare/links.js';
import { keptOwners, ownerDiffers, type Owners } from '../compare/owners.js';
import type { Change } from '../compare/types.js';
import { byWalkOrder, Walker, type Side, type Unreadable } from '../compare/walk.js';
import { UsageError, describe, show } from '../errors.js';
import type { Hasher, HashJob, HashResult } from '../hash/hasher.js';
import { InlineHasher } from '../hash/inline.js';
import { DEFAULT_HASH_THREADS, HashPool } from '../hash/threads.js';
import { noProgress, type Progress } from '../log/progress.js';
import { nodeIo, type Io } from '../replica/local/io.js';
import { chooseLister, chooseListers, type ListingMode } from '../tree/choose.js';
import type { Remote } from '../cli/config.js';
import { openReplica, remoteAccess } from '../replica/choose.js';
import type { Replica } from '../replica/replica.js';
import type { Entry, Kind } from '../tree/entry.js';
import type { ExcludeMatcher, OwnPath } from '../tree/filter.js';
import { closeListers } from '../tree/lister.js';
import { toEntry } from '../tree/scan.js';

/** The ways a path can differ, in the order a path's differences are listed. */
export const DIFFERENCE_KINDS = ['missing', 'extra', 'type', 'content', 'owner', 'group', 'mode', 'mtime', 'hard link', 'link target', 'unreadable'] as const;
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
  /** Default `nodeIo`: every listing and, with `threads: false`, every read goes through it. */
  io?: Io;
  /** Hash on `HashPool` worker threads (default true); false hashes on the main thread. */
  threads?: boolean;
  /**
   * The exclude lists `exclude` was compiled from: given (and no `io`), the trees are listed on
   * threads as a pass lists them; else on the main thread through `io`.
   */
  lists?: { excludes: string[]; own: OwnPath[] };
  /** Called as each difference is found: the walk's findings in walk order once it is done, then content ones as hashing finds them. */
  onDifference?: (d: Difference) => void;
  /** Checked before the walk, now and then during it, and between files; once true, `verify` returns what it found so far. */
  shouldStop?: () => boolean;
  /** Hashing threads (default `DEFAULT_HASH_THREADS`). */
  hashThreads?: number;
  /** A terminal's progress line (scanning, then hashing). */
  progress?: Progress;
  /** Which owners and groups are compared (default: those a pass run by this process keeps). */
  owners?: Owners;
  /** `--hard-links`: names linked together on one side and not on the other are differences. */
  hardLinks?: boolean;
  /** The replica is on another machine (`replica` is its address as given): read over SFTP. */
  remote?: Remote;
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

/** A regular file on both sides, to hash once the walk is done. */
interface FilePair {
  relPath: string;
  sourceSize: number;
  replicaSize: number;
}

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

/** Walk order, then `DifferenceKind` order. */
function inWalkOrder(a: Difference, b: Difference): number {
  return byWalkOrder(a.relPath, b.relPath) || DIFFERENCE_KINDS.indexOf(a.kind) - DIFFERENCE_KINDS.indexOf(b.kind);
}

const yieldNow = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

class Audit {
  private readonly io: Io;
  private readonly stop: () => boolean;
  private readonly report: (d: Difference) => void;
  private readonly roots: Record<Side, string>;
  private readonly found: Difference[] = [];
  private readonly pairs: FilePair[] = [];
  private readonly owners: Owners;
  private readonly links: LinkIndex | undefined;
  private stopped = false;
  /** The walk is done: differences are reported as found from now on. */
  private walked = false;

  /** A remote replica, opened (read only: nothing but its listings, stats, links and reads). */
  private readonly remote: Replica | undefined;
  /** Reads begun by the walk (a remote replica's link targets), awaited after it. */
  private readonly later: Promise<void>[] = [];

  constructor(private readonly o: VerifyOptions) {
    this.io = o.io ?? nodeIo;
    this.stop = o.shouldStop ?? (() => false);
    this.report = o.onDifference ?? (() => {});
    this.roots = { source: o.source, replica: o.replica };
    // (Over SFTP, a replica keeps no owners and whole-second mtimes: what a pass keeps.)
    this.owners = o.owners ?? keptOwners(o.remote !== undefined);
    this.links = o.hardLinks ? new LinkIndex() : undefined;
    this.remote = o.remote ? openReplica(remoteAccess(o.remote, o.source, this.io)) : undefined;
  }

  async run(): Promise<VerifyResult> {
    try {
      return await this.audit();
    } finally {
      await this.remote?.close();
    }
  }

  private async audit(): Promise<VerifyResult> {
    let entries = 0;
    const source = await this.lstatRoot('source');
    const replica = await this.lstatRoot('replica');
    this.stopped = this.stop();
    if (source !== undefined && replica !== undefined && !this.stopped) entries = await this.walk(source, replica);
    // The walk finds a folder's replica-only entries after the others: reported in walk order once it is done.
    this.found.sort(inWalkOrder);
    for (const difference of this.found) this.report(difference);
    this.walked = true;
    const hashed = this.stopped || this.stop() ? { files: 0, bytes: 0 } : await this.hashPairs();
    // Content differences are found after the walk, extras after their folder's other entries: walk order, then kind.
    this.found.sort(inWalkOrder);
    return { differences: this.found, entries, filesHashed: hashed.files, bytesHashed: hashed.bytes };
  }

  private add(kind: DifferenceKind, relPath: string, detail: string): void {
    const difference: Difference = { kind, relPath, detail };
    this.found.push(difference);
    if (this.walked) this.report(difference);
  }

  private unreadable(side: Side, relPath: string, error: unknown): void {
    this.add('unreadable', relPath, `${side}: ${describe(error)}`);
  }

  private abs(side: Side, relPath: string): string {
    const root = this.roots[side];
    if (relPath === '') return root;
    return (root.endsWith('/') ? root : root + '/') + relPath;
  }

  private async lstatRoot(side: Side): Promise<Entry | undefined> {
    try {
      if (side === 'replica' && this.remote) {
        const root = await this.remote.statRoot();
        if (root === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, ${this.o.replica}`), { code: 'ENOENT' });
        return root;
      }
      return toEntry('', this.io.lstat(this.abs(side, '')));
    } catch (error) {
      if (error instanceof UsageError) throw error; // (a remote replica's unknown host key, a refused login)
      this.unreadable(side, '', error);
      return undefined;
    }
  }

  private readlink(side: Side, relPath: string): string | Promise<string> {
    return side === 'replica' && this.remote ? this.remote.readlink(relPath) : this.io.readlink(this.abs(side, relPath));
  }

  /** The lockstep walk, one side-only folder reported alone (not walked into). Returns the paths compared. */
  private async walk(sourceRoot: Entry, replicaRoot: Entry): Promise<number> {
    const { o } = this;
    const mode: ListingMode = o.lists !== undefined && o.io === undefined ? { threads: true } : { threads: false, io: this.io };
    const lists = mode.threads ? o.lists! : { excludes: [], own: [] };
    const listers = this.remote
      ? { source: chooseLister({ root: o.source, ...lists }, mode), replica: this.remote.lister(lists) }
      : chooseListers(o.source, o.replica, lists, mode);
    const noRecord = () => undefined;
    const walker = new Walker({
      sourceLister: listers.source,
      replicaLister: listers.replica,
      readlink: (side, relPath) => this.readlink(side, relPath),
      exclude: o.exclude,
      seen: () => {},
      records: () => noRecord,
      lookup: distrustCache,
      owners: this.owners,
      onChange: (change) => this.compare(change),
      onTemp: () => {},
      onSpecial: () => {}, // the mirror skips special files and leaves whatever the replica has at their path
      onUnreadable: ({ side, relPath, error }: Unreadable) => this.unreadable(side, relPath, error),
      error: () => {},
      tick: async () => {
        await yieldNow();
        this.stopped ||= this.stop();
        return this.stopped;
      },
      descend: false,
      links: this.links,
    });
    const progress = o.progress ?? noProgress;
    progress.begin('scanning', () => ({ files: walker.compared, bytes: 0 }));
    try {
      await walker.run(sourceRoot, replicaRoot);
      await Promise.all(this.later);
    } finally {
      progress.end();
      await closeListers(listers);
    }
    if (this.links !== undefined) this.compareLinks(this.links);
    return walker.compared;
  }

  /** Names of one file on one side that are not one file on the other (`--hard-links`). */
  private compareLinks(index: LinkIndex): void {
    const inode = (e: Entry | undefined) => (e?.kind === 'file' ? `${e.dev}:${e.ino}` : undefined);
    const groupOf = new Map<string, string>();
    for (const [key, members] of index.groups) {
      if (members.length < 2) continue;
      const first = members[0];
      for (const m of members) groupOf.set(m.relPath, key);
      for (const m of members.slice(1)) {
        if (m.replica === undefined || first.replica === undefined) continue; // missing: reported as such
        if (inode(m.replica) !== inode(first.replica)) this.add('hard link', m.relPath, `linked to ${show(first.relPath)} in the source, not in the replica`);
      }
    }
    for (const names of index.replicaNames.values()) {
      if (names.length < 2) continue;
      const [first, ...rest] = names;
      for (const name of rest) {
        const group = groupOf.get(name);
        if (group === undefined || group !== groupOf.get(first)) this.add('hard link', name, `linked to ${show(first)} in the replica, not in the source`);
      }
    }
  }

  /** One path the walk found not in sync (with no cache: every file pair), as its differences. */
  private compare(change: Change): void {
    const { relPath } = change;
    switch (change.type) {
      case 'new':
        return this.add('missing', relPath, entryDetail(change.source));
      case 'extra':
        return this.add('extra', relPath, entryDetail(change.replica));
      case 'kind':
        return this.add('type', relPath, `${KIND_NAMES[change.source.kind]} vs ${KIND_NAMES[change.replica.kind]}`);
      case 'dirmeta': {
        const { source: s, replica: r } = change;
        this.owner(relPath, s, r);
        if (s.mode !== r.mode) this.add('mode', relPath, `${octal(s.mode)} vs ${octal(r.mode)}`);
        if (s.mtimeS !== r.mtimeS) this.add('mtime', relPath, `${isoSeconds(s.mtimeS)} vs ${isoSeconds(r.mtimeS)}`);
        return;
      }
      case 'link': {
        this.owner(relPath, change.source, change.replica);
        if (change.reason !== 'link target changed') return; // a link's own mtime is not compared
        const targets = async () => {
          try {
            const [source, replica] = await Promise.all([this.readlink('source', relPath), this.readlink('replica', relPath)]);
            this.add('link target', relPath, `'${source}' vs '${replica}'`);
          } catch (error) {
            this.unreadable('replica', relPath, error);
          }
        };
        this.later.push(targets());
        return;
      }
      case 'file':
      case 'update':
      case 'meta': {
        const { source: s, replica: r } = change;
        if (s.size !== r.size) this.add('content', relPath, `size ${s.size} vs ${r.size} bytes`);
        this.owner(relPath, s, r);
        if (s.mode !== r.mode) this.add('mode', relPath, `${octal(s.mode)} vs ${octal(r.mode)}`);
        // The mirror guarantees mtimes to the second (libuv sets microseconds, some filesystems keep 1-2 s).
        if (s.mtimeS !== r.mtimeS) this.add('mtime', relPath, `${isoSeconds(s.mtimeS)} vs ${isoSeconds(r.mtimeS)}`);
        this.pairs.push({ relPath, sourceSize: s.size, replicaSize: r.size });
        return;
      }
      case 'move':
        return; // never: moves are paired by a pass only
    }
  }

  /** Owner and group differences, of those a pass keeps (as root, all; else groups this user is in). */
  private owner(relPath: string, s: Entry, r: Entry): void {
    const differs = ownerDiffers(this.owners, s, r);
    if (differs.uid) this.add('owner', relPath, `${s.uid} vs ${r.uid}`);
    if (differs.gid) this.add('group', relPath, `${s.gid} vs ${r.gid}`);
  }

  /** Hashes both sides of every file pair fully, then reports content and read failures. */
  private async hashPairs(): Promise<{ files: number; bytes: number }> {
    const counted = { files: 0, bytes: 0 };
    if (this.pairs.length === 0) return counted;
    const jobs: HashJob[] = [];
    for (const pair of this.pairs) {
      jobs.push({ absPath: this.abs('source', pair.relPath), size: pair.sourceSize });
      // (A remote replica's files are read over SFTP, beside the source's.)
      if (!this.remote) jobs.push({ absPath: this.abs('replica', pair.relPath), size: pair.replicaSize });
    }
    const hasher: Hasher =
      this.o.threads === false
        ? new InlineHasher(this.io, async () => (await yieldNow(), this.stop()))
        : new HashPool(this.o.hashThreads ?? DEFAULT_HASH_THREADS, this.stop);
    const progress = this.o.progress ?? noProgress;
    const totalBytes = jobs.reduce((sum, job) => sum + job.size, 0);
    progress.begin('hashing', () => ({ files: hasher.done.files, bytes: hasher.done.bytes, totalFiles: jobs.length, totalBytes }));
    let hashed: (HashResult | undefined)[];
    try {
      if (this.remote) {
        const [sources, replicas] = await Promise.all([hasher.hashAll(jobs), this.remote.hashFiles(this.pairs.map((pair) => ({ relPath: pair.relPath, size: pair.replicaSize })), hasher)]);
        hashed = sources.flatMap((result, i) => [result, replicas[i]]);
      } else hashed = await hasher.hashAll(jobs);
    } finally {
      progress.end();
      await hasher.close();
    }
    this.pairs.forEach((pair, i) => {
      const s = hashed[2 * i];
      const r = hashed[2 * i + 1];
      for (const [result, size] of [[s, pair.sourceSize], [r, pair.replicaSize]] as const) {
        if (result?.kind !== 'hashed') continue;
        counted.files++;
        counted.bytes += size;
      }
      // Different sizes were reported by the walk already.
      if (s?.kind === 'hashed' && r?.kind === 'hashed' && pair.sourceSize === pair.replicaSize && s.md5 !== r.md5) {
        this.add('content', pair.relPath, md5Detail(s.md5, r.md5));
      }
      if (s?.kind === 'failed') this.unreadable('source', pair.relPath, s.error);
      if (r?.kind === 'failed') this.unreadable('replica', pair.relPath, r.error);
    });
    return counted;
  }
}
