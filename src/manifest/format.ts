/**
 * The manifest's files on disk: their layout, schema, limits, and the checks a file must pass.
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
import type { FileRecord } from '../compare/types.js';
import { pushRecordValues } from './record-store.js';

export const MANIFEST_FORMAT = 'folder-sync manifest';
/**
 * Bump when the meaning of a record changes; older manifests are migrated or rebuilt.
 * 1: fingerprints as strings; 2: flat records by path hash; 3: records grouped by folder;
 * 4: a folder's records by column.
 */
export const SCHEMA_VERSION = 4;
/** Records per shard before the manifest splits further. Perf: ~2k records ≈ 250 KB a write. */
export const SHARD_SIZE = 2048;
export const FIELDS = 14;
/** 2^16 shards of 2,048 records: far beyond any real tree; a larger count is a foreign file. */
export const MAX_SHARDS = 1 << 16;
/** Journals kept before a save folds them, whatever their size (a watch pass writes one each time). */
export const MAX_JOURNALS = 64;
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

export interface MainData {
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
export interface RecordFile {
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
export interface ShardFile {
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

export const compact = { parse: JSON.parse, stringify: (data: unknown) => JSON.stringify(data) };

export function checkMain(data: unknown, options: ManifestOptions): string | undefined {
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

export function pushRecord(out: unknown[], relPath: string, r: FileRecord): void {
  out.push(relPath);
  pushRecordValues(out, r);
}

/** Whether `file` is a flat-record file (a journal, or a schema-2 shard) of a schema in `[from, to]`. */
export function isFlat(file: Partial<RecordFile>, [from, to]: [number, number]): boolean {
  return typeof file.version === 'number' && file.version >= from && file.version <= to && Array.isArray(file.records) && file.records.length % FIELDS === 0;
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
