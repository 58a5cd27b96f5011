/**
 * The local replica's other changes, each atomic where the system allows: links (temporary link,
 * rename), metadata, folders, deletes (or moves into the backup dir), moves. Each returns what it
 * observed after (for the manifest), or throws a `StepError` naming its step.
 */
import { mkdirSync } from 'node:fs';
import { fsPath } from '../../tree/names.js';
import { dirname } from 'node:path';
import { ChangedInReplica, RenameFailed, StepError, show } from '../../errors.js';
import { sameFingerprint } from '../../compare/fingerprint.js';
import type { Entry } from '../../tree/entry.js';
import { toEntry } from '../../tree/scan.js';
import { sameMtime } from '../../compare/diff.js';
import { ownerDiffers } from '../../compare/owners.js';
import type { Reason } from '../../compare/types.js';
import { metaFix, type MetaFix, type MetaFixed } from '../replica.js';
import { removeQuietly, setOwner, tempPathFor, type LocalContext } from './context.js';
import { inWritableParent, inWritableParents } from './writable.js';

/** Creates (or replaces) a symlink with the source's target text, via a temporary link and rename. */
export function makeLink(ctx: LocalContext, relPath: string, target: string, source: Entry, replacing: boolean): Entry {
  const { io } = ctx;
  const tempAbs = tempPathFor(ctx.replicaRoot, relPath);
  let step = 'creating link';
  try {
    removeQuietly(io, tempAbs);
    return inWritableParent(ctx, relPath, () => {
      io.symlink(target, tempAbs);
      step = 'setting owner of link';
      const uid = ctx.owners.uid(source) ?? -1;
      const gid = ctx.owners.gid(source) ?? -1;
      if (uid !== -1 || gid !== -1) setOwner(ctx, () => io.lchown(tempAbs, uid, gid));
      step = 'setting mtime of link';
      io.lutimes(tempAbs, source);
      return linkIntoPlace(ctx, relPath, tempAbs, replacing, source.name, (next) => (step = next));
    });
  } catch (error) {
    removeQuietly(io, tempAbs);
    throw new StepError(step, relPath, error);
  }
}

/**
 * A link made at `tempAbs` renamed over `relPath` (what it replaces moved to the backup dir first,
 * with `--backup-dir`), and the link as it is after; `step` is told each step, for the error.
 */
function linkIntoPlace(ctx: LocalContext, relPath: string, tempAbs: string, replacing: boolean, name: string, step: (name: string) => void): Entry {
  const abs = ctx.replicaRoot + '/' + relPath;
  if (replacing && ctx.backupRoot) {
    step('backing up the old version of');
    backup(ctx, relPath);
  }
  step('renaming link into place');
  ctx.io.rename(tempAbs, abs);
  return toEntry(name, ctx.io.lstat(abs));
}

/**
 * Makes `relPath` a hard link to the replica's `leader`: link(2) to a temporary name, renamed over
 * what is there (backed up first with `--backup-dir`); nothing when it is one already.
 */
export function makeHardLink(ctx: LocalContext, relPath: string, leader: string, replacing: Entry | undefined): { replica: Entry; linked: boolean } {
  const { io } = ctx;
  const leaderAbs = ctx.replicaRoot + '/' + leader;
  const abs = ctx.replicaRoot + '/' + relPath;
  const tempAbs = tempPathFor(ctx.replicaRoot, relPath);
  const name = relPath.slice(relPath.lastIndexOf('/') + 1);
  let step = `checking ${show(leader)} to link`;
  try {
    const target = io.lstat(leaderAbs);
    if (!target.isFile()) throw Object.assign(new Error(`${show(leader)} is not a file in the replica`), { code: 'ENOENT' });
    if (replacing !== undefined) {
      let now;
      try {
        now = io.lstat(abs);
      } catch {
        now = undefined; // gone since the walk: linked below
      }
      if (now !== undefined && now.ino === target.ino && now.dev === target.dev) return { replica: toEntry(name, now), linked: false };
    }
    step = 'linking';
    removeQuietly(io, tempAbs);
    return inWritableParent(ctx, relPath, () => {
      io.link(leaderAbs, tempAbs);
      return { replica: linkIntoPlace(ctx, relPath, tempAbs, replacing !== undefined, name, (next) => (step = next)), linked: true };
    });
  } catch (error) {
    removeQuietly(io, tempAbs);
    throw new StepError(step, relPath, error);
  }
}

