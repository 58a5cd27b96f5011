/**
 * inotify read by the addon's own thread (`native/watch.c`): one descriptor for every watch, and
 * every event the kernel gives: a created or removed entry told apart, a folder's rename paired
 * by its cookie (so the replica renames it too), and an overflowed queue (`IN_Q_OVERFLOW`: events
 * were lost) seen. A watch follows its folder when it is renamed: each watched folder is a node
 * knowing its parent and its name, so a rename moves one node, and a path is made when needed.
 */
import { getSystemErrorName } from 'node:util';
import type { NativeWatch, NativeWatchHandle } from '../native.js';
import { decodeName, fsPath } from '../tree/names.js';
import { joinRel } from '../tree/scan.js';
import type { WatchBackend, WatchEvent } from './backend.js';

const IN_MODIFY = 0x2;
const IN_ATTRIB = 0x4;
const IN_CLOSE_WRITE = 0x8;
const IN_MOVED_FROM = 0x40;
const IN_MOVED_TO = 0x80;
const IN_CREATE = 0x100;
const IN_DELETE = 0x200;
const IN_DELETE_SELF = 0x400;
const IN_MOVE_SELF = 0x800;
const IN_UNMOUNT = 0x2000;
const IN_Q_OVERFLOW = 0x4000;
const IN_IGNORED = 0x8000;
const IN_ONLYDIR = 0x1000000;
const IN_DONT_FOLLOW = 0x2000000;
const IN_EXCL_UNLINK = 0x4000000;
const IN_ISDIR = 0x40000000;

const MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK;

/** A watched folder: its name in its parent (`''` for the root). */
interface Node {
  wd: number;
  parent: Node | undefined;
  name: string;
  children: Map<string, Node>;
}

export class InotifyBackend implements WatchBackend {
  readonly name = 'inotify, one descriptor read by the addon (lost events seen)';
  private readonly handle: NativeWatchHandle;
  private readonly byWd = new Map<number, Node>();
  private root: Node | undefined;
  private closed = false;

  constructor(
    private readonly native: NativeWatch,
    private readonly onEvent: (event: WatchEvent) => void,
  ) {
    this.handle = native.watchOpen((events) => this.read(events));
  }

  add(relDir: string, abs: string): void {
    const wd = this.native.watchAdd(this.handle, fsPath(abs), MASK);
    if (wd < 0) throw Object.assign(new Error(`cannot watch ${abs}`), { code: errnoName(-wd), errno: wd });
    const existing = this.node(relDir);
    if (existing !== undefined && existing.wd === wd) return;
    if (existing !== undefined) this.forget(existing);
    const parentPath = relDir === '' ? undefined : relDir.slice(0, Math.max(0, relDir.lastIndexOf('/')));
    const parent = parentPath === undefined ? undefined : this.node(parentPath);
    const name = relDir.slice(relDir.lastIndexOf('/') + 1);
    const node: Node = { wd, parent, name: relDir === '' ? '' : name, children: new Map() };
    if (parent !== undefined) parent.children.set(node.name, node);
    if (relDir === '') this.root = node;
    this.byWd.set(wd, node);
  }

  has(relDir: string): boolean {
    return this.node(relDir) !== undefined;
  }

  remove(relDir: string): void {
    const node = this.node(relDir);
    if (node === undefined) return;
    this.native.watchRemove(this.handle, node.wd);
    this.forget(node);
  }

  rename(from: string, to: string): void {
    const node = this.node(from);
    const parent = this.node(to.slice(0, Math.max(0, to.lastIndexOf('/'))));
    if (node === undefined || node.parent === undefined) return;
    node.parent.children.delete(node.name);
    node.name = to.slice(to.lastIndexOf('/') + 1);
    node.parent = parent;
    if (parent !== undefined) parent.children.set(node.name, node);
    else this.forget(node); // moved below a folder not watched: its watches are of no use
  }

  get size(): number {
    return this.byWd.size;
  }

