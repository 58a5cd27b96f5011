/**
 * `--watch`: the source's file-system events gathered into what the next pass must look at (a
 * scope: the folders events named, the subtrees that appeared, the folders renamed), or why only a
 * full pass will do (events may have been lost, a folder could not be watched, too much changed).
 * A pass is due once the events settle (`delayMs` after the last, at most `MAX_DELAYS` delays after
 * the first); the interval's full pass stays the safety net for what events cannot see.
 *
 * Every folder of the source is watched (a folder's watch reports its entries: one watch per 20–50
 * files), a new one as soon as its event arrives (with what is already in it), before the pass
 * that event brings lists it.
 */
import * as fs from 'node:fs';
import { loadNative } from '../native.js';
import type { ExcludeMatcher } from '../tree/filter.js';
import { decodeName, fsPath } from '../tree/names.js';
import { joinRel } from '../tree/scan.js';
import type { WatchBackend, WatchEvent } from './backend.js';
import { FsWatchBackend } from './fs-watch.js';
import { InotifyBackend } from './inotify.js';

export interface WatchOptions {
  root: string;
  exclude: ExcludeMatcher;
  /** Quiet time after the last event before a pass. */
  delayMs: number;
  /** Called whenever the time of the next watch pass changes (to wake the sleeping loop). */
  onDue: () => void;
  warn: (message: string) => void;
  debug: (message: string) => void;
  /** Node's fs.watch even where the addon could read inotify (tests of that way). */
  fsWatch?: boolean;
}

/** What the next pass must look at, or `full`: why it must be a full pass. */
export interface WatchScope {
  folders: Set<string>;
  subtrees: Set<string>;
  renames: { from: string; to: string }[];
  full: string | undefined;
}

/** A busy tree still gets a pass at most this many delays after its first unsynced change. */
const MAX_DELAYS = 10;
/**
 * A scoped pass lists each folder it names on both sides; past a quarter of the tree's folders
 * (and at least this many) it would cost about what a full pass costs, without a full pass's
 * guarantees: a full pass instead (Syncthing's limit is 512 paths).
 */
const CAP_MIN = 512;
/**
 * Without the addon, an overflowed event queue cannot be seen (fs.watch drops that event): more
 * events than this since the last pass (a quarter of the kernel's default queue of 16,384) are
 * taken as possibly lost, and the pass is full.
 */
const LIKELY_LOST = 4096;

export class SourceWatcher {
  private readonly backend: WatchBackend;
  private scope: WatchScope = emptyScope();
  private events = 0;
  private firstEventAt: number | undefined;
  private lastEventAt = 0;
  /** The first changed path seen since the last pass (for the log). */
  private firstPath: string | undefined;
  /** What to ignore: the configuration's at start, each pass's from then on. */
  private exclude: ExcludeMatcher;
  /** A folder could not be watched (since the last full pass): its changes would go unseen. */
  private unwatched: string | undefined;
  private closed = false;

  constructor(private readonly o: WatchOptions) {
    this.exclude = o.exclude;
    const native = o.fsWatch ? undefined : loadNative();
    const onEvent = (event: WatchEvent) => this.onEvent(event);
    this.backend = native !== undefined ? new InotifyBackend(native, onEvent) : new FsWatchBackend(o.root, onEvent);
  }

  /** For the debug line: how events are read. */
  get name(): string {
    return this.backend.name;
  }

  /** Watches every folder of the source (a walk of folders only). */
  start(): void {
    this.watchTree('');
  }

  /** When a watch pass is due (ms since the epoch), or undefined when nothing changed. */
  get due(): number | undefined {
    if (this.firstEventAt === undefined) return undefined;
    return Math.min(this.lastEventAt + this.o.delayMs, this.firstEventAt + MAX_DELAYS * Math.max(this.o.delayMs, 100));
  }

  /** What triggered the coming pass, for the log. */
  get trigger(): string | undefined {
    return this.firstPath;
  }

  get watching(): number {
    return this.backend.size;
  }

  /**
   * A pass starts: what it must look at since the last one (and why it must be full, if it must);
   * changes seen from now on are the next pass's.
   */
  takeScope(exclude: ExcludeMatcher): WatchScope {
    this.exclude = exclude;
    const scope = this.scope;
    const cap = Math.max(CAP_MIN, Math.floor(this.backend.size / 4));
    const named = scope.folders.size + scope.subtrees.size;
    scope.full ??= this.unwatched;
    if (scope.full === undefined && named > cap) {
      scope.full = `${named} folders changed, more than the cap of ${cap} (a quarter of the ${this.backend.size} watched, at least ${CAP_MIN}): listing them would cost about what a full pass costs`;
    }
    if (scope.full === undefined && this.backend instanceof FsWatchBackend && this.events > LIKELY_LOST) {
      scope.full = `${this.events} events since the last pass: some may have been lost unseen (fs.watch cannot tell; the native addon can)`;
    }
    this.scope = emptyScope();
    this.events = 0;
    this.firstEventAt = undefined;
    this.firstPath = undefined;
    return scope;
  }

