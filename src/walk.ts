/**
 * The lockstep walk (rclone's march): list the same folder on both sides, pair entries by name,
 * and emit a `Change` for every path not already in sync, deciding all that needs no file read.
 *
 * Memory grows with the change, not the tree: only changes are kept, folders are walked depth
 * first. A source folder that cannot be read is reported and its replica side is left alone, so
 * an I/O or permission error never looks like an empty folder (no deletes beneath it).
 */
import { compareDirs, compareFiles, compareLinks } from './diff.js';
import { describe, isVanished, show } from './errors.js';
import type { ExcludeMatcher } from './filter.js';
import type { CacheLookup } from './fingerprint.js';
import type { Io } from './io.js';
import type { Lister } from './lister.js';
import { joinRel, type Listing } from './scan.js';
import type { Change, Entry, FileRecord } from './types.js';

export interface WalkContext {
  io: Io;
  /** Folder listings of each tree (inline, or from a listing thread). */
  sourceLister: Lister;
  replicaLister: Lister;
  /** Absolute roots, without a trailing slash. */
  sourceRoot: string;
  replicaRoot: string;
  exclude: ExcludeMatcher;
  /** The manifest's lookup; looking a path up also marks it as still in the source. */
  record(relPath: string): FileRecord | undefined;
  lookup: CacheLookup;
  onChange(change: Change): void;
  /** A temporary file of ours found in the replica (to sweep). */
  onTemp(absPath: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Lets the event loop run now and then (signals); resolves true when the pass must stop. */
  tick(): Promise<boolean>;
  /** Told each source folder listed. */
  onSourceDir?: (relPath: string) => void;
}

export interface WalkResult {
  /** False when a source folder could not be read or the walk was stopped. */
  complete: boolean;
  stopped: boolean;
  /** Whether the source root itself could be listed. */
  sourceRootListed: boolean;
  /** Entries directly in the source root, excluded ones left out (0: an empty source). */
  sourceRootEntries: number;
  /** Entries listed in the replica (for `--max-delete n%`). */
  replicaEntries: number;
}

export class Walker {
  private complete = true;
  private stopped = false;
  private sourceRootEntries = 0;
  private sourceRootListed = false;
  private replicaEntries = 0;
  private sinceTick = 0;
  /** Entries listed so far on both sides (for progress). */
  listed = 0;

  constructor(private readonly ctx: WalkContext) {}

  /** Walks both roots; `replicaExists` false (a dry run into a missing replica) walks the source only. */
  async run(sourceRootEntry: Entry, replicaRootEntry: Entry | undefined): Promise<WalkResult> {
    if (replicaRootEntry === undefined) {
      await this.sourceOnly('');
    } else {
      const change = compareDirs('', sourceRootEntry, replicaRootEntry);
      if (change) this.ctx.onChange(change);
      await this.both('');
    }
    return {
      complete: this.complete && !this.stopped,
      stopped: this.stopped,
      sourceRootListed: this.sourceRootListed,
      sourceRootEntries: this.sourceRootEntries,
      replicaEntries: this.replicaEntries,
    };
  }

  private async shouldStop(): Promise<boolean> {
    if (this.stopped) return true;
    // Perf: a promise per entry would cost more than the lstat; yield every 256 entries.
    if (++this.sinceTick < 256) return false;
    this.sinceTick = 0;
    this.stopped = await this.ctx.tick();
    return this.stopped;
  }

  private async listSource(relPath: string): Promise<Listing | undefined> {
    try {
      const listing = await this.ctx.sourceLister.list(relPath);
      this.reportUndecodable(listing, relPath, 'source');
      this.listed += listing.entries.size;
      this.ctx.onSourceDir?.(relPath);
      if (relPath === '') {
        this.sourceRootListed = true;
        for (const [name, entry] of listing.entries) if (!this.ctx.exclude(name, entry.kind === 'dir')) this.sourceRootEntries++;
        this.sourceRootEntries += listing.undecodable.length;
      }
      return listing;
    } catch (error) {
      this.complete = false;
      if (isVanished(error)) this.ctx.warn(`source folder ${show(relPath)} vanished during the pass; skipped`);
      else this.ctx.error(`reading source folder ${show(relPath)}: ${describe(error)} (nothing beneath it is deleted)`);
      return undefined;
    }
  }

  private async listReplica(relPath: string): Promise<Listing | undefined> {
    try {
      const listing = await this.ctx.replicaLister.list(relPath);
      this.reportUndecodable(listing, relPath, 'replica');
      this.replicaEntries += listing.entries.size;
      this.listed += listing.entries.size;
      for (const name of listing.temps) this.ctx.onTemp(this.ctx.replicaRoot + '/' + joinRel(relPath, name));
      return listing;
    } catch (error) {
      this.complete = false;
      this.ctx.error(`reading replica folder ${show(relPath)}: ${describe(error)}`);
      return undefined;
    }
  }

