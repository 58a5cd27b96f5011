/**
 * What a pass keeps of each effect: the counters, one log line, the manifest's record of what was
 * observed after it, and the checkpoints. Only the executor calls it, once an effect is done (or,
 * in a dry run, for what would be done).
 */
import { isRacy, makeRecord } from '../compare/fingerprint.js';
import type { Op, Reason } from '../compare/types.js';
import { ChangedInReplica, ChangedWhileReading, describe, Interrupted, isTypeChanged, isVanished, show } from '../errors.js';
import { formatBytes } from '../log/units.js';
import type { InstalledCopy, Replica } from '../replica/replica.js';
import type { Entry } from '../tree/entry.js';
import type { PassContext } from './context.js';

/** The manifest is checkpointed after this many recorded operations, or this many ms. */
const CHECKPOINT_OPS = 1000;
const CHECKPOINT_MS = 10_000;

export type CopyOp = Extract<Op, { op: 'copy' }>;
export type MetaOp = Extract<Op, { op: 'meta' }>;
export type DeleteOp = Extract<Op, { op: 'delete' }>;

export class Recorder {
  /** Replica folders whose entries changed since the last checkpoint (relative; flushed before it). */
  private readonly dirtyDirs = new Set<string>();
  private opsSinceCheckpoint = 0;
  /** Replica folders whose entries changed this pass (relative): their mtimes are set back at its end. */
  readonly changedFolders = new Set<string>();
  private lastCheckpoint = Date.now();

  constructor(
    private readonly pass: PassContext,
    private readonly replica: Replica,
  ) {}

  /** `done` (`copied`), or under a dry run `would` + `verb` (`would copy`). */
  private verb(verb: string, done: string): string {
    return this.pass.o.dryRun ? `would ${verb}` : done;
  }

  copied(op: CopyOp, result: InstalledCopy, startedAt: number): void {
    const { stats, o } = this.pass;
    this.touched(op.relPath);
    this.pass.manifest.set(op.relPath, makeRecord(result.md5, result.source, result.replica, !isRacy(result.source, startedAt)));
    stats.bytesCopied += result.source.size - result.resumedBytes;
    const resumed = result.resumedBytes > 0 ? `; resumed after ${formatBytes(result.resumedBytes)}` : '';
    o.log.action({ verb: copyVerb(op, true), path: show(op.relPath), reason: op.reason + resumed, bytes: result.source.size });
    this.count(op.replacing !== undefined);
  }

  /** A dry run's copy. */
  wouldCopy(op: CopyOp): void {
    this.pass.o.log.action({ verb: `would ${copyVerb(op, false)}`, path: show(op.relPath), reason: op.reason, bytes: op.source.size });
    this.count(op.replacing !== undefined);
  }

  folderCreated(relPath: string): void {
    this.touched(relPath);
    this.pass.created.add(relPath);
    this.pass.o.log.action({ verb: this.verb('create', 'created'), path: `${show(relPath)}/`, reason: 'new folder' });
  }

  /** A link's own owner or times set (its target was right). */
  linkMetaSet(relPath: string, reason: Reason): void {
    this.pass.o.log.action({ verb: this.verb('update', 'updated'), path: show(relPath), reason });
    this.pass.stats.updated++;
  }

  linked(op: Extract<Op, { op: 'link' }>, target: string): void {
    this.touched(op.relPath);
    const verb = op.replacing ? this.verb('update', 'updated') : this.verb('copy', 'copied');
    this.pass.o.log.action({ verb, path: show(op.relPath), target: show(target), reason: op.reason });
    this.count(op.replacing !== undefined);
  }

  /** A file whose metadata was fixed (`replica`, as it is now), logged if `reason`. */
  metaFixed(op: MetaOp, reason: Reason | undefined, replica: Entry): void {
    const { o, stats } = this.pass;
    if (!o.dryRun) {
      const trusted = op.readAtMs === undefined || !isRacy(op.source, op.readAtMs);
      this.pass.manifest.set(op.relPath, makeRecord(op.md5, op.source, replica, trusted));
    }
    if (reason !== undefined) {
      o.log.action({ verb: this.verb('update', 'updated'), path: show(op.relPath), reason });
      stats.updated++;
    }
  }

  /** A folder's owner and bits, as changed (`reason`): news only for a folder that existed before this pass. */
  folderMeta(relPath: string, reason: Reason | undefined): void {
    if (reason !== undefined && !this.pass.created.has(relPath)) this.pass.o.log.action({ verb: this.verb('update', 'updated'), path: `${show(relPath)}/`, reason });
  }

  moved(op: Extract<Op, { op: 'move' }>, replica: Entry | undefined, hashedAt: number): void {
    if (replica !== undefined) {
      this.touched(op.from);
      this.touched(op.relPath);
      this.pass.manifest.delete(op.from);
      this.pass.manifest.set(op.relPath, makeRecord(op.md5, op.source, replica, !isRacy(op.source, hashedAt)));
    }
    this.pass.o.log.action({ verb: this.verb('move', 'moved'), from: show(op.from), path: show(op.relPath), reason: 'moved in source' });
    this.pass.stats.moved++;
  }

  /**
   * A name made a hard link to its group's leader (`done`: it after, and whether a link was made;
   * undefined in a dry run). One that was a link to it already is recorded, not logged.
   */
  hardLinked(op: Extract<Op, { op: 'hardlink' }>, done: { replica: Entry; linked: boolean } | undefined): void {
    if (done !== undefined) {
      if (done.linked) this.touched(op.relPath);
      const leader = this.pass.manifest.peek(op.leader);
      // (Its content is the leader's, recorded when the leader was copied or checked.)
      if (leader !== undefined) this.pass.manifest.set(op.relPath, makeRecord(leader.md5, op.source, done.replica, !isRacy(op.source, Date.now())));
      if (!done.linked) return;
    }
    const verb = op.replacing ? this.verb('update', 'updated') : this.verb('copy', 'copied');
    this.pass.o.log.action({ verb, path: show(op.relPath), reason: `hard link to ${show(op.leader)}` });
    this.count(op.replacing !== undefined);
  }

