/**
 * The replica's folders listed over SFTP. A walk asks for one folder at a time and waits for it;
 * a round trip each (opendir, readdir…, close) would make a pass cost a network latency per folder.
 * So when a folder's listing arrives, its subfolders' listings are asked for at once, in the order
 * the walk visits them (depth first, by name), up to `AHEAD` folders under way and `KEPT` listings
 * waiting to be read: the walk mostly finds its next listing already here.
 */
import type { FolderListing } from '../../tree/entry.js';
import { AT, DIR, NUMS } from '../../tree/entry.js';
import type { Lister } from '../../tree/lister.js';
import { packSftpListing, type Sftp } from './client.js';

/** Listings requested at once. */
const AHEAD = 32;
/** Listings fetched ahead and not yet read, at most (a walk that skips folders, an excluded one, leaves them here). */
const KEPT = 2048;

export class SftpLister implements Lister {
  private readonly fetched = new Map<string, Promise<FolderListing>>();
  /** Folders to fetch ahead, the next first. */
  private queue: string[] = [];
  private inFlight = 0;

  constructor(
    private readonly sftp: Sftp,
    private readonly root: string,
    /** Fetch subfolders ahead (a whole walk); a scoped pass lists few folders and asks for each. */
    private readonly ahead: boolean,
  ) {}

  list(relDir: string): Promise<FolderListing> {
    const ready = this.fetched.get(relDir);
    if (ready !== undefined) {
      this.fetched.delete(relDir);
      return ready;
    }
    this.queue = this.queue.filter((dir) => dir !== relDir);
    return this.fetch(relDir);
  }

  private fetch(relDir: string): Promise<FolderListing> {
    this.inFlight++;
    const path = relDir === '' ? this.root : `${this.root}/${relDir}`;
    const listing = this.sftp.readdir(path).then(packSftpListing);
    void listing.then(
      (done) => {
        this.inFlight--;
        if (this.ahead) this.plan(relDir, done);
        this.pump();
      },
      () => {
        this.inFlight--;
        this.pump();
      },
    );
    return listing;
  }

  /** A listing's subfolders go first in the queue, in their order: the walk visits them next. */
  private plan(relDir: string, listing: FolderListing): void {
    const subdirs: string[] = [];
    for (let i = 0; i < listing.names.length; i++) {
      if (listing.nums[i * NUMS + AT.kind] === DIR) subdirs.push(relDir === '' ? listing.names[i] : `${relDir}/${listing.names[i]}`);
    }
    if (subdirs.length > 0) this.queue = subdirs.concat(this.queue);
  }

  private pump(): void {
    while (this.ahead && this.inFlight < AHEAD && this.fetched.size < KEPT && this.queue.length > 0) {
      const relDir = this.queue.shift()!;
      if (this.fetched.has(relDir)) continue;
      const listing = this.fetch(relDir);
      listing.catch(() => {}); // (the walk sees the error when it asks for it)
      this.fetched.set(relDir, listing);
    }
  }

  discard(): void {}

  async close(): Promise<void> {
    this.queue = [];
    this.fetched.clear();
  }
}
