/**
 * Moves and renames: a file that vanished from one path of the source and appeared at another is
 * renamed in the replica instead of deleted and copied again (rclone's --track-renames).
 *
 * Pairing: a vanished path is a candidate when its replica file still has the fingerprint the
 * manifest recorded, so its content is known (the record's MD5) without reading it. A new source
 * file is looked at only when some candidate has its size. It is then hashed (a copy would have
 * read it anyway) and paired only on equal size and MD5: a move never installs content that was
 * not proven equal.
 */
import { replicaMatches } from './fingerprint.js';
import type { Change, FileRecord } from './types.js';
import type { Entry } from '../tree/entry.js';

export interface MoveContext {
  /** The manifest's record of a path, without marking it as seen. */
  peek(relPath: string): FileRecord | undefined;
  /** MD5 of a source file, or undefined if it could not be read (logged by the caller). */
  hashSource(relPath: string, entry: Entry): Promise<string | undefined>;
}

interface Candidate {
  change: Extract<Change, { type: 'extra' }>;
  md5: string;
  used: boolean;
}

/**
 * Replaces each new-file + vanished-file pair with one `move` change. Returns the changes in the
 * same order, paired extras removed.
 */
export async function pairMoves(changes: Change[], ctx: MoveContext): Promise<Change[]> {
  const bySizeMd5 = new Map<string, Candidate[]>();
  const sizes = new Set<number>();
  for (const change of changes) {
    if (change.type !== 'extra' || change.replica.kind !== 'file') continue;
    const record = ctx.peek(change.relPath);
    if (record === undefined || !replicaMatches(record, change.replica)) continue;
    const key = `${record.size}:${record.md5}`;
    const list = bySizeMd5.get(key) ?? [];
    list.push({ change, md5: record.md5, used: false });
    bySizeMd5.set(key, list);
    sizes.add(record.size);
  }
  if (sizes.size === 0) return changes;

  // A new file beneath a path that changed type waits for a delete: not a move target.
  const replaced = changes.filter((c) => c.type === 'kind').map((c) => c.relPath + '/');
  const moved = new Map<Change, Extract<Change, { type: 'move' }>>();
  const paired = new Set<Change>();
  for (const change of changes) {
    if (change.type !== 'new' || change.source.kind !== 'file' || !sizes.has(change.source.size)) continue;
    if (replaced.some((prefix) => change.relPath.startsWith(prefix))) continue;
    const md5 = await ctx.hashSource(change.relPath, change.source);
    if (md5 === undefined) continue;
    const candidate = bySizeMd5.get(`${change.source.size}:${md5}`)?.find((c) => !c.used);
    if (candidate === undefined) continue;
    candidate.used = true;
    paired.add(candidate.change);
    moved.set(change, { type: 'move', relPath: change.relPath, from: candidate.change.relPath, source: change.source, replica: candidate.change.replica, md5 });
  }
  if (moved.size === 0) return changes;
  const out: Change[] = [];
  for (const change of changes) {
    if (paired.has(change)) continue;
    out.push(moved.get(change) ?? change);
  }
  return out;
}
