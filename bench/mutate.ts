/**
 * Changes the mutating scenarios make to the working copy of t100k, and how they are undone.
 *
 * Everything is deterministic: the same 1% of files is edited, added and deleted on every run,
 * with the same new contents, and reverting restores the pristine bytes and mtimes by copying
 * from the pristine tree (which is never written to).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Prng } from './prng.js';
import { type FileEntry, fillHeader, HEADER_BYTES, writeContent } from './trees.js';

/** A planned 1% change: which files are edited (and to what size), deleted and added. */
export interface ChangePlan {
  edits: { rel: string; size: number; offset: number }[];
  deletes: string[];
  adds: { rel: string; size: number; offset: number }[];
}

const POOL_BYTES = 1 << 20;

/** Random contents for edits and additions (its own seed: independent of the tree's pool). */
let editPool: Buffer | undefined;
function pool(): Buffer {
  editPool ??= new Prng('change1pct/pool').fill(Buffer.allocUnsafe(POOL_BYTES));
  return editPool;
}

/**
 * Plans the change of `fraction` of the files: 60% of them edited (half keep their size, half get
 * a new one, 1–64 KiB), 20% deleted, and as many new files added, in random existing folders.
 */
export function planChange(files: FileEntry[], fraction = 0.01): ChangePlan {
  const rng = new Prng('change1pct/plan');
  const total = Math.round(files.length * fraction);
  const editCount = Math.round(total * 0.6);
  const deleteCount = Math.round(total * 0.2);
  const addCount = total - editCount - deleteCount;
  const picked = rng.sample(files.length, editCount + deleteCount);
  const newSize = (): number => rng.int(1024, 64 * 1024);
  const offset = (size: number): number => rng.int(0, POOL_BYTES - Math.max(size, HEADER_BYTES));

  const edits = picked.slice(0, editCount).map((i, k) => {
    const size = k % 2 === 0 ? files[i].size : newSize();
    return { rel: files[i].rel, size, offset: offset(size) };
  });
  const deletes = picked.slice(editCount).map((i) => files[i].rel);
  const adds = Array.from({ length: addCount }, (_, k) => {
    // Generated names never contain "bench-added", so these never collide with tree files.
    const folder = path.posix.dirname(files[rng.int(0, files.length - 1)].rel);
    const size = newSize();
    return { rel: path.posix.join(folder, `bench-added-${k}.dat`), size, offset: offset(size) };
  });
  return { edits, deletes, adds };
}

/** Applies the plan to the tree at `root`: edits rewrite in place (mtime = now), deletes, adds. */
export function applyChange(root: string, plan: ChangePlan): void {
  const header = Buffer.alloc(HEADER_BYTES);
  plan.edits.forEach((e, k) => writeContent(path.join(root, e.rel), fillHeader(header, `edited #${k}`), pool(), e.offset, e.size));
  for (const rel of plan.deletes) fs.unlinkSync(path.join(root, rel));
  plan.adds.forEach((a, k) => writeContent(path.join(root, a.rel), fillHeader(header, `added #${k}`), pool(), a.offset, a.size));
}

/**
 * Undoes the plan, whether it was applied fully, partly or not at all: edited and deleted files
 * are copied back from the pristine tree with their pristine mtime, added files are removed.
 */
export function revertChange(root: string, pristine: string, plan: ChangePlan, mtimeOf: Map<string, number>): void {
  for (const rel of [...plan.edits.map((e) => e.rel), ...plan.deletes]) {
    const target = path.join(root, rel);
    fs.copyFileSync(path.join(pristine, rel), target);
    const mtime = mtimeOf.get(rel);
    if (mtime === undefined) throw new Error(`revert: ${rel} is not in the tree's list`);
    fs.utimesSync(target, mtime, mtime);
  }
  for (const a of plan.adds) fs.rmSync(path.join(root, a.rel), { force: true });
}

/** Sets every listed file's mtime (and atime) to `seconds`, or back to its pristine value. */
export function setMtimes(root: string, files: FileEntry[], seconds: number | 'pristine'): void {
  for (const f of files) {
    const t = seconds === 'pristine' ? f.mtime : seconds;
    fs.utimesSync(path.join(root, f.rel), t, t);
  }
}
