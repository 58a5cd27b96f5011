/**
 * Which shard file holds which of a folder's records: folders are spread over a power-of-two count
 * of shards by a hash of their path (`fnv1a`), a big folder a group (`GROUP` records) at a time;
 * the count doubles as the records grow (`SHARD_SIZE` each). Tracks the shards that differ from
 * their files.
 */
import { fnv1a, GROUP, SHARD_SIZE } from './format.js';
import type { RecordStore } from './record-store.js';

export class ShardLayout {
  /** How many `P.d/<n>.json` files the folders are spread over (a power of two). */
  shardCount = 1;
  /** Shards that differ from their files (changed since the last fold). */
  dirty = new Set<number>();
  /** Folders written in more than one group at the last fold (or found so at load): how many. */
  groupsOnDisk = new Map<string, number>();

  /** `shardSize`, `groupSize`: `SHARD_SIZE` and `GROUP` unless given (tests use small ones). */
  constructor(private readonly options: { shardSize?: number; groupSize?: number }) {}

  /** How many groups a folder of `size` records is written in (see `GROUP`). */
  groupCount(size: number): number {
    return Math.max(1, Math.ceil(size / (this.options.groupSize ?? GROUP)));
  }

  /** The shard of group `group` of folder `dir`'s records (see `GROUP`). */
  shardOfGroup(dir: string, group: number): number {
    const count = this.shardCount;
    if (count === 1) return 0;
    return fnv1a(group === 0 ? dir : `${dir}\0${group}`) & (count - 1);
  }

  /** Groups of folder `dir` (of `size` records), now or in the files: whichever is more. */
  groupsOf(dir: string, size: number): number {
    return Math.max(this.groupCount(size), this.groupsOnDisk.get(dir) ?? 1);
  }

  /** Notes that folder `dir`'s records changed: the shards of all its groups, then and now, are rewritten at the next fold. */
  markDirty(dir: string, size: number): void {
    const groups = this.groupsOf(dir, size);
    for (let g = 0; g < groups; g++) this.dirty.add(this.shardOfGroup(dir, g));
  }

  shardCountFor(total: number): number {
    let count = this.shardCount;
    while (total > count * (this.options.shardSize ?? SHARD_SIZE)) count *= 2;
    return count;
  }

  reshardNeeded(records: number): boolean {
    return this.shardCountFor(records) !== this.shardCount;
  }

  /** Doubles the shard count while shards are over-full; every shard is then rewritten. */
  reshardIfNeeded(records: number): void {
    const count = this.shardCountFor(records);
    if (count === this.shardCount) return;
    this.shardCount = count;
    for (let index = 0; index < count; index++) this.dirty.add(index);
  }

  /**
   * What a fold writes: every dirty shard's content (a folder's groups, in order), and the folders
   * written in more than one group.
   */
  foldContents(store: RecordStore): { shards: Map<number, unknown[]>; groupsNow: Map<string, number> } {
    // A folder written in groups is rewritten whole if any of its shards is (its groups follow the
    // order of its records, which moves).
    for (const [dir, folder] of store.folders) {
      const groups = this.groupsOf(dir, folder.size);
      if (groups === 1) continue;
      let any = false;
      for (let g = 0; g < groups && !any; g++) any = this.dirty.has(this.shardOfGroup(dir, g));
      if (any) for (let g = 0; g < groups; g++) this.dirty.add(this.shardOfGroup(dir, g));
    }
    const shards = new Map<number, unknown[]>([...this.dirty].sort((a, b) => a - b).map((index) => [index, []]));
    const groupsNow = new Map<string, number>();
    for (const [dir, folder] of store.folders) {
      if (folder.size === 0) continue;
      const groups = this.groupCount(folder.size);
      if (groups > 1) groupsNow.set(dir, groups);
      let group = 0;
      let out = shards.get(this.shardOfGroup(dir, 0));
      let names: string[] = [];
      let slots: number[] = [];
      const writeGroup = () => {
        if (out !== undefined) out.push(dir, group, names.join('/'), ...store.groupValues(slots));
        out = shards.get(this.shardOfGroup(dir, ++group));
        names = [];
        slots = [];
      };
      for (const [name, slot] of folder.ordered()) {
        if (names.length === (this.options.groupSize ?? GROUP)) writeGroup();
        names.push(name);
        slots.push(slot);
      }
      writeGroup();
    }
    return { shards, groupsNow };
  }
}
