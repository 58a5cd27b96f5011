/** Copies written on the main thread (`writeCopy`): any copy, the last copier tried. */
import type { LocalContext } from '../context.js';
import { writeCopy } from '../copy.js';
import type { Copier, CopyOutcome, LocalCopyJob } from './copier.js';

export class InlineCopier implements Copier {
  readonly name = 'main thread';

  constructor(private readonly ctx: LocalContext) {}

  takes(): boolean {
    return true;
  }

  async write({ relPath, replacing, resume }: LocalCopyJob): Promise<CopyOutcome> {
    try {
      return { kind: 'written', pending: await writeCopy(this.ctx, relPath, { replacing, resume }) };
    } catch (error) {
      return { kind: 'failed', error };
    }
  }

  async close(): Promise<void> {}
}