  /**
   * After a pass: the source folders it listed. Those not watched yet are (or anew, if another
   * folder is there now: removed and made again, a disk mounted again). After a full pass, a
   * watched one the walk did not see is dropped once it is gone or excluded (a folder made during
   * the pass, after its parent was listed, keeps its watch).
   */
  reconcile(dirs: ReadonlySet<string>, full: boolean): void {
    if (this.closed) return;
    if (full) {
      this.unwatched = undefined;
      for (const dir of [...this.backend.stale()]) if (!dirs.has(dir) && !this.stillWatchable(dir)) this.backend.remove(dir);
    }
    for (const dir of dirs) this.watchDir(dir);
  }

  close(): void {
    this.closed = true;
    this.backend.close();
  }

  private stillWatchable(relDir: string): boolean {
    try {
      return fs.lstatSync(fsPath(this.abs(relDir))).isDirectory() && !this.exclude(relDir, true);
    } catch {
      return false;
    }
  }

  private watchTree(relDir: string): void {
    if (!this.watchDir(relDir)) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(fsPath(this.abs(relDir)), { withFileTypes: true, encoding: 'buffer' }) as unknown as fs.Dirent[];
    } catch {
      return; // gone again, or unreadable: the pass reports it
    }
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const rel = joinRel(relDir, decodeEntryName(entry));
      if (!this.exclude(rel, true)) this.watchTree(rel);
    }
  }

  /** Watches a folder; false if it is watched already, or cannot be. */
  private watchDir(relDir: string): boolean {
    if (this.closed) return false;
    const had = this.backend.has(relDir);
    try {
      this.backend.add(relDir, this.abs(relDir));
      return !had;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      if (this.unwatched === undefined) {
        const why = code === 'ENOSPC' ? "the system's limit of watches (fs.inotify.max_user_watches) is reached" : String((error as Error).message);
        this.unwatched = `a source folder could not be watched (${why})`;
        this.o.warn(`--watch: cannot watch some source folders (${why}); every pass is a full one until a full pass can watch them all`);
      }
      return false;
    }
  }

  private onEvent(event: WatchEvent): void {
    if (this.closed) return;
    this.events++;
    const scope = this.scope;
    let path: string;
    switch (event.kind) {
      case 'lost':
        scope.full ??= `events may have been lost: ${event.reason}`;
        path = '';
        break;
      case 'renamed': {
        const { from, to } = event;
        if (this.exclude(from, true) || this.exclude(to, true)) {
          this.changed(parentOf(from), from, true, false);
          this.changed(parentOf(to), to, true, true);
          path = to;
          break;
        }
        this.backend.rename?.(from, to);
        renameIn(scope, from, to);
        scope.renames.push({ from, to });
        scope.folders.add(parentOf(from));
        scope.folders.add(parentOf(to));
        scope.folders.add(to);
        path = to;
        break;
      }
      case 'entry': {
        path = event.name === undefined ? event.dir : joinRel(event.dir, event.name);
        if (event.name !== undefined && !this.changed(event.dir, path, event.isDir, event.created, event.removed)) return;
        scope.folders.add(event.dir);
        break;
      }
    }
    const now = Date.now();
    if (this.firstEventAt === undefined) {
      this.firstEventAt = now;
      this.firstPath = path;
      this.o.debug(`--watch: ${path || '.'} changed; a pass in ${this.o.delayMs} ms unless more changes follow`);
    }
    this.lastEventAt = now;
    this.o.onDue();
  }

  /**
   * An entry `path` of folder `dir` changed: false if it is excluded. A folder that appeared (made,
   * or moved in) is watched now, with what it holds, and listed whole by the next pass.
   */
  private changed(dir: string, path: string, isDir: boolean | undefined, created?: boolean, removed?: boolean): boolean {
    let folder = isDir;
    let exists = !removed;
    if (folder === undefined || created === undefined) {
      // (fs.watch says neither: looked at.)
      try {
        folder = fs.lstatSync(fsPath(this.abs(path))).isDirectory();
        exists = true;
      } catch {
        folder = false;
        exists = false;
      }
    }
    if (this.exclude(path, folder === true)) return false;
    if (folder && exists && (created || !this.backend.has(path))) {
      this.watchTree(path);
      this.scope.subtrees.add(path);
    }
    if (folder && removed) this.backend.remove(path);
    this.scope.folders.add(dir);
    return true;
  }

  private abs(relPath: string): string {
    return relPath === '' ? this.o.root : this.o.root + '/' + relPath;
  }
}

function emptyScope(): WatchScope {
  return { folders: new Set(), subtrees: new Set(), renames: [], full: undefined };
}

function parentOf(relPath: string): string {
  const slash = relPath.lastIndexOf('/');
  return slash < 0 ? '' : relPath.slice(0, slash);
}

/** The scope's paths at or below `from` moved below `to` (a folder renamed before the pass). */
function renameIn(scope: WatchScope, from: string, to: string): void {
  const moved = (path: string) => (path === from ? to : path.startsWith(from + '/') ? to + path.slice(from.length) : path);
  for (const set of [scope.folders, scope.subtrees]) {
    for (const path of [...set]) {
      const now = moved(path);
      if (now === path) continue;
      set.delete(path);
      set.add(now);
    }
  }
  for (const rename of scope.renames) rename.to = moved(rename.to);
}

function decodeEntryName(entry: fs.Dirent): string {
  const name = entry.name as unknown as Buffer | string;
  return typeof name === 'string' ? name : decodeName(name);
}
