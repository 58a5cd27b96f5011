/**
 * Everything a pass reads from or changes in the replica goes through a `Replica`: today one
 * implementation, the local folder (`local/`). The pass asks `features` what the replica can keep
 * instead of asking what it is; `openReplica` (`choose.ts`) is the one place that picks one.
 *
 * Paths are `relPath`s below the replica's root. Every changing call throws a `StepError` naming
 * its step, or one of the outcomes of `errors.ts` that mean the tree moved (`ChangedInReplica`…).
 */
import type { Owners } from '../compare/owners.js';
import type { Reason } from '../compare/types.js';
import type { Hasher, HashResult } from '../hash/hasher.js';
import type { Entry } from '../tree/entry.js';
import type { Lister, ListerSpec } from '../tree/lister.js';

/** What a replica keeps and reports. */
export interface ReplicaFeatures {
  /** For messages: `local folder`. */
  readonly kind: string;
  /** Its entries report a change time and an inode number (a fingerprint uses them when they do). */
  readonly ctime: boolean;
  readonly inode: boolean;
  /** The finest step of the mtimes it keeps, in nanoseconds (1e3: what Node's utimes sets; 1e9: whole seconds). */
  readonly mtimeStepNs: number;
}

/** A copy to make: the source file (as the walk saw it) at `relPath`, over what the replica has there (`replacing`). */
export interface CopyJob {
  readonly relPath: string;
  readonly source: Entry;
  readonly replacing: boolean;
}

/** A copy's content in its temporary file, not yet flushed nor in place. Only the replica that wrote it reads the rest. */
export interface PendingCopy {
  readonly relPath: string;
  /** The source as it was read, unchanged from start to end of the read. */
  readonly source: Entry;
  readonly md5: string;
  /** Bytes of a crashed copy's temporary file that were verified equal and kept (0: none). */
  readonly resumedBytes: number;
}

/** A copy's first half: written, or why not (the temporary file is gone then). */
export type Written = { kind: 'written'; pending: PendingCopy } | { kind: 'failed'; error: unknown };

/** A copy in place: what the manifest records of it. */
export interface InstalledCopy {
  md5: string;
  /** The source as it was read. */
  source: Entry;
  /** The replica file after the rename. */
  replica: Entry;
  resumedBytes: number;
}

/** A replica file's owner, group, permission bits (each unless undefined) and times to set, if it is still `seen`. */
export interface MetaFix {
  readonly relPath: string;
  readonly seen: Entry;
  readonly uid: number | undefined;
  readonly gid: number | undefined;
  readonly mode: number | undefined;
  readonly atimeS: number;
  readonly atimeN: number;
  readonly mtimeS: number;
  readonly mtimeN: number;
}

/** What it takes to give the replica file `seen` at `relPath` the metadata of `source` (the owners `owners` keeps). */
export function metaFix(relPath: string, source: Entry, seen: Entry, owners: Owners): MetaFix {
  const uid = owners.uid(source);
  const gid = owners.gid(source);
  return {
    relPath,
    seen,
    uid: uid === seen.uid ? undefined : uid,
    gid: gid === seen.gid ? undefined : gid,
    mode: source.mode === seen.mode ? undefined : source.mode,
    atimeS: source.atimeS,
    atimeN: source.atimeN,
    mtimeS: source.mtimeS,
    mtimeN: source.mtimeN,
  };
}

/**
 * A fix made (the file as it is now), or why not. Made but for its owner: `ownerRefused`, the
 * replica keeps none (warned about once a pass); `ownerError`, that step failed otherwise.
 */
export type MetaFixed = { kind: 'fixed'; replica: Entry; ownerRefused?: true; ownerError?: unknown } | { kind: 'failed'; error: unknown };

/** A value now (a local folder answers at once) or later (a replica over the network). */
export type Later<T> = T | Promise<T>;

export interface Replica {
  /** As the user gave it, for messages. */
  readonly root: string;
  readonly features: ReplicaFeatures;

