/** Schema 1 (fingerprints as `f:size:mtimeNs:ctimeNs:ino` strings), read record by record into the current schema. */
import * as fs from 'node:fs';
import { FileRecord } from '../compare/types.js';
import type { MainData } from './format.js';
import { isMd5 } from './record-store.js';

/** The schema-1 records of `main` (in the main file, or its `shards` files), by relative path. */
export function readV1Records(main: MainData & { entries?: unknown }, shardFile: (index: number) => string): Map<string, FileRecord> {
  const v1 = new Map<string, unknown>();
  const take = (entries: unknown) => {
    if (typeof entries !== 'object' || entries === null) return;
    for (const [relPath, tuple] of Object.entries(entries)) v1.set(relPath, tuple);
  };
  if (main.shards === 1) take(main.entries);
  else {
    for (let index = 0; index < main.shards; index++) {
      try {
        take((JSON.parse(fs.readFileSync(shardFile(index), 'utf8')) as { entries?: unknown }).entries);
      } catch {
        // unreadable v1 shard: its files are hashed again
      }
    }
  }
  const records = new Map<string, FileRecord>();
  for (const [relPath, tuple] of v1) {
    const record = fromV1(tuple);
    if (record !== undefined) records.set(relPath, record);
  }
  return records;
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

