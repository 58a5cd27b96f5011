/**
 * One folder's file names and their record slots (see `record-store.ts`): what a
 * `Map<string, number>` would do, in a fraction of its memory.
 *
 * Perf: the 1M-record manifest held a Map entry and a string object per name (~90 bytes a record,
 * the largest part of the 1M-file pass's heap). Here the names loaded from disk are one string per
 * folder, joined by `/` and sorted (`byName`), with their offsets and slots in one array (`index`):
 * the name's own characters and 8 bytes. Names added since then wait in a small Map (`added`) until
 * they are as many as the sorted ones, then everything is sorted again (growth costs amortized
 * O(n log n)). The walk asks for names in the same order as they are sorted, so a lookup is
 * usually one `startsWith` at the place after the previous one (`cursor`).
 */

/** Slot of a sorted name that was deleted (its place stays until the next `rebuild`). */
const GONE = -1;
/** Below this many, names added (or deleted) are not worth a rebuild yet. */
const MIN_REBUILD = 32;
/** The index of a folder with no sorted names (never written to). */
const NO_INDEX = new Int32Array(1);

export class FolderIndex {
  /** The sorted names, joined by `/` (names hold neither `/` nor NUL), as the manifest's shards hold them. */
  private text = '';
  /**
   * Where sorted name `i` starts in `text` (`index[i]`; `index[i + 1] - 1` is where it ends), then
   * the slot of each (`index[sorted + 1 + i]`, or `GONE`). Perf: one typed array, not two. A
   * folder of 20 files costs a third of what a Map of them did; of 3, the same; of 1, ~120 bytes
   * more (the typed array's own cost).
   */
  private index = NO_INDEX;
  private sorted = 0;
  private sortedLive = 0;
  /** Names not among the sorted ones. */
  private added: Map<string, number> | undefined;
  /** Name, slot, name, slot… appended while loading (`append`), sorted in by `seal`. */
  private loaded: (string | number)[] | undefined;
  /** Where the next lookup looks first (see the Perf note above). */
  private cursor = 0;

  /** `drop` receives the slot of a name appended twice while loading (the later one is kept). */
  constructor(private readonly drop: (slot: number) => void) {}

  get size(): number {
    return this.sortedLive + (this.added?.size ?? 0) + (this.loaded === undefined ? 0 : this.loaded.length / 2);
  }

  get(name: string): number | undefined {
    this.seal();
    const i = this.find(name);
    if (i !== -1) {
      const slot = this.slotAt(i);
      return slot === GONE ? undefined : slot;
    }
    return this.added?.get(name);
  }

  set(name: string, slot: number): void {
    this.seal();
    const i = this.find(name);
    if (i !== -1) {
      if (this.slotAt(i) === GONE) this.sortedLive++;
      this.index[this.sorted + 1 + i] = slot;
      return;
    }
    this.added ??= new Map();
    this.added.set(name, slot);
    if (this.added.size >= MIN_REBUILD && this.added.size + (this.sorted - this.sortedLive) > this.sortedLive) this.rebuild([]);
  }

  /** Removes `name`; false if it was not there. Safe while iterating (`entries`); see `compact`. */
  delete(name: string): boolean {
    this.seal();
    const i = this.find(name);
    if (i !== -1) {
      if (this.slotAt(i) === GONE) return false;
      this.index[this.sorted + 1 + i] = GONE;
      this.sortedLive--;
      return true;
    }
    return this.added?.delete(name) ?? false;
  }

  /** After many deletes (and not while iterating): drops the places of deleted sorted names. */
  compact(): void {
    const dead = this.sorted - this.sortedLive;
    if (dead > 0 && (this.sortedLive === 0 || (dead >= MIN_REBUILD && dead > this.sortedLive))) this.rebuild([]);
  }

  /**
   * While loading: adds `name` without looking for it first (Perf: a load appends a million names).
   * A name appended twice keeps its later slot; the earlier one goes to `drop` when the folder is
   * sealed (by `seal`, or by any other call).
   */
  append(name: string, slot: number): void {
    (this.loaded ??= []).push(name, slot);
  }

  /**
   * While loading, into an index that holds nothing yet: `text`, names joined by `/` (as the
   * manifest's shards hold them) and in strict `byName` order (see `namesInOrder`), and `index`
   * laid out as `this.index` is (where each name starts, the text's length plus one, then their
   * slots). Perf: the text is kept as it is, no string made per name. False, and nothing taken, if
   * the index holds names already.
   */
  adopt(text: string, index: Int32Array<ArrayBuffer>): boolean {
    if (this.sorted > 0 || this.added !== undefined || this.loaded !== undefined) return false;
    const count = (index.length - 1) / 2;
    this.text = text;
    this.index = index;
    this.sorted = count;
    this.sortedLive = count;
    this.cursor = 0;
    return true;
  }

  /** Sorts in what `append` added. */
  seal(): void {
    if (this.loaded === undefined) return;
    const loaded = this.loaded;
    this.loaded = undefined;
    this.rebuild(loaded);
  }

  /** Every name and its slot, in `byName` order (for writing: names added since loading are sorted in first). */
  ordered(): IterableIterator<[string, number]> {
    if (this.added !== undefined) this.rebuild([]);
    return this.entries();
  }

