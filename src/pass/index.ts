/**
 * One pass: walk both trees → read what the cache cannot vouch for → plan → guard → execute,
 * recording in the manifest what was observed after each effect. Per-entry failures are logged,
 * counted and skipped; only bad configuration throws (and that is checked before a pass).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { metaToFix, settleFile } from '../compare/diff.js';
import { StepError, describe, errorCode, isVanished, show } from '../errors.js';
import {
  ChangedInReplica,
  ChangedWhileReading,
  Interrupted,
  RenameFailed,
  KERNEL_COPY_MIN_BYTES,
  RESUME_MIN_BYTES,
  abandonCopy,
  removeTemp,
  finishCopy,
  writeCopy,
  type PendingCopy,
  type CopyResult,
  copyLink,
  deleteEntry,
  fixMeta,
  fixMetaError,
  makeDir,
  moveEntry,
  removeQuietly,
  replicaParent,
  setDirMode,
  tempPathFor,
  touchLink,
  type ExecContext,
} from '../replica/local/execute.js';
import type { DeleteLimit } from '../cli/config.js';
import type { ExcludeMatcher, OwnPath } from '../tree/filter.js';
import { CHUNK_SIZE, distrustCache, hashFile, isRacy, makeRecord, sameFingerprint, trustCache } from '../compare/fingerprint.js';
import { poolCopies, type Io, type MetaFix, type MetaFixed } from '../replica/local/io.js';
import { CopyPool, PoolCopier, type CopyWriter } from '../replica/local/copiers/pools.js';
import { DEFAULT_HASH_THREADS, HashPool, canHashOpenFiles, type HashJob, type HashResult } from '../hash/threads.js';
import { InlineLister, closeListers, entryFrom, threadListers, type Listers } from '../tree/lister.js';
import type { Reporter } from '../log/log.js';
import { formatBytes } from '../log/units.js';
import type { Manifest } from '../manifest/manifest.js';
import { noProgress, type Progress } from '../log/progress.js';
import { planOps, type Plan } from '../compare/plan.js';
import { toEntry } from '../tree/scan.js';
import { emptyStats, type Change, type Entry, type Op, type PassStats, type Reason } from '../compare/types.js';
import { Walker, type WalkResult } from '../compare/walk.js';
import { pairMoves } from '../compare/moves.js';

export interface PassOptions {
  /** Absolute, resolved roots. */
  source: string;
  replica: string;
  exclude: ExcludeMatcher;
  dryRun: boolean;
  checksum: boolean;
  /** Refuse all deletes when a pass would delete more entries than this (or this share of the replica). */
  maxDelete: DeleteLimit | undefined;
  /** Refuse all deletes when they would remove more bytes of files than this. */
  maxDeleteBytes?: number;
  /** Delete even when the source looks vanished or replaced (one pass's explicit override). */
  allowMassDelete?: boolean;
  /** Copy into a replica found empty although the manifest lists files in it (`emptyReplicaReason`). */
  allowEmptyReplica?: boolean;
  /** Move what would be deleted or overwritten under `<backupDir>/<time>/` instead. */
  backupDir?: string;
  fsync: boolean;
  io: Io;
  log: Reporter;
  /** The manifest, or its loading (Perf: the listing threads start while it loads). */
  manifest: Manifest | Promise<Manifest>;
  /** True once the pass should stop starting work (a signal). */
  shouldStop(): boolean;
  /**
   * List the two trees on worker threads, compiling these exclude lists there (the same ones
   * `exclude` was built from); hash on threads too, and copy large files in the kernel while a
   * thread hashes them. Without it, listing, hashing and copying run inline through `io`.
   */
  threads?: { excludes: string[]; own: OwnPath[] };
  /**
   * Listing threads already started on `source` and `replica` with `threads`' lists (the CLI's
   * first pass starts them before the rest of its set-up: `startListing`). Taken instead of new
   * ones, and closed by the pass whatever happens.
   */
  listers?: Listers;
  /** A live progress line (a terminal's); none by default. */
  progress?: Progress;
  /** Set: delete nothing this pass, for this reason (logged as an error, exit 1). */
  holdDeletes?: string;
  /** Told each source folder the walk lists (for `--watch`). */
  onSourceDir?: (relPath: string) => void;
  /** With `threads`: how many threads hash when many files must be read (`--hash-threads`). */
  hashThreads?: number;
  /** With `threads`: from this many files to read, they are read on hashing threads (default `HASH_THREADS_FROM`). */
  hashThreadsFrom?: number;
  /** With `threads`: copies of at least this many bytes go through the kernel (default `KERNEL_COPY_MIN_BYTES`). */
  kernelCopyMinBytes?: number;
  /** With `threads`: from this many copies in a pass, small ones are written on copying threads (default `COPY_THREADS_FROM`). */
  copyThreadsFrom?: number;
  /**
   * With `threads`: how many copying threads (`--copy-threads`; default `COPY_THREADS`), used for a
   * pass with many copies when the addon cannot make them (see `poolCopies`); 0: none, nor the
   * addon's either (every copy written on the main thread).
   */
  copyThreads?: number;
  /**
   * With `threads`: small copies written by the addon on libuv's thread pool when it is built
   * (`PoolCopier`; default true). False: as without it (copying threads for a pass with many).
   */
  poolCopies?: boolean;
}

export interface PassResult {
  stats: PassStats;
  /** 0 all synced, 1 some entries failed or deletes were refused. */
  exitStatus: 0 | 1;
  interrupted: boolean;
  durationMs: number;
  summary: string;
  /** Every source folder was listed (not stopped, none unreadable). */
  walkComplete: boolean;
}

/** The manifest is checkpointed after this many recorded operations, or this many ms. */
const CHECKPOINT_OPS = 1000;
const CHECKPOINT_MS = 10_000;

/** Copies flushed together (Perf: see `startCopy`). */
const COPY_BATCH_FILES = 64;
const COPY_BATCH_BYTES = 64 << 20;
/**
 * A batch of this many copies is flushed with one syncfs first, then one fsync each
 * (`flushTogether`); a smaller one with its fsyncs alone. A syncfs slower than this turns it off.
 */
const SYNCFS_FROM = 16;
const SYNCFS_SLOW_MS = 1000;
/**
 * With threads, from this many copies in a pass, small ones are written on copying threads
 * (`CopyPool`). Perf: fewer are not worth starting them (the 1% change, 800 copies: 1.41 s with
 * them against 1.36 s without, medians of 5). Two threads, one per core of the machine this was
 * tuned on: a first sync of 100k files took 37.5–43.6 s with two against 49.9–58.1 s on the main
 * thread alone (three: 41.8 s).
 */
const COPY_THREADS_FROM = 1024;
const COPY_THREADS = 2;
/**
 * With threads, files the cache cannot vouch for are read on hashing threads from this many of
 * them, or this many bytes. Perf: starting the threads costs ~50 ms (each boots its own Node);
 * read on the main thread, 300 files touched (11 MB) took 0.91 s against 0.95 s with the threads,
 * 1,000 (36 MB) the same 1.01–1.02 s, 3,000 (108 MB) 1.24 s against 1.20 s (100k-file tree,
 * medians of 5). Two big files are worth two threads sooner: MD5 alone runs ~550 MB/s a core.
 */
