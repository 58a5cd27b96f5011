/** The end of a pass: folders flushed, the summary line, the last pass and the records saved. */
import { formatBytes, formatCount } from '../log/units.js';
import type { PassContext } from './context.js';
import type { PassResult } from './options.js';
import type { Recorder } from './recorder.js';

/** How a pass went, for the summary: `scoped`, what a scoped pass listed and trusted. */
export interface Outcome {
  refusedDeletes: boolean;
  walkComplete: boolean;
  replicaEntries: number;
  scoped?: { listed: number; trusted: number };
}

export async function finish(pass: PassContext, recorder: Recorder, outcome: Outcome): Promise<PassResult> {
  const { refusedDeletes, walkComplete, replicaEntries, scoped } = outcome;
  const { o, stats: s } = pass;
  // Flushed before the summary, so a folder that cannot be flushed is counted in it.
  const flushed = o.dryRun || (await recorder.flushDirs());
  const durationMs = Date.now() - pass.started;
  const summarize = () => {
    const summary =
      `${o.dryRun ? 'dry run ' : ''}pass ${pass.interrupted ? 'stopped' : 'finished'}: ` +
      `${s.copied} copied, ${s.moved} moved, ${s.updated} updated, ${s.deleted} deleted, ${s.hashed} hashed, ${s.errors} errors; ` +
      `${formatBytes(s.bytesCopied)} transferred in ${(durationMs / 1000).toFixed(2)} s` +
      (scoped ? ` (scoped: ${formatCount(scoped.listed)} folder${scoped.listed === 1 ? '' : 's'} listed, ${formatCount(scoped.trusted)} trusted)` : '');
    const exitStatus: 0 | 1 = s.errors > 0 || refusedDeletes ? 1 : 0;
    return { summary, exitStatus };
  };
  let { summary, exitStatus } = summarize();
  if (!o.dryRun && flushed) {
    const result = pass.interrupted ? 'stopped' : exitStatus === 0 ? 'ok' : 'errors';
    const { warnings, ...counters } = s;
    pass.manifest.setLastPass({ startedAt: new Date(pass.started).toISOString(), durationMs, exitStatus, summary, result, stats: { ...counters, warnings } });
    const errors = s.errors;
    await recorder.writeManifest(true);
    // A manifest that could not be written is an error of this pass too (the file keeps the last pass it recorded).
    if (s.errors !== errors) ({ summary, exitStatus } = summarize());
  }
  o.log.info(summary, { ...s, durationMs, dryRun: o.dryRun, stopped: pass.interrupted });
  return { stats: s, exitStatus, interrupted: pass.interrupted, durationMs, summary, walkComplete, replicaEntries };
}
