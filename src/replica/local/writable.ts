/**
 * A replica folder mirrored read-only from the source (0555) refuses new entries to a user who is
 * not root: the operation is retried with the folder made writable, and its mode given back after.
 */
import { errorCode, show } from '../../errors.js';
import { replicaParent, type LocalContext } from './context.js';

/** A copy's folder is read-only and `unlockParents` is false: the main thread copies it instead. */
export class ReadOnlyParent extends Error {
  override name = 'ReadOnlyParent';
}

/**
 * A replica folder mirrored read-only from the source (0555) refuses new entries to a user who is
 * not root. On EACCES there, add u+w to the folder for the operation and give it back its mode
 * after (rsync does the same). Returns the restorer; rethrows anything else.
 */
export function unlockParent(ctx: LocalContext, relPath: string, error: unknown): () => void {
  const restore = unlockParentIfLocked(ctx, relPath, error);
  if (restore === undefined) throw error; // writable already: a real permission problem
  return restore;
}

/** `unlockParent`, but undefined (nothing done) when the folder is writable already, or gone. */
function unlockParentIfLocked(ctx: LocalContext, relPath: string, error: unknown): (() => void) | undefined {
  if (errorCode(error) !== 'EACCES') throw error;
  if (ctx.unlockParents === false) throw new ReadOnlyParent(`${show(relPath)}: its folder is read-only`, { cause: error });
  const dir = replicaParent(ctx.replicaRoot, relPath);
  let mode: number;
  try {
    mode = Number(ctx.io.lstat(dir).mode) & 0o7777;
  } catch {
    return undefined;
  }
  if (mode & 0o200) return undefined;
  ctx.io.chmod(dir, mode | 0o200);
  return () => {
    try {
      ctx.io.chmod(dir, mode);
    } catch {
      // the folder went away
    }
  };
}

/**
 * Runs `fn`, retrying once with the parent folders of `relPaths` made writable where they were
 * read-only: a rename's two (the kernel wants write permission on the folder an entry leaves as
 * well as on the one it enters), or one.
 */
export function inWritableParents<T>(ctx: LocalContext, relPaths: string[], fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    const restores: (() => void)[] = [];
    try {
      const dirs = new Map(relPaths.map((rel) => [replicaParent(ctx.replicaRoot, rel), rel]));
      for (const rel of dirs.values()) {
        const restore = unlockParentIfLocked(ctx, rel, error);
        if (restore) restores.push(restore);
      }
      if (restores.length === 0) throw error; // writable already: a real permission problem
      return fn();
    } finally {
      for (const restore of restores.reverse()) restore();
    }
  }
}

/** Runs `fn`, retrying once with the parent folder made writable if it was read-only. */
export function inWritableParent<T>(ctx: LocalContext, relPath: string, fn: () => T): T {
  return inWritableParents(ctx, [relPath], fn);
}

/** Removes a temporary file, through a read-only folder too. */
export function removeTemp(ctx: LocalContext, relPath: string, tempAbs: string): void {
  try {
    inWritableParent(ctx, relPath, () => ctx.io.unlink(tempAbs));
  } catch {
    // gone already, or beyond reach: the next pass sweeps temporary files
  }
}
