/**
 * The lockstep walk (rclone's march): list the same folder on both sides, pair entries by name,
 * and emit a `Change` for every path not already in sync, deciding all that needs no file read.
 *
 * Memory grows with the change, not the tree: only changes are kept, folders are walked depth
 * first. A source folder that cannot be read is reported and its replica side is left alone, so
 * an I/O or permission error never looks like an empty folder (no deletes beneath it).
 */
import { describe, errorCode, isTypeChanged, isVanished, show } from '../errors.js';
import { AT, DIR, entryAt, FILE, fillEntry, kindAt, NUMS, scratchEntry, SPECIAL, SYMLINK, type Entry, type FolderListing } from '../tree/entry.js';
import type { ExcludeMatcher } from '../tree/filter.js';
import type { Lister } from '../tree/lister.js';
import { byName, joinRel } from '../tree/scan.js';
import { compareDirs, compareFiles, compareLinks } from './diff.js';
import type { CacheLookup } from './fingerprint.js';
import type { Owners } from './owners.js';
import type { Change, RecordFields } from './types.js';

export interface WalkContext {
  /** Folder listings of each tree (inline, or from a listing thread). */
  sourceLister: Lister;
  replicaLister: Lister;
  /** A symbolic link's target text on one side. */
  readlink(side: Side, relPath: string): string | Promise<string>;
  exclude: ExcludeMatcher;
  /** Marks a path's record (if any) as still in the source. */
  seen(relPath: string): void;
  /**
   * The manifest's lookup for the files directly in `relDir`, by name and `relPath`; looking a file
   * up marks it as still in the source. What it returns may be read in place: valid until the next
   * lookup, never to be kept.
   */
  records(relDir: string): (name: string, relPath: string) => RecordFields | undefined;
  lookup: CacheLookup;
  /** Which owners and groups the replica keeps (as compared). */
  owners: Owners;
  onChange(change: Change): void;
  /** A temporary file of ours found in the replica (to sweep). */
  onTemp(relPath: string): void;
  /** A special file in the source (skipped). */
  onSpecial(relPath: string): void;
  /** What could not be read, and why (`unreadableMessage` words it for a pass). Nothing beneath an unreadable folder is walked. */
  onUnreadable(unreadable: Unreadable): void;
  /** What the walk cannot do (a replica folder in the way that holds excluded paths). */
  error(message: string): void;
  /** Lets the event loop run now and then (signals); resolves true when the pass must stop. */
  tick(): Promise<boolean>;
  /** Told each source folder listed. */
  onSourceDir?: (relPath: string) => void;
  /** With `--hard-links`: told every file with more than one name on either side (`LinkIndex`). */
  links?: { file(relPath: string, source: Entry | undefined, replica: Entry | undefined): void };
  /**
   * A replica folder we may not list (EACCES: its mode shuts us out) is `open`ed for us, if it can
   * be (false: it stays unreadable), and it and its subfolders are then listed by `lister`.
   */
  openReplicaFolder?: { open(relPath: string): boolean | Promise<boolean>; lister: Lister };
  /**
   * Whether a folder on one side only is walked into (default true: a pass creates or deletes
   * everything beneath it). `verify` reports the folder alone.
   */
  descend?: boolean;
}

/** A folder that could not be listed, a link that could not be read. */
export interface Unreadable {
  side: Side;
  what: 'folder' | 'link';
  relPath: string;
  error: unknown;
}

/** A pass's words for what could not be read, as a warning (the tree moved under us) or an error. */
export function unreadableMessage({ side, what, relPath, error }: Unreadable): { level: 'warn' | 'error'; message: string } {
  const path = show(relPath);
  switch (what) {
    case 'folder':
      if (side === 'replica') return { level: 'error', message: `reading replica folder ${path}: ${describe(error)}` };
      if (isVanished(error)) return { level: 'warn', message: `source folder ${path} vanished during the pass; skipped` };
      return { level: 'error', message: `reading source folder ${path}: ${describe(error)} (nothing beneath it is deleted)` };
    case 'link':
      if (isVanished(error)) return { level: 'warn', message: `${path} vanished during the pass; skipped` };
      if (isTypeChanged(error)) return { level: 'warn', message: `${path} changed type in the ${side} during the pass; skipped (the next pass mirrors it)` };
      return { level: 'error', message: `reading link ${path}: ${describe(error)}` };
  }
}

