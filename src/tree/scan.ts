/**
 * Listing one folder: names from readdir, then an lstat each (links are never followed).
 *
 * Perf: `readdirSync` of plain names plus one `lstatSync({ bigint: true })` per entry is the
 * cheapest way Node has to get size, mode and nanosecond times (withFileTypes adds nothing we
 * can skip the lstat for: folders need their mode too). Paths are joined by concatenation.
 */
import type { BigIntStats } from 'node:fs';
import { isVanished } from '../errors.js';
import type { Io } from '../replica/local/io.js';
import type { Entry, Kind } from './entry.js';

/** Temporary files of ours: `.folder-sync-` + 16 hex + `.tmp`. Never a user's file name in practice. */
export const TEMP_PREFIX = '.folder-sync-';
const TEMP_RE = /^\.folder-sync-[0-9a-f]{16}\.tmp$/;
const TEMP_LENGTH = TEMP_PREFIX.length + 16 + '.tmp'.length;

export function isTempName(name: string): boolean {
  // Perf: the length and prefix tests reject nearly every name before the regex runs.
  return name.length === TEMP_LENGTH && name.startsWith(TEMP_PREFIX) && TEMP_RE.test(name);
}

export function kindOf(stats: BigIntStats): Kind {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'dir';
  if (stats.isSymbolicLink()) return 'symlink';
  return 'special';
}

const NS_PER_S = 1_000_000_000n;

/**
 * Nanoseconds since the epoch as exact numbers: [whole seconds, nanoseconds], the nanoseconds in
 * 0..999,999,999 as the kernel gives them (and the native lister): -100.25 s is [-101, 750000000].
 * (BigInt division rounds toward zero, [-100, -250000000]: the same time, told apart by a
 * fingerprint, so a file before 1970 listed by one and fstat'ed by the other seemed to change
 * while it was read, every pass.)
 */
export function splitNs(ns: bigint): [seconds: number, nanoseconds: number] {
  const rest = ns % NS_PER_S;
  return rest < 0n ? [Number(ns / NS_PER_S) - 1, Number(rest + NS_PER_S)] : [Number(ns / NS_PER_S), Number(rest)];
}

/**
 * An inode number as the kernel gives it (unsigned 64 bits), as a number. Node's BigInt stats hold
 * it signed: an inode of 2^63 or more (an overlay mount with xino, some FUSE and network
 * filesystems) came back negative, where the native lister and Node's number stats have it
 * positive; such a file never matched its own fingerprint (warned about and skipped every pass).
 */
export function inodeNumber(ino: bigint): number {
  return Number(BigInt.asUintN(64, ino));
}

export function toEntry(name: string, stats: BigIntStats): Entry {
  const [mtimeS, mtimeN] = splitNs(stats.mtimeNs);
  const [ctimeS, ctimeN] = splitNs(stats.ctimeNs);
  const [atimeS, atimeN] = splitNs(stats.atimeNs);
  return {
    name,
    kind: kindOf(stats),
    size: Number(stats.size),
    mode: Number(stats.mode) & 0o7777,
    mtimeS,
    mtimeN,
    ctimeS,
    ctimeN,
    atimeS,
    atimeN,
    ino: inodeNumber(stats.ino),
    uid: Number(stats.uid),
    gid: Number(stats.gid),
    nlink: Number(stats.nlink),
    dev: Number(stats.dev),
  };
}

/** The result of listing one folder. */
export interface Listing {
  /** Entries by name, in `byName` order; temporary files of ours are in `temps`, not here. */
  entries: Map<string, Entry>;
  /** Names of our temporary files found in this folder. */
  temps: string[];
}

/**
 * Lists `absDir`. Throws what readdir throws (the caller decides whether a missing folder is an
 * error); an entry that vanishes before its lstat is left out. Names are as `Io.readdir` gives
 * them (bytes that are not UTF-8 escaped).
 */
export function listDir(io: Io, absDir: string): Listing {
  // Sorted here once (the walk's order, and the listing threads' too): the walk never re-sorts.
  const names = io.readdir(absDir).sort(byName);
  const entries = new Map<string, Entry>();
  const temps: string[] = [];
  const prefix = absDir.endsWith('/') ? absDir : absDir + '/';
  for (const name of names) {
    if (isTempName(name)) {
      temps.push(name);
      continue;
    }
    try {
      entries.set(name, toEntry(name, io.lstat(prefix + name)));
    } catch (error) {
      if (!isVanished(error)) throw error; // (gone since readdir: left out)
    }
  }
  return { entries, temps };
}

/** Code-unit order of names: the order of every listing and so of the walk and its log. */
export const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** `a` + `/` + `b`, where `''` is the root. */
export function joinRel(parent: string, name: string): string {
  return parent === '' ? name : parent + '/' + name;
}
