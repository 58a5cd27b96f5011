/**
 * The manifest: a cache of what each source file's content was, kept with lowdb.
 *
 * Layout on disk, for a manifest path `P`:
 * - `P`: a lowdb JSON file with the format, schema version, the pair it belongs to, the source
 *   root's identity, the shard count and the last pass;
 * - `P.d/<n>.json`: the records, grouped by folder, and split into shards by a hash of the folder's
 *   path (a folder's records are all in one shard, but for a folder of more than `GROUP` files,
 *   spread over shards a group at a time). A save rewrites only the shards whose records changed,
 *   so its cost grows with the change, not the tree, and no single JSON string nears V8's limit;
 * - `P.d/journal-<n>.json`: the records changed since the previous journal (checkpoints during a
 *   pass, and the save at its end). Perf: a save writes only a new journal while the journals hold
 *   few records next to the shards (see `foldAt`), so a pass that changes 1% of the files writes
 *   about 1% of the manifest; past that, the save folds them: it rewrites the shards they touched
 *   and removes them. Loading replays the journals over the shards, in order.
 *
 * A record is the file's name, its MD5 and 12 numbers: the source's size, mtime (seconds,
 * nanoseconds), ctime (seconds, nanoseconds), inode, trusted (1, or 0 when racy), then the
 * replica's mtime, ctime and inode. A shard holds them by column, a folder's group at a time: its
 * path, the group's number, the names joined by `/` (in `byName` order), the MD5s as one hex string,
 * then one array of all the numbers (Perf: parsing makes three values per group, not 14 per record,
 * and the names stay one string in memory: the 100k-record manifest loads in 116 ms, the 1M one
 * in 0.96 s, against 153 ms and 1.22 s with values per record, schema 3). A journal holds a flat
 * run of 14 values per record: relative path, MD5, then the numbers. In memory they are held
 * compactly (see `record-store.ts`).
 *
 * Safety: every record is a statement that was true when written ("the file with this fingerprint
 * had this MD5"), and lowdb replaces each file by rename. So after a crash between two file writes,
 * every record is either old-and-valid or new-and-valid; a stale one just does not match and costs
 * a read. The manifest is a cache, never the truth about what exists: losing it costs rehashing,
 * never a wrong mirror.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Low } from 'lowdb';
import { DataFile, DataFileSync } from 'lowdb/node';
import { describe } from '../errors.js';
import { isMd5, pushRecordValues, RecordStore, splitRel } from './record-store.js';
import { joinRel } from '../tree/scan.js';
import { FileRecord, type RecordFields } from '../compare/types.js';

export const MANIFEST_FORMAT = 'folder-sync manifest';
/**
 * Bump when the meaning of a record changes; older manifests are migrated or rebuilt.
 * 1: fingerprints as strings; 2: flat records by path hash; 3: records grouped by folder;
 * 4: a folder's records by column.
 */
export const SCHEMA_VERSION = 4;
/** Records per shard before the manifest splits further. Perf: ~2k records ≈ 250 KB a write. */
export const SHARD_SIZE = 2048;
const FIELDS = 14;
/** 2^16 shards of 2,048 records: far beyond any real tree; a larger count is a foreign file. */
const MAX_SHARDS = 1 << 16;
/** Journals kept before a save folds them, whatever their size (a watch pass writes one each time). */
const MAX_JOURNALS = 64;
/**
 * Records of one folder written together in a shard (~8 MB of JSON). A bigger folder is written in
 * groups, group `g` in the shard its path and `g` hash to, so that a folder of millions of files
 * never makes a JSON string past V8's limit (~512 MB); its groups are always rewritten together.
 */
export const GROUP = 65_536;

/**
 * Records the journals may hold before a save folds them into the shards. Perf: an eighth of the
 * manifest (at most 64k records, ~8 MB) bounds what loading replays on top of the shards after a
 * completed pass (the 1M-file load stays under 2 s), and makes a full rewrite happen at most once
 * per eighth of the tree changed. Checkpoints only add journals: a pass cut short (a first sync
 * killed midway) may leave more, replayed once and folded by the next save.
 */
