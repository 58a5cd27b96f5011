/**
 * The replica as a local folder: every call of a pass that reads or changes it, through an `Io`
 * (tests spy on it and inject failures). Copies are written by the first of its copiers that takes
 * them (`copiers/`), flushed a batch at a time, and renamed into place on libuv's thread pool.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, errorCode, isVanished, show } from '../../errors.js';
import { CHUNK_SIZE, type Hasher, type HashResult } from '../../hash/hasher.js';
import { nativeTimes } from '../../native.js';
import { chooseFolderLister, chooseLister, type ListingMode } from '../../tree/choose.js';
import { entryFrom, type Entry } from '../../tree/entry.js';
import type { Owners } from '../../compare/owners.js';
import type { Reason } from '../../compare/types.js';
import type { Lister, ListerSpec } from '../../tree/lister.js';
import { toEntry } from '../../tree/scan.js';
import type { CopyJob, InstalledCopy, MetaFix, MetaFixed, PendingCopy, Replica, ReplicaFeatures, Written } from '../replica.js';
import { chooseCopiers, writeWith, type Copier, type CopierOptions, type LocalCopyJob } from './copiers/copier.js';
import { removeQuietly, tempPathFor, type LocalContext } from './context.js';
import { abandonCopy, finishCopy, RESUME_MIN_BYTES, type LocalPendingCopy } from './copy.js';
import type { Io } from './io.js';
import { deleteEntry, fixMeta, fixMetaError, makeDir, makeHardLink, makeLink, moveEntry, renameFolder, setDirMeta, setLinkMeta } from './ops.js';
import { isOwnerRefused } from './context.js';

export interface LocalReplicaOptions {
  /** Absolute, resolved roots. */
  source: string;
  replica: string;
  io: Io;
  /** Flush file contents before the rename (off with --no-fsync). */
  fsync: boolean;
  dryRun: boolean;
  /** `--backup-dir` for this pass (`<dir>/<time>`): what would be deleted or overwritten goes there. */
  backupRoot?: string;
  listing: ListingMode;
  copiers: CopierOptions;
  /** Lets the event loop run during long copies; true once the pass must stop. */
  tick(): Promise<boolean>;
  /** The owners and groups kept. */
  owners: Owners;
  log: { debug(message: string): void; warn(message: string): void };
}

/**
 * A batch of this many copies is flushed with one syncfs first, then one fsync each
 * (`flushCopies`); a smaller one with its fsyncs alone. A syncfs slower than this turns it off.
 */
const SYNCFS_FROM = 16;
const SYNCFS_SLOW_MS = 1000;

export class LocalReplica implements Replica {
  readonly root: string;
  readonly features: ReplicaFeatures = { kind: 'local folder', ctime: true, inode: true, mtimeStepNs: nativeTimes() ? 1 : 1000 };
  private readonly ctx: LocalContext;
  private copiers: Copier[] = [];
  /** Left-over temporary files of files this pass copies: resumed, not swept (relative paths of their targets). */
  private readonly resumable = new Set<string>();
  /** Why batches are no longer flushed with a syncfs first (see `flushCopies`), once they are not. */
  private syncFsOff: string | undefined;
  /** The syncfs under way, if any (one at a time). */
  private syncingFs: Promise<void> = Promise.resolve();
  /** Metadata fixes are made on this thread (the addon is not there). */
  private metasOff = false;
  /** An owner was refused this pass (warned about once). */
  private ownersRefused = false;
  /** Folders opened for us (`openFolder`), with the mode they had. */
  private readonly opened = new Map<string, number>();

  constructor(private readonly o: LocalReplicaOptions) {
    this.root = o.replica;
    this.ctx = {
      io: o.io,
      sourceRoot: o.source,
      replicaRoot: o.replica,
      fsync: o.fsync,
      buffer: Buffer.allocUnsafe(CHUNK_SIZE),
      tick: o.tick,
      backupRoot: o.backupRoot,
      owners: o.owners,
      ownerRefused: (error) => this.ownerRefused(error),
    };
  }