  /**
   * Names that are not valid UTF-8 come back from readdir with U+FFFD in them and cannot be
   * opened again by that name: an error (exit 1), never a silent skip.
   */
  private reportUndecodable(listing: Listing, relPath: string, side: string): void {
    for (const name of listing.undecodable) {
      this.complete = false;
      this.ctx.error(`cannot sync ${side} entry ${show(joinRel(relPath, name))}: its name is not valid UTF-8; skipped`);
    }
  }

  /** A folder present on both sides. */
  private async both(relPath: string): Promise<void> {
    const source = await this.listSource(relPath);
    if (source === undefined) return;
    const replica = await this.listReplica(relPath);
    if (replica === undefined) return;
    const { ctx } = this;

    for (const name of source.entries.keys()) {
      if (await this.shouldStop()) return;
      const s = source.entries.get(name)!;
      const r = replica.entries.get(name);
      const childRel = joinRel(relPath, name);
      if (ctx.exclude(childRel, s.kind === 'dir')) continue;
      if (s.kind === 'special') {
        ctx.warn(`skipped ${show(childRel)} (special file)`);
        continue;
      }
      if (r === undefined) {
        await this.added(childRel, s);
        continue;
      }
      if (s.kind !== r.kind) {
        await this.kindChanged(childRel, s, r);
        continue;
      }
      switch (s.kind) {
        case 'file': {
          const change = compareFiles(childRel, s, r, ctx.record(childRel), ctx.lookup);
          if (change) ctx.onChange(change);
          break;
        }
        case 'symlink': {
          const targets = this.readLinks(childRel);
          if (targets === undefined) break;
          const change = compareLinks(childRel, s, r, targets[0], targets[1]);
          if (change) ctx.onChange(change);
          break;
        }
        case 'dir': {
          const change = compareDirs(childRel, s, r);
          if (change) ctx.onChange(change);
          await this.both(childRel);
          break;
        }
      }
    }
    if (this.stopped) return;

    for (const name of replica.entries.keys()) {
      if (source.entries.has(name)) continue;
      if (await this.shouldStop()) return;
      const r = replica.entries.get(name)!;
      const childRel = joinRel(relPath, name);
      if (ctx.exclude(childRel, r.kind === 'dir')) continue;
      await this.removed(childRel, r);
    }
  }

  private readLinks(relPath: string): [string, string] | undefined {
    const { io, sourceRoot, replicaRoot } = this.ctx;
    try {
      return [io.readlink(sourceRoot + '/' + relPath), io.readlink(replicaRoot + '/' + relPath)];
    } catch (error) {
      if (isVanished(error)) this.ctx.warn(`${show(relPath)} vanished during the pass; skipped`);
      else this.ctx.error(`reading link ${show(relPath)}: ${describe(error)}`);
      return undefined;
    }
  }

  /** Only in the source: the entry and, for a folder, everything beneath it. */
  private async added(relPath: string, entry: Entry): Promise<void> {
    if (entry.kind === 'file') this.ctx.record(relPath);
    this.ctx.onChange({ type: 'new', relPath, source: entry });
    if (entry.kind === 'dir') await this.sourceOnly(relPath);
  }

  private async sourceOnly(relPath: string): Promise<void> {
    const source = await this.listSource(relPath);
    if (source === undefined) return;
    for (const name of source.entries.keys()) {
      if (await this.shouldStop()) return;
      const s = source.entries.get(name)!;
      const childRel = joinRel(relPath, name);
      if (this.ctx.exclude(childRel, s.kind === 'dir')) continue;
      if (s.kind === 'special') {
        this.ctx.warn(`skipped ${show(childRel)} (special file)`);
        continue;
      }
      await this.added(childRel, s);
    }
  }

  /**
   * Only in the replica: children first, then the entry. Returns true when something had to stay
   * (an excluded path, an unreadable folder), in which case the folders holding it stay too.
   */
  private async removed(relPath: string, entry: Entry): Promise<boolean> {
    if (entry.kind === 'dir') {
      const kept = await this.replicaOnly(relPath);
      if (kept) return true;
    }
    this.ctx.onChange({ type: 'extra', relPath, replica: entry });
    return false;
  }

  private async replicaOnly(relPath: string): Promise<boolean> {
    const replica = await this.listReplica(relPath);
    if (replica === undefined) return true;
    let kept = false;
    for (const name of replica.entries.keys()) {
      if (await this.shouldStop()) return true;
      const r = replica.entries.get(name)!;
      const childRel = joinRel(relPath, name);
      if (this.ctx.exclude(childRel, r.kind === 'dir')) {
        kept = true;
        continue;
      }
      if (await this.removed(childRel, r)) kept = true;
    }
    return kept;
  }

  private async kindChanged(relPath: string, source: Entry, replica: Entry): Promise<void> {
    if (replica.kind === 'dir') {
      // The replica folder's content goes first (children before the folder).
      if (await this.replicaOnly(relPath)) {
        this.ctx.error(`cannot replace folder ${show(relPath)} with a ${source.kind}: it holds excluded or unreadable paths`);
        return;
      }
    }
    if (source.kind === 'file') this.ctx.record(relPath);
    this.ctx.onChange({ type: 'kind', relPath, source, replica });
    if (source.kind === 'dir') await this.sourceOnly(relPath);
  }
}