export function foldAt(records: number): number {
  return Math.max(256, Math.min(Math.floor(records / 8), 65_536));
}

/** What the last pass did, for `status`. */
export interface LastPass {
  startedAt: string;
  durationMs: number;
  exitStatus: number;
  summary: string;
  /** `ok`, `errors` (exit 1: failed entries or refused deletes) or `stopped` (a signal). Absent before 0.2. */
  result?: 'ok' | 'errors' | 'stopped';
  /** The summary's counters. */
  stats?: Record<string, number>;
}

interface MainData {
  format: string;
  version: number;
  source: string;
  replica: string;
  /** The source root's device and inode when the manifest was last written. */
  sourceRoot?: { dev: string; ino: string; birth?: string };
  /** How many `P.d/<n>.json` shards hold the records (a power of two). */
  shards: number;
  lastPass?: LastPass;
}

/** A journal (and a shard of schema 2): records by relative path. */
interface RecordFile {
  format: string;
  version: number;
  /** `FIELDS` values per record. */
  records: unknown[];
  /** Journals only: paths whose records were dropped. */
  forgotten?: string[];
}

/**
 * A shard of schema 4: a folder's path, a group number, the group's names joined by `/`, their MD5s
 * (hex), their numbers (`FIELDS - 2` each), and so on; of schema 3 (migrating): a folder's path, a
 * group number, then its records (`FIELDS` values each, by name), and so on.
 */
interface ShardFile {
  format: string;
  version: 3 | 4;
  folders: unknown[];
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
  /** Records of one folder written together (`GROUP`; tests use small ones). */
  groupSize?: number;
}

const compact = { parse: JSON.parse, stringify: (data: unknown) => JSON.stringify(data) };

