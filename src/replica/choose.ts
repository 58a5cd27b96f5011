/**
 * Which replica a pass writes to: the one place that picks an implementation of `Replica`. Today
 * every replica is a local folder; a replica on another machine would be recognised here by its
 * form (`host:path`, `sftp://…`) and get its own implementation beside `local/`.
 */
import type { ListingMode } from '../tree/choose.js';
import type { CopierOptions } from './local/copiers/copier.js';
import { LocalReplica } from './local/index.js';
import type { Io } from './local/io.js';
import type { Replica } from './replica.js';

export interface ReplicaChoice {
  source: string;
  replica: string;
  io: Io;
  fsync: boolean;
  dryRun: boolean;
  backupRoot?: string;
  listing: ListingMode;
  copiers: CopierOptions;
  tick(): Promise<boolean>;
  log: { debug(message: string): void; warn(message: string): void };
}

export function openReplica(choice: ReplicaChoice): Replica {
  return new LocalReplica(choice);
}