const HASH_THREADS_FROM = 1024;
const HASH_THREADS_FROM_BYTES = 64 << 20;
/**
 * Metadata fixes made this many at a time on libuv's thread pool (`applyMetas`), up to
 * METAS_AHEAD batches ahead of the one being recorded. Perf: see `applyMetas`.
 */
const METAS_BATCH = 256;
const METAS_AHEAD = 2;
/** Files' unlinks under way at once on libuv's thread pool (`applyDeletes`). */
const UNLINKS_AHEAD = 64;
/** Folders flushed at once before a manifest write (each holds a descriptor while it waits). */
const FSYNC_DIRS_AT_ONCE = 64;

/** Runs one pass. Never throws for a per-entry problem. */
export async function runPass(options: PassOptions): Promise<PassResult> {
  return new Pass(options).run();
}

class Pass {
  private readonly stats = emptyStats();
  private readonly started = Date.now();
  private lastYield = Date.now();
  private interrupted = false;
  private readonly buffer = Buffer.allocUnsafe(CHUNK_SIZE);
  private readonly exec: ExecContext;
  private readonly dirtyDirs = new Set<string>();
  private opsSinceCheckpoint = 0;
  private lastCheckpoint = Date.now();

  private manifest!: Manifest;
  private manifestSizeAtStart = 0;

  constructor(private readonly o: PassOptions) {
    this.progress = o.progress ?? noProgress;
    this.exec = {
      io: o.io,
      sourceRoot: o.source,
      replicaRoot: o.replica,
      fsync: o.fsync,
      buffer: this.buffer,
      tick: () => this.tick(),
      // Chosen once: with threads (the real disk) and a /proc to reopen the source through.
      kernelCopy:
        o.threads && canHashOpenFiles()
          ? { minBytes: o.kernelCopyMinBytes ?? KERNEL_COPY_MIN_BYTES, hash: (fd, signal) => this.hashOpenFile(fd, signal) }
          : undefined,
      backupRoot: o.backupDir ? `${o.backupDir}/${new Date(this.started).toISOString().replace(/:/g, '-')}` : undefined,
    };
  }

  /** Yields to the event loop every ~50 ms (so signals are seen); true when the pass must stop. */
  private async tick(): Promise<boolean> {
    const now = Date.now();
    if (now - this.lastYield >= 50) {
      this.lastYield = now;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (!this.interrupted && this.o.shouldStop()) this.interrupted = true;
    return this.interrupted;
  }

  private warn(message: string): void {
    this.stats.warnings++;
    this.o.log.warn(message);
  }

  private error(message: string): void {
    this.stats.errors++;
    this.o.log.error(message);
  }

  async run(): Promise<PassResult> {
    const { o } = this;
    let refusedDeletes = false;

    const roots = this.statRoots();
    if (roots === undefined) {
      await closeListers(o.listers);
      this.manifest = await o.manifest;
    }
    if (roots !== undefined) {
      const changes: Change[] = [];
      const temps: string[] = [];
      const listers =
        o.listers ??
        (o.threads ? threadListers(o.source, o.replica, o.threads) : { source: new InlineLister(o.io, o.source), replica: new InlineLister(o.io, o.replica) });
      let walker: Walker;
      let walk: Awaited<ReturnType<Walker['run']>>;
      try {
        this.manifest = await o.manifest;
        this.manifestSizeAtStart = this.manifest.size;
        this.manifest.beginPass();
        walker = new Walker({
          io: o.io,
          sourceLister: listers.source,
          replicaLister: listers.replica,
          sourceRoot: o.source,
          replicaRoot: o.replica,
          exclude: o.exclude,
          seen: (relPath) => this.manifest.markSeen(relPath),
          records: (relDir) => this.manifest.getIn(relDir),
          lookup: o.checksum ? distrustCache : trustCache,
          onChange: (change) => changes.push(change),
          onTemp: (absPath) => temps.push(absPath),
          warn: (message) => this.warn(message),
          error: (message) => this.error(message),
          tick: () => this.tick(),
          onSourceDir: o.onSourceDir,
        });
        this.progress.begin('scanning', () => ({ files: walker.listed, bytes: 0 }));
        walk = await walker.run(roots.source, roots.replica);
      } finally {
        this.progress.end();
        await closeListers(listers); // whatever happened, even the manifest failing to load
      }
      o.log.debug(`walk: ${walker.listed} entries listed in ${Date.now() - this.started} ms, ${changes.length} to look at`);

      this.walkComplete = walk.complete;
      // Safety: an empty replica the last pass left files in is an unmounted disk (most likely):
      // nothing is copied onto the disk beneath it.
      const emptyReplica = this.emptyReplicaReason(walk);
      if (emptyReplica !== undefined) this.error(emptyReplica);
      else refusedDeletes = await this.planAndExecute(walk, changes, temps);
    }

    // Flushed before the summary, so a folder that cannot be flushed is counted in it.
    const flushed = o.dryRun || (await this.flushDirs());
    const durationMs = Date.now() - this.started;
    const s = this.stats;
    const finish = () => {
      const summary =
        `${o.dryRun ? 'dry run ' : ''}pass ${this.interrupted ? 'stopped' : 'finished'}: ` +
        `${s.copied} copied, ${s.moved} moved, ${s.updated} updated, ${s.deleted} deleted, ${s.hashed} hashed, ${s.errors} errors; ` +
        `${formatBytes(s.bytesCopied)} transferred in ${(durationMs / 1000).toFixed(2)} s`;
      const exitStatus: 0 | 1 = s.errors > 0 || refusedDeletes ? 1 : 0;
      return { summary, exitStatus };
    };
    let { summary, exitStatus } = finish();
    if (!o.dryRun && flushed) {
      const result = this.interrupted ? 'stopped' : exitStatus === 0 ? 'ok' : 'errors';
      const { warnings, ...counters } = s;
      this.manifest.setLastPass({ startedAt: new Date(this.started).toISOString(), durationMs, exitStatus, summary, result, stats: { ...counters, warnings } });
      const errors = s.errors;
      await this.writeManifest(true);
      // A manifest that could not be written is an error of this pass too (the file keeps the last pass it recorded).
      if (s.errors !== errors) ({ summary, exitStatus } = finish());
    }
    o.log.info(summary, { ...s, durationMs, dryRun: o.dryRun, stopped: this.interrupted });
    return { stats: s, exitStatus, interrupted: this.interrupted, durationMs, summary, walkComplete: this.walkComplete };
  }

  /** The two roots. The source must be a folder; the replica is created if missing (not in a dry run). */
  private statRoots(): { source: Entry; replica: Entry | undefined } | undefined {
    const { io, source, replica, dryRun } = this.o;
    let sourceEntry: Entry;
    try {
      const stats = io.lstat(source);
      sourceEntry = toEntry('', stats);
      if (sourceEntry.kind !== 'dir') throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
      // ext4 hands a recreated folder the same inode at once: its birth time tells them apart.
      this.sourceRootId = { dev: String(stats.dev), ino: String(stats.ino), ...(stats.birthtimeNs > 0n ? { birth: String(stats.birthtimeNs) } : {}) };
    } catch (error) {
      this.error(`reading source ${source}: ${describe(error)}; nothing done`);
      return undefined;
    }
    try {
      return { source: sourceEntry, replica: toEntry('', io.lstat(replica)) };
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') {
        this.error(`reading replica ${replica}: ${describe(error)}; nothing done`);
        return undefined;
      }
    }
    if (dryRun) return { source: sourceEntry, replica: undefined };
    try {
      // The contract: created with its parents (those get the default mode, the root its own).
      mkdirSync(dirname(replica), { recursive: true });
      io.mkdir(replica, 0o700);
      this.created.add('');
      return { source: sourceEntry, replica: toEntry('', io.lstat(replica)) };
    } catch (error) {
      this.error(`creating replica ${replica}: ${describe(error)}; nothing done`);
      return undefined;
    }
  }

