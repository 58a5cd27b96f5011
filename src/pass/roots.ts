/** The two roots a pass starts from: the source must be a folder; the replica is created if missing (not in a dry run). */
import { UsageError, describe } from '../errors.js';
import { Unreachable } from '../replica/sftp/connect.js';
import type { Replica } from '../replica/replica.js';
import type { Entry } from '../tree/entry.js';
import { toEntry } from '../tree/scan.js';
import type { PassContext } from './context.js';

/** The source root's device and inode, and birth time where the filesystem keeps one. */
export interface RootIdentity {
  dev: string;
  ino: string;
  birth?: string;
}

export interface Roots {
  source: Entry;
  /** Undefined in a dry run into a replica that does not exist yet. */
  replica: Entry | undefined;
  sourceId: RootIdentity;
}

/** The roots, or undefined (an error logged: nothing can be done this pass). */
export async function findRoots(pass: PassContext, replica: Replica): Promise<Roots | undefined> {
  const { io, source } = pass.o;
  let sourceEntry: Entry;
  let sourceId: RootIdentity;
  try {
    const stats = io.lstat(source);
    sourceEntry = toEntry('', stats);
    if (sourceEntry.kind !== 'dir') throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
    // ext4 hands a recreated folder the same inode at once: its birth time tells them apart.
    sourceId = { dev: String(stats.dev), ino: String(stats.ino), ...(stats.birthtimeNs > 0n ? { birth: String(stats.birthtimeNs) } : {}) };
  } catch (error) {
    pass.error(`reading source ${source}: ${describe(error)}; nothing done`);
    return undefined;
  }
  let replicaEntry: Entry | undefined;
  try {
    replicaEntry = await replica.statRoot();
  } catch (error) {
    if (error instanceof UsageError) throw error; // (a remote replica's host key or login: exit 2)
    if (error instanceof Unreachable) pass.error(`${error.message}; nothing done`);
    else pass.error(`reading replica ${replica.root}: ${describe(error)}; nothing done`);
    return undefined;
  }
  if (replicaEntry !== undefined || pass.o.dryRun) return { source: sourceEntry, replica: replicaEntry, sourceId };
  try {
    replicaEntry = await replica.createRoot();
    pass.created.add('');
    return { source: sourceEntry, replica: replicaEntry, sourceId };
  } catch (error) {
    pass.error(`creating replica ${replica.root}: ${describe(error)}; nothing done`);
    return undefined;
  }
}
