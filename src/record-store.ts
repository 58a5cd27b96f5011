/**
 * The manifest's records in memory: numbers in typed arrays, MD5s as bytes, and per folder a Map
 * from a file's name to its slot.
 *
 * Perf: an object per record, keyed by its whole relative path, held about 290 bytes a record
 * (1M records: ~290 MB of heap, most of the 1M-file pass's peak). Here a record costs its name (the
 * folder's path is held once), a Map entry, 7 doubles, 4 int32, 2 bytes and 16 bytes of MD5: about
 * 130 bytes. Slots live in fixed chunks so growing never copies what is there.
 */
import { FileRecord, type RecordFields } from './types.js';

const CHUNK_BITS = 14;
const CHUNK = 1 << CHUNK_BITS;
const MASK = CHUNK - 1;
/** Doubles per slot: size, mtime s, ctime s, inode, replica mtime s, ctime s, inode. */
const F = 7;
/** Int32s per slot: mtime ns, ctime ns, replica mtime ns, ctime ns. */
const I = 4;
/** Bytes per slot: trusted (0/1), and the tag of the last pass that looked it up (see `passTag`). */
const B = 2;
const TRUSTED = 0;
const SEEN = 1;

/**
 * A pass number as one byte, 1–255 (0: not looked up since loading). Tags repeat every 255
 * passes; a record taken for seen by that is only kept one pass longer, which is safe (a record
 * is checked against the file's fingerprint before it is believed).
 */
function passTag(pass: number): number {
  return ((pass - 1) % 255) + 1;
}

/** The values of a record as the manifest files hold them: 12 numbers after the MD5. */
export const RECORD_NUMBERS = 12;

/** Whether `md5` is what we record: 32 lowercase hex digits. */
export function isMd5(md5: unknown): md5 is string {
  return typeof md5 === 'string' && md5.length === 32 && /^[0-9a-f]{32}$/.test(md5);
}

const SCRATCH = Buffer.alloc(16);

export class RecordStore {
  private readonly f64: Float64Array[] = [];
  private readonly i32: Int32Array[] = [];
  private readonly u8: Uint8Array[] = [];
  private readonly md5: Buffer[] = [];
  private readonly free: number[] = [];
  private next = 0;
  /** folder relPath → file name → slot. */
  readonly folders = new Map<string, Map<string, number>>();
  count = 0;

  folder(dir: string): Map<string, number> | undefined {
    return this.folders.get(dir);
  }

  /** The slot of `dir`/`name`, or -1. */
  find(dir: string, name: string): number {
    return this.folders.get(dir)?.get(name) ?? -1;
  }

  /** Stores a record at `dir`/`name` (replacing any) from `values[at]`: MD5, then `RECORD_NUMBERS` numbers; false if malformed. */
  putValues(dir: string, name: string, values: unknown[], at: number): boolean {
    const md5 = values[at];
    if (typeof md5 !== 'string' || md5.length !== 32) return false;
    for (let k = 1; k <= RECORD_NUMBERS; k++) if (typeof values[at + k] !== 'number') return false;
    // Perf: hex decoding stops at the first character that is not a hex digit, so 16 bytes
    // written is the check (a regular expression per record cost more than the decoding).
    if (SCRATCH.write(md5, 0, 16, 'hex') !== 16) return false;
    const slot = this.slotFor(dir, name);
    const chunk = slot >>> CHUNK_BITS;
    const o = slot & MASK;
    SCRATCH.copy(this.md5[chunk], o * 16, 0, 16);
    const n = values as number[];
    const f = this.f64[chunk];
    const i = this.i32[chunk];
    const fo = o * F;
    const io = o * I;
    f[fo] = n[at + 1];
    f[fo + 1] = n[at + 2];
    i[io] = n[at + 3];
    f[fo + 2] = n[at + 4];
    i[io + 1] = n[at + 5];
    f[fo + 3] = n[at + 6];
    const b = this.u8[chunk];
    b[o * B + TRUSTED] = n[at + 7] === 1 ? 1 : 0;
    b[o * B + SEEN] = 0;
    f[fo + 4] = n[at + 8];
    i[io + 2] = n[at + 9];
    f[fo + 5] = n[at + 10];
    i[io + 3] = n[at + 11];
    f[fo + 6] = n[at + 12];
    return true;
  }

  /** Stores `record` at `dir`/`name` (replacing any), seen in pass `seen`. */
  put(dir: string, name: string, r: FileRecord, seen: number): void {
    if (!isMd5(r.md5)) throw new Error(`not an MD5: ${JSON.stringify(r.md5)}`);
    const slot = this.slotFor(dir, name);
    const chunk = slot >>> CHUNK_BITS;
    const o = slot & MASK;
    this.md5[chunk].write(r.md5, o * 16, 16, 'hex');
    const f = this.f64[chunk];
    const i = this.i32[chunk];
    const fo = o * F;
    const io = o * I;
    f[fo] = r.size;
    f[fo + 1] = r.mtimeS;
    i[io] = r.mtimeN;
    f[fo + 2] = r.ctimeS;
    i[io + 1] = r.ctimeN;
    f[fo + 3] = r.ino;
    const b = this.u8[chunk];
    b[o * B + TRUSTED] = r.trusted ? 1 : 0;
    b[o * B + SEEN] = passTag(seen);
    f[fo + 4] = r.repMtimeS;
    i[io + 2] = r.repMtimeN;
    f[fo + 5] = r.repCtimeS;
    i[io + 3] = r.repCtimeN;
    f[fo + 6] = r.repIno;
  }

