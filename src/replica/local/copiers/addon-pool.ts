/** Small copies written by the addon on libuv's thread pool (`Io.copyToTemp`, `native/copy.c`). */
import { ChangedWhileReading, errorCode, StepError } from '../../../errors.js';
import { splitRel } from '../../../manifest/record-store.js';
import { entryFrom } from '../../../tree/entry.js';
import type { LocalContext } from '../context.js';
import { tempPathFor } from '../context.js';
import { COPY_STEPS } from '../copy.js';
import type { Copier, CopyOutcome, LocalCopyJob } from './copier.js';

/**
 * Small copies written by the addon on libuv's thread pool (`Io.copyToTemp`), several at once,
 * while the main thread flushes, renames and records the ones before.
 *
 * Perf: with no thread to start (a copying thread boots its own Node, ~50 ms), it pays from the
 * first copy: the 1% change's 800 copies spent ~130 ms of the main thread in opens, reads, writes
 * and MD5, with the other core idle.
 */
export class PoolCopier implements Copier {
  readonly name = 'addon pool';

  /** `maxBytes`: copies of this many bytes or more are not its (nor a source found to have grown to that since the walk). */
  constructor(
    private readonly ctx: LocalContext,
    private readonly maxBytes: number,
  ) {}

  takes(job: LocalCopyJob): boolean {
    return job.size < this.maxBytes && !job.resume;
  }

  async write({ relPath, replacing }: LocalCopyJob): Promise<CopyOutcome> {
    const { io, sourceRoot, replicaRoot } = this.ctx;
    const tempAbs = tempPathFor(replicaRoot, relPath);
    try {
      const { fd, md5, nums } = await io.copyToTemp(sourceRoot + '/' + relPath, tempAbs, this.maxBytes);
      const source = entryFrom(splitRel(relPath)[1], nums, 0);
      return { kind: 'written', pending: { relPath, tempAbs, output: fd, source, md5, resumedBytes: 0, replacing, restoreMode: undefined } };
    } catch (error) {
      if (errorCode(error) === 'ECHANGED') return { kind: 'failed', error: new ChangedWhileReading(relPath) };
      const step = COPY_STEPS[(error as { step?: number }).step ?? -1];
      // No copy made (ENOSYS: no addon; ETOOBIG: grown past small; ENOMD5), or a read-only folder: the next copier's.
      if (step === undefined || (step === COPY_STEPS[2] && errorCode(error) === 'EACCES')) return { kind: 'declined' };
      return { kind: 'failed', error: new StepError(`copying (${step})`, relPath, error) };
    }
  }

  async close(): Promise<void> {}
}
