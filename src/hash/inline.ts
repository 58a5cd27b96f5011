/** Hashing on the main thread, one file after another, through an `Io` (tests count and fail its calls). */
import { Interrupted } from '../errors.js';
import type { Io } from '../replica/local/io.js';
import { toEntry } from '../tree/scan.js';
import { CHUNK_SIZE, hashFile, type Hasher, type HashJob, type HashResult } from './hasher.js';

/**
 * One read buffer for every inline hasher (Perf: a pass makes one per move candidate). Shared
 * safely: a chunk is read and hashed before any await, so loops under way at once never see
 * each other's bytes.
 */
let shared: Buffer | undefined;

export class InlineHasher implements Hasher {
  readonly done = { files: 0, bytes: 0 };

  /** `tick`: lets the event loop run now and then; true once the caller must stop (asked before each file and after each chunk). */
  constructor(
    private readonly io: Io,
    private readonly tick: () => Promise<boolean>,
  ) {}

  async hashAll(jobs: readonly HashJob[]): Promise<(HashResult | undefined)[]> {
    const results: (HashResult | undefined)[] = new Array(jobs.length);
    const buffer = (shared ??= Buffer.allocUnsafe(CHUNK_SIZE));
    for (let i = 0; i < jobs.length; i++) {
      if (await this.tick()) break;
      const { absPath } = jobs[i];
      try {
        let md5: string;
        try {
          md5 = await hashFile(this.io, absPath, buffer, async (bytes) => {
            this.done.bytes += bytes;
            if (await this.tick()) throw new Interrupted();
          });
        } finally {
          this.done.files++;
        }
        const after = toEntry('', this.io.lstat(absPath));
        results[i] = { kind: 'hashed', md5, fp: [after.size, after.mtimeS, after.mtimeN, after.ctimeS, after.ctimeN, after.ino] };
      } catch (error) {
        if (error instanceof Interrupted) break;
        results[i] = { kind: 'failed', error: error as Error };
      }
    }
    return results;
  }

  async close(): Promise<void> {}
}
