/**
 * The manifest's records in memory: numbers in typed arrays, MD5s as bytes, and per folder an index
 * from a file's name to its slot (`FolderIndex`).
 *
 * Perf: an object per record, keyed by its whole relative path, held about 290 bytes a record
 * (1M records: ~290 MB of heap, most of the 1M-file pass's peak). Here a record costs its name's
 * characters and 8 bytes in its folder's index (the folder's path is held once), and 74 bytes in
 * typed-array chunks (3 doubles, 4 uint32 seconds, 4 int32 nanoseconds, 2 bytes, the MD5's 16
 * bytes): about 95 bytes. Slots live in fixed chunks so growing never copies what is there.
 */
import { FolderIndex, namesInOrder } from './folder-index.js';
import { FileRecord, type RecordFields } from '../compare/types.js';

const CHUNK_BITS = 14;
const CHUNK = 1 << CHUNK_BITS;
const MASK = CHUNK - 1;

/** The columns a record's numbers are kept in. */
const F64 = 0; // sizes and inodes: any number
const SECONDS = 1; // whole seconds, as uint32 (see `NO_SECONDS`)
const I32 = 2; // nanoseconds (and -1, "unknown", from schema 1)
const U8 = 3; // trusted
/** Numbers per slot in each column. */
const WIDTH = [3, 4, 4, 2];

/**
 * The 12 numbers of a record, in the order the manifest files hold them after the MD5, each with
 * its column and its place in the slot.
 */
const FIELDS: readonly (readonly [key: keyof RecordFields, column: number, at: number])[] = [
  ['size', F64, 0],
  ['mtimeS', SECONDS, 0],
  ['mtimeN', I32, 0],
  ['ctimeS', SECONDS, 1],
  ['ctimeN', I32, 1],
  ['ino', F64, 1],
  ['trusted', U8, 0],
  ['repMtimeS', SECONDS, 2],
  ['repMtimeN', I32, 2],
  ['repCtimeS', SECONDS, 3],
  ['repCtimeN', I32, 3],
  ['repIno', F64, 2],
];
/** The values of a record as the manifest files hold them: 12 numbers after the MD5. */
export const RECORD_NUMBERS = FIELDS.length;
const COLUMN_OF = FIELDS.map((field) => field[1]);
const AT_OF = FIELDS.map((field) => field[2]);
/** The pass tag's byte (see `passTag`), after `trusted`. */
const SEEN = 1;

/**
 * Seconds outside 1970–2106 (a file's mtime can be set to anything: a scan dated 1960, a file from
 * a clock set wrong) are kept as this in the column, and exactly in `RecordStore.wideSeconds`
 * beside it (a few records, in practice); what is not a whole number is read back as NaN (and
 * written to the manifest files as -0.5): such a fingerprint never matches a file's, so that side
 * is read each pass, never believed wrongly.
 */
const NO_SECONDS = 0xffffffff;

/**
 * A pass number as one byte, 1–255 (0: not looked up since loading). Tags repeat every 255
 * passes, so a record not looked up for exactly 255 passes, none of them complete, may be taken
 * for seen and kept until the next complete pass: safe, a record is checked against the file's
 * fingerprint before it is believed.
 */
function passTag(pass: number): number {
  return ((pass - 1) % 255) + 1;
}

/** Number `k` (in `FIELDS` order) of a record, as the manifest files hold it (`trusted` as 1 or 0). */
function fieldValue(r: RecordFields, k: number): number {
  const value = r[FIELDS[k][0]];
  return typeof value === 'boolean' ? (value ? 1 : 0) : (value as number);
}

/** Appends a record as the manifest files hold it: its MD5, then its numbers in `FIELDS` order. */
export function pushRecordValues(out: unknown[], r: RecordFields): void {
  out.push(r.md5);
  for (let k = 0; k < RECORD_NUMBERS; k++) out.push(fieldValue(r, k));
}

/** Whether `md5` is what we record: 32 lowercase hex digits. */
export function isMd5(md5: unknown): md5 is string {
  return typeof md5 === 'string' && md5.length === 32 && /^[0-9a-f]{32}$/.test(md5);
}

const SCRATCH = Buffer.alloc(16);