  /** Reads the files the cache could not vouch for, turning every `file` change into `update` or `meta`. */
  private async settle(changes: Change[]): Promise<Change[]> {
    const reads = this.filesToRead(changes);
    const count = reads.jobs.length;
    const worthThreads = count > 0 && (count >= (this.o.hashThreadsFrom ?? HASH_THREADS_FROM) || (count > 1 && reads.bytes >= HASH_THREADS_FROM_BYTES));
    const pooled = this.o.threads && worthThreads ? await this.hashInPool(reads) : undefined;
    const here = pooled === undefined && count > 0;
    if (here) this.progress.begin('hashing', () => ({ files: this.readFiles, bytes: this.readBytes, totalFiles: count, totalBytes: reads.bytes }));
    try {
      const settled: Change[] = [];
      for (const change of changes) {
        if (change.type !== 'file') {
          settled.push(change);
          continue;
        }
        if (this.interrupted) continue;
        const readAtMs = pooled?.readAtMs ?? Date.now();
        const sourceMd5 = change.sourceMd5 ?? (await this.hash('source', change.relPath, change.source, pooled?.results.get(change)?.[0]));
        if (sourceMd5 === undefined) continue;
        const replicaMd5 = change.replicaMd5 ?? (await this.hash('replica', change.relPath, change.replica, pooled?.results.get(change)?.[1]));
        if (replicaMd5 === undefined) continue;
        settled.push(settleFile(change, sourceMd5, replicaMd5, readAtMs));
      }
      return settled;
    } finally {
      if (here) this.progress.end();
    }
  }

  /** The files `settle` must read: each side of a `file` change the cache cannot vouch for. */
  private filesToRead(changes: Change[]): FilesToRead {
    const jobs: HashJob[] = [];
    const owners: [Change, 0 | 1][] = [];
    let bytes = 0;
    for (const change of changes) {
      if (change.type !== 'file') continue;
      if (change.sourceMd5 === undefined) {
        jobs.push({ absPath: this.o.source + '/' + change.relPath, size: change.source.size });
        owners.push([change, 0]);
        bytes += change.source.size;
      }
      if (change.replicaMd5 === undefined) {
        jobs.push({ absPath: this.o.replica + '/' + change.relPath, size: change.replica.size });
        owners.push([change, 1]);
        bytes += change.replica.size;
      }
    }
    return { jobs, owners, bytes };
  }

  /**
   * Reads the files `settle` must read on the hashing threads (when there are enough to be worth
   * it). Results are checked (fingerprint unchanged) by `hash` as usual.
   */
  private async hashInPool({ jobs, owners, bytes }: FilesToRead): Promise<{ readAtMs: number; results: Map<Change, [HashResult?, HashResult?]> }> {
    const readAtMs = Date.now();
    const threads = this.o.hashThreads ?? DEFAULT_HASH_THREADS;
    this.o.log.debug(`${jobs.length} files to read: on ${threads} hashing threads`);
    const pool = new HashPool(threads);
    this.progress.begin('hashing', () => ({ files: pool.doneFiles, bytes: pool.doneBytes, totalFiles: jobs.length, totalBytes: bytes }));
    try {
      const answers = await pool.hashAll(jobs, () => this.o.shouldStop());
      const results = new Map<Change, [HashResult?, HashResult?]>();
      answers.forEach((answer, i) => {
        if (answer === undefined) return;
        const [change, side] = owners[i];
        const pair = results.get(change) ?? [];
        pair[side] = answer;
        results.set(change, pair);
      });
      return { readAtMs, results };
    } finally {
      this.progress.end();
      await pool.close();
    }
  }

  /** MD5 of one side's file, checked unchanged while read; undefined (logged) when it could not be read. */
  private async hash(side: 'source' | 'replica', relPath: string, entry: Entry, pooled?: HashResult): Promise<string | undefined> {
    const abs = (side === 'source' ? this.o.source : this.o.replica) + '/' + relPath;
    try {
      this.stats.hashed++;
      if (pooled !== undefined && 'error' in pooled) throw pooled.error;
      let unchanged: boolean;
      let md5: string;
      if (pooled !== undefined) {
        md5 = pooled.md5;
        const [size, mtimeS, mtimeN, ctimeS, ctimeN, ino] = pooled.fp;
        unchanged = sameFingerprint(entry, { ...entry, size, mtimeS, mtimeN, ctimeS, ctimeN, ino });
      } else {
        try {
          md5 = await hashFile(this.o.io, abs, this.buffer, async (bytes) => {
            this.readBytes += bytes;
            if (await this.tick()) throw new Interrupted();
          });
        } finally {
          this.readFiles++;
        }
        unchanged = sameFingerprint(toEntry(entry.name, this.o.io.lstat(abs)), entry);
      }
      if (!unchanged) {
        this.warn(`${show(relPath)} changed in the ${side} while it was being read; it will be looked at again next pass`);
        return undefined;
      }
      return md5;
    } catch (error) {
      if (error instanceof Interrupted) return undefined;
      if (isVanished(error)) this.warn(`${show(relPath)} vanished from the ${side} during the pass; skipped`);
      else this.error(`hashing ${side} ${show(relPath)}: ${describe(error)}`);
      return undefined;
    }
  }

  /** MD5 of a source file being copied in the kernel, read on the copy hashing thread (started with the first such copy). */
  private async hashOpenFile(fd: number, signal: AbortSignal): Promise<string> {
    this.copyHasher ??= new HashPool(1);
    const result = await this.copyHasher.hashOpenFile(fd, signal);
    if ('error' in result) throw result.error;
    return result.md5;
  }

