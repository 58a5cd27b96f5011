/** What a pass is given, and what it answers. */
import type { DeleteLimit, Remote } from '../cli/config.js';
import type { Owners } from '../compare/owners.js';
import type { Reporter } from '../log/log.js';
import type { Progress } from '../log/progress.js';
import type { Manifest } from '../manifest/manifest.js';
import type { Io } from '../replica/local/io.js';
import type { ExcludeMatcher, OwnPath } from '../tree/filter.js';
import type { Listers } from '../tree/lister.js';

export interface PassOptions {
  /** Absolute, resolved roots. */
  source: string;
  replica: string;
  /** The replica is on another machine (`replica` is then its address as given). */
  remote?: Remote;
  exclude: ExcludeMatcher;
  dryRun: boolean;
  checksum: boolean;
  /** Refuse all deletes when a pass would delete more entries than this (or this share of the replica). */
  maxDelete: DeleteLimit | undefined;
  /** Refuse all deletes when they would remove more bytes of files than this. */
  maxDeleteBytes?: number;
  /** Delete even when the source looks vanished or replaced (one pass's explicit override). */
  allowMassDelete?: boolean;
  /** Copy into a replica found empty although the manifest lists files in it (`emptyReplicaReason`). */
  allowEmptyReplica?: boolean;
  /** Move what would be deleted or overwritten under `<backupDir>/<time>/` instead. */
  backupDir?: string;
  fsync: boolean;
  io: Io;
  log: Reporter;
  /** The manifest, or its loading (Perf: the listing threads start while it loads). */
  manifest: Manifest | Promise<Manifest>;
  /** True once the pass should stop starting work (a signal). */
  shouldStop(): boolean;
  /**
   * List the two trees on threads, compiling these exclude lists there (the same ones `exclude`
   * was built from); hash on threads too when many files must be read, and write copies off the
   * main thread (see `chooseCopiers`). Without it, listing, hashing and copying run inline
   * through `io` (tests count and fail its calls).
   */
  threads?: { excludes: string[]; own: OwnPath[] };
  /**
   * Listers already started on `source` and `replica` with `threads`' lists (the CLI's first pass
   * starts them before the rest of its set-up: `startListing`). Taken instead of new ones, and
   * closed by the pass whatever happens.
   */
  listers?: Listers;
  /** A live progress line (a terminal's); none by default. */
  progress?: Progress;
  /** Set: delete nothing this pass, for this reason (logged as an error, exit 1). */
  holdDeletes?: string;
  /** Told each source folder the walk lists (for `--watch`). */
  onSourceDir?: (relPath: string) => void;
  /** With `threads`: how many threads hash when many files must be read (`--hash-threads`). */
  hashThreads?: number;
  /** With `threads`: from this many files to read, they are read on hashing threads (default `HASH_THREADS_FROM`). */
  hashThreadsFrom?: number;
  /** With `threads`: copies of at least this many bytes go through the kernel (default `KERNEL_COPY_MIN_BYTES`). */
  kernelCopyMinBytes?: number;
  /** With `threads`: from this many copies in a pass, small ones are written on copying threads when the addon's copies are not there (default `COPY_THREADS_FROM`). */
  copyThreadsFrom?: number;
  /** With `threads`: copying threads when the addon's copies are not there (`--copy-threads`; default `COPY_THREADS`; 0: none). */
  copyThreads?: number;
  /** With `threads`: small copies written by the addon on libuv's thread pool when it is built (default true). */
  poolCopies?: boolean;
  /**
   * A scoped pass (`--watch`): only these folders are listed (one level each) and these subtrees
   * (whole); every other folder is trusted as the manifest has it. Folder renames are made first.
   */
  scope?: PassScope;
  /** For `--max-delete n%` in a scoped pass: the replica's entries as the last full pass counted them. */
  replicaEntriesHint?: number;
  /** `--hard-links`: files that are one in the source are one in the replica (rsync -H). */
  hardLinks?: boolean;
  /** Which owners and groups are kept (default: as this process can, `processOwners`). */
  owners?: Owners;
}

/** What a scoped pass lists (see `PassOptions.scope`). */
export interface PassScope {
  folders: ReadonlySet<string>;
  subtrees: ReadonlySet<string>;
  /** Folders renamed in the source (`from` → `to`): renamed in the replica too, their records moved. */
  renames: readonly { from: string; to: string }[];
}

export interface PassResult {
  stats: PassStats;
  /** 0 all synced, 1 some entries failed or deletes were refused. */
  exitStatus: 0 | 1;
  interrupted: boolean;
  durationMs: number;
  summary: string;
  /** Every source folder the pass set out to list was listed (not stopped, none unreadable). */
  walkComplete: boolean;
  /** Entries listed in the replica (a full pass's: all of them). */
  replicaEntries: number;
}

/** The counters every pass reports. */
export interface PassStats {
  copied: number;
  moved: number;
  updated: number;
  deleted: number;
  hashed: number;
  errors: number;
  warnings: number;
  bytesCopied: number;
}

export function emptyStats(): PassStats {
  return { copied: 0, moved: 0, updated: 0, deleted: 0, hashed: 0, errors: 0, warnings: 0, bytesCopied: 0 };
}