  stale(): Iterable<string> {
    return []; // (a watch ends with its folder: IN_IGNORED)
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.watchClose(this.handle);
    this.byWd.clear();
  }

  /** The node of folder `relDir`: down from the root, a name at a time. */
  private node(relDir: string): Node | undefined {
    let node = this.root;
    if (relDir === '') return node;
    for (const name of relDir.split('/')) {
      node = node?.children.get(name);
      if (node === undefined) return undefined;
    }
    return node;
  }

  private path(node: Node): string {
    let path = node.name;
    for (let up = node.parent; up !== undefined && up.parent !== undefined; up = up.parent) path = up.name + '/' + path;
    return node.parent === undefined ? '' : path;
  }

  /** Drops a node and those below it (their watches end with their folders, or were removed). */
  private forget(node: Node): void {
    for (const child of node.children.values()) this.forget(child);
    if (this.byWd.get(node.wd) === node) this.byWd.delete(node.wd);
    node.parent?.children.delete(node.name);
    if (node === this.root) this.root = undefined;
  }

  /** One read's events (`struct inotify_event` after another: wd, mask, cookie, len, name). */
  private read(events: Buffer): void {
    if (this.closed) return;
    const moves = new Map<number, { dir: string; name: string; isDir: boolean }>();
    for (let at = 0; at + 16 <= events.length; ) {
      const wd = events.readInt32LE(at);
      const mask = events.readUInt32LE(at + 4);
      const cookie = events.readUInt32LE(at + 8);
      const len = events.readUInt32LE(at + 12);
      const raw = events.subarray(at + 16, at + 16 + len);
      const end = raw.indexOf(0);
      const name = len === 0 ? undefined : decodeName(end < 0 ? raw : raw.subarray(0, end));
      at += 16 + len;
      if (mask & IN_Q_OVERFLOW) {
        this.onEvent({ kind: 'lost', reason: "the kernel's event queue overflowed (fs.inotify.max_queued_events)" });
        continue;
      }
      const node = this.byWd.get(wd);
      if (node === undefined) continue;
      if (mask & IN_IGNORED) {
        this.forget(node); // its folder is gone (or unmounted): its parent's event said so
        continue;
      }
      const dir = this.path(node);
      if (mask & IN_UNMOUNT) {
        // A disk mounted in the source went away with what it held: its parent's event would not say.
        this.onEvent({ kind: 'lost', reason: `a filesystem in the source was unmounted (${dir === '' ? 'the root' : dir})` });
        continue;
      }
      if (mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        if (node === this.root) this.onEvent({ kind: 'lost', reason: 'the source root was removed or moved' });
        continue;
      }
      const isDir = (mask & IN_ISDIR) !== 0;
      if (mask & IN_MOVED_FROM && name !== undefined) {
        moves.set(cookie, { dir, name, isDir }); // told with its other half, or at the end of the read
        continue;
      }
      if (mask & IN_MOVED_TO && name !== undefined) {
        const from = moves.get(cookie);
        moves.delete(cookie);
        if (from !== undefined && isDir) {
          this.onEvent({ kind: 'renamed', from: joinRel(from.dir, from.name), to: joinRel(dir, name) });
          continue;
        }
        if (from !== undefined) this.onEvent({ kind: 'entry', dir: from.dir, name: from.name, isDir, removed: true });
        this.onEvent({ kind: 'entry', dir, name, isDir, created: true });
        continue;
      }
      this.onEvent({ kind: 'entry', dir, name, isDir, created: (mask & IN_CREATE) !== 0, removed: (mask & IN_DELETE) !== 0 });
    }
    // Moved out of the tree (no IN_MOVED_TO with its cookie): removed, as far as the tree goes.
    for (const { dir, name, isDir } of moves.values()) this.onEvent({ kind: 'entry', dir, name, isDir, removed: true });
  }
}

/** A positive errno's name (ENOSPC: out of watches), as Node's errors carry it. */
function errnoName(errno: number): string {
  return getSystemErrorName(-errno);
}
