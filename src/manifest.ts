/**
 * The manifest: a cache of what each source file's content was, kept with lowdb.
 *
 * Layout on disk, for a manifest path `P`:
 * - `P` is a lowdb JSON file: format, schema version, the pair it belongs to, the source root's
 *   identity, the last pass, and (while the tree is small) the records themselves;
 * - past `SHARD_SIZE` records, the records move to `P.d/<n>.json`, one lowdb file per shard
 *   (records assigned by a hash of their relative path), and a checkpoint rewrites only the shards
 *   whose records changed. One JSON string per shard also keeps far from V8's string limit.
 *
 * Safety: every record is a statement that was true when written ("the file with fingerprint F had
 * MD5 M"), and lowdb replaces each file by rename. So after a crash between two shard writes, every
 * record is either old-and-valid or new-and-valid; a stale one just does not match and costs a read.
 * The manifest is a cache, never the truth about what exists: losing it costs rehashing, never a
 * wrong mirror.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Low } from 'lowdb';
import { DataFile } from 'lowdb/node';
import { describe } from './errors.js';
import type { FileRecord } from './types.js';

export const MANIFEST_FORMAT = 'folder-sync manifest';
/** Bump when the meaning of a record changes; older manifests are migrated or rebuilt. */
export const SCHEMA_VERSION = 1;
/** Records per shard before the manifest splits further. Perf: ~2k records ≈ 300 KB a write. */
export const SHARD_SIZE = 2048;

type StoredTuple = [src: string, md5: string, rep: string];

/** What the last pass did, for `status`. */
export interface LastPass {
  startedAt: string;
  durationMs: number;
  exitStatus: number;
  summary: string;
}

interface MainData {
  format: string;
  version: number;
  source: string;
  replica: string;
  /** The source root's device and inode when the manifest was last written. */
  sourceRoot?: { dev: string; ino: string };
  /** 1: records are in `entries` here; more: in `P.d/<n>.json`. */
  shards: number;
  entries?: Record<string, StoredTuple>;
  lastPass?: LastPass;
}

interface ShardData {
  format: string;
  version: number;
  entries: Record<string, StoredTuple>;
}

export interface ManifestOptions {
  source: string;
  replica: string;
  /** Called with one line for each problem found while loading (the manifest is then rebuilt). */
  warn: (message: string) => void;
  /** Never write (dry run). */
  readOnly?: boolean;
  /** Records per shard before splitting (tests use small ones). */
  shardSize?: number;
}

/** A record plus the pass it was last looked up in (to forget paths that left the source). */
interface Slot {
  record: FileRecord;
  seen: number;
}

const compact = { parse: JSON.parse, stringify: (data: unknown) => JSON.stringify(data) };

export class Manifest {
  readonly path: string;
  private readonly shardDir: string;
  private readonly options: ManifestOptions;
  private main: Low<MainData>;
  private shards: Map<string, Slot>[] = [new Map()];
  private dirty = new Set<number>();
  private metaDirty = false;
  private pass = 0;
  /** Bytes written by checkpoints since it was opened. */
  bytesWritten = 0;

  private constructor(manifestPath: string, options: ManifestOptions) {
    this.path = manifestPath;
    this.shardDir = manifestPath + '.d';
    this.options = options;
    this.main = new Low<MainData>(new DataFile<MainData>(manifestPath, compact), this.freshMain());
  }

  /** Loads the manifest at `manifestPath`, or starts an empty one (with a warning if it was unusable). */
  static async open(manifestPath: string, options: ManifestOptions): Promise<Manifest> {
    const manifest = new Manifest(manifestPath, options);
    await manifest.load();
    return manifest;
  }

  get size(): number {
    let n = 0;
    for (const shard of this.shards) n += shard.size;
    return n;
  }

  get lastPass(): LastPass | undefined {
    return this.main.data.lastPass;
  }

  get sourceRoot(): { dev: string; ino: string } | undefined {
    return this.main.data.sourceRoot;
  }

  /** Starts a new pass: lookups from now on mark records as still present in the source. */
  beginPass(): void {
    this.pass++;
  }

  get(relPath: string): FileRecord | undefined {
    const slot = this.shards[this.shardOf(relPath)].get(relPath);
    if (slot === undefined) return undefined;
    slot.seen = this.pass;
    return slot.record;
  }

  set(relPath: string, record: FileRecord): void {
    const index = this.shardOf(relPath);
    this.shards[index].set(relPath, { record, seen: this.pass });
    this.dirty.add(index);
  }

  delete(relPath: string): void {
    const index = this.shardOf(relPath);
    if (this.shards[index].delete(relPath)) this.dirty.add(index);
  }