export class RecordStore {
  /** Per chunk: one typed array per column (see `WIDTH`), and the MD5s. */
  private readonly columns: [Float64Array, Uint32Array, Int32Array, Uint8Array][] = [];
  private readonly md5: Buffer[] = [];
  private readonly free: number[] = [];
  /** Whole seconds outside the column's range, by `slot * 4 +` their place (see `NO_SECONDS`). */
  private readonly wideSeconds = new Map<number, number>();
  private next = 0;
  /** folder relPath → file name → slot. */
  readonly folders = new Map<string, FolderIndex>();
  count = 0;
  /** Folders appended to since the last `seal`. */
  private readonly unsealed = new Set<FolderIndex>();
  private readonly currentView = new RecordView(this);
  /** Takes back the slot of a record loaded twice (the later one is kept). */
  private readonly drop = (slot: number): void => {
    this.free.push(slot);
    this.count--;
  };

  folder(dir: string): FolderIndex | undefined {
    return this.folders.get(dir);
  }

  /** The slot of `dir`/`name`, or -1. */
  find(dir: string, name: string): number {
    return this.folders.get(dir)?.get(name) ?? -1;
  }

  /**
   * Stores a record at `dir`/`name` (replacing any) from `values[at]`: MD5, then `RECORD_NUMBERS`
   * numbers; false if malformed. `loading`: appended without a lookup (see `FolderIndex.append`);
   * call `seal` before anything else.
   */
  putValues(dir: string, name: string, values: unknown[], at: number, loading = false): boolean {
    const md5 = values[at];
    if (typeof md5 !== 'string' || md5.length !== 32) return false;
    for (let k = 1; k <= RECORD_NUMBERS; k++) if (typeof values[at + k] !== 'number') return false;
    // Perf: hex decoding stops at the first character that is not a hex digit, so 16 bytes
    // written is the check (a regular expression per record cost more than the decoding).
    if (SCRATCH.write(md5, 0, 16, 'hex') !== 16) return false;
    const slot = loading ? this.appendSlot(dir, name) : this.slotFor(dir, name);
    SCRATCH.copy(this.md5[slot >>> CHUNK_BITS], (slot & MASK) * 16, 0, 16);
    for (let k = 0; k < RECORD_NUMBERS; k++) this.setNumber(slot, k, values[at + 1 + k] as number);
    this.column(slot, U8)[(slot & MASK) * WIDTH[U8] + SEEN] = 0;
    return true;
  }

  /**
   * While loading (call `seal` before anything else): a group of folder `dir`'s records as a shard
   * holds them: their names joined by `/`, their MD5s (hex, 32 digits each), and `RECORD_NUMBERS`
   * numbers each. Returns how many were stored: all, or 0 if the group is malformed in any way (its
   * files are then hashed again): names out of order or repeated too, since a save writes them in
   * order (see `FolderIndex.ordered`); two names swapped would put records under each other's.
   * Perf: a column per group, not values per record: parsing makes three values, not 14 per record,
   * and a group in order keeps its names as one string (see `FolderIndex.adopt`).
   */
  loadGroup(dir: string, names: string, md5s: string, numbers: unknown[]): number {
    const count = numbers.length / RECORD_NUMBERS;
    if (!Number.isInteger(count) || count === 0 || md5s.length !== count * 32 || names.includes('\0')) return 0;
    for (let k = 0; k < numbers.length; k++) if (typeof numbers[k] !== 'number') return 0;
    const md5 = Buffer.from(md5s, 'hex'); // stops at the first character that is not a hex digit
    if (md5.length !== count * 16) return 0;
    // Laid out as `FolderIndex` keeps it: where each name starts, the text's length plus one, the slots.
    const index = new Int32Array(2 * count + 1);
    let start = 0;
    for (let i = 0; i < count; i++) {
      let end = names.indexOf('/', start);
      if (end === -1) end = names.length;
      if (end === start || (end === names.length) !== (i === count - 1)) return 0; // an empty name, or too few
      index[i] = start;
      start = end + 1;
    }
    if (start !== names.length + 1) return 0; // too many names
    index[count] = start;
    if (!namesInOrder(names, index)) return 0;
    for (let i = 0; i < count; i++) {
      const slot = this.free.pop() ?? this.allocate();
      index[count + 1 + i] = slot;
      for (let k = 0; k < RECORD_NUMBERS; k++) this.setNumber(slot, k, numbers[i * RECORD_NUMBERS + k] as number);
      this.column(slot, U8)[(slot & MASK) * WIDTH[U8] + SEEN] = 0;
    }
    // Perf: the MD5s of consecutive slots (a load's, mostly) in one copy: `Buffer.copy` costs
    // ~190 ns a call: 11–19 ms of the 100k manifest's load when made once per record, ~1.5 ms so.
    for (let i = 0; i < count; ) {
      const first = index[count + 1 + i];
      let end = i + 1;
      while (end < count && index[count + 1 + end] === first + (end - i) && (first + (end - i)) >>> CHUNK_BITS === first >>> CHUNK_BITS) end++;
      md5.copy(this.md5[first >>> CHUNK_BITS], (first & MASK) * 16, i * 16, end * 16);
      i = end;
    }
    this.count += count;
    const folder = this.folderFor(dir);
    if (!folder.adopt(names, index)) {
      // The folder holds names already: written in several groups, or found in two shards (a
      // reshard cut short). Sorted in by `seal`.
      for (let i = 0; i < count; i++) folder.append(names.slice(index[i], index[i + 1] - 1), index[count + 1 + i]);
      this.unsealed.add(folder);
    }
    return count;
  }

