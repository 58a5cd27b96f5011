/**
 * Runs of like operations kept under way together, each still recorded and logged in the plan's
 * order: metadata fixes (a batch at a time) and files' deletes (many at once).
 */
import { metaToFix } from '../compare/diff.js';
import type { Reason } from '../compare/types.js';
import { metaFix, type MetaFix, type MetaFixed, type Replica } from '../replica/replica.js';
import type { PassContext } from './context.js';
import type { DeleteOp, MetaOp, Recorder } from './recorder.js';

/**
 * Metadata fixes asked of the replica this many at a time, up to METAS_AHEAD batches ahead of the
 * one being recorded. Perf: a pass that found 100k files' mtimes touched (contents unchanged) made
 * those calls on the main thread, ~9 us a file (~0.9 s of the pass), after the hashing and with the
 * other core idle: 7.11 s against 6.48 s in batches on libuv's pool (medians of 3, alternating);
 * batches of 256 keep the main thread's share to the records and the lines.
 */
const METAS_BATCH = 256;
const METAS_AHEAD = 2;
/** Deletes under way at once (`applyDeletes`). */
const DELETES_AHEAD = 64;

/** A run of metadata fixes; stops early (what is under way still ends) when the pass must stop. */
export async function applyMetas(pass: PassContext, replica: Replica, recorder: Recorder, ops: readonly MetaOp[]): Promise<void> {
  const batches: Promise<MetaFixed[]>[] = [];
  const reasons = ops.map((op) => metaToFix(op, pass.owners));
  const start = (from: number): void => {
    if (from >= ops.length) return;
    const fixes: MetaFix[] = [];
    for (let i = from; i < Math.min(from + METAS_BATCH, ops.length); i++) {
      if (reasons[i] !== undefined) fixes.push(metaFix(ops[i].relPath, ops[i].source, ops[i].replica, pass.owners));
    }
    batches.push(fixes.length === 0 ? Promise.resolve([]) : replica.fixMetas(fixes).catch((error: unknown) => fixes.map((): MetaFixed => ({ kind: 'failed', error }))));
  };
  for (let ahead = 0; ahead < METAS_AHEAD; ahead++) start(ahead * METAS_BATCH);
  try {
    for (let from = 0, batch = 0; from < ops.length; from += METAS_BATCH, batch++) {
      const fixed = await batches[batch];
      start(from + METAS_AHEAD * METAS_BATCH);
      for (let i = from, fix = 0; i < Math.min(from + METAS_BATCH, ops.length); i++) {
        if (await pass.tick()) return;
        const op = ops[i];
        const reason = reasons[i];
        if (reason === undefined) {
          recorder.metaFixed(op, undefined, op.replica); // nothing to fix: the record refreshed
        } else {
          const outcome = fixed[fix++];
          if (outcome.kind === 'failed') {
            recorder.failed(op, outcome.error);
          } else {
            // An owner the replica refused (warned about once) is not news.
            recorder.metaFixed(op, outcome.ownerRefused ? withoutOwner(reason) : reason, outcome.replica);
            if (outcome.ownerError !== undefined) recorder.failed(op, outcome.ownerError);
          }
        }
        await recorder.checkpoint();
      }
    }
  } finally {
    // Interrupted: the batches under way are let finish (a few ms); what they did is not recorded.
    await Promise.all(batches);
  }
}

/** `reason` without its owner and group (`owner, mtime` → `mtime`), or undefined if nothing is left. */
export function withoutOwner(reason: Reason): Reason | undefined {
  const rest = reason.split(', ').filter((part) => part !== 'owner' && part !== 'group');
  return rest.length === 0 ? undefined : rest.join(', ');
}

/**
 * A run of files' deletes, up to DELETES_AHEAD under way at once, each logged and counted in the
 * plan's order; one already gone is left unlogged. False when the pass was asked to stop (the
 * deletes already under way are still awaited and logged: every file deleted has its line).
 */
export async function applyDeletes(pass: PassContext, replica: Replica, recorder: Recorder, ops: readonly DeleteOp[]): Promise<boolean> {
  const removals: Promise<boolean | { error: unknown }>[] = [];
  let stopped = false;
  const start = (i: number): void => {
    if (i >= ops.length || stopped) return;
    removals[i] = replica.remove(ops[i].relPath, ops[i].replica).catch((error: unknown) => ({ error }));
  };
  for (let i = 0; i < DELETES_AHEAD; i++) start(i);
  try {
    for (let i = 0; i < ops.length && removals[i] !== undefined; i++) {
      const outcome = await removals[i];
      if (!stopped && (await pass.tick())) stopped = true;
      start(i + DELETES_AHEAD);
      if (outcome === true) recorder.deleted(ops[i]);
      else if (outcome !== false) recorder.failed(ops[i], outcome.error);
      await recorder.checkpoint();
    }
  } finally {
    // (Were anything above to throw, the deletes under way still end before the pass does.)
    await Promise.all(removals);
  }
  return !stopped;
}
