/** What the local replica's operations share: the roots, the `Io`, the pass's options, and our temporary names. */
import { createHash } from 'node:crypto';
import type { Owners } from '../../compare/owners.js';
import { errorCode } from '../../errors.js';
import type { Io } from './io.js';
import { fsPath } from '../../tree/names.js';
import { TEMP_PREFIX } from '../../tree/scan.js';

export interface LocalContext {
  io: Io;
  sourceRoot: string;
  replicaRoot: string;
  /** Flush file contents before the rename (off with --no-fsync). */
  fsync: boolean;
  /** A reusable read buffer (Perf: one allocation per pass, not per file). */
  buffer: Buffer;
  /** A second one, for comparing a resumed temporary file; allocated when first needed. */
  compareBuffer?: Buffer;
  /** Lets the event loop run during long copies. */
  tick(): Promise<boolean>;
  /**
   * `--backup-dir` for this pass (`<dir>/<time>`): what would be deleted or overwritten is moved
   * here instead, at the same relative path.
   */
  backupRoot?: string;
  /**
   * False on a copying thread: a read-only folder is not made writable there to create a
   * temporary file in it (`ReadOnlyParent` is thrown instead), so that only the main thread ever
   * changes and restores a folder's mode (two threads doing it at once could each take the other's
   * change for the folder's own mode).
   */
  unlockParents?: boolean;
  /** The owners and groups the replica keeps (the copying threads set none: the main thread does, in `finishCopy`). */
  owners: Owners;
  /** An owner the replica's file system refused (it keeps none: a FAT disk): told once per refusal, no error. */
  ownerRefused(error: unknown): void;
}

/** What a file system that keeps no owners answers a chown with. */
const OWNER_REFUSED = new Set(['EPERM', 'EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Runs `set` (a chown); a refusal from a file system without owners goes to `ctx.ownerRefused` (and
 * `refused`), anything else is thrown.
 */
export function setOwner(ctx: LocalContext, set: () => void, refused?: () => void): void {
  try {
    set();
  } catch (error) {
    if (!isOwnerRefused(error)) throw error;
    ctx.ownerRefused(error);
    refused?.();
  }
}

export function isOwnerRefused(error: unknown): boolean {
  return OWNER_REFUSED.has(errorCode(error) ?? '');
}


/**
 * Our temporary name for a file about to land at `name`: in the same folder (so the rename is
 * atomic), hidden, recognisable (`isTempName`), fixed length whatever the name's length, and the
 * same for the same target (a retry reuses, never accumulates).
 */
export function tempName(name: string): string {
  // (Of the name's bytes: names that differ only in bytes that are not UTF-8 get names of their own.)
  return TEMP_PREFIX + createHash('md5').update(fsPath(name)).digest('hex').slice(0, 16) + '.tmp';
}

export function split(relPath: string): [dir: string, name: string] {
  const slash = relPath.lastIndexOf('/');
  return slash < 0 ? ['', relPath] : [relPath.slice(0, slash), relPath.slice(slash + 1)];
}

export function tempPathFor(replicaRoot: string, relPath: string): string {
  const [dir, name] = split(relPath);
  return replicaRoot + (dir ? '/' + dir : '') + '/' + tempName(name);
}

/** The parent folder of a replica path (for flushing its entries). */
export function replicaParent(replicaRoot: string, relPath: string): string {
  const [dir] = split(relPath);
  return replicaRoot + (dir ? '/' + dir : '');
}

export function removeQuietly(io: Io, absPath: string): void {
  try {
    io.unlink(absPath);
  } catch {
    // not there, or not ours to worry about: the next pass sweeps temporary files
  }
}

export function closeQuietly(io: Io, fd: number): void {
  try {
    io.close(fd);
  } catch {
    // already closed
  }
}