  /**
   * The records of replica files whose inode changed since they were recorded (a name of it
   * linked, unlinked or fixed): their replica side as it is now, so the next pass vouches for them.
   */
  async refreshReplica(relPaths: ReadonlySet<string>): Promise<void> {
    const manifest = this.pass.manifest;
    for (const relPath of relPaths) {
      const record = manifest.peek(relPath);
      const now = record === undefined ? undefined : await this.replica.statEntry(relPath);
      if (record === undefined || now?.kind !== 'file') continue;
      manifest.set(relPath, makeRecord(record.md5, { ...now, size: record.size, mtimeS: record.mtimeS, mtimeN: record.mtimeN, ctimeS: record.ctimeS, ctimeN: record.ctimeN, ino: record.ino }, now, record.trusted));
    }
  }

  /** A folder renamed in the replica as in the source (a scoped pass's, `--watch` saw it). */
  folderMoved(from: string, to: string): void {
    if (!this.pass.o.dryRun) {
      this.touched(from);
      this.touched(to);
    }
    this.pass.o.log.action({ verb: this.verb('move', 'moved'), from: `${show(from)}/`, path: `${show(to)}/`, reason: 'moved in source' });
    this.pass.stats.moved++;
  }

  deleted(op: DeleteOp): void {
    if (!this.pass.o.dryRun) this.touched(op.relPath);
    const suffix = op.replica.kind === 'dir' ? '/' : '';
    this.pass.o.log.action({ verb: this.verb('delete', 'deleted'), path: show(op.relPath) + suffix, reason: op.reason });
    this.pass.stats.deleted++;
  }

  /** An operation that failed (or met a moving tree: a warning). */
  failed(op: Op, error: unknown): void {
    const path = show(op.relPath);
    if (error instanceof Interrupted) return;
    if (error instanceof ChangedWhileReading) {
      this.pass.warn(`${path} changed while it was being copied; left as it was, it will be copied next pass`);
    } else if (error instanceof ChangedInReplica) {
      this.pass.warn(`${path} changed in the replica during the pass; left as it is, it will be looked at again next pass`);
    } else if (isVanished(error) && op.op !== 'delete') {
      this.pass.warn(`${path} vanished from the source during the pass; skipped`);
    } else if (isTypeChanged(error) && op.op !== 'delete') {
      this.pass.warn(`${path} changed type during the pass; skipped (the next pass mirrors it)`);
    } else {
      this.pass.error(describe(error));
    }
  }

  private count(replacing: boolean): void {
    if (replacing) this.pass.stats.updated++;
    else this.pass.stats.copied++;
  }

  /**
   * Notes a replica folder whose entries changed: flushed before the next manifest checkpoint, and
   * its mtime given back at the end of the pass.
   */
  private touched(relPath: string): void {
    this.opsSinceCheckpoint++;
    if (this.pass.o.dryRun) return;
    const parent = parentOf(relPath);
    this.changedFolders.add(parent);
    if (this.pass.o.fsync) this.dirtyDirs.add(parent);
  }

  /**
   * Writes a manifest journal every `CHECKPOINT_OPS` operations or `CHECKPOINT_MS` (the end of the
   * pass saves in `save`). Safety: the folders the operations renamed into are flushed first, so
   * the manifest is never ahead of the replica.
   */
  async checkpoint(): Promise<void> {
    if (this.pass.o.dryRun) return;
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
   */
  async flushDirs(): Promise<boolean> {
    const manifest = this.pass.manifest;
    for (const dir of manifest.unflushedDirs) this.dirtyDirs.add(dir);
    const dirs = [...this.dirtyDirs];
    this.dirtyDirs.clear();
    const failed = dirs.length === 0 ? [] : await this.replica.flushFolders(dirs);
    for (const { relDir, error } of failed) {
      this.dirtyDirs.add(relDir);
      const abs = relDir === '' ? this.replica.root : `${this.replica.root}/${relDir}`;
      this.pass.error(`flushing folder ${abs}: ${describe(error)}; the manifest is not written until it can be`);
    }
    manifest.unflushedDirs = new Set(failed.map((f) => f.relDir));
    return failed.length === 0;
  }

  /** A checkpoint's journal, or (`force`, at the end of a pass) the manifest's save. */
  async writeManifest(force: boolean): Promise<void> {
    const manifest = this.pass.manifest;
    try {
      if (force) await manifest.save();
      else await manifest.checkpoint();
    } catch (error) {
      this.pass.error(`writing manifest ${manifest.path}: ${describe(error)} (the next pass re-reads what it could not record)`);
    }
  }
}

/** `copied` a new file, `updated` a changed one, `restored` one changed in the replica (`copy`… in a dry run). */
function copyVerb(op: CopyOp, done: boolean): string {
  const verb = op.reason === 'changed in replica' ? 'restore' : op.replacing ? 'update' : 'copy';
  return done ? (verb === 'copy' ? 'copied' : `${verb}d`) : verb;
}

/** The folder holding `relPath` (`''`: the root). */
function parentOf(relPath: string): string {
  const slash = relPath.lastIndexOf('/');
  return slash < 0 ? '' : relPath.slice(0, slash);
}