  /** `slots` as a shard holds them (see `loadGroup`): their MD5s in hex, and their numbers. */
  groupValues(slots: number[]): [md5s: string, numbers: number[]] {
    const md5 = Buffer.allocUnsafe(slots.length * 16);
    const numbers: number[] = [];
    for (const [i, slot] of slots.entries()) {
      this.md5[slot >>> CHUNK_BITS].copy(md5, i * 16, (slot & MASK) * 16, (slot & MASK) * 16 + 16);
      for (let k = 0; k < RECORD_NUMBERS; k++) {
        const value = this.number(slot, k);
        // NaN (seconds that were not a whole number) and, from a damaged journal, infinities (JSON
        // would write them as null, and the whole group would be dropped at the next load): values
        // no file has, read back as never matching: -0.5 seconds (NaN again), -1 for the rest.
        numbers.push(Number.isFinite(value) ? value : COLUMN_OF[k] === SECONDS ? -0.5 : -1);
      }
    }
    return [md5.toString('hex'), numbers];
  }

  /** Stores `record` at `dir`/`name` (replacing any), seen in pass `seen`. */
  put(dir: string, name: string, r: FileRecord, seen: number): void {
    if (!isMd5(r.md5)) throw new Error(`not an MD5: ${JSON.stringify(r.md5)}`);
    const slot = this.slotFor(dir, name);
    this.md5[slot >>> CHUNK_BITS].write(r.md5, (slot & MASK) * 16, 16, 'hex');
    for (let k = 0; k < RECORD_NUMBERS; k++) this.setNumber(slot, k, fieldValue(r, k));
    this.markSeen(slot, seen);
  }

  /** The record in `slot`, as a `FileRecord` of its own. */
  get(slot: number): FileRecord {
    const n = (k: number) => this.number(slot, k);
    return new FileRecord(this.md5Hex(slot), n(0), n(1), n(2), n(3), n(4), n(5), n(6) === 1, n(7), n(8), n(9), n(10), n(11));
  }

  /**
   * The record in `slot`, read in place: one view per store, moved by every call (Perf: a no-change
   * pass looks up every file; a `FileRecord` and an MD5 string each cost more than the comparison).
   */
  view(slot: number): RecordFields {
    this.currentView.at(slot);
    return this.currentView;
  }

  md5Hex(slot: number): string {
    const at = (slot & MASK) * 16;
    return this.md5[slot >>> CHUNK_BITS].toString('hex', at, at + 16);
  }

  /** Number `k` (in `FIELDS` order) of `slot`. */
  number(slot: number, k: number): number {
    const column = COLUMN_OF[k];
    const value = this.columns[slot >>> CHUNK_BITS][column][(slot & MASK) * WIDTH[column] + AT_OF[k]];
    return column === SECONDS && value === NO_SECONDS ? (this.wideSeconds.get(slot * 4 + AT_OF[k]) ?? NaN) : value;
  }

  /** Records, and the bytes of their files. */
  totals(): { entries: number; bytes: number } {
    let entries = 0;
    let bytes = 0;
    for (const folder of this.folders.values()) {
      folder.forEachSlot((slot) => {
        entries++;
        bytes += this.size(slot);
      });
    }
    return { entries, bytes };
  }

  size(slot: number): number {
    return this.number(slot, 0);
  }

  /** Whether `slot` was looked up during pass `pass`. */
  seenIn(slot: number, pass: number): boolean {
    return this.column(slot, U8)[(slot & MASK) * WIDTH[U8] + SEEN] === passTag(pass);
  }