  /** The record in `slot`. */
  get(slot: number): FileRecord {
    const chunk = slot >>> CHUNK_BITS;
    const o = slot & MASK;
    const f = this.f64[chunk];
    const i = this.i32[chunk];
    const fo = o * F;
    const io = o * I;
    return new FileRecord(
      this.md5[chunk].toString('hex', o * 16, o * 16 + 16),
      f[fo], f[fo + 1], i[io], f[fo + 2], i[io + 1], f[fo + 3], this.u8[chunk][o * B + TRUSTED] === 1,
      f[fo + 4], i[io + 2], f[fo + 5], i[io + 3], f[fo + 6],
    );
  }

  /**
   * The record in `slot`, read in place: one view per store, moved by every call (Perf: a no-change
   * pass looks up every file; a `FileRecord` and an MD5 string each cost more than the comparison).
   */
  view(slot: number): RecordFields {
    this.currentView.at(slot);
    return this.currentView;
  }

  private readonly currentView = new RecordView(this);

  /** The MD5 of `slot`, as hex. */
  md5Hex(slot: number): string {
    return this.md5[slot >>> CHUNK_BITS].toString('hex', (slot & MASK) * 16, (slot & MASK) * 16 + 16);
  }

  /** Doubles field `k` of `slot` (see `F`). */
  f(slot: number, k: number): number {
    return this.f64[slot >>> CHUNK_BITS][(slot & MASK) * F + k];
  }

  /** Int32 field `k` of `slot` (see `I`). */
  i(slot: number, k: number): number {
    return this.i32[slot >>> CHUNK_BITS][(slot & MASK) * I + k];
  }

  /** Appends the record in `slot` to `out` as the manifest files hold it: MD5, then 12 numbers. */
  pushValues(out: unknown[], slot: number): void {
    const chunk = slot >>> CHUNK_BITS;
    const o = slot & MASK;
    const f = this.f64[chunk];
    const i = this.i32[chunk];
    const fo = o * F;
    const io = o * I;
    out.push(
      this.md5[chunk].toString('hex', o * 16, o * 16 + 16),
      f[fo], f[fo + 1], i[io], f[fo + 2], i[io + 1], f[fo + 3], this.u8[chunk][o * B + TRUSTED],
      f[fo + 4], i[io + 2], f[fo + 5], i[io + 3], f[fo + 6],
    );
  }

  size(slot: number): number {
    return this.f64[slot >>> CHUNK_BITS][(slot & MASK) * F];
  }

  /** Whether `slot` was looked up during pass `pass`. */
  seenIn(slot: number, pass: number): boolean {
    return this.u8[slot >>> CHUNK_BITS][(slot & MASK) * B + SEEN] === passTag(pass);
  }

  markSeen(slot: number, pass: number): void {
    this.u8[slot >>> CHUNK_BITS][(slot & MASK) * B + SEEN] = passTag(pass);
  }

  trusted(slot: number): boolean {
    return this.u8[slot >>> CHUNK_BITS][(slot & MASK) * B + TRUSTED] === 1;
  }

  /** Drops `dir`/`name`; false if there was none. */
  remove(dir: string, name: string): boolean {
    const folder = this.folders.get(dir);
    const slot = folder?.get(name);
    if (folder === undefined || slot === undefined) return false;
    // An emptied folder keeps its (empty) Map: a lookup function made by `Manifest.getIn` may hold it.
    folder.delete(name);
    this.free.push(slot);
    this.count--;
    return true;
  }

  private slotFor(dir: string, name: string): number {
    let folder = this.folders.get(dir);
    if (folder === undefined) {
      folder = new Map();
      this.folders.set(dir, folder);
    }
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
      this.f64.push(new Float64Array(CHUNK * F));
      this.i32.push(new Int32Array(CHUNK * I));
      this.u8.push(new Uint8Array(CHUNK * B));
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

/** A record read in place from a `RecordStore` (see `RecordStore.view`). */
class RecordView implements RecordFields {
  private slot = 0;
  constructor(private readonly store: RecordStore) {}
  at(slot: number): void {
    this.slot = slot;
  }
  get md5(): string {
    return this.store.md5Hex(this.slot);
  }
  get size(): number {
    return this.store.f(this.slot, 0);
  }
  get mtimeS(): number {
    return this.store.f(this.slot, 1);
  }
  get mtimeN(): number {
    return this.store.i(this.slot, 0);
  }
  get ctimeS(): number {
    return this.store.f(this.slot, 2);
  }
  get ctimeN(): number {
    return this.store.i(this.slot, 1);
  }
  get ino(): number {
    return this.store.f(this.slot, 3);
  }
  get trusted(): boolean {
    return this.store.trusted(this.slot);
  }
  get repMtimeS(): number {
    return this.store.f(this.slot, 4);
  }
  get repMtimeN(): number {
    return this.store.i(this.slot, 2);
  }
  get repCtimeS(): number {
    return this.store.f(this.slot, 5);
  }
  get repCtimeN(): number {
    return this.store.i(this.slot, 3);
  }
  get repIno(): number {
    return this.store.f(this.slot, 6);
  }
}
