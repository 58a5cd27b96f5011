/**
 * The manifest: a cache of what each source file's content was, kept with lowdb: records in
 * memory (`record-store.ts`), files on disk (`format.ts` for their layout, `files.ts` to read and
 * write them).
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
import { DataFile } from 'lowdb/node';
import { describe } from '../errors.js';
import { RecordStore, splitRel } from './record-store.js';
import { ManifestFiles } from './files.js';
import { checkMain, compact, FIELDS, foldAt, GROUP, MANIFEST_FORMAT, MAX_JOURNALS, MAX_SHARDS, pushRecord, SCHEMA_VERSION, type LastPass, type MainData, type ManifestOptions } from './format.js';

export type { LastPass, ManifestOptions } from './format.js';
import { readV1Records } from './migrate.js';
import { ShardLayout } from './layout.js';
import { joinRel } from '../tree/scan.js';
import { FileRecord, type RecordFields } from '../compare/types.js';

export class Manifest {
  readonly path: string;
  private readonly shardDir: string;
  private readonly files: ManifestFiles;
  private readonly options: ManifestOptions;
  private main: Low<MainData>;
  private store = new RecordStore();
  private layout: ShardLayout;
  /** Changes since the last journal or save (`null`: forgotten). */
  private pending = new Map<string, FileRecord | null>();
  private journals: string[] = [];
  /** Records (set or forgotten) in `journals`. */
  private journalRecords = 0;
  /** Shards differ from their files in a way no journal holds (a migration, a record in the wrong shard): the next save folds. */
  private mustFold = false;
  /** The next fold rewrites every shard (after a migration: no file of the old layout may stay). */
  private rewriteAll = false;
  private nextJournal = 1;
  private metaDirty = false;
  /** Whether a main file is on disk for a load to find (without one, a load ignores the journals: see `checkpoint`). */
  private mainOnDisk = false;
  private pass = 0;
  /** Bytes written since it was opened (for the benchmark and tests). */
  get bytesWritten(): number {
    return this.files.bytesWritten;
  }

  set bytesWritten(bytes: number) {
    this.files.bytesWritten = bytes;
  }
  /**
   * Replica folders a pass could not flush: the next pass (of the same process) flushes them
   * before it writes anything, since these records are still in memory.
   */
  unflushedDirs = new Set<string>();

  private constructor(manifestPath: string, options: ManifestOptions) {
    this.path = manifestPath;
    this.shardDir = manifestPath + '.d';
    this.files = new ManifestFiles(this.shardDir, options);
    this.layout = new ShardLayout(options);
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
    return this.store.totals();
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
    this.layout.markDirty(dir, this.store.folder(dir)?.size ?? 0);
    this.pending.set(relPath, record);
  }

  delete(relPath: string): void {
    const [dir, name] = splitRel(relPath);
    if (!this.store.remove(dir, name)) return;
    this.layout.markDirty(dir, this.store.folder(dir)?.size ?? 0);
    this.pending.set(relPath, null);
  }

  /** Forgets records not looked up since `beginPass` (their paths left the source). */
  forgetUnseen(): number {
    let forgotten = 0;
    for (const dir of [...this.store.folders.keys()]) forgotten += this.forgetUnseenInFolder(dir);
    return forgotten;
  }

  /** `forgetUnseen` for the files directly in `dirs` only (the folders a scoped pass listed). */
  forgetUnseenIn(dirs: Iterable<string>): number {
    let forgotten = 0;
    for (const dir of dirs) forgotten += this.forgetUnseenInFolder(dir);
    return forgotten;
  }

  private forgetUnseenInFolder(dir: string): number {
    const folder = this.store.folder(dir);
    if (folder === undefined) return 0;
    let forgotten = 0;
    const seen = (slot: number) => this.store.seenIn(slot, this.pass);
    // Perf: most folders lost nothing, and tell it without a string made per name.
    if (!folder.everySlot(seen)) {
      for (const [name, slot] of folder) {
        if (seen(slot)) continue;
        this.store.remove(dir, name);
        this.layout.markDirty(dir, this.store.folder(dir)?.size ?? 0);
        this.pending.set(joinRel(dir, name), null);
        forgotten++;
      }
    }
    // No lookup function of the walk holds it any more: an emptied folder goes.
    if (folder.size === 0) this.store.folders.delete(dir);
    else folder.compact();
    return forgotten;
  }

  /**
   * The records of folder `from` and every folder below it, moved to `to` (a folder renamed in the
   * source, renamed in the replica likewise): what they vouch for is unchanged (a folder's rename
   * moves no file's fingerprint).
   */
  moveFolder(from: string, to: string): void {
    for (const dir of [...this.store.folders.keys()]) {
      if (dir !== from && !dir.startsWith(from + '/')) continue;
      for (const [name] of [...this.store.folder(dir)!]) {
        const record = this.peek(joinRel(dir, name))!;
        this.delete(joinRel(dir, name));
        this.set(joinRel(to + dir.slice(from.length), name), record);
      }
    }
  }

  /** Folders holding records (a scoped pass trusts those it does not list). */
  get folderCount(): number {
    return this.store.folders.size;
  }

  /** Records directly in `dir`. */
  sizeOf(dir: string): number {
    return this.store.folder(dir)?.size ?? 0;
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
    await this.files.writeFile(file, { format: MANIFEST_FORMAT, version: SCHEMA_VERSION, records, forgotten });
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
      options.fold === true || this.mustFold || this.layout.reshardNeeded(this.size) || this.journals.length >= MAX_JOURNALS ||
      this.journalRecords + this.pending.size > foldAt(this.size);
    if (!fold) {
      await this.checkpoint();
      if (this.metaDirty) await this.writeMain();
      return;
    }
    if (this.layout.dirty.size === 0 && !this.metaDirty && this.journals.length === 0 && !this.rewriteAll) return;
    // Until this fold completes, the next save must fold too (a failed write leaves shards half done).
    this.mustFold = true;
    this.layout.reshardIfNeeded(this.size);
    if (this.rewriteAll) for (let index = 0; index < this.layout.shardCount; index++) this.layout.dirty.add(index);
    const { shards, groupsNow } = this.layout.foldContents(this.store);
    if (shards.size > 0) fs.mkdirSync(this.shardDir, { recursive: true });
    // Highest first: in a reshard a folder only moves to a higher shard, so its new home is
    // written before its old one is rewritten without it (a fold cut short loses nothing).
    for (const [index, folders] of [...shards].reverse()) {
      await this.files.writeFile(this.shardFile(index), { format: MANIFEST_FORMAT, version: SCHEMA_VERSION, folders });
    }
    await this.writeMain();
    // Safety: journals go only after the shards and main file that include them are in place.
    for (const file of this.journals) fs.rmSync(file, { force: true });
    this.files.removeShardFilesFrom(this.layout.shardCount);
    this.journals = [];
    this.journalRecords = 0;
    this.mustFold = false;
    this.rewriteAll = false;
    this.layout.groupsOnDisk = groupsNow;
    this.layout.dirty.clear();
    this.pending.clear();
  }

  private async writeMain(): Promise<void> {
    this.main.data.shards = this.layout.shardCount;
    this.main.data.version = SCHEMA_VERSION;
    const mainText = JSON.stringify(this.main.data);
    await this.main.write();
    this.files.bytesWritten += Buffer.byteLength(mainText);
    this.metaDirty = false;
    this.mainOnDisk = true;
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
    this.layout.shardCount = main.shards;
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
      const shard = this.files.readShardFile(this.shardFile(index));
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
        if (group > 0) this.layout.groupsOnDisk.set(dir, Math.max(this.layout.groupsOnDisk.get(dir) ?? 1, group + 1));
        // A folder in the wrong shard (a crash in the middle of a reshard) is moved home, and the
        // shard it was found in is rewritten without it.
        const home = this.layout.shardOfGroup(dir, group);
        if (home !== index) {
          this.layout.dirty.add(home);
          this.layout.dirty.add(index);
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
      const journal = this.files.readJournal(file);
      if (journal === undefined) continue;
      this.journals.push(file);
      this.nextJournal = Math.max(this.nextJournal, Number(name.slice(8, -5)) + 1);
      this.journalRecords += this.replay(journal.records);
      for (const relPath of journal.forgotten ?? []) {
        if (typeof relPath !== 'string') continue;
        const [dir, name] = splitRel(relPath);
        if (this.store.remove(dir, name)) this.layout.markDirty(dir, this.store.folder(dir)?.size ?? 0);
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
      this.layout.markDirty(dir, this.store.folder(dir)?.size ?? 0);
      count++;
    }
    return count;
  }

  /** Schema 1 (fingerprints as `f:size:mtimeNs:ctimeNs:ino` strings) → the current schema, record by record. */
  private async migrateV1(main: MainData & { entries?: unknown }): Promise<void> {
    const v1 = readV1Records(main, (index) => this.shardFile(index));
    const { entries: _dropped, ...rest } = main;
    void _dropped;
    this.main.data = { ...rest, version: SCHEMA_VERSION, shards: 1 };
    this.store = new RecordStore();
    this.layout = new ShardLayout(this.options);
    for (const [relPath, record] of v1) this.set(relPath, record);
    const migrated = v1.size;
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
    this.layout = new ShardLayout(this.options);
    this.metaDirty = true;
    // If the old files could not be set aside, the first save replaces them.
    this.mustFold = true;
    this.rewriteAll = true;
    if (this.options.readOnly) {
      this.options.warn(`${message}; rebuilding it (dry run: not written)`);
      return;
    }
    const aside = this.files.setAsidePath(this.path);
    try {
      if (fs.existsSync(this.path)) fs.renameSync(this.path, aside);
      if (fs.existsSync(this.shardDir)) fs.renameSync(this.shardDir, aside + '.d');
      this.options.warn(`${message}; kept as ${aside}, rebuilding it with a full pass`);
    } catch (error) {
      this.options.warn(`${message}; could not keep it aside (${describe(error)}), rebuilding it with a full pass`);
    }
  }

  private shardFile(index: number): string {
    return this.files.shardFile(index);
  }

}