  /** The root folder; undefined if it does not exist. Throws for any other problem. */
  statRoot(): Later<Entry | undefined>;
  /** Creates the root (and its parents). */
  createRoot(): Later<Entry>;
  /** A lister of this replica's folders (the local one: chosen as the source's). */
  lister(spec: Omit<ListerSpec, 'root'>): Lister;
  /**
   * A folder whose mode shuts our own user out (mirrored from a source folder that did) opened for
   * us (u+rwx) for the rest of the pass, as rsync does; `setDirMeta` gives it its final mode, or
   * `close` its old one. False: it is not ours to open. Never in a dry run.
   */
  openFolder(relPath: string): Later<boolean>;
  /** A lister of this replica's folders on the main thread (for a folder `openFolder` opened, and below). */
  inlineLister(): Lister;
  readlink(relPath: string): Later<string>;
  /** An entry of the replica as it is now (lstat); undefined if there is none. */
  statEntry(relPath: string): Later<Entry | undefined>;
  /** Reads files of the replica to know their MD5 (`local`: with the pass's own hasher). */
  hashFiles(jobs: readonly { relPath: string; size: number }[], local: Hasher): Promise<(HashResult | undefined)[]>;

  /**
   * Before the first change: our temporary files the walk found (`temps`) are swept, except those
   * of `copies` worth resuming; and the way copies are written is chosen, from how many there are.
   */
  prepare(temps: readonly string[], copies: readonly CopyJob[]): Later<void>;
  /** A copy's first half: the source's content into a temporary file beside its target, hashed as it goes. */
  writeCopy(job: CopyJob): Promise<Written>;
  /** Flushes written copies: per copy, undefined or the error its flush met. Never rejects. */
  flushCopies(pending: readonly PendingCopy[]): Promise<(unknown | undefined)[]>;
  /** A flushed copy put in place (mtime, rename over the target), and what it is after. */
  installCopy(pending: PendingCopy): Promise<InstalledCopy>;
  /** Gives up a written copy: its temporary file goes, the replica keeps what it had. */
  abandonCopy(pending: PendingCopy): Later<void>;
  /** A symbolic link with `target`, replacing what is at `relPath` (`replacing`), with the source's times. */
  symlink(relPath: string, target: string, source: Entry, replacing: boolean): Later<Entry>;
  /**
   * A hard link to the replica's file `leader` at `relPath` (over `replacing`: the entry there, if
   * any), unless it is one already (`linked` false); what it is after.
   */
  hardlink(relPath: string, leader: string, replacing: Entry | undefined): Later<{ replica: Entry; linked: boolean }>;
  /** A link's own owner and times, as the source's (`replica`: the link as the walk saw it). */
  setLinkMeta(relPath: string, source: Entry, replica: Entry): Later<void>;
  /** Metadata fixes, one outcome each, in order. */
  fixMetas(fixes: readonly MetaFix[]): Promise<MetaFixed[]>;
  /** A folder, private (0700) until `setDirMeta` gives it its metadata at the end of the pass. */
  mkdir(relPath: string): Later<void>;
  /**
   * A folder given the source folder's owner, bits and times, once its content is final: what of
   * its owner and bits changed (a reason), or undefined; its mtime is set silently.
   */
  setDirMeta(relPath: string, source: Entry): Later<Reason | undefined>;
  /** Removes an entry (a folder once empty); false when it was already gone. */
  remove(relPath: string, entry: Entry): Promise<boolean>;
  /** Renames a folder (the source renamed it: `--watch` saw it), with everything in it. */
  renameFolder(from: string, to: string): Later<void>;
  /** Renames a file the walk saw at `from` (`replica`) to `to`, with the source's metadata; what it is after. */
  move(from: string, to: string, source: Entry, replica: Entry): Later<Entry>;
  /** Makes the entries renamed into these folders durable; the folders that could not be, with why. */
  flushFolders(relDirs: readonly string[]): Promise<{ relDir: string; error: unknown }[]>;
  /** After the last change: temporary files kept for resuming and not used are swept; threads stop. */
  close(): Promise<void>;
}
