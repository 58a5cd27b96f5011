/**
 * Which owners and groups a pass keeps (rsync -a's rule): run as root, every entry's owner and
 * group; run as another user, the group where that user is a member of it (chgrp allows no
 * other), and the owner never (chown allows none). Chosen once per process, from who runs it.
 */
import type { Entry } from '../tree/entry.js';

export interface Owners {
  /** For the debug line. */
  readonly name: string;
  /** The owner to give the replica's copy of `source`, or undefined to leave it as it is. */
  uid(source: Entry): number | undefined;
  /** The group to give it, or undefined. */
  gid(source: Entry): number | undefined;
  /**
   * The replica keeps mtimes to the whole second only (a replica over SFTP): an mtime is compared
   * by its seconds. (Chosen with the owners: both are what the replica can keep.)
   */
  readonly wholeSeconds?: true;
}

/** Owners as root: every owner and group kept. */
export const ALL_OWNERS: Owners = { name: 'owners and groups (run as root)', uid: (s) => s.uid, gid: (s) => s.gid };

/** Owners of nobody: none kept (a platform without them). */
export const NO_OWNERS: Owners = { name: 'none', uid: () => undefined, gid: () => undefined };

/** Owners as a user who is not root, in `groups`: only those groups. */
export function groupsOnly(groups: readonly number[]): Owners {
  const member = new Set(groups);
  return { name: `groups this user is in (${[...member].join(', ')})`, uid: () => undefined, gid: (s) => (member.has(s.gid) ? s.gid : undefined) };
}

/** The owners this process can keep. */
export function processOwners(): Owners {
  if (process.getuid === undefined || process.getgroups === undefined) return NO_OWNERS;
  if (process.getuid() === 0) return ALL_OWNERS;
  return groupsOnly([process.getgid?.() ?? -1, ...process.getgroups()]);
}

/** What of the replica's `replica` differs from what `owners` keeps of `source`: its owner, its group. */
export function ownerDiffers(owners: Owners, source: Entry, replica: Entry): { uid: boolean; gid: boolean } {
  const uid = owners.uid(source);
  const gid = owners.gid(source);
  return { uid: uid !== undefined && uid !== replica.uid, gid: gid !== undefined && gid !== replica.gid };
}

/** Whether the replica's owner and group are as `owners` keeps them. Perf: runs for every entry in sync. */
export function sameOwner(owners: Owners, source: Entry, replica: Entry): boolean {
  if (owners === ALL_OWNERS) return source.uid === replica.uid && source.gid === replica.gid;
  const uid = owners.uid(source);
  const gid = owners.gid(source);
  return (uid === undefined || uid === replica.uid) && (gid === undefined || gid === replica.gid);
}

/** What a replica keeps: a local one, what this process can (`processOwners`); one over SFTP, no owners and mtimes to the whole second. */
export function keptOwners(remote: boolean): Owners {
  return remote ? REMOTE_OWNERS : processOwners();
}

const REMOTE_OWNERS: Owners = { ...NO_OWNERS, name: 'none (a replica over SFTP); mtimes to the second', wholeSeconds: true };
