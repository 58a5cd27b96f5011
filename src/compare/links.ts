/**
 * `--hard-links` (rsync -H): source files that are one inode (names of one file) are one inode in
 * the replica too. The walk hands every file with more than one name to a `LinkIndex`; after it,
 * `linkGroups` turns the changes so that each group is copied once, through its leader (the first
 * name already right in the replica, else the first in walk order), and every other name is linked
 * to it (a `hardlink` change: link(2) to a temporary name, renamed into place) wherever it is not
 * linked already. Names of other groups are not read: they are the leader's content.
 */
import type { Entry } from '../tree/entry.js';
import type { Change } from './types.js';

/** One name of a source file with more than one: the source entry, and the replica's at the same path. */
export interface LinkMember {
  relPath: string;
  source: Entry;
  replica: Entry | undefined;
}

const key = (e: Entry): string => `${e.dev}:${e.ino}`;

/** What the walk saw of files with several names, on either side. */
export class LinkIndex {
  /** Source inodes with more than one name in the tree, their names in walk order. */
  readonly groups = new Map<string, LinkMember[]>();
  /** Replica inodes with more than one name: their names in the tree. */
  readonly replicaNames = new Map<string, string[]>();
  /** Names the source has as one file alone, the replica as a name of an inode with others. */
  readonly separated: LinkMember[] = [];

  /** A file at `relPath` with `source` and/or `replica` (either may have one name only). */
  file(relPath: string, source: Entry | undefined, replica: Entry | undefined): void {
    if (source !== undefined && source.nlink > 1) {
      const members = this.groups.get(key(source));
      if (members === undefined) this.groups.set(key(source), [{ relPath, source, replica }]);
      else members.push({ relPath, source, replica });
    }
    if (replica !== undefined && replica.kind === 'file' && replica.nlink > 1) {
      const names = this.replicaNames.get(key(replica));
      if (names === undefined) this.replicaNames.set(key(replica), [relPath]);
      else names.push(relPath);
      if (source !== undefined && source.kind === 'file' && source.nlink === 1) this.separated.push({ relPath, source, replica });
    }
  }
}

export interface Linked {
  changes: Change[];
  /** Replica names whose records must be refreshed once the pass's changes are made (their inode is one changed). */
  refresh: Set<string>;
}

/** The changes with each source group copied once and its other names linked (see the file's comment). */
export function linkGroups(changes: readonly Change[], index: LinkIndex): Linked {
  const changed = new Map<string, number>();
  changes.forEach((change, i) => changed.set(change.relPath, i));
  const out: (Change | undefined)[] = [...changes];
  const refresh = new Set<string>();
  const replicaChanged = (relPath: string) => changed.has(relPath);

  for (const members of index.groups.values()) {
    if (members.length < 2) continue;
    const leader = members.find((m) => !changed.has(m.relPath) && m.replica?.kind === 'file') ?? members[0];
    const leaderChanged = changed.has(leader.relPath);
    let any = leaderChanged;
    for (const m of members) {
      if (m === leader) continue;
      const linked = m.replica?.kind === 'file' && leader.replica?.kind === 'file' && m.replica.ino === leader.replica.ino && m.replica.dev === leader.replica.dev;
      if (!leaderChanged && !changed.has(m.relPath) && linked) continue;
      any = true;
      const at = changed.get(m.relPath);
      const link: Change = { type: 'hardlink', relPath: m.relPath, leader: leader.relPath, source: m.source, replica: m.replica };
      if (at === undefined) out.push(link);
      else out[at] = link;
    }
    if (any) for (const m of members) refresh.add(m.relPath);
  }

  for (const names of index.replicaNames.values()) {
    if (names.some(replicaChanged)) for (const name of names) refresh.add(name);
  }
  for (const m of index.separated) {
    const others = index.replicaNames.get(key(m.replica!))!;
    if (others.length < 2) continue;
    // A copy of its own, whatever else differs: a fix of its metadata would change the others'.
    const at = changed.get(m.relPath);
    if (at !== undefined && out[at]?.type === 'update') continue;
    const own: Change = { type: 'update', relPath: m.relPath, source: m.source, replica: m.replica!, reason: 'no longer a hard link' };
    if (at === undefined) out.push(own);
    else out[at] = own;
    for (const name of others) refresh.add(name);
  }
  return { changes: out.filter((change): change is Change => change !== undefined), refresh };
}