/** Which tree. */
export type Side = 'source' | 'replica';

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
  /** Paths compared so far (either side; excluded paths, temporary and special files left out). */
  compared = 0;
  /** Replica folders opened for us (`openReplicaFolder`): they and what they hold are listed by its lister. */
  private readonly opened: string[] = [];
  /** Perf: what `compareFiles` and `compareDirs` read while nothing changed; refilled per entry. */
  private readonly s = scratchEntry();
  private readonly r = scratchEntry();

  private readonly descend: boolean;
  /** The scope of a scoped walk (`runScoped`). */
  private scope: { folders: ReadonlySet<string>; subtrees: ReadonlySet<string> } | undefined;
  /** Folders listed, on either side (a scoped walk's: what its records are checked against). */
  readonly listedDirs = new Set<string>();

  constructor(private readonly ctx: WalkContext) {
    this.descend = ctx.descend ?? true;
  }

  /** Walks both roots; `replicaExists` false (a dry run into a missing replica) walks the source only. */
  async run(sourceRootEntry: Entry, replicaRootEntry: Entry | undefined): Promise<WalkResult> {
    if (replicaRootEntry === undefined) {
      await this.sourceOnly('');
    } else {
      await this.folder('', sourceRootEntry, replicaRootEntry);
    }
    return this.result();
  }

  /**
   * A scoped walk (`--watch`): only `scope.folders` are listed, one level each, and `scope.subtrees`
   * whole; a folder on both sides that is neither is trusted, not listed (its records stay as
   * they are). A scope member is walked from itself, given its two entries (`stat`), unless an
   * ancestor in the scope reaches it.
   */
  async runScoped(scope: { folders: ReadonlySet<string>; subtrees: ReadonlySet<string> }, stat: (side: Side, relPath: string) => Promise<Entry | undefined>): Promise<WalkResult> {
    this.scope = scope;
    const members = [...new Set([...scope.folders, ...scope.subtrees])].filter((dir) => !this.ancestorInScope(dir)).sort(byWalkOrder);
    for (const dir of members) {
      if (this.stopped) break;
      const source = await stat('source', dir);
      const replica = await stat('replica', dir);
      // Gone from the source: its parent's listing (an event named it there) finds it missing.
      if (source === undefined || source.kind !== 'dir') continue;
      if (dir === '' || replica?.kind === 'dir') await this.folder(dir, source, replica!);
      else if (replica === undefined) await this.added(dir, source);
      else await this.kindChanged(dir, source, replica);
    }
    return this.result();
  }

  /** A folder on both sides: its own metadata, then what it holds. */
  private async folder(relPath: string, source: Entry, replica: Entry): Promise<void> {
    const change = compareDirs(relPath, source, replica, this.ctx.owners);
    if (change) this.ctx.onChange(change);
    await this.both(relPath);
  }

  /** Whether `relDir` is walked into in a scoped walk: named by the scope, or inside a subtree of it. */
  private inScope(relDir: string): boolean {
    const scope = this.scope!;
    if (scope.folders.has(relDir) || scope.subtrees.has(relDir)) return true;
    for (let at = relDir.lastIndexOf('/'); at > 0; at = relDir.lastIndexOf('/', at - 1)) if (scope.subtrees.has(relDir.slice(0, at))) return true;
    return false;
  }

  /**
   * Whether `relDir` is reached by descent in a scoped walk: its parent is walked into (listed
   * itself, or inside a subtree). A folder further up does not reach it: a folder named by the
   * scope is listed one level, and its children outside the scope are trusted, not entered.
   */
  private ancestorInScope(relDir: string): boolean {
    if (relDir === '') return false;
    const slash = relDir.lastIndexOf('/');
    return this.inScope(slash < 0 ? '' : relDir.slice(0, slash));
  }

  private result(): WalkResult {
    return {
      complete: this.complete && !this.stopped,
      stopped: this.stopped,
      sourceRootListed: this.sourceRootListed,
      sourceRootEntries: this.sourceRootEntries,
      replicaEntries: this.replicaEntries,
    };
  }

  /**
   * Whether to call `shouldStop`: stopped, or 256 entries since the last tick.
   *
   * Perf: a promise per entry would cost more than the lstat; yield every 256 entries. Checked
   * synchronously first, as `shouldStop` is async: awaiting it per entry suspends the walk each time.
   */
  private due(): boolean {
    return this.stopped || ++this.sinceTick >= 256;
  }

  /** Lets the event loop run (call when `due`); true when the pass must stop. */
  private async shouldStop(): Promise<boolean> {
    if (this.stopped) return true;
    this.sinceTick = 0;
    this.stopped = await this.ctx.tick();
    return this.stopped;
  }

  private async listSource(relPath: string): Promise<FolderListing | undefined> {
    try {
      const listing = await this.ctx.sourceLister.list(relPath);
      if (this.scope !== undefined) this.listedDirs.add(relPath);
      this.listed += listing.names.length;
      this.ctx.onSourceDir?.(relPath);
      if (relPath === '') {
        this.sourceRootListed = true;
        for (let i = 0; i < listing.names.length; i++) if (!this.ctx.exclude(listing.names[i], kindAt(listing, i) === DIR)) this.sourceRootEntries++;
      }
      return listing;
    } catch (error) {
      this.complete = false;
      this.ctx.onUnreadable({ side: 'source', what: 'folder', relPath, error });
      return undefined;
    }
  }

  private async listReplica(relPath: string): Promise<FolderListing | undefined> {
    const opened = this.inOpened(relPath);
    try {
      const listing = await (opened ? this.ctx.openReplicaFolder!.lister : this.ctx.replicaLister).list(relPath);
      if (this.scope !== undefined) this.listedDirs.add(relPath);
      this.replicaEntries += listing.names.length;
      this.listed += listing.names.length;
      for (const name of listing.temps) this.ctx.onTemp(joinRel(relPath, name));
      return listing;
    } catch (error) {
      // A replica folder whose mode shuts us out (mirrored from a source folder that did): opened,
      // and it and what it holds listed again (its lister never could).
      if (!opened && errorCode(error) === 'EACCES' && this.ctx.openReplicaFolder && (await this.ctx.openReplicaFolder.open(relPath))) {
        this.opened.push(relPath);
        return this.listReplica(relPath);
      }
      this.complete = false;
      this.ctx.onUnreadable({ side: 'replica', what: 'folder', relPath, error });
      return undefined;
    }
  }

  /** Whether `relPath` is a replica folder opened this walk, or below one. */
  private inOpened(relPath: string): boolean {
    return this.opened.length > 0 && this.opened.some((dir) => relPath === dir || dir === '' || relPath.startsWith(dir + '/'));
  }

  /** A folder present on both sides. */
  private async both(relPath: string): Promise<void> {
    const source = await this.listSource(relPath);
    if (source === undefined) return;
    const replica = await this.listReplica(relPath);
    if (replica === undefined) return;
    const { ctx } = this;
    const record = ctx.records(relPath);
    const sourceNames = source.names;
    const replicaNames = replica.names;

    // Perf: both sides' names are sorted `byName` (code-unit order, as `<`): a merge join pairs
    // them with no Map, and the numbers are compared in place (an Entry only for a change).
    let j = 0;
    for (let i = 0; i < sourceNames.length; i++) {
      if (this.due() && (await this.shouldStop())) return;
      const name = sourceNames[i];
      while (j < replicaNames.length && replicaNames[j] < name) j++;
      const r = j < replicaNames.length && replicaNames[j] === name ? j : -1;
      const kind = kindAt(source, i);
      const childRel = joinRel(relPath, name);
      if (ctx.exclude(childRel, kind === DIR)) continue;
      if (kind === SPECIAL) {
        ctx.onSpecial(childRel);
        continue;
      }
      this.compared++;
      if (r === -1) {
        await this.added(childRel, entryAt(source, i));
        continue;
      }
      if (kind !== kindAt(replica, r)) {
        await this.kindChanged(childRel, entryAt(source, i), entryAt(replica, r));
        continue;
      }
      switch (kind) {
        case FILE: {
          if (ctx.links !== undefined && (source.nums[i * NUMS + AT.nlink] > 1 || replica.nums[r * NUMS + AT.nlink] > 1)) ctx.links.file(childRel, entryAt(source, i), entryAt(replica, r));
          const known = record(name, childRel);
          // Decided on the scratch entries; a change is decided again on entries it may keep.
          if (compareFiles(childRel, fillEntry(this.s, source, i), fillEntry(this.r, replica, r), known, ctx.lookup, ctx.owners) !== undefined) {
            ctx.onChange(compareFiles(childRel, entryAt(source, i), entryAt(replica, r), known, ctx.lookup, ctx.owners)!);
          }
          break;
        }
        case SYMLINK: {
          const targets = await this.readLinks(childRel);
          if (targets === undefined) break;
          const change = compareLinks(childRel, entryAt(source, i), entryAt(replica, r), targets[0], targets[1], ctx.owners);
          if (change) ctx.onChange(change);
          break;
        }
        case DIR: {
          if (compareDirs(childRel, fillEntry(this.s, source, i), fillEntry(this.r, replica, r), ctx.owners) !== undefined) {
            ctx.onChange(compareDirs(childRel, entryAt(source, i), entryAt(replica, r), ctx.owners)!);
          }
          // (A scoped walk trusts a folder on both sides that the scope does not name.)
          if (this.scope === undefined || this.inScope(childRel)) await this.both(childRel);
          break;
        }
      }
    }
    if (this.stopped) return;

    let i = 0;
    for (let r = 0; r < replicaNames.length; r++) {
      const name = replicaNames[r];
      while (i < sourceNames.length && sourceNames[i] < name) i++;
      if (i < sourceNames.length && sourceNames[i] === name) continue;
      if (this.due() && (await this.shouldStop())) return;
      const childRel = joinRel(relPath, name);
      if (ctx.exclude(childRel, kindAt(replica, r) === DIR)) continue;
      this.compared++;
      await this.removed(childRel, entryAt(replica, r));
    }
    ctx.sourceLister.discard(source);
    ctx.replicaLister.discard(replica);
  }

  /** Both sides' link targets; undefined if either could not be read (each failure reported). */
  private async readLinks(relPath: string): Promise<[string, string] | undefined> {
    const source = await this.readLink('source', relPath);
    const replica = await this.readLink('replica', relPath);
    return source === undefined || replica === undefined ? undefined : [source, replica];
  }

  private async readLink(side: Side, relPath: string): Promise<string | undefined> {
    try {
      return await this.ctx.readlink(side, relPath);
    } catch (error) {
      this.ctx.onUnreadable({ side, what: 'link', relPath, error });
      return undefined;
    }
  }

  /** Only in the source: the entry and, for a folder, everything beneath it. */
  private async added(relPath: string, entry: Entry): Promise<void> {
    if (entry.kind === 'file') this.ctx.seen(relPath);
    if (entry.kind === 'file' && entry.nlink > 1) this.ctx.links?.file(relPath, entry, undefined);
    this.ctx.onChange({ type: 'new', relPath, source: entry });
    if (entry.kind === 'dir' && this.descend) await this.sourceOnly(relPath);
  }

  private async sourceOnly(relPath: string): Promise<void> {
    const source = await this.listSource(relPath);
    if (source === undefined) return;
    for (let i = 0; i < source.names.length; i++) {
      if (this.due() && (await this.shouldStop())) return;
      const kind = kindAt(source, i);
      const childRel = joinRel(relPath, source.names[i]);
      if (this.ctx.exclude(childRel, kind === DIR)) continue;
      if (kind === SPECIAL) {
        this.ctx.onSpecial(childRel);
        continue;
      }
      this.compared++;
      await this.added(childRel, entryAt(source, i));
    }
    this.ctx.sourceLister.discard(source);
  }

  /**
   * Only in the replica: children first, then the entry. Returns true when something had to stay
   * (an excluded path, an unreadable folder), in which case the folders holding it stay too.
   */
  private async removed(relPath: string, entry: Entry): Promise<boolean> {
    if (entry.kind === 'file' && entry.nlink > 1) this.ctx.links?.file(relPath, undefined, entry);
    if (entry.kind === 'dir' && this.descend) {
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
    for (let i = 0; i < replica.names.length; i++) {
      if (this.due() && (await this.shouldStop())) return true;
      const childRel = joinRel(relPath, replica.names[i]);
      if (this.ctx.exclude(childRel, kindAt(replica, i) === DIR)) {
        kept = true;
        continue;
      }
      this.compared++;
      if (await this.removed(childRel, entryAt(replica, i))) kept = true;
    }
    this.ctx.replicaLister.discard(replica);
    return kept;
  }

  private async kindChanged(relPath: string, source: Entry, replica: Entry): Promise<void> {
    if (replica.kind === 'dir' && this.descend) {
      // The replica folder's content goes first (children before the folder).
      if (await this.replicaOnly(relPath)) {
        this.ctx.error(`cannot replace folder ${show(relPath)} with a ${source.kind}: it holds excluded or unreadable paths`);
        return;
      }
    }
    if (source.kind === 'file') this.ctx.seen(relPath);
    if ((source.kind === 'file' && source.nlink > 1) || (replica.kind === 'file' && replica.nlink > 1)) this.ctx.links?.file(relPath, source.kind === 'file' ? source : undefined, replica);
    this.ctx.onChange({ type: 'kind', relPath, source, replica });
    if (source.kind === 'dir' && this.descend) await this.sourceOnly(relPath);
  }
}

/** Walk order of two paths: segment by segment in `byName` order, a folder before what it holds. */
export function byWalkOrder(a: string, b: string): number {
  if (a === b) return 0;
  if (a === '') return -1;
  if (b === '') return 1;
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const order = byName(x[i], y[i]);
    if (order !== 0) return order;
  }
  return x.length - y.length;
}
