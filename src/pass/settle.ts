/**
 * Settle: read what the cache could not vouch for. Every `file` change (a file on both sides whose
 * sameness the manifest cannot vouch for) becomes an `update` or a `meta` once the unvouched
 * side(s) are read; each read is checked against the walk's fingerprint (a file that changed while
 * read is left for the next pass).
 */
import { sameFingerprint } from '../compare/fingerprint.js';
import { settleFile } from '../compare/diff.js';
import type { Change } from '../compare/types.js';
import { describe, isTypeChanged, isVanished, show } from '../errors.js';
import { chooseHasher } from '../hash/choose.js';
import type { HashJob, HashResult } from '../hash/hasher.js';
import { InlineHasher } from '../hash/inline.js';
import type { Replica } from '../replica/replica.js';
import type { Entry } from '../tree/entry.js';
import type { PassContext } from './context.js';

type FileChange = Extract<Change, { type: 'file' }>;

/** The changes, every `file` change settled (or dropped when a side could not be read). */
export async function settle(pass: PassContext, replica: Replica, changes: readonly Change[]): Promise<Change[]> {
  const { o } = pass;
  const sourceJobs: HashJob[] = [];
  const replicaJobs: { relPath: string; size: number }[] = [];
  let bytes = 0;
  for (const change of changes) {
    if (change.type !== 'file') continue;
    if (change.sourceMd5 === undefined) {
      sourceJobs.push({ absPath: o.source + '/' + change.relPath, size: change.source.size });
      bytes += change.source.size;
    }
    if (change.replicaMd5 === undefined) {
      replicaJobs.push({ relPath: change.relPath, size: change.replica.size });
      bytes += change.replica.size;
    }
  }
  if (sourceJobs.length + replicaJobs.length === 0) return [...changes];

  const count = sourceJobs.length + replicaJobs.length;
  const hasher = chooseHasher(count, bytes, {
    io: o.io,
    threads: o.threads !== undefined,
    hashThreads: o.hashThreads,
    threadsFrom: o.hashThreadsFrom,
    tick: () => pass.tick(),
    shouldStop: () => o.shouldStop(),
    debug: (message) => pass.debug(message),
  });
  const readAtMs = Date.now();
  pass.progress.begin('hashing', () => ({ files: hasher.done.files, bytes: hasher.done.bytes, totalFiles: count, totalBytes: bytes }));
  let sourceResults: (HashResult | undefined)[];
  let replicaResults: (HashResult | undefined)[];
  try {
    [sourceResults, replicaResults] = await Promise.all([hasher.hashAll(sourceJobs), replica.hashFiles(replicaJobs, hasher)]);
  } finally {
    pass.progress.end();
    await hasher.close();
  }

  const settled: Change[] = [];
  let s = 0;
  let r = 0;
  for (const change of changes) {
    if (change.type !== 'file') {
      settled.push(change);
      continue;
    }
    const sourceResult = change.sourceMd5 === undefined ? sourceResults[s++] : undefined;
    const replicaResult = change.replicaMd5 === undefined ? replicaResults[r++] : undefined;
    if (pass.interrupted) continue;
    const sourceMd5 = change.sourceMd5 ?? checked(pass, 'source', change, change.source, sourceResult);
    if (sourceMd5 === undefined) continue;
    const replicaMd5 = change.replicaMd5 ?? checked(pass, 'replica', change, change.replica, replicaResult);
    if (replicaMd5 === undefined) continue;
    settled.push(settleFile(change, sourceMd5, replicaMd5, readAtMs));
  }
  return settled;
}

/** A source file's MD5, read on the main thread (a move's candidate); undefined (logged) when it could not be read. */
export async function hashSource(pass: PassContext, relPath: string, entry: Entry): Promise<string | undefined> {
  const hasher = new InlineHasher(pass.o.io, () => pass.tick());
  const [result] = await hasher.hashAll([{ absPath: pass.o.source + '/' + relPath, size: entry.size }]);
  return checked(pass, 'source', { relPath }, entry, result);
}

/** One side's MD5, if it was read and did not change while read; else undefined (warned or logged as an error). */
function checked(pass: PassContext, side: 'source' | 'replica', change: Pick<FileChange, 'relPath'>, entry: Entry, result: HashResult | undefined): string | undefined {
  if (result === undefined) return undefined; // stopped before it was read
  pass.stats.hashed++;
  const path = show(change.relPath);
  if (result.kind === 'failed') {
    if (isVanished(result.error)) pass.warn(`${path} vanished from the ${side} during the pass; skipped`);
    else if (isTypeChanged(result.error)) pass.warn(`${path} changed type in the ${side} during the pass; skipped (the next pass mirrors it)`);
    else pass.error(`hashing ${side} ${path}: ${describe(result.error)}`);
    return undefined;
  }
  const [size, mtimeS, mtimeN, ctimeS, ctimeN, ino] = result.fp;
  if (!sameFingerprint(entry, { ...entry, size, mtimeS, mtimeN, ctimeS, ctimeN, ino })) {
    pass.warn(`${path} changed in the ${side} while it was being read; it will be looked at again next pass`);
    return undefined;
  }
  return result.md5;
}
