/**
 * The delete guards, pure: from what the walk and the plan found, and what the manifest remembers,
 * whether this pass may change the replica at all, and whether it may delete.
 */
import type { Plan } from '../compare/plan.js';
import type { WalkResult } from '../compare/walk.js';
import type { DeleteLimit } from '../cli/config.js';
import { show } from '../errors.js';
import { formatBytes } from '../log/units.js';
import type { RootIdentity } from './roots.js';

/** What the guards look at, besides the walk and the plan. */
export interface GuardFacts {
  source: string;
  replica: string;
  /** Files the manifest listed when the pass began. */
  known: number;
  /** The replica's entries for `--max-delete n%` when the walk did not list them all (a scoped pass). */
  replicaEntries?: number;
  /** The source root's identity now, and as the manifest recorded it. */
  sourceId: RootIdentity | undefined;
  recordedSourceId: RootIdentity | undefined;
  allowMassDelete?: boolean;
  allowEmptyReplica?: boolean;
  maxDelete?: DeleteLimit;
  maxDeleteBytes?: number;
  /** Set: delete nothing this pass, for this reason. */
  holdDeletes?: string;
}

/**
 * A replica found empty (created again, or an empty mount point) while the manifest lists files
 * the last passes left in it: its disk is most likely not mounted, and a pass would copy the
 * whole source onto the disk beneath. The pass does nothing, with an error, until the disk is
 * back or `--allow-empty-replica` says the empty replica is meant (a new disk).
 */
export function emptyReplicaReason(walk: WalkResult, f: GuardFacts): string | undefined {
  if (f.allowEmptyReplica) return undefined;
  if (walk.replicaEntries > 0 || f.known === 0) return undefined;
  return (
    `replica ${f.replica} is empty but the manifest lists ${f.known} files copied there (is its disk unmounted?); nothing done. ` +
    'If it is meant to be empty (a new disk), run once with --allow-empty-replica'
  );
}

/**
 * A vanished or replaced source, detected without a marker file: the source root is empty while
 * the manifest knows files (or the replica has entries to delete), or the source root's device or
 * inode is not the one recorded (another disk mounted there, the folder recreated).
 */
export function massDeleteReason(walk: WalkResult, f: GuardFacts): string | undefined {
  if (f.allowMassDelete) return undefined;
  const { known } = f;
  if (walk.sourceRootListed && walk.sourceRootEntries === 0 && (known > 0 || walk.replicaEntries > 0)) {
    return `source ${f.source} is empty but the ${known > 0 ? `manifest lists ${known} files` : `replica holds ${walk.replicaEntries} entries`} (is its disk unmounted?)`;
  }
  const recorded = f.recordedSourceId;
  const now = f.sourceId;
  const rebirth = recorded?.birth !== undefined && now?.birth !== undefined && recorded.birth !== now.birth;
  if (recorded !== undefined && now !== undefined && (recorded.dev !== now.dev || recorded.ino !== now.ino || rebirth)) {
    return (
      `source ${f.source} is not the folder synced before: its device/inode is ${now.dev}/${now.ino}, ` +
      `was ${recorded.dev}/${recorded.ino}${rebirth ? ', and it was created anew' : ''} (another disk mounted there, or the folder recreated)`
    );
  }
  return undefined;
}

/**
 * The delete guards, all or nothing: a hold, a vanished source, `--max-delete` (count or share of
 * the replica) and `--max-delete-bytes`. The errors to log when the deletes are refused (copies go
 * on), or none.
 */
export function deleteRefusals(plan: Plan, walk: WalkResult, massDelete: string | undefined, f: GuardFacts): string[] {
  const { maxDelete, maxDeleteBytes } = f;
  const refusals: string[] = [];
  if (f.holdDeletes !== undefined) refusals.push(`${f.holdDeletes}; nothing is deleted this pass`);
  if (massDelete !== undefined && plan.deleteCount > 0) {
    refusals.push(`${massDelete}; nothing was deleted. If this is intended, run once with --allow-mass-delete`);
  }
  if (maxDelete !== undefined) {
    const entries = f.replicaEntries ?? walk.replicaEntries;
    const limit = 'count' in maxDelete ? maxDelete.count : Math.floor((maxDelete.percent * entries) / 100);
    const shown = 'count' in maxDelete ? `--max-delete ${maxDelete.count}` : `--max-delete ${maxDelete.percent}% (${limit} of ${entries} replica entries)`;
    if (plan.deleteCount > limit) {
      refusals.push(`refusing to delete ${plan.deleteCount} entries: more than ${shown}; nothing was deleted (run with a higher --max-delete if this is intended)`);
    }
  }
  if (maxDeleteBytes !== undefined && plan.deleteBytes > maxDeleteBytes) {
    refusals.push(
      `refusing to delete ${formatBytes(plan.deleteBytes)} (${plan.deleteBytes} bytes) of files: more than --max-delete-bytes ` +
        `${formatBytes(maxDeleteBytes)} (${maxDeleteBytes} bytes); nothing was deleted`,
    );
  }
  if (refusals.length === 0) return refusals;
  for (const relPath of plan.replacements) refusals.push(`cannot replace ${show(relPath)} (type changed): its delete was refused`);
  return refusals;
}
