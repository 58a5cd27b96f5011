/**
 * Which replica a pass writes to: the one place that picks an implementation of `Replica`. Today
 * every replica is a local folder; a replica on another machine would be recognised here by its
 * form (`host:path`, `sftp://…`) and get its own implementation beside `local/`.
 */
import { processOwners } from '../compare/owners.js';
import { nativeTimes } from '../native.js';
import { LocalReplica, type LocalReplicaOptions } from './local/index.js';
import type { Replica } from './replica.js';

/** What a pass tells the replica it opens (`LocalReplicaOptions`: a local folder's needs are all there are so far). */
export type ReplicaChoice = LocalReplicaOptions;

/** For the debug line: which implementation `openReplica` picks for `replica`, and what it keeps. */
export function replicaName(_replica: string): string {
  return `local folder (lstat with change times and inodes; times set to the ${nativeTimes() ? 'nanosecond, by the addon' : 'microsecond: the addon is not built'}; owners: ${processOwners().name})`;
}

export function openReplica(choice: ReplicaChoice): Replica {
  return new LocalReplica(choice);
}