  /**
   * After the walk: settle what must be read, pair moves, plan, guard, sweep temporary files,
   * execute, forget what is gone. Returns whether deletes were refused.
   */
  private async planAndExecute(walk: WalkResult, changes: Change[], temps: string[]): Promise<boolean> {
    const { o } = this;
    // Decided before pairing moves: a replaced source must not rearrange the replica either.
    const massDelete = this.massDeleteReason(walk);
    const settledChanges = await this.settle(changes);
    this.movesHashedAt = Date.now();
    // Under --checksum the manifest vouches for nothing, so nothing is paired from it.
    const settled =
      massDelete === undefined && !o.checksum
        ? await pairMoves(settledChanges, {
            peek: (relPath) => this.manifest.peek(relPath),
            hashSource: (relPath, entry) => this.hash('source', relPath, entry),
          })
        : settledChanges;
    const plan = planOps(settled);
    const refusedDeletes = this.guard(plan, walk, massDelete);
    o.log.debug(`plan: ${plan.upserts.length + plan.deletes.length + plan.afterDeletes.length} operations at ${Date.now() - this.started} ms (${this.stats.hashed} files read)`);

    // Safety: temporary files are ours by name; a crash or kill may have left them. Those of a
    // file this pass copies again are kept to resume from; the rest are swept now (before any
    // folder holding one is deleted), and the kept ones once the copies are done.
    const copyTemps = new Set<string>();
    for (const op of [...plan.upserts, ...plan.afterDeletes]) {
      if (op.op === 'copy' && op.source.size >= RESUME_MIN_BYTES) copyTemps.add(tempPathFor(o.replica, op.relPath));
    }
    for (const absPath of temps) {
      if (copyTemps.has(absPath)) this.resumable.add(absPath);
      else if (!o.dryRun) removeQuietly(o.io, absPath);
    }
    try {
      await this.execute(plan, refusedDeletes);
    } finally {
      await this.copyHasher?.close();
      await this.copyPool?.close();
    }
    if (!o.dryRun) for (const absPath of this.resumable) removeQuietly(o.io, absPath);
    o.log.debug(`executed at ${Date.now() - this.started} ms`);

    // Records are forgotten only after a complete pass that deleted what it had to: after a
    // refused pass (an unmounted source), the next one finds everything still known.
    if (walk.complete && !this.interrupted && !o.dryRun && !refusedDeletes) this.manifest.forgetUnseen();
    // The source's identity is remembered unless this pass refused deletes because of it.
    const massRefused = massDelete !== undefined && plan.deleteCount > 0;
    if (!o.dryRun && this.sourceRootId && !massRefused) this.manifest.setSourceRoot(this.sourceRootId);
    return refusedDeletes;
  }

  /**
   * A replica found empty (created again, or an empty mount point) while the manifest lists files
   * the last passes left in it: its disk is most likely not mounted, and a pass would copy the
   * whole source onto the disk beneath. The pass does nothing, with an error, until the disk is
   * back or `--allow-empty-replica` says the empty replica is meant (a new disk).
   */
  private emptyReplicaReason(walk: WalkResult): string | undefined {
    if (this.o.allowEmptyReplica) return undefined;
    const known = this.manifestSizeAtStart;
    if (walk.replicaEntries > 0 || known === 0) return undefined;
    return (
      `replica ${this.o.replica} is empty but the manifest lists ${known} files copied there (is its disk unmounted?); nothing done. ` +
      'If it is meant to be empty (a new disk), run once with --allow-empty-replica'
    );
  }

  /**
   * A vanished or replaced source, detected without a marker file: the source root is empty while
   * the manifest knows files (or the replica has entries to delete), or the source root's device or
   * inode is not the one recorded (another disk mounted there, the folder recreated).
   */
  private massDeleteReason(walk: WalkResult): string | undefined {
    if (this.o.allowMassDelete) return undefined;
    const known = this.manifestSizeAtStart;
    if (walk.sourceRootListed && walk.sourceRootEntries === 0 && (known > 0 || walk.replicaEntries > 0)) {
      return `source ${this.o.source} is empty but the ${known > 0 ? `manifest lists ${known} files` : `replica holds ${walk.replicaEntries} entries`} (is its disk unmounted?)`;
    }
    const recorded = this.manifest.sourceRoot;
    const now = this.sourceRootId;
    const rebirth = recorded?.birth !== undefined && now?.birth !== undefined && recorded.birth !== now.birth;
    if (recorded !== undefined && now !== undefined && (recorded.dev !== now.dev || recorded.ino !== now.ino || rebirth)) {
      return (
        `source ${this.o.source} is not the folder synced before: its device/inode is ${now.dev}/${now.ino}, ` +
        `was ${recorded.dev}/${recorded.ino}${rebirth ? ', and it was created anew' : ''} (another disk mounted there, or the folder recreated)`
      );
    }
    return undefined;
  }

  /**
   * The delete guards, all or nothing: a vanished source, `--max-delete` (count or share of the
   * replica) and `--max-delete-bytes`. Returns true when the deletes are refused; copies go on.
   */
  private guard(plan: Plan, walk: WalkResult, massDelete: string | undefined): boolean {
    const { maxDelete, maxDeleteBytes } = this.o;
    const refusals: string[] = [];
    if (this.o.holdDeletes !== undefined) refusals.push(`${this.o.holdDeletes}; nothing is deleted this pass`);
    if (massDelete !== undefined && plan.deleteCount > 0) {
      refusals.push(`${massDelete}; nothing was deleted. If this is intended, run once with --allow-mass-delete`);
    }
    if (maxDelete !== undefined) {
      const limit = 'count' in maxDelete ? maxDelete.count : Math.floor((maxDelete.percent * walk.replicaEntries) / 100);
      const shown = 'count' in maxDelete ? `--max-delete ${maxDelete.count}` : `--max-delete ${maxDelete.percent}% (${limit} of ${walk.replicaEntries} replica entries)`;
      if (plan.deleteCount > limit) {
        refusals.push(`refusing to delete ${plan.deleteCount} entries: more than ${shown}; nothing was deleted (run with a higher --max-delete if this is intended)`);
      }
    }
    if (maxDeleteBytes !== undefined && plan.deleteBytes > maxDeleteBytes) {
      refusals.push(
        `refusing to delete ${formatBytes(plan.deleteBytes)} (${plan.deleteBytes} bytes) of files: more than --max-delete-bytes ` +
          `${formatBytes(maxDeleteBytes)} (${maxDeleteBytes} bytes); nothing was deleted`,
      );
    }
    if (refusals.length === 0) return false;
    for (const message of refusals) this.error(message);
    for (const relPath of plan.replacements) this.error(`cannot replace ${show(relPath)} (type changed): its delete was refused`);
    return true;
  }

  private async execute(plan: Plan, refusedDeletes: boolean): Promise<void> {
    const phases: Op[][] = refusedDeletes ? [plan.upserts] : [plan.upserts, plan.deletes, plan.afterDeletes];
    const copies = phases.flat().filter((op) => op.op === 'copy');
    const copyThreads = this.o.copyThreads ?? COPY_THREADS;
    const roots = { sourceRoot: this.o.source, replicaRoot: this.o.replica };
    const smallBelow = this.o.kernelCopyMinBytes ?? KERNEL_COPY_MIN_BYTES;
    const small = copies.filter((op) => op.source.size < smallBelow).length;
    // (Otherwise every copy is written on this thread.)
    const offThread = this.o.threads !== undefined && !this.o.dryRun && copyThreads > 0;
    if (offThread && small > 0 && this.o.poolCopies !== false && poolCopies()) {
      this.copyPool = new PoolCopier(this.o.io, roots, smallBelow);
      this.o.log.debug(`copies written on the thread pool: ${small} of ${copies.length} (those under ${formatBytes(smallBelow)})`);
    } else if (offThread && copies.length >= (this.o.copyThreadsFrom ?? COPY_THREADS_FROM)) {
      this.copyPool = new CopyPool(copyThreads, roots, (error) =>
        this.warn(`a copying thread failed (${describe(error)}); its copies are written on the main thread`),
      );
      this.o.log.debug(`${copies.length} copies: the small ones written on ${copyThreads} copying threads`);
    }
    if (copies.length > 0 && !this.o.dryRun) {
      const totalBytes = copies.reduce((sum, op) => sum + op.source.size, 0);
      this.progress.begin('copying', () => ({ files: this.copiesWritten, bytes: this.bytesWritten, totalFiles: copies.length, totalBytes }));
    }
    try {
      await this.executePhases(phases, plan, refusedDeletes);
    } finally {
      this.progress.end();
    }
  }

