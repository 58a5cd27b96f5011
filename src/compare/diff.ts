/**
 * Pure decisions about one path present on both sides. No disk access: the walk hands in what
 * lstat and readlink saw, and the manifest's record.
 */
import type { Entry } from '../tree/entry.js';
import { type CacheLookup, replicaMatches, sourceMatches, trustCache } from './fingerprint.js';
import { ownerDiffers, sameOwner, type Owners } from './owners.js';
import type { Change, RecordFields, Reason } from './types.js';

/**
 * Without the native addon, times are set through libuv, to the microsecond, and a float of seconds
 * can be off by one more: mtimes within this many nanoseconds are the same mtime. (The addon sets
 * them to the nanosecond; rsync compares seconds.)
 */
export const MTIME_TOLERANCE_NS = 2_000;

export function sameMtime(a: Entry, b: Entry, wholeSeconds = false): boolean {
  if (wholeSeconds) return a.mtimeS === b.mtimeS;
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
 * fingerprint as it was: they are compared every time (`metaToFix`), and so are owners.
 */
export function metaAsLeft(record: RecordFields | undefined, source: Entry, replica: Entry): boolean {
  return record !== undefined && sourceMatches(record, source) && replicaMatches(record, replica);
}

/**
 * What a metadata op must fix on the replica, as a reason; undefined when nothing. With `asLeft`
 * (see `metaAsLeft`) the mtime is not compared.
 */
export function metaToFix(op: { source: Entry; replica: Entry; asLeft?: true }, owners: Owners): Reason | undefined {
  return metaReason(op.source, op.replica, owners, { mode: true, mtime: !op.asLeft });
}

/**
 * Which metadata of the replica differs from the source's, as a reason (`owner`, `group`,
 * `permissions`, `mtime`, those that differ joined by commas), or undefined. Links have no
 * permission bits of their own (`mode: false`).
 */
export function metaReason(source: Entry, replica: Entry, owners: Owners, compare: { mode: boolean; mtime: boolean } = { mode: true, mtime: true }): Reason | undefined {
  const mode = compare.mode && source.mode !== replica.mode;
  const mtime = compare.mtime && !sameMtime(source, replica, owners.wholeSeconds);
  // Perf: runs for every folder and link in sync: no array made for them.
  if (!mode && !mtime && sameOwner(owners, source, replica)) return undefined;
  const owner = ownerDiffers(owners, source, replica);
  const parts: string[] = [];
  if (owner.uid) parts.push('owner');
  if (owner.gid) parts.push('group');
  if (mode) parts.push('permissions');
  if (mtime) parts.push('mtime');
  return parts.join(', ') as Reason;
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
  owners: Owners,
): Change | undefined {
  const asLeft = metaAsLeft(record, source, replica);
  // Perf: the common case (both sides as recorded, the same bits and owner: nothing to fix) decided
  // on numbers alone, with no MD5 string made; the same verdict as the general path below.
  if (asLeft && lookup === trustCache && source.mode === replica.mode && sameOwner(owners, source, replica)) return undefined;
  const left = asLeft ? { asLeft } : {};
  const sourceMd5 = lookup(record, source, 'src');
  const replicaMd5 = lookup(record, replica, 'rep');
  if (sourceMd5 !== undefined && replicaMd5 !== undefined) {
    return metaToFix({ source, replica, ...left }, owners) === undefined ? undefined : { type: 'meta', relPath, source, replica, md5: sourceMd5, ...left };
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

/** Two symlinks at the same path: the target text must match, and the link's own mtime and owner. */
export function compareLinks(relPath: string, source: Entry, replica: Entry, sourceTarget: string, replicaTarget: string, owners: Owners): Change | undefined {
  if (sourceTarget !== replicaTarget) return { type: 'link', relPath, source, replica, reason: 'link target changed' };
  const reason = metaReason(source, replica, owners, { mode: false, mtime: true });
  return reason === undefined ? undefined : { type: 'link', relPath, source, replica, reason };
}

/**
 * Two folders at the same path: owner, permission bits and mtime. (A pass sets a folder's mtime
 * once its content is final, so it is the source's after every pass.)
 */
export function compareDirs(relPath: string, source: Entry, replica: Entry, owners: Owners): Change | undefined {
  return metaReason(source, replica, owners) === undefined ? undefined : { type: 'dirmeta', relPath, source, replica };
}
