/**
 * Which pass comes next under `--watch`: a full one (logged with its reason: at start, at every
 * interval, when the exclude rules changed, when a root is not the folder it was, or when the
 * watcher says events may have been lost, a folder could not be watched, or too much changed), or
 * a scoped one, listing only what events named. Without `--watch` every pass is full.
 */
import * as fs from 'node:fs';
import type { PassScope } from '../pass/options.js';
import type { ExcludeMatcher } from '../tree/filter.js';
import type { SourceWatcher } from '../watch/watcher.js';

export type NextPass = { full: string } | { scope: PassScope };

export class PassKinds {
  private lastFullAt: number | undefined;
  private patterns: string | undefined;
  private roots: string | undefined;
  /** The replica's entries at the last full pass (`--max-delete n%` in a scoped pass). */
  replicaEntries: number | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly source: string,
    private readonly replica: string,
    private readonly watcher: SourceWatcher | undefined,
  ) {}

  /** When the next full pass is due (the interval's, counted from the last full one). */
  get nextFullAt(): number {
    return this.lastFullAt === undefined ? 0 : this.lastFullAt + this.intervalMs;
  }

  /** The pass to run now (starting at `now`), with these exclude rules. */
  next(now: number, patterns: readonly string[], exclude: ExcludeMatcher): NextPass {
    const scope = this.watcher?.takeScope(exclude);
    const rules = JSON.stringify(patterns);
    const roots = this.rootIds();
    const full =
      this.lastFullAt === undefined
        ? 'at start'
        : now >= this.nextFullAt
          ? 'the interval'
          : rules !== this.patterns
            ? 'the exclude rules changed (options, .folder-syncignore)'
            : roots !== this.roots
              ? 'the source or the replica is not the folder it was (a disk mounted or unmounted, the folder made anew)'
              : scope?.full;
    this.patterns = rules;
    if (full !== undefined || scope === undefined) return { full: full ?? 'at start' };
    return { scope: { folders: scope.folders, subtrees: scope.subtrees, renames: scope.renames } };
  }

  /** The roots' devices, inodes and birth times. */
  private rootIds(): string {
    return `${identity(this.source)} ${identity(this.replica)}`;
  }

  /** A pass that began at `startedAt` ended: a full one restarts the interval. */
  done(next: NextPass, startedAt: number, replicaEntries: number): void {
    // (After the pass: a replica it created is the folder the next pass must find.)
    this.roots = this.rootIds();
    if ('full' in next) {
      this.lastFullAt = startedAt;
      this.replicaEntries = replicaEntries;
    }
  }
}

/** A root's device, inode and birth time ('' if it is not there). */
function identity(path: string): string {
  try {
    const stats = fs.statSync(path, { bigint: true });
    return `${stats.dev}:${stats.ino}:${stats.birthtimeNs}`;
  } catch {
    return '';
  }
}