/** Sets a link's own owner and times (its target text is already right): what `replica`, the link as the walk saw it, lacks. */
export function setLinkMeta(ctx: LocalContext, relPath: string, source: Entry, replica: Entry): void {
  const abs = ctx.replicaRoot + '/' + relPath;
  let step = 'setting owner of link';
  try {
    const uid = ctx.owners.uid(source);
    const gid = ctx.owners.gid(source);
    if ((uid !== undefined && uid !== replica.uid) || (gid !== undefined && gid !== replica.gid)) setOwner(ctx, () => ctx.io.lchown(abs, uid ?? -1, gid ?? -1));
    step = 'setting mtime of link';
    ctx.io.lutimes(abs, source);
  } catch (error) {
    throw new StepError(step, relPath, error);
  }
}

/** `fixMeta`'s steps, by the call that makes each (`Io.fixMetas` names a failed one's). */
const META_STEPS = { chown: 'setting owner of', chmod: 'setting permissions of', utime: 'setting mtime of', lstat: 'checking' } as const;

/**
 * Brings a replica file's permission bits and mtime to the source's without rewriting it (many at
 * a time: `Io.fixMetas`, see `LocalReplica.fixMetas`). `replica` is the file as the walk saw it;
 * one that changed since is left as it is (`ChangedInReplica`; Safety: see `fixMetas` in
 * native/pool.c).
 */
export function fixMeta(ctx: LocalContext, fix: MetaFix): MetaFixed {
  checkUnchanged(ctx, fix.relPath, fix.seen);
  return setMeta(ctx, fix);
}

/**
 * The error `fixMeta` would have thrown for a file whose fix `Io.fixMetas` reports failed: the
 * step its `syscall` names, or `ChangedInReplica` (code ECHANGED).
 */
export function fixMetaError(relPath: string, error: Error): Error {
  const { code, syscall } = error as NodeJS.ErrnoException;
  if (code === 'ECHANGED') return new ChangedInReplica(relPath);
  return new StepError(syscall === 'chown' || syscall === 'chmod' || syscall === 'utime' ? META_STEPS[syscall] : META_STEPS.lstat, relPath, error);
}

/** `fixMeta` without its check: the owner, the bits, the times, and the file as it is after. */
function setMeta(ctx: LocalContext, fix: MetaFix): Extract<MetaFixed, { kind: 'fixed' }> {
  const { io } = ctx;
  const { relPath } = fix;
  const replicaAbs = ctx.replicaRoot + '/' + relPath;
  let step: string = META_STEPS.chown;
  try {
    // The owner first: a chown clears the set-id bits, which the chmod after gives back.
    let ownerRefused = false;
    if (fix.uid !== undefined || fix.gid !== undefined) setOwner(ctx, () => io.lchown(replicaAbs, fix.uid ?? -1, fix.gid ?? -1), () => (ownerRefused = true));
    step = META_STEPS.chmod;
    if (fix.mode !== undefined || ((fix.uid !== undefined || fix.gid !== undefined) && fix.seen.mode & 0o6000)) io.chmod(replicaAbs, fix.mode ?? fix.seen.mode);
    step = META_STEPS.utime;
    io.utimes(replicaAbs, fix);
    step = META_STEPS.lstat;
    const replica = toEntry(fix.seen.name, io.lstat(replicaAbs));
    return ownerRefused ? { kind: 'fixed', replica, ownerRefused } : { kind: 'fixed', replica };
  } catch (error) {
    throw new StepError(step, relPath, error);
  }
}

/** Creates a folder, private until its permission bits are set at the end of the pass. */
export function makeDir(ctx: LocalContext, relPath: string): void {
  try {
    inWritableParent(ctx, relPath, () => ctx.io.mkdir(ctx.replicaRoot + '/' + relPath, 0o700));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST' && isDir(ctx, relPath)) return;
    throw new StepError('creating folder', relPath, error);
  }
}