export class Manifest {
  readonly path: string;
  private readonly shardDir: string;
  private readonly options: ManifestOptions;
  private main: Low<MainData>;
  private store = new RecordStore();
  /** How many `P.d/<n>.json` files the folders are spread over (a power of two). */
  private shardCount = 1;
  /** Shards that differ from their files (changed since the last fold). */
  private dirty = new Set<number>();
  /** Changes since the last journal or save (`null`: forgotten). */
  private pending = new Map<string, FileRecord | null>();
  private journals: string[] = [];
  /** Records (set or forgotten) in `journals`. */
  private journalRecords = 0;
  /** Shards differ from their files in a way no journal holds (a migration, a record in the wrong shard): the next save folds. */
  private mustFold = false;
  /** The next fold rewrites every shard (after a migration: no file of the old layout may stay). */
  private rewriteAll = false;
  /** Folders written in more than one group at the last fold (or found so at load): how many. */
  private groupsOnDisk = new Map<string, number>();
  private nextJournal = 1;
  private metaDirty = false;
  /** Whether a main file is on disk for a load to find (without one, a load ignores the journals: see `checkpoint`). */
  private mainOnDisk = false;
  private pass = 0;
  /** Bytes written since it was opened (for the benchmark and tests). */
  bytesWritten = 0;
  /**
   * Replica folders a pass could not flush: the next pass (of the same process) flushes them
   * before it writes anything, since these records are still in memory.
   */
  unflushedDirs = new Set<string>();

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
    return this.store.count;
  }

  /** The source and replica this manifest is for. */
  get pair(): { source: string; replica: string } {
    return { source: this.main.data.source, replica: this.main.data.replica };
  }

  /** Files recorded (links and folders have no record), and the bytes of their content. */
  totals(): { entries: number; bytes: number } {
    let entries = 0;
    let bytes = 0;
    for (const folder of this.store.folders.values()) {
      folder.forEachSlot((slot) => {
        entries++;
        bytes += this.store.size(slot);
      });
    }
    return { entries, bytes };
  }

  get lastPass(): LastPass | undefined {
    return this.main.data.lastPass;
  }

  get sourceRoot(): { dev: string; ino: string; birth?: string } | undefined {
    return this.main.data.sourceRoot;
  }

  /** Starts a new pass: lookups from now on mark records as still present in the source. */
  beginPass(): void {
    this.pass++;
  }

  get(relPath: string): FileRecord | undefined {
    const [dir, name] = splitRel(relPath);
    const slot = this.store.find(dir, name);
    if (slot === -1) return undefined;
    this.store.markSeen(slot, this.pass);
    return this.store.get(slot);
  }

  /**
   * `get` for the files directly in folder `relDir`: the returned function takes a file's name and
   * its `relPath` (`relDir/name`). Perf: the folder is looked up once, each file by name only, and
   * the record is read in place: what it returns is valid until the next lookup, never to be kept.
   */
  getIn(relDir: string): (name: string, relPath: string) => RecordFields | undefined {
    const folder = this.store.folder(relDir);
    if (folder === undefined) return () => undefined;
    return (name) => {
      const slot = folder.get(name);
      if (slot === undefined) return undefined;
      this.store.markSeen(slot, this.pass);
      return this.store.view(slot);
    };
  }

  /** Marks `relPath`'s record, if any, as looked up in this pass (see `forgetUnseen`). */
  markSeen(relPath: string): void {
    const [dir, name] = splitRel(relPath);
    const slot = this.store.find(dir, name);
    if (slot !== -1) this.store.markSeen(slot, this.pass);
  }

  /** The record of `relPath` without marking it as seen (for pairing moves). */
  peek(relPath: string): FileRecord | undefined {
    const [dir, name] = splitRel(relPath);
    const slot = this.store.find(dir, name);
    return slot === -1 ? undefined : this.store.get(slot);
  }

  set(relPath: string, record: FileRecord): void {
    const [dir, name] = splitRel(relPath);
    this.store.put(dir, name, record, this.pass);
    this.markDirty(dir);
    this.pending.set(relPath, record);
  }

  delete(relPath: string): void {
    const [dir, name] = splitRel(relPath);
    if (!this.store.remove(dir, name)) return;
    this.markDirty(dir);
    this.pending.set(relPath, null);
  }

  /** Forgets records not looked up since `beginPass` (their paths left the source). */
  forgetUnseen(): number {
    let forgotten = 0;
    const seen = (slot: number) => this.store.seenIn(slot, this.pass);
    for (const [dir, folder] of this.store.folders) {
      // Perf: most folders lost nothing, and tell it without a string made per name.
      if (!folder.everySlot(seen)) {
        for (const [name, slot] of folder) {
          if (seen(slot)) continue;
          this.store.remove(dir, name);
          this.markDirty(dir);
          this.pending.set(joinRel(dir, name), null);
          forgotten++;
        }
      }
      // No lookup function of the walk holds it any more: an emptied folder goes.
      if (folder.size === 0) this.store.folders.delete(dir);
      else folder.compact();
    }
    return forgotten;
  }

  setSourceRoot(root: { dev: string; ino: string; birth?: string }): void {
    const old = this.main.data.sourceRoot;
    if (old?.dev === root.dev && old.ino === root.ino && old.birth === root.birth) return;
    this.main.data.sourceRoot = root;
    this.metaDirty = true;
  }

  setLastPass(lastPass: LastPass): void {
    this.main.data.lastPass = lastPass;
    this.metaDirty = true;
  }

  /**
   * A checkpoint during a pass: writes the records changed since the last one to a new journal
   * file (cost grows with the change). Safety: call only once the effects those records describe
   * are done and flushed: the manifest is never ahead of the replica.
   */
  async checkpoint(): Promise<void> {
    if (this.options.readOnly || this.pending.size === 0) return;
    const records: unknown[] = [];
    const forgotten: string[] = [];
    for (const [relPath, record] of this.pending) {
      if (record === null) forgotten.push(relPath);
      else pushRecord(records, relPath, record);
    }
    fs.mkdirSync(this.shardDir, { recursive: true });
    const file = path.join(this.shardDir, `journal-${this.nextJournal++}.json`);
    await this.writeFile(file, { format: MANIFEST_FORMAT, version: SCHEMA_VERSION, records, forgotten });
    this.journals.push(file);
    this.journalRecords += this.pending.size;
    this.pending.clear();
    // The first checkpoint of a new manifest (a first sync, or after one was set aside) writes the
    // main file too: without it a load ignores the journals, and a first sync killed midway would
    // read again everything it had copied (6,000 files killed at 2,000: 8,000 hashed, not 4,000).
    if (!this.mainOnDisk) await this.writeMain();
  }

  /**
   * The save at the end of a pass: the records changed since the last checkpoint go to a new
   * journal, or, once the journals hold too much (`foldAt`) or the shards must be rewritten anyway,
   * every shard that changed is rewritten and the journals removed; then the main file.
   * Same safety rule as `checkpoint`. `fold` forces the rewrite.
   */
  async save(options: { fold?: boolean } = {}): Promise<void> {
    if (this.options.readOnly) return;
    const fold =
      options.fold === true || this.mustFold || this.reshardNeeded() || this.journals.length >= MAX_JOURNALS ||
      this.journalRecords + this.pending.size > foldAt(this.size);
    if (!fold) {
      await this.checkpoint();
      if (this.metaDirty) await this.writeMain();
      return;
    }
    if (this.dirty.size === 0 && !this.metaDirty && this.journals.length === 0 && !this.rewriteAll) return;
    // Until this fold completes, the next save must fold too (a failed write leaves shards half done).
    this.mustFold = true;
    this.reshardIfNeeded();
    if (this.rewriteAll) for (let index = 0; index < this.shardCount; index++) this.dirty.add(index);
    // A folder written in groups is rewritten whole if any of its shards is (its groups follow the
    // order of its records, which moves).
    for (const [dir, folder] of this.store.folders) {
      const groups = this.groupsOf(dir, folder.size);
      if (groups === 1) continue;
      let any = false;
      for (let g = 0; g < groups && !any; g++) any = this.dirty.has(this.shardOfGroup(dir, g));
      if (any) for (let g = 0; g < groups; g++) this.dirty.add(this.shardOfGroup(dir, g));
    }
    const shards = new Map<number, unknown[]>([...this.dirty].sort((a, b) => a - b).map((index) => [index, []]));
    const groupsNow = new Map<string, number>();
    for (const [dir, folder] of this.store.folders) {
      if (folder.size === 0) continue;
      const groups = this.groupCount(folder.size);
      if (groups > 1) groupsNow.set(dir, groups);
      let group = 0;
      let out = shards.get(this.shardOfGroup(dir, 0));
      let names: string[] = [];
      let slots: number[] = [];
      const writeGroup = () => {
        if (out !== undefined) out.push(dir, group, names.join('/'), ...this.store.groupValues(slots));
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
    if (shards.size > 0) fs.mkdirSync(this.shardDir, { recursive: true });
    // Highest first: in a reshard a folder only moves to a higher shard, so its new home is
    // written before its old one is rewritten without it (a fold cut short loses nothing).
    for (const [index, folders] of [...shards].reverse()) {
      await this.writeFile(this.shardFile(index), { format: MANIFEST_FORMAT, version: SCHEMA_VERSION, folders });
    }
    await this.writeMain();
    // Safety: journals go only after the shards and main file that include them are in place.
    for (const file of this.journals) fs.rmSync(file, { force: true });
    this.removeShardFilesFrom(this.shardCount);
    this.journals = [];
    this.journalRecords = 0;
    this.mustFold = false;
    this.rewriteAll = false;
    this.groupsOnDisk = groupsNow;
    this.dirty.clear();
    this.pending.clear();
  }

  private async writeMain(): Promise<void> {
    this.main.data.shards = this.shardCount;
    this.main.data.version = SCHEMA_VERSION;
    const mainText = JSON.stringify(this.main.data);
    await this.main.write();
    this.bytesWritten += Buffer.byteLength(mainText);
    this.metaDirty = false;
    this.mainOnDisk = true;
  }

  private async writeFile(file: string, data: RecordFile | ShardFile): Promise<void> {
    const text = JSON.stringify(data);
    await new DataFile<RecordFile | ShardFile>(file, { parse: JSON.parse, stringify: () => text }).write(data);
    this.bytesWritten += Buffer.byteLength(text);
  }

  private freshMain(): MainData {
    return { format: MANIFEST_FORMAT, version: SCHEMA_VERSION, source: this.options.source, replica: this.options.replica, shards: 1 };
  }

  /**
   * For `status`: the manifest at `manifestPath`, read-only, whatever pair it is for. Its main file
   * is read once; a missing one is `undefined`; an unusable one throws (what read threw, or an
   * Error saying what is wrong, `is not a folder-sync manifest`…): there is nothing to rebuild for.
   */
  static async inspect(manifestPath: string, warn: (message: string) => void): Promise<Manifest | undefined> {
    const data = await new DataFile<unknown>(manifestPath, compact).read();
    if (data === null) return undefined;
    const pair = data as Partial<MainData>;
    if (typeof pair.source !== 'string' || typeof pair.replica !== 'string') throw new Error('is not a folder-sync manifest');
    const options = { source: pair.source, replica: pair.replica, readOnly: true, warn };
    const problem = checkMain(data, options);
    if (problem !== undefined) throw new Error(problem);
    const manifest = new Manifest(manifestPath, options);
    await manifest.load(data);
    return manifest;
  }

  /** Loads the main file (or takes it as `inspect` read it), then the shards and journals. */
  private async load(preread?: unknown): Promise<void> {
    let data = preread;
    if (data === undefined) {
      if (!this.options.readOnly) {
        // lowdb's own temporary file, if a kill caught it mid-write: the rename never happened.
        fs.rmSync(path.join(path.dirname(this.path), `.${path.basename(this.path)}.tmp`), { force: true });
      }
      if (!fs.existsSync(this.path)) return; // no manifest yet: the first pass builds it
      try {
        // The adapter, not `Low.read()`: that one silently keeps the defaults for a file holding `null`.
        data = await this.main.adapter.read();
      } catch (error) {
        return this.rebuild(`cannot read manifest ${this.path}: ${describe(error)}`);
      }
    }
    const problem = checkMain(data, this.options);
    if (problem !== undefined) return this.rebuild(`manifest ${this.path} ${problem}`);
    const main = data as MainData & { entries?: unknown };
    if (main.version === 1) return this.migrateV1(main);
    this.main.data = main;
    this.mainOnDisk = true;
    this.shardCount = main.shards;
    const names = fs.existsSync(this.shardDir) ? fs.readdirSync(this.shardDir) : [];
    if (!this.options.readOnly) {
      for (const name of names) if (/^\..*\.json\.tmp$/.test(name)) fs.rmSync(path.join(this.shardDir, name), { force: true });
    }
    // Every shard file there is, not only the main file's count: a reshard cut short may have
    // written the upper half already (what is in the wrong shard is moved home below).
    let last = main.shards - 1;
    for (const name of names) {
      const match = /^(\d+)\.json$/.exec(name);
      if (match && Number(match[1]) < MAX_SHARDS) last = Math.max(last, Number(match[1]));
    }
    for (let index = 0; index <= last; index++) {
      const shard = this.readShardFile(this.shardFile(index));
      if (shard === undefined) continue;
      if ('records' in shard) {
        // Schema 2 (flat records by path): migrating, or a migration's save cut short.
        this.replay(shard.records, true);
        this.store.seal(this.options.groupSize ?? GROUP);
        this.mustFold = true;
        continue;
      }
      const { folders } = shard;
      const width = shard.version === 3 ? 3 : 5;
      if (shard.version === 3) this.mustFold = this.rewriteAll = true; // migrating, or a migration cut short
      for (let k = 0; k < folders.length; k += width) {
        const dir = folders[k];
        const group = folders[k + 1];
        if (typeof dir !== 'string' || typeof group !== 'number' || !Number.isInteger(group) || group < 0 || group > MAX_SHARDS) continue;
        if (group > 0) this.groupsOnDisk.set(dir, Math.max(this.groupsOnDisk.get(dir) ?? 1, group + 1));
        // A folder in the wrong shard (a crash in the middle of a reshard) is moved home, and the
        // shard it was found in is rewritten without it.
        const home = this.shardOfGroup(dir, group);
        if (home !== index) {
          this.dirty.add(home);
          this.dirty.add(index);
          this.mustFold = true;
        }
        if (width === 5) {
          // A malformed group loads nothing (its files are hashed again).
          const [names, md5s, numbers] = [folders[k + 2], folders[k + 3], folders[k + 4]];
          if (typeof names === 'string' && typeof md5s === 'string' && Array.isArray(numbers)) this.store.loadGroup(dir, names, md5s, numbers);
          continue;
        }
        const records = folders[k + 2];
        if (!Array.isArray(records)) continue;
        for (let i = 0; i + FIELDS <= records.length; i += FIELDS) {
          const name = records[i];
          if (typeof name === 'string' && name !== '' && !name.includes('/') && !name.includes('\0')) this.store.putValues(dir, name, records, i + 1, true);
        }
      }
      this.store.seal(this.options.groupSize ?? GROUP);
    }
    this.store.seal();
    // Journals: replayed in order into the shards (which then differ from their files), but not
    // into `pending`: the journals already hold them.
    const journals = names.filter((n) => /^journal-\d+\.json$/.test(n)).sort((a, b) => Number(a.slice(8, -5)) - Number(b.slice(8, -5)));
    for (const name of journals) {
      const file = path.join(this.shardDir, name);
      const journal = this.readJournal(file);
      if (journal === undefined) continue;
      this.journals.push(file);
      this.nextJournal = Math.max(this.nextJournal, Number(name.slice(8, -5)) + 1);
      this.journalRecords += this.replay(journal.records);
      for (const relPath of journal.forgotten ?? []) {
        if (typeof relPath !== 'string') continue;
        const [dir, name] = splitRel(relPath);
        if (this.store.remove(dir, name)) this.markDirty(dir);
        this.journalRecords++;
      }
    }
    if (main.version === 2 || main.version === 3) {
      // Schema 2 or 3 → 4: the same records, grouped by folder and by column; every shard file is
      // rewritten at the next save.
      const from = main.version;
      this.main.data.version = SCHEMA_VERSION;
      this.mustFold = true;
      this.rewriteAll = true;
      this.metaDirty = true;
      this.options.warn(`manifest ${this.path} has schema ${from}: migrated ${this.size} records to schema ${SCHEMA_VERSION}`);
    }
  }

  /** Stores the well-formed records of a flat array (`FIELDS` values each, by relative path); returns how many. */
  private replay(values: unknown[], loading = false): number {
    let count = 0;
    for (let i = 0; i + FIELDS <= values.length; i += FIELDS) {
      const relPath = values[i];
      if (typeof relPath !== 'string' || relPath === '' || relPath.includes('\0')) continue;
      const [dir, name] = splitRel(relPath);
      if (!this.store.putValues(dir, name, values, i + 1, loading)) continue;
      this.markDirty(dir);
      count++;
    }
    return count;
  }

  /** Reads a journal (the same since schema 2); an unusable one is set aside (its files will be hashed again). */
  private readJournal(file: string): RecordFile | undefined {
    const data = this.readJson(file, 'journal');
    if (data === undefined) return undefined;
    const shaped = data as Partial<RecordFile>;
    if (!isFlat(shaped, [2, SCHEMA_VERSION])) {
      this.setAside(file, `manifest journal ${file} is not a folder-sync journal`);
      return undefined;
    }
    return shaped as RecordFile;
  }

  /** Reads a shard (of schema 3, or 2 while migrating); an unusable one is set aside. */
  private readShardFile(file: string): ShardFile | RecordFile | undefined {
    const data = this.readJson(file, 'shard');
    if (data === undefined) return undefined;
    const shaped = data as Partial<ShardFile>;
    const width = shaped.version === 4 ? 5 : shaped.version === 3 ? 3 : 0;
    if (width > 0 && Array.isArray(shaped.folders) && shaped.folders.length % width === 0) return shaped as ShardFile;
    if (isFlat(data as Partial<RecordFile>, [2, 2])) return data as RecordFile;
    this.setAside(file, `manifest shard ${file} is not a folder-sync shard`);
    return undefined;
  }

  /**
   * A manifest file's JSON if it holds an object of our format; `undefined` if missing (never
   * written) or set aside. Perf: read synchronously: a promise chain (open, stat, read, close) per
   * shard cost the main thread ~1.5 ms a shard while the listing threads kept both cores busy.
   */
  private readJson(file: string, what: string): object | undefined {
    let data: unknown;
    try {
      data = new DataFileSync<unknown>(file, compact).read();
    } catch (error) {
      this.setAside(file, `cannot read manifest ${what} ${file}: ${describe(error)}`);
      return undefined;
    }
    if (data === null) return undefined;
    if (typeof data !== 'object' || Array.isArray(data) || (data as { format?: unknown }).format !== MANIFEST_FORMAT) {
      this.setAside(file, `manifest ${what} ${file} is not a folder-sync ${what}`);
      return undefined;
    }
    return data;
  }

  /** Schema 1 (fingerprints as `f:size:mtimeNs:ctimeNs:ino` strings) → the current schema, record by record. */
  private async migrateV1(main: MainData & { entries?: unknown }): Promise<void> {
    const v1 = new Map<string, unknown>();
    const take = (entries: unknown) => {
      if (typeof entries !== 'object' || entries === null) return;
      for (const [relPath, tuple] of Object.entries(entries)) v1.set(relPath, tuple);
    };
    if (main.shards === 1) take(main.entries);
    else {
      for (let index = 0; index < main.shards; index++) {
        try {
          take((JSON.parse(fs.readFileSync(this.shardFile(index), 'utf8')) as { entries?: unknown }).entries);
        } catch {
          // unreadable v1 shard: its files are hashed again
        }
      }
    }
    const { entries: _dropped, ...rest } = main;
    void _dropped;
    this.main.data = { ...rest, version: SCHEMA_VERSION, shards: 1 };
    this.store = new RecordStore();
    this.shardCount = 1;
    let migrated = 0;
    for (const [relPath, tuple] of v1) {
      const record = fromV1(tuple);
      if (record === undefined) continue;
      this.set(relPath, record);
      migrated++;
    }
    this.metaDirty = true;
    this.mustFold = true;
    this.rewriteAll = true;
    this.pending.clear();
    if (!this.options.readOnly && fs.existsSync(this.shardDir)) {
      for (const name of fs.readdirSync(this.shardDir)) if (/^\d+\.json$/.test(name)) fs.rmSync(path.join(this.shardDir, name), { force: true });
    }
    this.options.warn(`manifest ${this.path} has schema 1: migrated ${migrated} records to schema ${SCHEMA_VERSION}`);
  }

  /** Unusable manifest: warn, keep it aside for inspection, start empty (a full pass rebuilds it). */
  private rebuild(message: string): void {
    this.main.data = this.freshMain();
    this.store = new RecordStore();
    this.shardCount = 1;
    this.metaDirty = true;
    // If the old files could not be set aside, the first save replaces them.
    this.mustFold = true;
    this.rewriteAll = true;
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

  /** How many groups a folder of `size` records is written in (see `GROUP`). */
  private groupCount(size: number): number {
    return Math.max(1, Math.ceil(size / (this.options.groupSize ?? GROUP)));
  }

  /** The shard of group `group` of folder `dir`'s records (see `GROUP`). */
  private shardOfGroup(dir: string, group: number): number {
    const count = this.shardCount;
    if (count === 1) return 0;
    return fnv1a(group === 0 ? dir : `${dir}\0${group}`) & (count - 1);
  }

  /** Groups of folder `dir` (of `size` records), now or in the files: whichever is more. */
  private groupsOf(dir: string, size: number): number {
    return Math.max(this.groupCount(size), this.groupsOnDisk.get(dir) ?? 1);
  }

  /** Notes that folder `dir`'s records changed: the shards of all its groups, then and now, are rewritten at the next fold. */
  private markDirty(dir: string): void {
    const groups = this.groupsOf(dir, this.store.folder(dir)?.size ?? 0);
    for (let g = 0; g < groups; g++) this.dirty.add(this.shardOfGroup(dir, g));
  }

  private shardCountFor(total: number): number {
    let count = this.shardCount;
    while (total > count * (this.options.shardSize ?? SHARD_SIZE)) count *= 2;
    return count;
  }

  private reshardNeeded(): boolean {
    return this.shardCountFor(this.size) !== this.shardCount;
  }

  /** Doubles the shard count while shards are over-full; every shard is then rewritten. */
  private reshardIfNeeded(): void {
    const count = this.shardCountFor(this.size);
    if (count === this.shardCount) return;
    this.shardCount = count;
    for (let index = 0; index < count; index++) this.dirty.add(index);
  }

  /** Removes shard files from `from` on (left from a larger layout or an interrupted reshard). */
  private removeShardFilesFrom(from: number): void {
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
  if (main.version < 1) return `has an unknown old schema (${main.version})`;
  if (typeof main.shards !== 'number' || !Number.isInteger(main.shards) || main.shards < 1 || main.shards > MAX_SHARDS || (main.shards & (main.shards - 1)) !== 0) return 'has a bad shard count';
  if (main.source !== options.source || main.replica !== options.replica) {
    return `belongs to another pair (${String(main.source)} -> ${String(main.replica)})`;
  }
  return undefined;
}

function pushRecord(out: unknown[], relPath: string, r: FileRecord): void {
  out.push(relPath);
  pushRecordValues(out, r);
}

/** Whether `file` is a flat-record file (a journal, or a schema-2 shard) of a schema in `[from, to]`. */
function isFlat(file: Partial<RecordFile>, [from, to]: [number, number]): boolean {
  return typeof file.version === 'number' && file.version >= from && file.version <= to && Array.isArray(file.records) && file.records.length % FIELDS === 0;
}

/** A schema-1 record `[src, md5, rep]`, fingerprints as `f:size:mtimeNs:ctimeNs:ino` ('' = unknown). */
function fromV1(tuple: unknown): FileRecord | undefined {
  if (!Array.isArray(tuple) || tuple.length !== 3 || !tuple.every((v) => typeof v === 'string')) return undefined;
  const [src, md5, rep] = tuple as [string, string, string];
  if (!isMd5(md5)) return undefined;
  const parse = (fp: string) => {
    const m = /^f:(\d+):(-?\d+):(-?\d+):(\d+)$/.exec(fp);
    if (!m) return undefined;
    const split = (ns: string) => [Number(BigInt(ns) / 1_000_000_000n), Number(BigInt(ns) % 1_000_000_000n)];
    return { size: Number(m[1]), mtime: split(m[2]), ctime: split(m[3]), ino: Number(m[4]) };
  };
  const s = parse(src);
  const r = parse(rep);
  if (r === undefined) return undefined;
  const from = s ?? { size: r.size, mtime: [-1, -1], ctime: [-1, -1], ino: -1 };
  return new FileRecord(md5, from.size, from.mtime[0], from.mtime[1], from.ctime[0], from.ctime[1], from.ino, s !== undefined, r.mtime[0], r.mtime[1], r.ctime[0], r.ctime[1], r.ino);
}

/** FNV-1a, 32 bits: a fast, well-spread hash of a folder's path for shard assignment. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
