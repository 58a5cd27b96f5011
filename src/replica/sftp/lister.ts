/**
 * The replica's folders listed over SFTP. A walk asks for one folder at a time and waits for it;
 * a round trip each (opendir, readdir…, close) would make a pass cost a network latency per folder.
 * So when a folder's listing arrives, its subfolders' listings are asked for at once, in the order
 * the walk visits them (depth first, by name), up to `AHEAD` folders under way and `KEPT` listings
 * waiting to be read: the walk mostly finds its next listing already here.
 */
import type { FolderListing } from '../../tree/entry.js';
import { AT, DIR, NUMS } from '../../tree/entry.js';
import type { ExcludeMatcher } from '../../tree/filter.js';
import type { Lister } from '../../tree/lister.js';
import { packSftpListing, type Sftp } from './client.js';

/**
 * Listings requested at once. Perf: sftp-server answers one request at a time; more under way
 * keep it busy (a no-change pass at 10k files: ~430 ms with 128, ~465 with 32, rsync ~335).
 */
const AHEAD = 128;
/** Listings fetched ahead and not yet read, at most (a walk that skips folders, an excluded one, leaves them here). */
const KEPT = 2048;

export class SftpLister implements Lister {
  private readonly fetched = new Map<string, Promise<FolderListing>>();
  /** Folders to fetch ahead, the next last (a stack: a listing's subfolders go on top, in walk order). */
  private readonly ahead: string[] = [];
  /** Folders the walk asked for before they were fetched ahead (skipped when their turn comes). */
  private readonly asked = new Set<string>();
  private inFlight = 0;

  constructor(
    private readonly sftp: Sftp,
    private readonly root: string,
    /** Fetch subfolders ahead (a whole walk), except those `skip` says the walk will not enter; a scoped pass lists few folders and asks for each. */
    private readonly prefetch: { skip: ExcludeMatcher } | undefined,
  ) {}

  list(relDir: string): Promise<FolderListing> {
    const ready = this.fetched.get(relDir);
    if (ready !== undefined) {
      this.fetched.delete(relDir);
      return ready;
    }
    if (this.prefetch) this.asked.add(relDir);
    return this.fetch(relDir);
  }

  private fetch(relDir: string): Promise<FolderListing> {
    this.inFlight++;
    const path = relDir === '' ? this.root : `${this.root}/${relDir}`;
    const listing = this.sftp.readdir(path).then(packSftpListing);
    void listing.then(
      (done) => {
        this.inFlight--;
        if (this.prefetch) this.plan(relDir, done, this.prefetch.skip);
        this.pump();
      },
      () => {
        this.inFlight--;
        this.pump();
      },
    );
    return listing;
  }

  /** A listing's subfolders (those the walk enters) go on top of the stack, the first on top: the walk visits them next. */
  private plan(relDir: string, listing: FolderListing, skip: ExcludeMatcher): void {
    for (let i = listing.names.length - 1; i >= 0; i--) {
      if (listing.nums[i * NUMS + AT.kind] !== DIR) continue;
      const child = relDir === '' ? listing.names[i] : `${relDir}/${listing.names[i]}`;
      if (!skip(child, true)) this.ahead.push(child);
    }
  }

  private pump(): void {
    while (this.inFlight < AHEAD && this.fetched.size < KEPT && this.ahead.length > 0) {
      const relDir = this.ahead.pop()!;
      if (this.asked.delete(relDir) || this.fetched.has(relDir)) continue;
      const listing = this.fetch(relDir);
      listing.catch(() => {}); // (the walk sees the error when it asks for it)
      this.fetched.set(relDir, listing);
    }
  }

  discard(): void {}

  async close(): Promise<void> {
    this.ahead.length = 0;
    this.asked.clear();
    this.fetched.clear();
  }
}