function isDir(ctx: LocalContext, relPath: string): boolean {
  try {
    return ctx.io.lstat(ctx.replicaRoot + '/' + relPath).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Gives a replica folder the source folder's owner, permission bits and times, once its content is
 * final: what changed of the first two, as a reason (`owner, permissions`), or undefined. Its mtime
 * is set too when it differs, silently (every folder an entry was added to or removed from).
 */
export function setDirMeta(ctx: LocalContext, relPath: string, source: Entry): Reason | undefined {
  const abs = relPath ? ctx.replicaRoot + '/' + relPath : ctx.replicaRoot;
  let step = 'checking folder';
  try {
    const now = toEntry(source.name, ctx.io.lstat(abs));
    const parts: string[] = [];
    step = 'setting owner of folder';
    const owner = ownerDiffers(ctx.owners, source, now);
    if (owner.uid || owner.gid) {
      let refused = false;
      setOwner(ctx, () => ctx.io.lchown(abs, owner.uid ? source.uid : -1, owner.gid ? source.gid : -1), () => (refused = true));
      if (!refused && owner.uid) parts.push('owner');
      if (!refused && owner.gid) parts.push('group');
    }
    step = 'setting permissions of folder';
    if (now.mode !== source.mode || ((owner.uid || owner.gid) && source.mode & 0o6000)) {
      ctx.io.chmod(abs, source.mode);
      if (now.mode !== source.mode) parts.push('permissions');
    }
    step = 'setting mtime of folder';
    if (!sameMtime(source, now)) ctx.io.utimes(abs, source);
    return parts.length === 0 ? undefined : parts.join(', ');
  } catch (error) {
    throw new StepError(step, relPath, error);
  }
}

/** Removes one replica entry (a folder only once empty: children are deleted first). */
export function deleteEntry(ctx: LocalContext, relPath: string, entry: Entry): boolean {
  const abs = ctx.replicaRoot + '/' + relPath;
  try {
    if (entry.kind !== 'dir' && ctx.backupRoot) backup(ctx, relPath);
    else inWritableParent(ctx, relPath, () => (entry.kind === 'dir' ? ctx.io.rmdir(abs) : ctx.io.unlink(abs)));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false; // already gone
    throw new StepError('deleting', relPath, error);
  }
}

/** Moves a replica entry to `<backupRoot>/<relPath>` (a rename: the backup dir is on the same filesystem). */
export function backup(ctx: LocalContext, relPath: string): void {
  const target = ctx.backupRoot + '/' + relPath;
  mkdirSync(fsPath(dirname(target)), { recursive: true });
  inWritableParent(ctx, relPath, () => ctx.io.rename(ctx.replicaRoot + '/' + relPath, target));
}

/**
 * Renames a replica file whose content moved to another path in the source, then gives it the
 * source's permission bits and mtime (`fixMeta`). `replica` is the file as the walk saw it at `from`.
 * Returns the replica file as it is after.
 */
export function moveEntry(ctx: LocalContext, from: string, to: string, source: Entry, replica: Entry): Entry {
  // Before the rename, which moves its ctime.
  checkUnchanged(ctx, from, replica);
  try {
    inWritableParents(ctx, [from, to], () => ctx.io.rename(ctx.replicaRoot + '/' + from, ctx.replicaRoot + '/' + to));
  } catch (error) {
    throw new RenameFailed(`moving ${show(from)} ->`, to, error);
  }
  return setMeta(ctx, metaFix(to, source, replica, ctx.owners)).replica;
}

/** Renames a replica folder, with what it holds (read-only parents made writable for it). */
export function renameFolder(ctx: LocalContext, from: string, to: string): void {
  try {
    inWritableParents(ctx, [from, to], () => ctx.io.rename(ctx.replicaRoot + '/' + from, ctx.replicaRoot + '/' + to));
  } catch (error) {
    throw new RenameFailed(`moving ${show(from)}/ ->`, to + '/', error);
  }
}

/** Throws `ChangedInReplica` unless the replica file at `relPath` is still `seen` (its fingerprint). */
function checkUnchanged(ctx: LocalContext, relPath: string, seen: Entry): void {
  let now: Entry;
  try {
    now = toEntry(seen.name, ctx.io.lstat(ctx.replicaRoot + '/' + relPath));
  } catch (error) {
    throw new StepError(META_STEPS.lstat, relPath, error);
  }
  if (!sameFingerprint(now, seen)) throw new ChangedInReplica(relPath);
}
