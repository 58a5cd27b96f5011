/**
 * A copying thread: writes whole small copies, the first half of `writeCopy` (source read, hashed
 * and written into its temporary file, permissions set), and hands back the open temporary file's
 * descriptor (threads share the process's descriptors). The main thread flushes, renames and
 * records it, exactly as for a copy it wrote itself.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ChangedWhileReading, StepError } from '../../../errors.js';
import { CHUNK_SIZE } from '../../../hash/hasher.js';
import type { LocalContext } from '../context.js';
import { writeCopy, type LocalPendingCopy } from '../copy.js';
import { nodeIo } from '../io.js';
import { NO_OWNERS } from '../../../compare/owners.js';
import { ReadOnlyParent } from '../writable.js';

export interface CopyRequest {
  id: number;
  relPath: string;
  replacing: boolean;
}

/** `PendingCopy` without its function (a read-only folder's mode is put back at once, see below). */
export type WrittenCopy = Omit<LocalPendingCopy, 'restoreMode'>;

export interface CopyAnswer {
  id: number;
  written?: WrittenCopy;
  /** The source changed while it was read (`ChangedWhileReading`). */
  changed?: true;
  /** The folder is read-only: the main thread copies this one (`ReadOnlyParent`). */
  readOnlyParent?: true;
  /** A failed step (`StepError`): its step, and its cause's code and message. */
  failed?: { step: string; code?: string; message: string };
}

const { sourceRoot, replicaRoot } = workerData as { sourceRoot: string; replicaRoot: string };
const ctx: LocalContext = {
  io: nodeIo,
  sourceRoot,
  replicaRoot,
  fsync: false, // the main thread flushes
  buffer: Buffer.allocUnsafe(CHUNK_SIZE),
  tick: async () => false,
  unlockParents: false,
  owners: NO_OWNERS, // set by the main thread, in `finishCopy`
  ownerRefused: () => {},
};

async function copy(job: CopyRequest): Promise<CopyAnswer> {
  try {
    // No `restoreMode`: this thread never makes a folder writable (`unlockParents`).
    const { restoreMode: _, ...written } = await writeCopy(ctx, job.relPath, { replacing: job.replacing });
    return { id: job.id, written };
  } catch (error) {
    if (error instanceof ChangedWhileReading) return { id: job.id, changed: true };
    if (error instanceof ReadOnlyParent) return { id: job.id, readOnlyParent: true };
    const cause = (error instanceof StepError ? error.cause : error) as NodeJS.ErrnoException;
    return { id: job.id, failed: { step: error instanceof StepError ? error.step : 'copying', code: cause?.code, message: String(cause?.message ?? cause) } };
  }
}

// One copy at a time, in the order asked (they share the buffer).
let queue = Promise.resolve();
parentPort!.on('message', (job: CopyRequest) => {
  queue = queue.then(() => copy(job)).then((answer) => parentPort!.postMessage(answer));
});