  private async executePhases(phases: Op[][], plan: Plan, refusedDeletes: boolean): Promise<void> {
    for (const ops of phases) {
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i];
        if (await this.tick()) {
          await this.finishCopies(); // finish what is written; start nothing new
          return;
        }
        if (op.op === 'copy' && !this.o.dryRun) {
          await this.startCopy(op);
          if (this.batch.length >= COPY_BATCH_FILES || this.batchBytes >= COPY_BATCH_BYTES) await this.nextBatch();
          continue;
        }
        await this.finishCopies();
        if (op.op === 'meta' && !this.o.dryRun) {
          const end = runEnd(ops, i, (next) => next.op === 'meta');
          await this.applyMetas(ops.slice(i, end) as MetaOp[]);
          i = end - 1;
          continue;
        }
        if (this.unlinksOffThread(op)) {
          const end = runEnd(ops, i, (next) => this.unlinksOffThread(next));
          if (!(await this.applyDeletes(ops.slice(i, end) as DeleteOp[]))) return;
          i = end - 1;
          continue;
        }
        await this.apply(op);
        await this.checkpoint();
      }
      await this.finishCopies();
    }
    const deferred = new Set(refusedDeletes ? plan.afterDeletes.map((op) => op.relPath) : []);
    for (const op of plan.dirModes) {
      if (deferred.has(op.relPath)) continue; // its folder was never created
      if (await this.tick()) return;
      await this.apply(op);
    }
  }

  /** Applies one op (or logs it, in a dry run), records the outcome, counts it. Never throws. */
  private async apply(op: Op): Promise<void> {
    const { o, stats } = this;
    const would = o.dryRun ? 'would ' : '';
    const path = show(op.relPath);
    try {
      switch (op.op) {
        case 'mkdir': {
          if (!o.dryRun) makeDir(this.exec, op.relPath);
          this.touched(op.relPath);
          o.log.action({ verb: `${would}${o.dryRun ? 'create' : 'created'}`, path: `${path}/`, reason: 'new folder' });
          break;
        }
        case 'copy': {
          // Real copies go through startCopy/finishCopies (batched); here only the dry run's line.
          o.log.action({ verb: `would ${copyVerb(op, false)}`, path, reason: op.reason, bytes: op.source.size });
          if (op.replacing) stats.updated++;
          else stats.copied++;
          break;
        }
        case 'link': {
          if (op.reason === 'mtime') {
            if (!o.dryRun) touchLink(this.exec, op.relPath, op.source);
            o.log.action({ verb: `${would}${o.dryRun ? 'update' : 'updated'}`, path, reason: 'mtime' });
            stats.updated++;
            break;
          }
          // A dry run reads the target too (read-only), so its line is the real run's.
          const target = o.dryRun ? o.io.readlink(o.source + '/' + op.relPath) : copyLink(this.exec, op.relPath, op.source, op.replacing !== undefined).target;
          this.touched(op.relPath);
          const verb = op.replacing ? (o.dryRun ? 'update' : 'updated') : o.dryRun ? 'copy' : 'copied';
          o.log.action({ verb: `${would}${verb}`, path, target: target === undefined ? undefined : show(target), reason: op.reason });
          if (op.replacing) stats.updated++;
          else stats.copied++;
          break;
        }
        case 'meta': {
          // (A real run's go through `applyMetas`; here: a dry run's, and those of a batch the pool
          // could not take, which `applyMetas` hands back.)
          const reason = metaToFix(op);
          this.recordMeta(op, reason, o.dryRun || reason === undefined ? op.replica : fixMeta(this.exec, op.relPath, op.source, op.replica));
          break;
        }
        case 'dirmode': {
          const changed = o.dryRun ? true : setDirMode(this.exec, op.relPath, op.source.mode);
          // A folder made by this pass gets its bits here silently; only an existing one is news.
          if (changed && !this.created.has(op.relPath)) o.log.action({ verb: `${would}${o.dryRun ? 'update' : 'updated'}`, path: `${path}/`, reason: 'permissions' });
          break;
        }
        case 'move': {
          if (!o.dryRun) {
            let replica: Entry;
            try {
              replica = moveEntry(this.exec, op.from, op.relPath, op.source, op.replica);
            } catch (error) {
              const renameFailed = error instanceof RenameFailed && errorCode(error) !== 'ENOENT';
              if (errorCode(error) !== 'ENOENT' && !(error instanceof ChangedInReplica) && !renameFailed) throw error;
              // The replica file to move went away or changed since the walk, or could not be
              // renamed: copy instead (one still there is deleted next pass, unpaired).
              if (error instanceof ChangedInReplica) this.o.log.debug(`${show(op.from)} changed in the replica during the pass: ${show(op.relPath)} copied instead of moved`);
              if (renameFailed) this.warn(`${describe(error)}; copied instead`);
              await this.startCopy({ op: 'copy', relPath: op.relPath, source: op.source, reason: 'new', replacing: undefined });
              await this.finishCopies();
              break;
            }
            this.touched(op.from);
            this.touched(op.relPath);
            this.manifest.delete(op.from);
            this.manifest.set(op.relPath, makeRecord(op.md5, op.source, replica, !isRacy(op.source, this.movesHashedAt)));
          }
          o.log.action({ verb: `${would}${o.dryRun ? 'move' : 'moved'}`, from: show(op.from), path, reason: 'moved in source' });
          stats.moved++;
          break;
        }
        case 'delete': {
          if (!o.dryRun && !deleteEntry(this.exec, op.relPath, op.replica)) break;
          this.deleted(op);
          break;
        }
      }
      if (op.op === 'mkdir') this.created.add(op.relPath);
    } catch (error) {
      this.failed(op, error);
    }
  }

  /**
   * A run of metadata fixes, each recorded and logged in the plan's order as `apply` does; their
   * calls (chmod, utimes, lstat) are made METAS_BATCH files at a time on libuv's thread pool
   * (`Io.fixMetas`), up to METAS_AHEAD batches ahead of the one this thread records. Without the
   * native addon (ENOSYS), or for a batch the pool could not take, `apply` makes them here.
   *
   * Perf: a pass that found 100k files' mtimes touched (contents unchanged) made those calls here,
   * ~9 us a file (~0.9 s of the pass), after the hashing and with the other core idle: 7.11 s
   * against 6.48 s with the pool (medians of 3, alternating); batches of 256 keep the main thread's
   * share to the records and the lines.
   */
  private async applyMetas(ops: readonly MetaOp[]): Promise<void> {
    const batches: Promise<MetaFixed | undefined>[] = [];
    const reasons = ops.map(metaToFix);
    const start = (from: number): void => {
      if (from >= ops.length) return;
      const fixes: MetaFix[] = [];
      for (let i = from; i < Math.min(from + METAS_BATCH, ops.length); i++) {
        const { source, replica, relPath } = ops[i];
        if (reasons[i] === undefined) continue;
        const mode = source.mode === replica.mode ? undefined : source.mode;
        fixes.push({ abs: this.o.replica + '/' + relPath, seen: replica, mode, atimeS: source.atimeS, atimeN: source.atimeN, mtimeS: source.mtimeS, mtimeN: source.mtimeN });
      }
      if (fixes.length === 0 || this.metasOff) return void batches.push(Promise.resolve(undefined));
      // (Called in a `then`: an Io that throws instead of rejecting is refused the same way.)
      const asked = Promise.resolve(fixes).then((all) => this.o.io.fixMetas(all));
      batches.push(asked.catch((error: unknown) => this.metasFailed(error)));
    };
    for (let ahead = 0; ahead < METAS_AHEAD; ahead++) start(ahead * METAS_BATCH);
    try {
      for (let from = 0, batch = 0; from < ops.length; from += METAS_BATCH, batch++) {
        const fixed = await batches[batch];
        start(from + METAS_AHEAD * METAS_BATCH);
        for (let i = from, fix = 0; i < Math.min(from + METAS_BATCH, ops.length); i++) {
          if (await this.tick()) return;
          const op = ops[i];
          const reason = reasons[i];
          if (!fixed || reason === undefined) {
            await this.apply(op);
          } else {
            const error = fixed.errors?.[fix];
            if (error) this.failed(op, fixMetaError(op.relPath, error));
            else this.recordMeta(op, reason, entryFrom(op.replica.name, fixed.nums, fix));
            fix++;
          }
          await this.checkpoint();
        }
      }
    } finally {
      // Interrupted: the batches under way are let finish (a few ms); what they did is not recorded.
      await Promise.all(batches);
    }
  }

  /** Whether `op` is a file's delete that `applyDeletes` unlinks on the thread pool (not a folder's, nor one moved to a backup). */
  private unlinksOffThread(op: Op): op is DeleteOp {
    return op.op === 'delete' && op.replica.kind !== 'dir' && !this.o.dryRun && this.exec.backupRoot === undefined;
  }

  /**
   * A run of files' deletes, each logged and counted in the plan's order as `apply` does; their
   * unlinks run on libuv's thread pool (`Io.unlinkAsync`), up to UNLINKS_AHEAD ahead of the one
   * this thread logs. One that failed is done again by `apply`, here: a read-only folder (EACCES) is
   * made writable for it, another error is reported as before; one already gone is left unlogged,
   * as `deleteEntry` leaves it. False when the pass was asked to stop (the unlinks already under
   * way are still awaited and logged: every file deleted has its line).
   *
   * Perf: an unlink costs ~120 us on this disk (the inode is freed); the 1% change's 200 deletes
   * took ~30 ms of the main thread, one after another.
   */
  private async applyDeletes(ops: readonly DeleteOp[]): Promise<boolean> {
    const unlinks: Promise<unknown>[] = [];
    let stopped = false;
    const start = (i: number): void => {
      if (i >= ops.length || stopped) return;
      // (Started in a `then`: an Io that throws instead of rejecting is treated the same way.)
      unlinks[i] = Promise.resolve(this.o.replica + '/' + ops[i].relPath)
        .then((abs) => this.o.io.unlinkAsync(abs))
        .then(
          () => undefined,
          (error: unknown) => error ?? new Error('unlink failed'),
        );
    };
    for (let i = 0; i < UNLINKS_AHEAD; i++) start(i);
    try {
      for (let i = 0; i < ops.length && unlinks[i] !== undefined; i++) {
        const error = await unlinks[i];
        if (!stopped && (await this.tick())) stopped = true;
        start(i + UNLINKS_AHEAD);
        const op = ops[i];
        if (error === undefined) this.deleted(op);
        else if (errorCode(error) === 'ENOENT') continue; // already gone
        else if (stopped) this.failed(op, new StepError('deleting', op.relPath, error)); // not tried again
        else await this.apply(op);
        await this.checkpoint();
      }
    } finally {
      // (Were anything above to throw, the unlinks under way still end before the pass does.)
      await Promise.all(unlinks);
    }
    return !stopped;
  }

  /** Logs and counts a replica entry deleted (or, in a dry run, that would be). */
  private deleted(op: DeleteOp): void {
    const { o } = this;
    if (!o.dryRun) this.touched(op.relPath);
    const suffix = op.replica.kind === 'dir' ? '/' : '';
    o.log.action({ verb: o.dryRun ? 'would delete' : 'deleted', path: show(op.relPath) + suffix, reason: op.reason });
    this.stats.deleted++;
  }

  /** A batch of `applyMetas` the pool could not take: made here; without the addon, all from now on. */
  private metasFailed(error: unknown): undefined {
    if (errorCode(error) === 'ENOSYS') this.metasOff = true;
    else this.o.log.debug(`metadata fixes made on the main thread for a batch (${describe(error)})`);
    return undefined;
  }

  /** Records a file whose metadata `apply` or `applyMetas` fixed (`replica`, as it is now), and logs it if `reason`. */
  private recordMeta(op: MetaOp, reason: Reason | undefined, replica: Entry): void {
    const { o } = this;
    if (!o.dryRun) {
      const trusted = op.readAtMs === undefined || !isRacy(op.source, op.readAtMs);
      this.manifest.set(op.relPath, makeRecord(op.md5, op.source, replica, trusted));
    }
    if (reason !== undefined) {
      o.log.action({ verb: o.dryRun ? 'would update' : 'updated', path: show(op.relPath), reason });
      this.stats.updated++;
    }
  }

  /** Logs and counts an operation that failed (or met a moving tree: a warning). */
  private failed(op: Op, error: unknown): void {
    const path = show(op.relPath);
    if (error instanceof Interrupted) return;
    if (error instanceof ChangedWhileReading) {
      this.warn(`${path} changed while it was being copied; left as it was, it will be copied next pass`);
    } else if (error instanceof ChangedInReplica) {
      this.warn(`${path} changed in the replica during the pass; left as it is, it will be looked at again next pass`);
    } else if (isVanished(error) && op.op !== 'delete') {
      this.warn(`${path} vanished from the source during the pass; skipped`);
    } else {
      this.error(describe(error));
    }
  }

  /**
   * Copies go in batches: each file's content is written to its temporary file, then the whole
   * batch is flushed at once, then each is renamed into place and recorded.
   *
   * Perf: one fsync per file in a row costs a journal commit each (most of a first sync's time on
   * ext4); flushed together on the thread pool, a batch shares its commits, and with a syncfs first
   * (`flushTogether`) it takes one. And a batch is flushed while the next one is written
   * (`nextBatch`), so the disk and the CPU work at the same time.
   * Safety is unchanged: no file is renamed into place before its own bytes are flushed.
   */
  private async startCopy(op: Extract<Op, { op: 'copy' }>): Promise<void> {
    const startedAt = Date.now();
    this.stats.hashed++;
    let written: Promise<Written>;
    const small = op.source.size < (this.o.kernelCopyMinBytes ?? KERNEL_COPY_MIN_BYTES);
    const tempAbs = tempPathFor(this.o.replica, op.relPath);
    if (this.copyPool && small && !this.resumable.has(tempAbs)) {
      // Not awaited: the pool or a thread writes it while this one goes on (see `copy-pool.ts`).
      written = this.copyPool.write(op.relPath, op.replacing !== undefined).then(
        (pending): Written => (pending === undefined ? { here: true } : { pending: this.counted(op, pending) }),
        (error: unknown) => {
          // Safety: the thread could not remove its temporary file from a folder made read-only
          // meanwhile (by this thread, after a rename of its own): removed here, as inline.
          removeTemp(this.exec, op.relPath, tempAbs);
          return { error };
        },
      );
    } else {
      try {
        written = Promise.resolve({ pending: this.counted(op, await this.writeHere(op)) });
      } catch (error) {
        // Reported when its batch is put in place, like a copying thread's failure: the log keeps
        // the plan's order (batches before this one are still being renamed and logged).
        written = Promise.resolve({ error });
      }
    }
    this.batch.push({ op, tempAbs, written, startedAt });
    this.batchBytes += op.source.size;
  }

  /**
   * A full batch: its flush starts, and the batch flushed meanwhile is put in place while the next
   * one is written (Perf: its renames run on the thread pool meanwhile, see `install`). At most one
   * batch is being put in place at a time.
   */
  private async nextBatch(): Promise<void> {
    const previous = this.flushing;
    this.flushing = this.startFlush();
    if (previous) {
      await this.installing;
      this.installing = this.install(previous);
      // It never rejects; were it to (a bug), the rejection waits for the next await of it.
      this.installing.catch(() => {});
    }
  }

  /** Every copy written so far flushed, put in place and recorded. */
  private async finishCopies(): Promise<void> {
    const previous = this.flushing;
    this.flushing = undefined;
    const current = this.batch.length > 0 ? this.startFlush() : undefined;
    await this.installing;
    if (previous) await this.install(previous);
    if (current) await this.install(current);
  }

  private startFlush(): FlushingBatch {
    const { o } = this;
    const batch = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    const flushed =
      o.fsync && batch.length >= SYNCFS_FROM && this.syncFsOff === undefined
        ? this.flushTogether(batch)
        : Promise.all(batch.map(async ({ written }) => this.flushWritten(await written)));
    return { batch, flushed };
  }

  /** A copy's first half done, flushed; one that failed, or that a thread left to this one, as it is. */
  private flushWritten(outcome: Written): Promise<Flushed | Here> | Flushed | Here {
    return 'pending' in outcome ? this.flush(outcome.pending) : outcome;
  }

  /**
   * A batch flushed with one syncfs of the filesystem its first file is on, then each file's own
   * fsync, which finds nothing left to write (unless its file is on another filesystem, mounted in
   * the replica) but still reports that file's write error (syncfs reports one only since Linux
   * 5.8, and then for the whole filesystem). Never rejects.
   *
   * Perf: flushed one fsync each, a batch's files cost the filesystem a journal commit for each
   * few of them (4 at a time on the thread pool). A first sync of 100k files: 31.4 s against
   * 59.8 s (medians of 3, alternating; runs spread 26–42 s and 44–63 s on this disk). But syncfs
   * also writes out what other programs have pending on that filesystem: one at a time, and one
   * that takes longer than `SYNCFS_SLOW_MS` (a heavy writer beside the replica; or a batch of big
   * files on a slow disk, which gains little from it), or fails, turns it off for the rest of the
   * pass: files are then flushed one by one, as without the addon.
   */
  private async flushTogether(batch: BatchedCopy[]): Promise<(Flushed | Here)[]> {
    const outcomes = await Promise.all(batch.map(({ written }) => written));
    const first = outcomes.find((outcome): outcome is { pending: PendingCopy } => 'pending' in outcome);
    if (first) {
      // One at a time: after the one under way (`syncFs` never rejects), unless that one turned it off.
      this.syncingFs = this.syncingFs.then(() => (this.syncFsOff === undefined ? this.syncFs(first.pending.output) : undefined));
      await this.syncingFs;
    }
    return Promise.all(outcomes.map((outcome) => this.flushWritten(outcome)));
  }

  /** One syncfs (see `flushTogether`); never rejects: a failure leaves the work to the fsyncs. */
  private async syncFs(fd: number): Promise<void> {
    const startedAt = Date.now();
    let off: string | undefined;
    try {
      await this.o.io.syncFs(fd);
      const ms = Date.now() - startedAt;
      if (ms > SYNCFS_SLOW_MS) off = `a syncfs took ${ms} ms`;
    } catch (error) {
      off = describe(error);
    }
    if (off === undefined) return;
    this.syncFsOff = off;
    this.o.log.debug(`copies flushed file by file from now on (${off})`);
  }

  /** Flushes a written copy (unless `--no-fsync`); never rejects. */
  private flush(pending: PendingCopy): Promise<Flushed> {
    if (!this.o.fsync) return Promise.resolve({ pending });
    return this.o.io.fsyncAsync(pending.output).then(
      () => ({ pending }),
      (error: unknown) => ({ pending, flushError: error }),
    );
  }

  /** Counts a copy written (for the progress line). */
  private counted(op: Extract<Op, { op: 'copy' }>, pending: PendingCopy): PendingCopy {
    this.copiesWritten++;
    this.bytesWritten += op.source.size;
    return pending;
  }

  /** The first half of a copy on this thread. */
  private writeHere(op: Extract<Op, { op: 'copy' }>): Promise<PendingCopy> {
    return writeCopy(this.exec, op.relPath, this.resumable, op.replacing !== undefined);
  }

  /**
   * Once its files are flushed, renames each into place and records it. Perf: the batch's renames
   * run at once on the thread pool (see `finishCopy`); each copy is recorded and logged in the
   * batch's order as its rename completes.
   */
  private async install({ batch, flushed: flushing }: FlushingBatch): Promise<void> {
    const { o, stats } = this;
    const flushed = await flushing;
    // A copy a copying thread left to this one (a read-only folder) is written and flushed now.
    // Meanwhile `startCopy` may be writing the next batch here too, with the same buffer: safe,
    // since `writeCopy` reads a chunk, hashes and writes it without awaiting in between.
    for (const [i, { op }] of batch.entries()) {
      if (!('here' in flushed[i])) continue;
      try {
        flushed[i] = await this.flush(this.counted(op, await this.writeHere(op)));
      } catch (error) {
        flushed[i] = { error };
      }
    }
    // Never rejected: each waits unawaited until its turn.
    const finished = batch.map(({ op }, i) => this.finish(op, flushed[i] as Flushed).then(undefined, (error: unknown) => ({ error })));
    for (const [i, { op, tempAbs, startedAt }] of batch.entries()) {
      try {
        const result = await finished[i];
        if ('error' in result) throw result.error;
        this.resumable.delete(tempAbs);
        this.touched(op.relPath);
        this.manifest.set(op.relPath, makeRecord(result.md5, result.source, result.replica, !isRacy(result.source, startedAt)));
        stats.bytesCopied += result.source.size - result.resumedBytes;
        const resumed = result.resumedBytes > 0 ? `; resumed after ${formatBytes(result.resumedBytes)}` : '';
        o.log.action({ verb: copyVerb(op, true), path: show(op.relPath), reason: op.reason + resumed, bytes: result.source.size });
        if (op.replacing) stats.updated++;
        else stats.copied++;
      } catch (error) {
        this.failed(op, error);
      }
      await this.checkpoint();
    }
  }

  /** A flushed copy renamed into place (or its temporary file removed if the write or flush failed). */
  private async finish(op: Extract<Op, { op: 'copy' }>, outcome: Flushed): Promise<CopyResult> {
    if ('error' in outcome) throw outcome.error; // the write failed (its temporary file is gone)
    const { pending } = outcome;
    if (outcome.flushError !== undefined) {
      abandonCopy(this.exec, pending);
      throw new StepError('copying (flushing)', op.relPath, outcome.flushError);
    }
    return finishCopy(this.exec, pending);
  }

  private readonly created = new Set<string>();
  /** The source root's device and inode (a different disk mounted there, or the folder recreated). */
  private sourceRootId: { dev: string; ino: string; birth?: string } | undefined;
  /** When the sources of move candidates were read (for the racy rule). */
  private movesHashedAt = 0;
  /** Copies written, waiting to be flushed and renamed together. */
  private batch: BatchedCopy[] = [];
  /** The batch being flushed while the next one is written. */
  private flushing: FlushingBatch | undefined;
  /** The batch before it, being put in place meanwhile (awaited before any other is, or any other operation). */
  private installing: Promise<void> = Promise.resolve();
  /** Why batches are no longer flushed with a syncfs first (see `flushTogether`), once they are not. */
  private syncFsOff: string | undefined;
  /** The syncfs under way, if any (one at a time). */
  private syncingFs: Promise<void> = Promise.resolve();
  /** Metadata fixes are made on this thread (`applyMetas`: the addon is not there). */
  private metasOff = false;
  private batchBytes = 0;
  /** For the progress line: files `hash` read here, and their bytes. */
  private readFiles = 0;
  private readBytes = 0;
  /** For the progress line: copies written so far, and their bytes. */
  private copiesWritten = 0;
  private bytesWritten = 0;
  private readonly progress: Progress;
  private walkComplete = false;
  /** The thread that hashes what the kernel copies (one copy at a time, so one thread). */
  private copyHasher: HashPool | undefined;
  /** Small copies written off this thread: on the thread pool, or on copying threads for a pass with many (see `copy-pool.ts`). */
  private copyPool: CopyWriter | undefined;
  /** Left-over temporary files of files this pass copies: resumed, not swept. */
  private readonly resumable = new Set<string>();

  /** Notes a replica folder whose entries changed (flushed before the next manifest checkpoint). */
  private touched(relPath: string): void {
    this.opsSinceCheckpoint++;
    if (this.o.fsync && !this.o.dryRun) this.dirtyDirs.add(replicaParent(this.o.replica, relPath));
  }

  /**
   * Writes a manifest journal every `CHECKPOINT_OPS` operations or `CHECKPOINT_MS` (the end of the
   * pass saves in `run`). Safety: the folders the operations renamed into are flushed first, so the
   * manifest is never ahead of the replica.
   */
  private async checkpoint(): Promise<void> {
    if (this.o.dryRun) return;
    if (this.opsSinceCheckpoint < CHECKPOINT_OPS && Date.now() - this.lastCheckpoint < CHECKPOINT_MS) return;
    this.opsSinceCheckpoint = 0;
    this.lastCheckpoint = Date.now();
    if (await this.flushDirs()) await this.writeManifest(false);
  }

  /**
   * Flushes the folders renamed into since the last time; false (an error logged) if one could
   * not be: the manifest must then not be written, it would vouch for renames that may not be on
   * the disk. Such a folder is tried again next time; if it never succeeds, this pass's records
   * are not written at all (the next pass re-reads what they would have said).
   *
   * Perf: FSYNC_DIRS_AT_ONCE at a time on the thread pool, sharing the filesystem's journal
   * commits (one by one, a 1% change spent ~110 ms here on ~1,000 folders).
   */
  private async flushDirs(): Promise<boolean> {
    for (const dir of this.manifest.unflushedDirs) this.dirtyDirs.add(dir);
    const dirs = [...this.dirtyDirs];
    this.dirtyDirs.clear();
    const unflushed: string[] = [];
    const flush = (dir: string) =>
      this.o.io.fsyncDir(dir).catch((error: unknown) => {
        if (isVanished(error)) return; // deleted since: nothing to flush
        unflushed.push(dir);
        this.error(`flushing folder ${dir}: ${describe(error)}; the manifest is not written until it can be`);
      });
    for (let i = 0; i < dirs.length; i += FSYNC_DIRS_AT_ONCE) await Promise.all(dirs.slice(i, i + FSYNC_DIRS_AT_ONCE).map(flush));
    for (const dir of unflushed) this.dirtyDirs.add(dir);
    this.manifest.unflushedDirs = new Set(unflushed);
    return unflushed.length === 0;
  }

  /** A checkpoint's journal, or (`force`, at the end of a pass) the manifest's save. */
  private async writeManifest(force: boolean): Promise<void> {
    try {
      if (force) await this.manifest.save();
      else await this.manifest.checkpoint();
    } catch (error) {
      this.error(`writing manifest ${this.manifest.path}: ${describe(error)} (the next pass re-reads what it could not record)`);
    }
  }
}

