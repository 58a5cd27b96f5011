/**
 * Large copies: the kernel copies the file (`Io.copyInKernel`, a `cat` process) while a hashing
 * thread reads the same open file (`copyInKernel` in `copy.ts`); a failed kernel copy is done again
 * byte by byte in the same call.
 */
import { HashPool } from '../../../hash/threads.js';
import type { LocalContext } from '../context.js';
import { writeCopy } from '../copy.js';
import type { Copier, CopyOutcome, LocalCopyJob } from './copier.js';

export class KernelCopier implements Copier {
  readonly name = 'kernel';
  /** The thread that hashes what the kernel copies (one copy at a time, so one thread), started with the first. */
  private hasher: HashPool | undefined;

  constructor(
    private readonly ctx: LocalContext,
    private readonly minBytes: number,
  ) {}

  takes(job: LocalCopyJob): boolean {
    return job.size >= this.minBytes;
  }

  async write({ relPath, replacing, resume }: LocalCopyJob): Promise<CopyOutcome> {
    const kernel = { minBytes: this.minBytes, hash: (fd: number, signal: AbortSignal) => this.hashOpenFile(fd, signal) };
    try {
      return { kind: 'written', pending: await writeCopy(this.ctx, relPath, { replacing, resume, kernel }) };
    } catch (error) {
      return { kind: 'failed', error };
    }
  }

  private async hashOpenFile(fd: number, signal: AbortSignal): Promise<string> {
    this.hasher ??= new HashPool(1);
    const result = await this.hasher.hashOpenFile(fd, signal);
    if (result.kind === 'failed') throw result.error;
    return result.md5;
  }

  async close(): Promise<void> {
    await this.hasher?.close();
  }
}
