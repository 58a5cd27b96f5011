/**
 * One pass, as a pipeline: list and compare both trees → settle what the cache cannot vouch for →
 * pair moves → plan → guard → execute → record. Each stage is a module of this folder with typed
 * input and output; only `execute` changes the replica, through a `Replica`. Per-entry failures
 * are logged, counted and skipped; only bad configuration throws (and that is checked before).
 */
import { linkGroups } from '../compare/links.js';
import { pairMoves } from '../compare/moves.js';
import { planOps, type Plan } from '../compare/plan.js';
import type { Op } from '../compare/types.js';
import { openReplica } from '../replica/choose.js';
import type { CopyJob, Replica } from '../replica/replica.js';
import { closeListers } from '../tree/lister.js';
import { PassContext } from './context.js';
import { execute } from './execute.js';
import { deleteRefusals, emptyReplicaReason, massDeleteReason, type GuardFacts } from './guards.js';
import type { PassOptions, PassResult } from './options.js';
import { Recorder } from './recorder.js';
import { findRoots, type Roots } from './roots.js';
import { hashSource, settle } from './settle.js';
import { finish, type Outcome } from './summary.js';
import { moveFolders, walkTrees, type Walked } from './walk.js';

export type { PassOptions, PassResult } from './options.js';

/** Runs one pass. Never throws for a per-entry problem. */
export async function runPass(options: PassOptions): Promise<PassResult> {
  const pass = new PassContext(options);
  const replica = openReplica({
    source: options.source,
    replica: options.replica,
    io: options.io,
    fsync: options.fsync,
    dryRun: options.dryRun,
    backupRoot: options.backupDir ? `${options.backupDir}/${new Date(pass.started).toISOString().replace(/:/g, '-')}` : undefined,
    listing: options.threads ? { threads: true } : { threads: false, io: options.io },
    copiers: {
      threads: options.threads !== undefined,
      addonCopies: options.poolCopies,
      copyThreads: options.copyThreads,
      copyThreadsFrom: options.copyThreadsFrom,
      kernelCopyMinBytes: options.kernelCopyMinBytes,
    },
    tick: () => pass.tick(),
    owners: pass.owners,
    log: { debug: (message) => pass.debug(message), warn: (message) => pass.warn(message) },
    remote: options.remote,
    lost: (why) => pass.lose(why),
  });
  const recorder = new Recorder(pass, replica);
  const outcome: Outcome = { refusedDeletes: false, walkComplete: false, replicaEntries: 0 };
  try {
    const roots = await findRoots(pass, replica);
    if (roots === undefined) {
      await closeListers(options.listers);
      await pass.loadManifest();
    } else {
      // A scoped pass (--watch) makes the folder renames it was told of first, then lists its scope.
      if (options.scope) pass.o = { ...options, scope: await moveFolders(pass, replica, recorder, options.scope) };
      const walked = await walkTrees(pass, replica, roots);
      outcome.walkComplete = walked.result.complete;
      outcome.replicaEntries = walked.result.replicaEntries;
      if (pass.o.scope) outcome.scoped = { listed: walked.listedDirs.size, trusted: trusted(walked) };
      const facts = guardFacts(pass, roots, walked);
      // Safety: an empty replica the last pass left files in is an unmounted disk (most likely):
      // nothing is copied onto the disk beneath it. (A scoped pass lists too little to tell: the
      // loop checks the replica root's identity before each.)
      const emptyReplica = pass.o.scope ? undefined : emptyReplicaReason(walked.result, facts);
      if (emptyReplica !== undefined) pass.error(emptyReplica);
      else outcome.refusedDeletes = await syncReplica(pass, replica, recorder, walked, facts);
    }
  } finally {
    await replica.close(); // (its threads stopped, folders it opened closed, left-over temporary files swept)
  }
  pass.debug(`executed at ${Date.now() - pass.started} ms`);
  return finish(pass, recorder, outcome);
}

/** The files a scoped pass trusted: those the manifest had in the folders it did not list. */
function trusted(walked: Walked): number {
  let listed = 0;
  // (A manifest folder the walk listed: its records were checked.)
  for (const dir of walked.listedDirs) listed += walked.manifest.sizeOf(dir);
  return Math.max(0, walked.known - listed);
}

/** Settle, pair moves, plan, guard, execute, record. Returns whether deletes were refused. */
async function syncReplica(pass: PassContext, replica: Replica, recorder: Recorder, walked: Walked, facts: GuardFacts): Promise<boolean> {
  const { o } = pass;
  // Decided before pairing moves: a replaced source must not rearrange the replica either.
  const massDelete = massDeleteReason(walked.result, facts);
  // With --hard-links, before anything is read: only a group's leader is.
  const linked = walked.links === undefined ? { changes: walked.changes, refresh: new Set<string>() } : linkGroups(walked.changes, walked.links);
  const settled = await settle(pass, replica, linked.changes);
  const hashedAt = Date.now();
  // Under --checksum the manifest vouches for nothing, so nothing is paired from it.
  const paired =
    massDelete === undefined && !o.checksum
      ? await pairMoves(settled, { peek: (relPath) => pass.manifest.peek(relPath), hashSource: (relPath, entry) => hashSource(pass, relPath, entry) })
      : settled;
  const plan = planOps(paired);
  const refusals = deleteRefusals(plan, walked.result, massDelete, facts);
  for (const message of refusals) pass.error(message);
  const refused = refusals.length > 0;
  pass.debug(`plan: ${plan.upserts.length + plan.deletes.length + plan.afterDeletes.length} operations at ${Date.now() - pass.started} ms (${pass.stats.hashed} files read)`);

  await replica.prepare(walked.temps, copyJobs(plan));
  await execute(pass, replica, recorder, plan, refused, hashedAt, linked.refresh);

  // Records are forgotten only after a complete pass that deleted what it had to: after a
  // refused pass (an unmounted source), the next one finds everything still known.
  if (walked.result.complete && !pass.interrupted && !o.dryRun && !refused) {
    // (A scoped pass looked only in the folders it listed.)
    if (o.scope) pass.manifest.forgetUnseenIn(walked.listedDirs);
    else pass.manifest.forgetUnseen();
  }
  // The source's identity is remembered unless this pass refused deletes because of it.
  const massRefused = massDelete !== undefined && plan.deleteCount > 0;
  if (!o.dryRun && !massRefused) pass.manifest.setSourceRoot(facts.sourceId!);
  return refused;
}

function guardFacts(pass: PassContext, roots: Roots, walked: Walked): GuardFacts {
  const { o } = pass;
  return {
    source: o.source,
    replica: o.replica,
    known: walked.known,
    replicaEntries: o.scope ? o.replicaEntriesHint : undefined,
    sourceId: roots.sourceId,
    recordedSourceId: pass.manifest.sourceRoot,
    allowMassDelete: o.allowMassDelete,
    allowEmptyReplica: o.allowEmptyReplica,
    maxDelete: o.maxDelete,
    maxDeleteBytes: o.maxDeleteBytes,
    holdDeletes: o.holdDeletes,
  };
}

/** The copies a plan makes (for the replica to choose how it writes them, and which left-over temporary files it resumes). */
function copyJobs(plan: Plan): CopyJob[] {
  // (Hard links are no copies: they need no temporary file of their own resumed.)
  const copies = [...plan.upserts, ...plan.afterDeletes].filter((op): op is Extract<Op, { op: 'copy' }> => op.op === 'copy');
  return copies.map((op) => ({ relPath: op.relPath, source: op.source, replacing: op.replacing !== undefined }));
}