/** The files a pass must read before it can decide (see `Pass.filesToRead`): one job per side read. */
interface FilesToRead {
  jobs: HashJob[];
  /** Per job, its change and side (0 source, 1 replica). */
  owners: [Change, 0 | 1][];
  bytes: number;
}

/** A copy's first half done (`pending`), or how it failed. Never a rejected promise: it may wait unawaited. */
type Written = { pending: PendingCopy } | { error: unknown } | Here;
/** After the flush too: `flushError` set if the flush failed. */
type Flushed = { pending: PendingCopy; flushError?: unknown } | { error: unknown };
/** Left by a copying thread to this one (a read-only folder): written and flushed at install. */
type Here = { here: true };

/** A file whose content is in sync and whose metadata may need fixing (`applyMetas`). */
/** The end (exclusive) of the run of ops from `start` on that `inRun` takes. */
function runEnd(ops: readonly Op[], start: number, inRun: (op: Op) => boolean): number {
  let end = start + 1;
  while (end < ops.length && inRun(ops[end])) end++;
  return end;
}

type MetaOp = Extract<Op, { op: 'meta' }>;
type DeleteOp = Extract<Op, { op: 'delete' }>;

/** A copy being written to its temporary file (here or on a copying thread), then flushed and renamed. */
interface BatchedCopy {
  op: Extract<Op, { op: 'copy' }>;
  /** Its temporary file (`tempPathFor`). */
  tempAbs: string;
  written: Promise<Written>;
  startedAt: number;
}

/** A batch of copies and its flush under way: one outcome per copy. */
interface FlushingBatch {
  batch: BatchedCopy[];
  flushed: Promise<(Flushed | Here)[]>;
}

/** `copied` a new file, `updated` a changed one, `restored` one changed in the replica (`copy`… in a dry run). */
function copyVerb(op: Extract<Op, { op: 'copy' }>, done: boolean): string {
  const verb = op.reason === 'changed in replica' ? 'restore' : op.replacing ? 'update' : 'copy';
  return done ? (verb === 'copy' ? 'copied' : `${verb}d`) : verb;
}
