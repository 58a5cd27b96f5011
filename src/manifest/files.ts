/**
 * Reading and writing the manifest's files: each read checked (an unusable file is set aside, its
 * records lost: those files are hashed again), each write replacing the file by rename (lowdb).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataFile, DataFileSync } from 'lowdb/node';
import { describe } from '../errors.js';
import { compact, isFlat, MANIFEST_FORMAT, SCHEMA_VERSION, type RecordFile, type ShardFile } from './format.js';

export class ManifestFiles {
  /** Bytes written since it was opened (for the benchmark and tests). */
  bytesWritten = 0;

  constructor(
    readonly shardDir: string,
    private readonly options: { readOnly?: boolean; warn(message: string): void },
  ) {}

  shardFile(index: number): string {
    return path.join(this.shardDir, `${index}.json`);
  }

  /** Reads a journal (the same since schema 2); an unusable one is set aside (its files will be hashed again). */
  readJournal(file: string): RecordFile | undefined {
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
  readShardFile(file: string): ShardFile | RecordFile | undefined {
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
  readJson(file: string, what: string): object | undefined {
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

  setAside(file: string, message: string): void {
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

  setAsidePath(file: string): string {
    return `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  }

  async writeFile(file: string, data: RecordFile | ShardFile): Promise<void> {
    const text = JSON.stringify(data);
    await new DataFile<RecordFile | ShardFile>(file, { parse: JSON.parse, stringify: () => text }).write(data);
    this.bytesWritten += Buffer.byteLength(text);
  }


  /** Removes shard files from `from` on (left from a larger layout or an interrupted reshard). */
  removeShardFilesFrom(from: number): void {
    if (!fs.existsSync(this.shardDir)) return;
    for (const name of fs.readdirSync(this.shardDir)) {
      const match = /^(\d+)\.json$/.exec(name);
      if (match && Number(match[1]) >= from) fs.rmSync(path.join(this.shardDir, name), { force: true });
    }
  }
}
