/**
 * Node's fs.watch, one per folder (Node 20's recursive watch holds a watcher per file: ~3 KB each).
 * It cannot tell a created entry from a removed one, pair the two halves of a rename, nor see an
 * overflowed event queue (libuv drops that event: it carries no watch descriptor), so the watcher
 * looks at each named entry itself, and takes a burst of events as lost ones (`LIKELY_LOST`).
 */
import * as fs from 'node:fs';
import { decodeName, fsPath } from '../tree/names.js';
import type { WatchBackend, WatchEvent } from './backend.js';

export class FsWatchBackend implements WatchBackend {
  readonly name = "Node's fs.watch, a handle a folder (lost events unseen: a burst of events brings a full pass)";
  private readonly watchers = new Map<string, { watcher: fs.FSWatcher; id: string | undefined }>();

  constructor(
    private readonly root: string,
    private readonly onEvent: (event: WatchEvent) => void,
  ) {}

  add(relDir: string, abs: string): void {
    const id = identity(abs);
    const watched = this.watchers.get(relDir);
    if (watched) {
      if (watched.id === id) return;
      this.remove(relDir); // another folder now (removed and made again): watched anew
    }
    const watcher = fs.watch(fsPath(abs), { persistent: false, encoding: 'buffer' }, (_event, name) => {
      if (this.watchers.get(relDir)?.watcher !== watcher) return;
      const entry = name === null ? undefined : decode(name);
      // The watched folder itself removed: inotify names it by its own name; its watch hears nothing more.
      if (entry !== undefined && entry === basename(relDir, this.root) && !fs.existsSync(fsPath(abs))) this.remove(relDir);
      this.onEvent({ kind: 'entry', dir: relDir, name: entry });
    });
    watcher.on('error', () => {
      // The folder went away (or the watch broke): forgotten; the pass sees what happened.
      if (this.watchers.get(relDir)?.watcher === watcher) this.remove(relDir);
      else watcher.close();
    });
    this.watchers.set(relDir, { watcher, id });
  }

  has(relDir: string): boolean {
    return this.watchers.has(relDir);
  }

  remove(relDir: string): void {
    this.watchers.get(relDir)?.watcher.close();
    this.watchers.delete(relDir);
  }

  get size(): number {
    return this.watchers.size;
  }

  stale(): Iterable<string> {
    return this.watchers.keys();
  }

  close(): void {
    for (const { watcher } of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }
}

function decode(name: Buffer | string): string {
  return typeof name === 'string' ? name : decodeName(name);
}

function basename(relDir: string, root: string): string {
  const path = relDir === '' ? root : relDir;
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * A folder's device, inode and birth time, or undefined if it is gone. (ext4 hands a folder made
 * again at once the inode just freed: its birth time tells the two apart.)
 */
export function identity(absPath: string): string | undefined {
  try {
    const stats = fs.lstatSync(fsPath(absPath), { bigint: true });
    return `${stats.dev}:${stats.ino}:${stats.birthtimeNs}`;
  } catch {
    return undefined;
  }
}