  /** Forgets records not looked up since `beginPass` (their paths left the source). */
  forgetUnseen(): number {
    let forgotten = 0;
    this.shards.forEach((shard, index) => {
      for (const [relPath, slot] of shard) {
        if (slot.seen === this.pass) continue;
        shard.delete(relPath);
        this.dirty.add(index);
        forgotten++;
      }
    });
    return forgotten;
  }

  setSourceRoot(root: { dev: string; ino: string }): void {
    const old = this.main.data.sourceRoot;
    if (old?.dev === root.dev && old.ino === root.ino) return;
    this.main.data.sourceRoot = root;
    this.metaDirty = true;
  }

  setLastPass(lastPass: LastPass): void {
    this.main.data.lastPass = lastPass;
    this.metaDirty = true;
  }

  /**
   * Writes the shards that changed, then the main file. Safety: call only after the effects the new
   * records describe are done (and flushed, when fsync is on): the manifest is never ahead of the replica.
   */
  async checkpoint(): Promise<void> {
    if (this.options.readOnly) return;
    if (this.dirty.size === 0 && !this.metaDirty) return;
    this.reshardIfNeeded();
    const count = this.shards.length;
    if (count === 1) {
      if (this.dirty.size > 0) this.main.data.entries = toObject(this.shards[0]);
    } else {
      fs.mkdirSync(this.shardDir, { recursive: true });
      for (const index of [...this.dirty].sort((a, b) => a - b)) {
        const data: ShardData = { format: MANIFEST_FORMAT, version: SCHEMA_VERSION, entries: toObject(this.shards[index]) };
        const text = JSON.stringify(data);
        await new DataFile<ShardData>(this.shardFile(index), { parse: JSON.parse, stringify: () => text }).write(data);
        this.bytesWritten += Buffer.byteLength(text);
      }
      delete this.main.data.entries;
    }
    this.main.data.shards = count;
    const mainText = JSON.stringify(this.main.data);
    await this.main.write();
    this.bytesWritten += Buffer.byteLength(mainText);
    if (count === 1) this.removeShardFiles(0);
    this.dirty.clear();
    this.metaDirty = false;
  }

  private freshMain(): MainData {
    return { format: MANIFEST_FORMAT, version: SCHEMA_VERSION, source: this.options.source, replica: this.options.replica, shards: 1 };
  }

  private async load(): Promise<void> {
    if (!this.options.readOnly) {
      // lowdb's own temporary file, if a kill caught it mid-write: the rename never happened.
      fs.rmSync(path.join(path.dirname(this.path), `.${path.basename(this.path)}.tmp`), { force: true });
    }
    if (!fs.existsSync(this.path)) return; // no manifest yet: the first pass builds it
    let data: unknown;
    try {
      // The adapter, not `Low.read()`: that one silently keeps the defaults for a file holding `null`.
      data = await this.main.adapter.read();
    } catch (error) {
      return this.rebuild(`cannot read manifest ${this.path}: ${describe(error)}`);
    }
    const problem = checkMain(data, this.options);
    if (problem !== undefined) return this.rebuild(`manifest ${this.path} ${problem}`);
    const main = data as MainData;
    this.main.data = main;
    if (main.shards === 1) {
      this.shards = [fromObject(main.entries ?? {}, this.pass)];
      return;
    }
    this.shards = Array.from({ length: main.shards }, () => new Map<string, Slot>());
    if (!this.options.readOnly && fs.existsSync(this.shardDir)) {
      for (const name of fs.readdirSync(this.shardDir)) {
        if (/^\.\d+\.json\.tmp$/.test(name)) fs.rmSync(path.join(this.shardDir, name), { force: true });
      }
    }
    for (let index = 0; index < main.shards; index++) {
      const file = this.shardFile(index);
      let shard: unknown;
      try {
        shard = await new DataFile<ShardData>(file, compact).read();
      } catch (error) {
        this.setAside(file, `cannot read manifest shard ${file}: ${describe(error)}`);
        continue;
      }
      if (shard === null) continue; // never written: an empty shard
      if (!isShard(shard)) {
        this.setAside(file, `manifest shard ${file} is not a folder-sync shard`);
        continue;
      }
      // A record in the wrong shard (a crash between two shard writes of a reshard) is moved home.
      for (const [relPath, tuple] of Object.entries(shard.entries)) {
        if (!isTuple(tuple)) continue;
        const home = this.shardOf(relPath);
        this.shards[home].set(relPath, { record: { src: tuple[0], md5: tuple[1], rep: tuple[2] }, seen: this.pass });
        if (home !== index) this.dirty.add(home);
      }
    }
  }