  markSeen(slot: number, pass: number): void {
    this.column(slot, U8)[(slot & MASK) * WIDTH[U8] + SEEN] = passTag(pass);
  }

  /** Drops `dir`/`name`; false if there was none. */
  remove(dir: string, name: string): boolean {
    const folder = this.folders.get(dir);
    const slot = folder?.get(name);
    if (folder === undefined || slot === undefined) return false;
    // An emptied folder keeps its (empty) index: a lookup function made by `Manifest.getIn` may hold it.
    folder.delete(name);
    this.free.push(slot);
    this.count--;
    return true;
  }

  private column(slot: number, column: number): Float64Array | Uint32Array | Int32Array | Uint8Array {
    return this.columns[slot >>> CHUNK_BITS][column];
  }

  private setNumber(slot: number, k: number, value: number): void {
    const column = COLUMN_OF[k];
    let stored = value;
    if (column === SECONDS) {
      const key = slot * 4 + AT_OF[k];
      if (!(Number.isInteger(value) && value >= 0 && value < NO_SECONDS)) {
        stored = NO_SECONDS;
        // (Schema 1's "unknown" -1 seconds come with -1 nanoseconds, which no file has.)
        if (Number.isSafeInteger(value)) this.wideSeconds.set(key, value);
        else this.wideSeconds.delete(key);
      } else if (this.wideSeconds.size > 0) {
        this.wideSeconds.delete(key);
      }
    }
    if (column === U8) stored = value === 1 ? 1 : 0;
    this.columns[slot >>> CHUNK_BITS][column][(slot & MASK) * WIDTH[column] + AT_OF[k]] = stored;
  }

  /**
   * What `putValues(…, true)` appended is sorted into each folder's index. Perf: called after each
   * shard file, so the names parsed from it die young (joined into their folders' indexes), except
   * in folders of `deferFrom` names or more: a folder written in groups over several shards would
   * be sorted again at each (quadratic); those wait for the last call, without `deferFrom`.
   */
  seal(deferFrom = Infinity): void {
    for (const folder of this.unsealed) {
      if (folder.size >= deferFrom) continue;
      folder.seal();
      this.unsealed.delete(folder);
    }
  }

  private folderFor(dir: string): FolderIndex {
    let folder = this.folders.get(dir);
    if (folder === undefined) {
      folder = new FolderIndex(this.drop);
      this.folders.set(dir, folder);
    }
    return folder;
  }

  private appendSlot(dir: string, name: string): number {
    const slot = this.free.pop() ?? this.allocate();
    const folder = this.folderFor(dir);
    folder.append(name, slot);
    this.unsealed.add(folder);
    this.count++;
    return slot;
  }

  private slotFor(dir: string, name: string): number {
    const folder = this.folderFor(dir);
    const existing = folder.get(name);
    if (existing !== undefined) return existing;
    const slot = this.free.pop() ?? this.allocate();
    folder.set(name, slot);
    this.count++;
    return slot;
  }

  private allocate(): number {
    const slot = this.next++;
    if ((slot & MASK) === 0) {
      this.columns.push([
        new Float64Array(CHUNK * WIDTH[F64]),
        new Uint32Array(CHUNK * WIDTH[SECONDS]),
        new Int32Array(CHUNK * WIDTH[I32]),
        new Uint8Array(CHUNK * WIDTH[U8]),
      ]);
      this.md5.push(Buffer.alloc(CHUNK * 16));
    }
    return slot;
  }
}

/** `relPath` as its folder and name (`''` is the root folder). */
export function splitRel(relPath: string): [string, string] {
  const slash = relPath.lastIndexOf('/');
  return slash === -1 ? ['', relPath] : [relPath.slice(0, slash), relPath.slice(slash + 1)];
}

/**
 * A record read in place from a `RecordStore` (see `RecordStore.view`). Its number getters are
 * made from `FIELDS` below, so the layout is written down once.
 */
class RecordView {
  slot = 0;
  constructor(readonly store: RecordStore) {}
  at(slot: number): void {
    this.slot = slot;
  }
  get md5(): string {
    return this.store.md5Hex(this.slot);
  }
}
// The getters defined below, one per field of `FIELDS`.
interface RecordView extends Omit<RecordFields, 'md5'> {}
FIELDS.forEach(([key, column], k) => {
  Object.defineProperty(RecordView.prototype, key, {
    get(this: RecordView) {
      const value = this.store.number(this.slot, k);
      return column === U8 ? value === 1 : value;
    },
  });
});