  /** Every name and its slot (sorted names first); names may be deleted meanwhile. */
  *entries(): IterableIterator<[string, number]> {
    this.seal();
    for (let i = 0; i < this.sorted; i++) {
      const slot = this.slotAt(i);
      if (slot !== GONE) yield [this.nameAt(i), slot];
    }
    if (this.added) yield* this.added;
  }

  [Symbol.iterator](): IterableIterator<[string, number]> {
    return this.entries();
  }

  /** Every slot, without the names (Perf: no string made per record). */
  forEachSlot(fn: (slot: number) => void): void {
    this.seal();
    for (let i = 0; i < this.sorted; i++) if (this.slotAt(i) !== GONE) fn(this.slotAt(i));
    if (this.added) for (const slot of this.added.values()) fn(slot);
  }

  /** Whether `test` holds for every slot (stops at the first that fails; no string made per record). */
  everySlot(test: (slot: number) => boolean): boolean {
    this.seal();
    for (let i = 0; i < this.sorted; i++) {
      const slot = this.slotAt(i);
      if (slot !== GONE && !test(slot)) return false;
    }
    if (this.added) for (const slot of this.added.values()) if (!test(slot)) return false;
    return true;
  }

  private slotAt(i: number): number {
    return this.index[this.sorted + 1 + i];
  }

  private nameAt(i: number): string {
    return this.text.slice(this.index[i], this.index[i + 1] - 1);
  }

  private isAt(i: number, name: string): boolean {
    return this.index[i + 1] - 1 - this.index[i] === name.length && this.text.startsWith(name, this.index[i]);
  }

  /** Sorted name `i` against `name`, in `byName` order (UTF-16 code units, as `<`). */
  private compareAt(i: number, name: string): number {
    return compareSpans(this.text, this.index[i], this.index[i + 1] - 1, name, 0, name.length);
  }

  /** The sorted place of `name`, or -1. */
  private find(name: string): number {
    const c = this.cursor;
    if (c < this.sorted && this.isAt(c, name)) {
      this.cursor = c + 1;
      return c;
    }
    let lo = 0;
    let hi = this.sorted - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const d = this.compareAt(mid, name);
      if (d === 0) {
        this.cursor = mid + 1;
        return mid;
      }
      if (d < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Sorts every live name, plus `more` (name, slot, …: they win over the others, the later over the earlier). */
  private rebuild(more: (string | number)[]): void {
    const names: string[] = [];
    const slots: number[] = [];
    for (let i = 0; i < this.sorted; i++) {
      if (this.slotAt(i) === GONE) continue;
      names.push(this.nameAt(i));
      slots.push(this.slotAt(i));
    }
    if (this.added) {
      for (const [name, slot] of this.added) {
        names.push(name);
        slots.push(slot);
      }
    }
    for (let k = 0; k < more.length; k += 2) {
      names.push(more[k] as string);
      slots.push(more[k + 1] as number);
    }
    // Perf: a folder loaded from disk is written sorted, so checking is all it costs.
    let order: number[] | undefined;
    for (let k = 1; k < names.length && order === undefined; k++) {
      if (!(names[k - 1] < names[k])) order = names.map((_, n) => n).sort((a, b) => (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : a - b));
    }
    const n = names.length;
    const parts: string[] = [];
    const starts: number[] = [];
    const kept: number[] = [];
    let offset = 0;
    for (let k = 0; k < n; k++) {
      const from = order === undefined ? k : order[k];
      const next = order === undefined ? k + 1 : order[k + 1];
      // Of equal names (only from `append`), the last in `order` is the latest: it is kept.
      if (k + 1 < n && names[next] === names[from]) {
        this.drop(slots[from]);
        continue;
      }
      parts.push(names[from]);
      starts.push(offset);
      kept.push(slots[from]);
      offset += names[from].length + 1;
    }
    const count = parts.length;
    let index = NO_INDEX;
    if (count > 0) {
      index = new Int32Array(2 * count + 1);
      index.set(starts);
      index[count] = offset;
      index.set(kept, count + 1);
    }
    this.text = parts.join('/');
    this.index = index;
    this.sorted = count;
    this.sortedLive = count;
    this.added = undefined;
    this.cursor = 0;
  }
}

/** Whether the names in `text`, where `index` says they start (as `FolderIndex.adopt` takes them), are in strict `byName` order. */
export function namesInOrder(text: string, index: Int32Array): boolean {
  const count = (index.length - 1) / 2;
  for (let i = 1; i < count; i++) {
    if (compareSpans(text, index[i - 1], index[i] - 1, text, index[i], index[i + 1] - 1) >= 0) return false;
  }
  return true;
}

/** `x[a, aEnd)` against `y[b, bEnd)`, in `byName` order (UTF-16 code units, as `<`). */
function compareSpans(x: string, a: number, aEnd: number, y: string, b: number, bEnd: number): number {
  const common = Math.min(aEnd - a, bEnd - b);
  for (let k = 0; k < common; k++) {
    const d = x.charCodeAt(a + k) - y.charCodeAt(b + k);
    if (d !== 0) return d;
  }
  return aEnd - a - (bEnd - b);
}
