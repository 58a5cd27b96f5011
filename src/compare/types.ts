/**
 * The data that flows through one pass. Nothing here touches the disk.
 *
 * Paths: `relPath` is POSIX (`/`-separated), relative to its root, and `''` is the root itself.
 * `absPath` is an absolute path on the machine.
 */
import type { Entry } from '../tree/entry.js';

/** A record's fields, read from a `FileRecord` or in place from the manifest's store (`RecordView`). */
export interface RecordFields {
  readonly md5: string;
  readonly size: number;
  readonly mtimeS: number;
  readonly mtimeN: number;
  readonly ctimeS: number;
  readonly ctimeN: number;
  readonly ino: number;
  readonly trusted: boolean;
  readonly repMtimeS: number;
  readonly repMtimeN: number;
  readonly repCtimeS: number;
  readonly repCtimeN: number;
  readonly repIno: number;
}

/**
 * What the manifest remembers about one source file: the fingerprint of each side (size, mtime,
 * ctime, inode) the last time its content was known, and that content's MD5.
 *
 * Every record is a statement that was true when it was written ("the file with this fingerprint
 * had this MD5"), so an old record is never wrong, only useless: that is what makes any mix of old
 * and new manifest files after a crash safe.
 */
export class FileRecord implements RecordFields {
  constructor(
    readonly md5: string,
    /** Source fingerprint. The replica's size is the same by construction. */
    readonly size: number,
    readonly mtimeS: number,
    readonly mtimeN: number,
    readonly ctimeS: number,
    readonly ctimeN: number,
    readonly ino: number,
    /** False when the source fingerprint must not be trusted next pass (racy timestamps). */
    readonly trusted: boolean,
    /** Replica fingerprint after our last write or check; `repIno` -1 when unknown. */
    readonly repMtimeS: number,
    readonly repMtimeN: number,
    readonly repCtimeS: number,
    readonly repCtimeN: number,
    readonly repIno: number,
  ) {}
}

/** Reasons printed after an action, e.g. `copied a.txt (new)`. */
export type Reason =
  | 'new'
  | 'content changed'
  | 'changed in replica'
  | 'type changed'
  | 'link target changed'
  | 'permissions'
  | 'mtime'
  | 'permissions, mtime'
  | 'not in source'
  | 'no longer a hard link'
  | MetaReason;

/** Metadata that differs, those of `owner`, `group`, `permissions`, `mtime` joined by commas (`metaReason`). */
export type MetaReason = string & {};

/**
 * What the lockstep walk found at one path that is not already in sync. The walk decides what
 * needs no file read; `file` changes are settled by the fingerprint step (into `update` or `meta`).
 */
export type Change =
  /** Only in the source (a new subtree yields one change per entry, parents first). */
  | { type: 'new'; relPath: string; source: Entry }
  /** Only in the replica: to delete (a subtree yields children first). */
  | { type: 'extra'; relPath: string; replica: Entry }
  /**
   * A regular file on both sides whose sameness the cache could not vouch for: read to know.
   * `asLeft`: the replica's mtime is as our last copy or fix left it (`metaAsLeft`): if the content
   * is the same, only permission bits may need fixing.
   */
  | { type: 'file'; relPath: string; source: Entry; replica: Entry; sourceMd5: string | undefined; replicaMd5: string | undefined; asLeft?: true }
  /** Content differs: rewrite the replica file. */
  | { type: 'update'; relPath: string; source: Entry; replica: Entry; reason: Reason }
  /**
   * Same content on both sides: fix permissions or mtime if they differ, and refresh the record.
   * `readAtMs`: when the source was read to prove it (for the racy rule); absent when the cache vouched.
   * `asLeft`: the replica's mtime is as our last copy or fix left it: only the bits are compared.
   */
  | { type: 'meta'; relPath: string; source: Entry; replica: Entry; md5: string; readAtMs?: number; asLeft?: true }
  /** A symlink on both sides with a different target text or mtime. */
  | { type: 'link'; relPath: string; source: Entry; replica: Entry; reason: Reason }
  /** A folder on both sides with a different owner, permission bits or mtime. */
  | { type: 'dirmeta'; relPath: string; source: Entry; replica: Entry }
  /** The entry changed kind (file, folder, link) between source and replica. */
  | { type: 'kind'; relPath: string; source: Entry; replica: Entry }
  /** With `--hard-links`: another name of the file at `leader`, to be made a link to it in the replica. */
  | { type: 'hardlink'; relPath: string; leader: string; source: Entry; replica: Entry | undefined }
  /** A new source file whose content the replica already has at a vanished path: rename it. */
  | { type: 'move'; relPath: string; from: string; source: Entry; replica: Entry; md5: string };

/** One thing the executor does to the replica. Produced by `plan`, in the order to run them. */
export type Op =
  | { op: 'mkdir'; relPath: string; source: Entry }
  | { op: 'copy'; relPath: string; source: Entry; reason: Reason; replacing: Entry | undefined }
  | { op: 'link'; relPath: string; source: Entry; reason: Reason; replacing: Entry | undefined }
  | { op: 'meta'; relPath: string; source: Entry; replica: Entry; md5: string; readAtMs?: number; asLeft?: true }
  /** A folder's owner, bits and mtime, once its content is final; `replica`: the folder as the walk saw it (none: created this pass). */
  | { op: 'dirmeta'; relPath: string; source: Entry; replica?: Entry }
  | { op: 'delete'; relPath: string; replica: Entry; reason: Reason }
  | { op: 'move'; relPath: string; from: string; source: Entry; replica: Entry; md5: string }
  /** A hard link to the replica's `leader` at `relPath` (over `replacing`; `afterDelete`: a folder there is deleted first). */
  | { op: 'hardlink'; relPath: string; leader: string; source: Entry; replacing: Entry | undefined; afterDelete?: true };