  /** Unusable manifest: warn, keep it aside for inspection, start empty (a full pass rebuilds it). */
  private rebuild(message: string): void {
    this.main.data = this.freshMain();
    this.shards = [new Map()];
    this.metaDirty = true;
    if (this.options.readOnly) {
      this.options.warn(`${message}; rebuilding it (dry run: not written)`);
      return;
    }
    const aside = this.setAsidePath(this.path);
    try {
      if (fs.existsSync(this.path)) fs.renameSync(this.path, aside);
      if (fs.existsSync(this.shardDir)) fs.renameSync(this.shardDir, aside + '.d');
      this.options.warn(`${message}; kept as ${aside}, rebuilding it with a full pass`);
    } catch (error) {
      this.options.warn(`${message}; could not keep it aside (${describe(error)}), rebuilding it with a full pass`);
    }
  }

  private setAside(file: string, message: string): void {
    if (this.options.readOnly) {
      this.options.warn(`${message}; ignoring it (dry run)`);
      return;
    }
    const aside = this.setAsidePath(file);
    try {
      fs.renameSync(file, aside);
      this.options.warn(`${message}; kept as ${aside}, its files will be hashed again`);
    } catch (error) {
      this.options.warn(`${message}; ignoring it (${describe(error)}), its files will be hashed again`);
    }
  }

  private setAsidePath(file: string): string {
    return `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  }

  private shardFile(index: number): string {
    return path.join(this.shardDir, `${index}.json`);
  }

  private shardOf(relPath: string): number {
    const count = this.shards.length;
    return count === 1 ? 0 : fnv1a(relPath) & (count - 1);
  }

  /** Doubles the shard count while shards are over-full; every shard is then rewritten. */
  private reshardIfNeeded(): void {
    const total = this.size;
    let count = this.shards.length;
    while (total > count * (this.options.shardSize ?? SHARD_SIZE)) count *= 2;
    if (count === this.shards.length) return;
    const old = this.shards;
    this.shards = Array.from({ length: count }, () => new Map<string, Slot>());
    for (const shard of old) for (const [relPath, slot] of shard) this.shards[this.shardOf(relPath)].set(relPath, slot);
    for (let index = 0; index < count; index++) this.dirty.add(index);
  }

  /** Removes shard files from `from` on (left from a larger layout). */
  private removeShardFiles(from: number): void {
    if (!fs.existsSync(this.shardDir)) return;
    for (const name of fs.readdirSync(this.shardDir)) {
      const match = /^(\d+)\.json$/.exec(name);
      if (match && Number(match[1]) >= from) fs.rmSync(path.join(this.shardDir, name), { force: true });
    }
  }
}

function checkMain(data: unknown, options: ManifestOptions): string | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'is not a folder-sync manifest';
  const main = data as Partial<MainData>;
  if (main.format !== MANIFEST_FORMAT) return 'is not a folder-sync manifest';
  if (typeof main.version !== 'number') return 'has no schema version';
  if (main.version > SCHEMA_VERSION) return `was written by a newer folder-sync (schema ${main.version}, this one reads ${SCHEMA_VERSION})`;
  if (main.version < SCHEMA_VERSION) return `has an old schema (${main.version})`;
  if (typeof main.shards !== 'number' || main.shards < 1 || (main.shards & (main.shards - 1)) !== 0) return 'has a bad shard count';
  if (main.entries !== undefined && (typeof main.entries !== 'object' || main.entries === null || Array.isArray(main.entries))) return 'has malformed entries';
  if (main.source !== options.source || main.replica !== options.replica) {
    return `belongs to another pair (${String(main.source)} -> ${String(main.replica)})`;
  }
  return undefined;
}

function isShard(data: unknown): data is ShardData {
  const shard = data as Partial<ShardData> | null;
  return (
    typeof shard === 'object' && shard !== null && shard.format === MANIFEST_FORMAT && shard.version === SCHEMA_VERSION &&
    typeof shard.entries === 'object' && shard.entries !== null && !Array.isArray(shard.entries)
  );
}

function isTuple(value: unknown): value is StoredTuple {
  return Array.isArray(value) && value.length === 3 && typeof value[0] === 'string' && typeof value[1] === 'string' && typeof value[2] === 'string';
}

function fromObject(entries: Record<string, StoredTuple>, pass: number): Map<string, Slot> {
  const map = new Map<string, Slot>();
  for (const relPath of Object.keys(entries)) {
    const tuple = entries[relPath];
    if (isTuple(tuple)) map.set(relPath, { record: { src: tuple[0], md5: tuple[1], rep: tuple[2] }, seen: pass });
  }
  return map;
}

function toObject(shard: Map<string, Slot>): Record<string, StoredTuple> {
  // Safety: a null-prototype object, so a file named `__proto__` is stored like any other.
  const out: Record<string, StoredTuple> = Object.create(null);
  for (const [relPath, { record }] of shard) out[relPath] = [record.src, record.md5, record.rep];
  return out;
}

/** FNV-1a, 32 bits: a fast, well-spread hash of the relative path for shard assignment. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
