/**
 * `--watch`: file-system events from the source ask for a pass soon after they settle; the
 * interval's pass stays the safety net for whatever events miss.
 *
 * One non-recursive `fs.watch` (inotify) per source folder, not `fs.watch(root, { recursive })`:
 * Node 20's recursive watch on Linux walks the tree synchronously and holds a watcher per file
 * (measured ~290 ms and ~3 KB per file at 20k files), which a million-file tree cannot afford. A
 * folder's watch reports changes to the entries in it, so folders are enough: about 1 watch per
 * 20–50 files.
 *
 * A folder created later is watched as soon as its event arrives (with what is already inside
 * it), before the pass it triggers walks it, so nothing written into it is missed. The set of
 * watched folders is also reconciled with each pass's walk.
 *
 * Limits (said in the README): when the kernel's event queue overflows, events are lost without
 * notice, and when a watch cannot be added (inotify's `max_user_watches`, a file system without
 * events such as many network mounts), that folder's changes are seen by the interval's pass.
 */
import * as fs from 'node:fs';
import { basename } from 'node:path';
import { isVanished } from '../errors.js';
import type { ExcludeMatcher } from '../tree/filter.js';
import { joinRel } from '../tree/scan.js';

export interface WatchOptions {
  root: string;
  exclude: ExcludeMatcher;
  /** Quiet time after the last event before a pass. */
  delayMs: number;
  /** Called whenever the time of the next watch pass changes (to wake the sleeping loop). */
  onDue: () => void;
  warn: (message: string) => void;
  debug: (message: string) => void;
}

/** A busy tree still gets a pass at most this many delays after its first unsynced change. */
const MAX_DELAYS = 10;

export class SourceWatcher {
  /**
   * Each watched folder's watch, and the folder's identity (`identity`) when it was made: a folder
   * removed and made again at the same path (or a disk mounted again there) is another folder,
   * whose watch must be made anew; the old one hears nothing more, and its changes would wait for
   * the interval's pass.
   */
  private readonly watchers = new Map<string, { watcher: fs.FSWatcher; id: string | undefined }>();
  private firstEventAt: number | undefined;
  private lastEventAt = 0;
  /** The first changed path seen since the last pass (for the log). */
  private firstPath: string | undefined;
  /** What to ignore: the configuration's at start, each pass's from then on. */
  private exclude: ExcludeMatcher;
  private warned = false;
  private closed = false;

  constructor(private readonly o: WatchOptions) {
    this.exclude = o.exclude;
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

  /** A pass starts: changes seen from now on call for the next one. */
  passStarted(exclude: ExcludeMatcher): void {
    this.exclude = exclude;
    this.firstEventAt = undefined;
    this.firstPath = undefined;
  }

  /**
   * After a pass: the folders it walked in the source. Those not watched yet are; a watched one
   * the walk did not see is dropped only once it is gone or excluded (a folder made during the
   * pass, after its parent was listed, keeps its watch).
   */
  reconcile(dirs: ReadonlySet<string>): void {
    if (this.closed) return;
    for (const dir of [...this.watchers.keys()]) {
      if (!dirs.has(dir) && !this.stillWatchable(dir)) this.unwatch(dir);
    }
    // Each walked folder watched, and watched anew if it is another folder than the one watched
    // (removed and made again, a disk mounted again: `watchDir`). Perf: an lstat a folder a pass.
    for (const dir of dirs) this.watchDir(dir);
  }

  private unwatch(relDir: string): void {
    this.watchers.get(relDir)?.watcher.close();
    this.watchers.delete(relDir);
  }

  private stillWatchable(relDir: string): boolean {
    try {
      return fs.lstatSync(this.abs(relDir)).isDirectory() && !this.exclude(relDir, true);
    } catch {
      return false;
    }
  }

  get watching(): number {
    return this.watchers.size;
  }

  close(): void {
    this.closed = true;
    for (const { watcher } of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }

  private watchTree(relDir: string): void {
    if (!this.watchDir(relDir)) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.abs(relDir), { withFileTypes: true });
    } catch {
      return; // gone again, or unreadable: the pass reports it
    }
    for (const entry of entries) {
      const rel = joinRel(relDir, entry.name);
      if (entry.isDirectory() && !this.exclude(rel, true)) this.watchTree(rel);
    }
  }

