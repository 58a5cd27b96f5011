/**
 * Pure decisions about one path present on both sides. No disk access: the walk hands in what
 * lstat and readlink saw, and the manifest's record.
 */
import { type CacheLookup, replicaMatches, sourceMatches, trustCache } from './fingerprint.js';
import type { Change, RecordFields, Reason } from './types.js';
import type { Entry } from '../tree/entry.js';

/**
 * libuv sets times with microsecond precision, and a float of seconds can be off by one more
 * microsecond: mtimes within this many nanoseconds are the same mtime. (rsync compares seconds.)
 */
export const MTIME_TOLERANCE_NS = 2_000;

export function sameMtime(a: Entry, b: Entry): boolean {
  const delta = (a.mtimeS - b.mtimeS) * 1e9 + (a.mtimeN - b.mtimeN);
  return delta < MTIME_TOLERANCE_NS && delta > -MTIME_TOLERANCE_NS;
}

/**
 * Whether the replica file's mtime is as our last copy or fix left it, for the source file as it
 * is now: both sides' fingerprints as the record has them, the record trusted (not racy). What the
 * replica's filesystem kept of the source's mtime is then all it can keep: a coarser clock (FAT's
 * 2 s, exFAT's 10 ms, ext4's 1 s with small inodes), or a date it cannot hold. Such a replica's
 * files were "updated (mtime)" every pass, to no effect. (Either side's mtime is in its
 * fingerprint: one moved since is never as left.) Permission bits are not in the record, and a
 * chmod within one tick of a coarse ctime (or on FAT, whose ctime never moves for it) leaves the
 * fingerprint as it was: they are compared every time (`metaToFix`).
 */
export function metaAsLeft(record: RecordFields | undefined, source: Entry, replica: Entry): boolean {
  return record !== undefined && sourceMatches(record, source) && replicaMatches(record, replica);
}

/**
 * What a metadata op must fix on the replica, as a reason; undefined when nothing. With `asLeft`
 * (see `metaAsLeft`) only the permission bits are compared.
 */
export function metaToFix(op: { source: Entry; replica: Entry; asLeft?: true }): Reason | undefined {
  if (op.asLeft) return op.source.mode === op.replica.mode ? undefined : 'permissions';
  return metaReason(op.source, op.replica);
}

/** Which metadata of the replica differs from the source's, as a reason, or undefined. */
export function metaReason(source: Entry, replica: Entry): Reason | undefined {
  const mode = source.mode !== replica.mode;
  const mtime = !sameMtime(source, replica);
  if (mode && mtime) return 'permissions, mtime';
  if (mode) return 'permissions';
  if (mtime) return 'mtime';
  return undefined;
}

/**
 * Two regular files at the same path. Early returns, cheapest first:
 * both sides vouched for by the cache → in sync (the replica's mtime as we left it: `metaAsLeft`),
 * or only permission bits to fix;
 * sizes differ → the content differs, no need to read;
 * otherwise → read the side(s) the cache cannot vouch for.
 */
export function compareFiles(
  relPath: string,
  source: Entry,
  replica: Entry,
  record: RecordFields | undefined,
  lookup: CacheLookup,
): Change | undefined {
  const asLeft = metaAsLeft(record, source, replica);
  // Perf: the common case (both sides as recorded, the same bits: nothing to fix) decided on
  // numbers alone, with no MD5 string made; the same verdict as the general path below.
  if (asLeft && lookup === trustCache && source.mode === replica.mode) return undefined;
  const left = asLeft ? { asLeft } : {};
  const sourceMd5 = lookup(record, source, 'src');
  const replicaMd5 = lookup(record, replica, 'rep');
  if (sourceMd5 !== undefined && replicaMd5 !== undefined) {
    return metaToFix({ source, replica, ...left }) === undefined ? undefined : { type: 'meta', relPath, source, replica, md5: sourceMd5, ...left };
  }
  if (source.size !== replica.size) {
    const reason: Reason = sourceMd5 !== undefined ? 'changed in replica' : 'content changed';
    return { type: 'update', relPath, source, replica, reason };
  }
  return { type: 'file', relPath, source, replica, sourceMd5, replicaMd5, ...left };
}

/** Settles a `file` change once both MD5s are known. */
export function settleFile(change: Extract<Change, { type: 'file' }>, sourceMd5: string, replicaMd5: string, readAtMs: number): Change {
  const { relPath, source, replica } = change;
  if (sourceMd5 === replicaMd5) {
    const readAt = change.sourceMd5 === undefined ? readAtMs : undefined;
    return { type: 'meta', relPath, source, replica, md5: sourceMd5, readAtMs: readAt, ...(change.asLeft ? { asLeft: true } : {}) };
  }
  // The cache vouched for the source: the replica is the side that moved.
  const reason: Reason = change.sourceMd5 !== undefined ? 'changed in replica' : 'content changed';
  return { type: 'update', relPath, source, replica, reason };
}

/** Two symlinks at the same path: the target text must match, and the link's own mtime. */
export function compareLinks(relPath: string, source: Entry, replica: Entry, sourceTarget: string, replicaTarget: string): Change | undefined {
  if (sourceTarget !== replicaTarget) return { type: 'link', relPath, source, replica, reason: 'link target changed' };
  if (!sameMtime(source, replica)) return { type: 'link', relPath, source, replica, reason: 'mtime' };
  return undefined;
}

/** Two folders at the same path: only permission bits (folder mtimes move with every child). */
export function compareDirs(relPath: string, source: Entry, replica: Entry): Change | undefined {
  return source.mode === replica.mode ? undefined : { type: 'dirmode', relPath, source, replica };
}