  statRoot(): Entry | undefined {
    try {
      return toEntry('', this.o.io.lstat(this.root));
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  createRoot(): Entry {
    // The contract: created with its parents (those get the default mode, the root its own).
    mkdirSync(dirname(this.root), { recursive: true });
    this.o.io.mkdir(this.root, 0o700);
    return toEntry('', this.o.io.lstat(this.root));
  }

  lister(spec: Omit<ListerSpec, 'root'>): Lister {
    return chooseLister({ root: this.root, ...spec }, this.o.listing);
  }

  openFolder(relPath: string): boolean {
    if (this.o.dryRun) return false;
    const abs = relPath === '' ? this.root : this.root + '/' + relPath;
    try {
      const stats = this.o.io.lstat(abs);
      const mode = Number(stats.mode) & 0o7777;
      if (!stats.isDirectory() || Number(stats.uid) !== process.getuid?.() || (mode & 0o700) === 0o700) return false;
      this.o.io.chmod(abs, mode | 0o700);
      this.opened.set(relPath, mode);
      this.o.log.debug(`replica folder ${show(relPath)} (mode ${mode.toString(8).padStart(3, '0')}) opened for this pass`);
      return true;
    } catch {
      return false;
    }
  }

  inlineLister(): Lister {
    return chooseFolderLister(this.root, this.o.io);
  }

  readlink(relPath: string): string {
    return this.o.io.readlink(this.root + '/' + relPath);
  }

  statEntry(relPath: string): Entry | undefined {
    try {
      return toEntry(relPath.slice(relPath.lastIndexOf('/') + 1), this.o.io.lstat(relPath === '' ? this.root : this.root + '/' + relPath));
    } catch {
      return undefined;
    }
  }

  renameFolder(from: string, to: string): void {
    renameFolder(this.ctx, from, to);
  }

  hardlink(relPath: string, leader: string, replacing: Entry | undefined): { replica: Entry; linked: boolean } {
    return makeHardLink(this.ctx, relPath, leader, replacing);
  }

  hashFiles(jobs: readonly { relPath: string; size: number }[], local: Hasher): Promise<(HashResult | undefined)[]> {
    return local.hashAll(jobs.map(({ relPath, size }) => ({ absPath: this.root + '/' + relPath, size })));
  }

  /**
   * Safety: temporary files are ours by name; a crash or kill may have left them. Those of a file
   * this pass copies again are kept to resume from; the rest are swept now (before any folder
   * holding one is deleted), and the kept ones once the copies are done (`close`).
   */
  prepare(temps: readonly string[], copies: readonly CopyJob[]): void {
    const worthResuming = new Map<string, string>();
    for (const job of copies) if (job.source.size >= RESUME_MIN_BYTES) worthResuming.set(tempPathFor(this.root, job.relPath), job.relPath);
    for (const temp of temps) {
      const abs = this.root + '/' + temp;
      const target = worthResuming.get(abs);
      if (target !== undefined) this.resumable.add(target);
      else if (!this.o.dryRun) removeQuietly(this.o.io, abs);
    }
    if (!this.o.dryRun) this.copiers = chooseCopiers(this.ctx, copies.map((job) => this.localJob(job)), this.o.copiers, this.o.log);
  }

  private localJob(job: CopyJob): LocalCopyJob {
    return { relPath: job.relPath, size: job.source.size, replacing: job.replacing, resume: this.resumable.has(job.relPath) };
  }

  async writeCopy(job: CopyJob): Promise<Written> {
    const local = this.localJob(job);
    const outcome = await writeWith(this.copiers, local);
    if (local.resume) this.resumable.delete(job.relPath);
    return outcome;
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
  async flushCopies(pending: readonly PendingCopy[]): Promise<(unknown | undefined)[]> {
    if (!this.o.fsync) return pending.map(() => undefined);
    const copies = pending as readonly LocalPendingCopy[];
    if (copies.length >= SYNCFS_FROM && this.syncFsOff === undefined) {
      // One at a time: after the one under way (`syncFs` never rejects), unless that one turned it off.
      this.syncingFs = this.syncingFs.then(() => (this.syncFsOff === undefined ? this.syncFs(copies[0].output) : undefined));
      await this.syncingFs;
    }
    return Promise.all(copies.map((copy) => this.o.io.fsyncAsync(copy.output).then(() => undefined, (error: unknown) => error ?? new Error('fsync failed'))));
  }

  /** One syncfs (see `flushCopies`); never rejects: a failure leaves the work to the fsyncs. */
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

  installCopy(pending: PendingCopy): Promise<InstalledCopy> {
    return finishCopy(this.ctx, pending as LocalPendingCopy);
  }

  abandonCopy(pending: PendingCopy): void {
    abandonCopy(this.ctx, pending as LocalPendingCopy);
  }

  symlink(relPath: string, target: string, source: Entry, replacing: boolean): Entry {
    return makeLink(this.ctx, relPath, target, source, replacing);
  }

  setLinkMeta(relPath: string, source: Entry, replica: Entry): void {
    setLinkMeta(this.ctx, relPath, source, replica);
  }

  /**
   * A file system that keeps no owners (a FAT disk; or one mounted with a fixed owner) refuses to
   * change them: one warning a pass, not one a file, and the rest of each entry's metadata is set.
   */
  private ownerRefused(error: unknown): void {
    if (this.ownersRefused) return;
    this.ownersRefused = true;
    this.o.log.warn(`cannot set owners or groups in ${this.root} (${describe(error)}): its file system keeps none, or not these; they are left as they are this pass`);
  }

  /**
   * Many files' chmod, utimes and lstat in one trip to libuv's thread pool (`Io.fixMetas`, the
   * addon's); without the addon (ENOSYS: from then on), or for a batch the pool refused, made here
   * one by one.
   */
  async fixMetas(fixes: readonly MetaFix[]): Promise<MetaFixed[]> {
    if (!this.metasOff) {
      try {
        const abs = fixes.map((fix) => ({ ...fix, abs: this.root + '/' + fix.relPath }));
        // (Called in a `then`: an Io that throws instead of rejecting is refused the same way.)
        const { nums, errors } = await Promise.resolve(abs).then((all) => this.o.io.fixMetas(all));
        return fixes.map((fix, i): MetaFixed => {
          const error = errors?.[i];
          if (error === undefined) return { kind: 'fixed', replica: entryFrom(fix.seen.name, nums, i) };
          // Only the owner could not be set: the rest was, and the file is as `nums` says.
          if ((error as NodeJS.ErrnoException).syscall === 'chown') {
            const replica = entryFrom(fix.seen.name, nums, i);
            if (!isOwnerRefused(error)) return { kind: 'fixed', replica, ownerError: fixMetaError(fix.relPath, error) };
            this.ownerRefused(error);
            return { kind: 'fixed', replica, ownerRefused: true };
          }
          return { kind: 'failed', error: fixMetaError(fix.relPath, error) };
        });
      } catch (error) {
        if (errorCode(error) === 'ENOSYS') this.metasOff = true;
        else this.o.log.debug(`metadata fixes made on the main thread for a batch (${describe(error)})`);
      }
    }
    return fixes.map((fix): MetaFixed => {
      try {
        return fixMeta(this.ctx, fix);
      } catch (error) {
        return { kind: 'failed', error };
      }
    });
  }

  mkdir(relPath: string): void {
    makeDir(this.ctx, relPath);
  }

  setDirMeta(relPath: string, source: Entry): Reason | undefined {
    this.opened.delete(relPath);
    return setDirMeta(this.ctx, relPath, source);
  }

  /**
   * A file's unlink runs on libuv's thread pool (`Io.unlinkAsync`), so a run of them overlaps;
   * one that failed is done again here, where a read-only folder (EACCES) is made writable for it.
   * A folder's rmdir, and a move into the backup dir, are made here.
   *
   * Perf: an unlink costs ~120 us on this disk (the inode is freed); the 1% change's 200 deletes
   * took ~30 ms of the main thread, one after another.
   */
  async remove(relPath: string, entry: Entry): Promise<boolean> {
    if (entry.kind === 'dir' || this.ctx.backupRoot !== undefined) return deleteEntry(this.ctx, relPath, entry);
    try {
      // (Started in a `then`: an Io that throws instead of rejecting is treated the same way.)
      await Promise.resolve(this.root + '/' + relPath).then((abs) => this.o.io.unlinkAsync(abs));
      return true;
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return false; // already gone
      return deleteEntry(this.ctx, relPath, entry);
    }
  }

  move(from: string, to: string, source: Entry, replica: Entry): Entry {
    return moveEntry(this.ctx, from, to, source, replica);
  }

  /**
   * Perf: FSYNC_DIRS_AT_ONCE at a time on the thread pool, sharing the filesystem's journal
   * commits (one by one, a 1% change spent ~110 ms here on ~1,000 folders).
   */
  async flushFolders(relDirs: readonly string[]): Promise<{ relDir: string; error: unknown }[]> {
    const failed: { relDir: string; error: unknown }[] = [];
    const flush = (relDir: string) =>
      this.o.io.fsyncDir(relDir === '' ? this.root : this.root + '/' + relDir).catch((error: unknown) => {
        if (!isVanished(error)) failed.push({ relDir, error }); // (deleted since: nothing to flush)
      });
    for (let i = 0; i < relDirs.length; i += FSYNC_DIRS_AT_ONCE) await Promise.all(relDirs.slice(i, i + FSYNC_DIRS_AT_ONCE).map(flush));
    return failed;
  }

  async close(): Promise<void> {
    // A folder opened for us that no folder fix gave its final mode (the pass stopped): its own back.
    for (const [relPath, mode] of this.opened) {
      try {
        this.o.io.chmod(relPath === '' ? this.root : this.root + '/' + relPath, mode);
      } catch {
        // gone since
      }
    }
    this.opened.clear();
    await Promise.all(this.copiers.map((copier) => copier.close()));
    if (!this.o.dryRun) for (const relPath of this.resumable) removeQuietly(this.o.io, tempPathFor(this.root, relPath));
  }
}

/** Folders flushed at once (each holds a descriptor while it waits). */
const FSYNC_DIRS_AT_ONCE = 64;