  /** Watches a folder; false if it is watched already (the same folder), or cannot be. */
  private watchDir(relDir: string): boolean {
    if (this.closed) return false;
    const id = identity(this.abs(relDir));
    const watched = this.watchers.get(relDir);
    if (watched) {
      if (watched.id === id) return false;
      this.unwatch(relDir); // another folder now: its watch is made anew
    }
    try {
      const watcher = fs.watch(this.abs(relDir), { persistent: false }, (_event, name) => {
        if (name !== null && this.watchers.get(relDir)?.watcher === watcher) this.dropIfGone(relDir, String(name));
        this.onEvent(relDir, name);
      });
      watcher.on('error', () => {
        // The folder went away (or the watch broke): forget it; the pass sees what happened.
        if (this.watchers.get(relDir)?.watcher === watcher) this.unwatch(relDir);
        else watcher.close();
      });
      this.watchers.set(relDir, { watcher, id });
      return true;
    } catch (error) {
      if (isVanished(error)) return false;
      if (!this.warned) {
        this.warned = true;
        const code = (error as NodeJS.ErrnoException).code;
        const why = code === 'ENOSPC' ? "the system's limit of watches (fs.inotify.max_user_watches) is reached" : String((error as Error).message);
        this.o.warn(`--watch: cannot watch some source folders (${why}); changes there are found by the interval's pass`);
      }
      return false;
    }
  }

  /**
   * The watched folder itself removed or unmounted: inotify names it by its own name, and its
   * watch hears nothing more. Dropped, it is watched anew when its parent's event for it comes, or
   * by the pass's `reconcile` (the root, a disk mounted again: same inode, same birth time). (A
   * child of the same name removed is taken for it: its watch is back after the pass that event
   * brings.)
   */
  private dropIfGone(relDir: string, name: string): void {
    const own = basename(this.abs(relDir));
    if (name === own && !fs.existsSync(this.abs(joinRel(relDir, own)))) this.unwatch(relDir);
  }

  private onEvent(relDir: string, name: string | Buffer | null): void {
    if (this.closed) return;
    // No name (some file systems, an overflowed queue): something changed in this folder.
    const rel = name === null ? relDir : joinRel(relDir, String(name));
    if (name !== null) {
      let isDir = false;
      try {
        isDir = fs.lstatSync(this.abs(rel)).isDirectory();
      } catch {
        // removed: still a change
      }
      if (this.exclude(rel, isDir)) return;
      // A new folder is watched now, before the pass it triggers walks it; so is one made again
      // where a watched one was removed (`watchDir`: the old watch hears nothing more).
      if (isDir) this.watchTree(rel);
    }
    const now = Date.now();
    if (this.firstEventAt === undefined) {
      this.firstEventAt = now;
      this.firstPath = rel;
      this.o.debug(`--watch: ${rel || '.'} changed; a pass in ${this.o.delayMs} ms unless more changes follow`);
    }
    this.lastEventAt = now;
    this.o.onDue();
  }

  private abs(relPath: string): string {
    return relPath === '' ? this.o.root : this.o.root + '/' + relPath;
  }
}

/**
 * A folder's device, inode and birth time, or undefined if it is gone. (ext4 hands a folder made
 * again at once the inode just freed: its birth time tells the two apart.)
 */
function identity(absPath: string): string | undefined {
  try {
    const stats = fs.lstatSync(absPath, { bigint: true });
    return `${stats.dev}:${stats.ino}:${stats.birthtimeNs}`;
  } catch {
    return undefined;
  }
}
