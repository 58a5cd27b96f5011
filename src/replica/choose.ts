/**
 * Which replica a pass writes to: the one place that picks an implementation of `Replica`: a local
 * folder (`local/`), or a folder on another machine over SFTP (`sftp/`), which the command line
 * recognised by its form (`host:path`, `sftp://…`).
 */
import { NO_OWNERS, processOwners } from '../compare/owners.js';
import type { Io } from './local/io.js';
import { nativeTimes } from '../native.js';
import { LocalReplica, type LocalReplicaOptions } from './local/index.js';
import type { Replica } from './replica.js';
import { SftpReplica } from './sftp/index.js';
import type { Remote } from '../cli/config.js';

/** What a pass tells the replica it opens: a local folder's needs, and for a remote one its address and what to do when the connection is lost. */
export type ReplicaChoice = LocalReplicaOptions & { remote?: Remote; lost(why: string): void };

/** For the debug line: which implementation `openReplica` picks for `replica`, and what it keeps. */
export function replicaName(remote: Remote | undefined): string {
  if (remote) return 'folder over SFTP (size, mode and whole-second mtimes; no ctime, inode or owners)';
  return `local folder (lstat with change times and inodes; times set to the ${nativeTimes() ? 'nanosecond, by the addon' : 'microsecond: the addon is not built'}; owners: ${processOwners().name})`;
}

export function openReplica(choice: ReplicaChoice): Replica {
  if (choice.remote) return new SftpReplica({ ...choice, address: choice.remote.address, ssh: choice.remote.ssh });
  return new LocalReplica(choice);
}

/** What `verify` opens a remote replica with: to read it, never to write (`dryRun`). */
export function remoteAccess(remote: Remote, source: string, io: Io): ReplicaChoice {
  return {
    source,
    replica: remote.address.given,
    remote,
    io,
    fsync: false,
    dryRun: true,
    listing: { threads: false, io },
    copiers: { threads: false },
    tick: async () => false,
    owners: NO_OWNERS,
    log: { debug: () => {}, warn: () => {} },
    lost: () => {},
  };
}
