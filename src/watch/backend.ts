/**
 * How the watcher hears of changes: one interface, two ways (`inotify.ts`, the addon's own
 * descriptor; `fs-watch.ts`, Node's fs.watch), chosen once (`chooseBackend`).
 */

/** What a backend tells the watcher. Paths are relative to the source root. */
export type WatchEvent =
  /** Something changed in folder `dir`: about its entry `name` when known (created or removed: said when known). */
  | { kind: 'entry'; dir: string; name: string | undefined; isDir?: boolean; created?: boolean; removed?: boolean }
  /** A folder renamed within the tree (only a backend that can pair the two halves says so). */
  | { kind: 'renamed'; from: string; to: string }
  /** Events may have been lost: only a full pass can tell what changed. */
  | { kind: 'lost'; reason: string };

export interface WatchBackend {
  /** For the debug line. */
  readonly name: string;
  /** Watches folder `relDir` (at `abs`); throws what the system said (ENOSPC: out of watches). */
  add(relDir: string, abs: string): void;
  /** Whether `relDir` is watched. */
  has(relDir: string): boolean;
  remove(relDir: string): void;
  /** A folder and what is below it renamed within the tree: their watches follow (only `inotify.ts`). */
  rename?(from: string, to: string): void;
  /** Watched folders. */
  readonly size: number;
  /** Watched folders that may outlive their folder (checked after a full pass); none where the kernel ends them. */
  stale(): Iterable<string>;
  close(): void;
}
