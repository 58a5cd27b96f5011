/**
 * One folder's file names and their record slots (see `record-store.ts`): what a
 * `Map<string, number>` would do, in a fraction of its memory.
 *
 * Perf: the 1M-record manifest held a Map entry and a string object per name (~90 bytes a record,
 * the largest part of the 1M-file pass's heap). Here the names loaded from disk are one string per
 * folder, joined by NUL and sorted (`byName`), with their offsets and slots in typed arrays: the
 * name's own characters and 8 bytes. Names added since then wait in a small Map (`added`) until
 * they are as many as the sorted ones, then everything is sorted again (growth costs amortized
 * O(n log n)). The walk asks for names in the same order as they are sorted, so a lookup is
 * usually one `startsWith` at the place after the previous one (`cursor`).
 */

/** Slot of a sorted name that was deleted (its place stays until the next `rebuild`). */
const GONE = -1;
/** Below this many, names added are not worth a rebuild yet. */
const MIN_REBUILD = 32;

export class FolderIndex {
  /** The sorted names, joined by NUL (names hold neither NUL nor `/`). */
  private text = '';
  /** Where sorted name `i` starts in `text`; `at[i + 1] - 1` is where it ends. */
  private at = new Uint32Array(1);
  /** The slot of sorted name `i`, or `GONE`. */
  private slots = new Int32Array(0);
  private sorted = 0;
  private sortedLive = 0;
  /** Names not among the sorted ones. */
  private added: Map<string, number> | undefined;
  /** Names appended while loading (`append`), sorted in by `seal`. */
  private loadedNames: string[] | undefined;
  private loadedSlots: number[] | undefined;
  /** Where the next lookup looks first (see the Perf note above). */
  private cursor = 0;

  /** `drop` receives the slot of a name appended twice while loading (the later one is kept). */
  constructor(private readonly drop: (slot: number) => void) {}

  get size(): number {
    return this.sortedLive + (this.added?.size ?? 0) + (this.loadedNames?.length ?? 0);
  }

  get(name: string): number | undefined {
    this.seal();
    const i = this.find(name);
    if (i !== -1) {
      const slot = this.slots[i];
      return slot === GONE ? undefined : slot;
    }
    return this.added?.get(name);
  }

  set(name: string, slot: number): void {
    this.seal();
    const i = this.find(name);
    if (i !== -1) {
      if (this.slots[i] === GONE) this.sortedLive++;
      this.slots[i] = slot;
      return;
    }
    this.added ??= new Map();
    this.added.set(name, slot);
    if (this.added.size >= MIN_REBUILD && this.added.size + (this.sorted - this.sortedLive) > this.sortedLive) this.rebuild([], []);
  }

  /** Removes `name`; false if it was not there. Safe while iterating (`entries`). */
  delete(name: string): boolean {
    this.seal();
    const i = this.find(name);
    if (i !== -1) {
      if (this.slots[i] === GONE) return false;
      this.slots[i] = GONE;
      this.sortedLive--;
      return true;
    }
    return this.added?.delete(name) ?? false;
  }

  /**
   * While loading: adds `name` without looking for it first (Perf: a load appends a million names).
   * A name appended twice keeps its later slot; the earlier one goes to `drop` when the folder is
   * sealed (by `seal`, or by any other call).
   */
  append(name: string, slot: number): void {
    (this.loadedNames ??= []).push(name);
    (this.loadedSlots ??= []).push(slot);
  }

  /** Sorts in what `append` added. */
  seal(): void {
    if (this.loadedNames === undefined) return;
    const names = this.loadedNames;
    const slots = this.loadedSlots!;
    this.loadedNames = undefined;
    this.loadedSlots = undefined;
    this.rebuild(names, slots);
  }

  /** Every name and its slot (sorted names first); names may be deleted meanwhile. */
  *entries(): IterableIterator<[string, number]> {
    this.seal();
    for (let i = 0; i < this.sorted; i++) {
      const slot = this.slots[i];
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
    for (let i = 0; i < this.sorted; i++) if (this.slots[i] !== GONE) fn(this.slots[i]);
    if (this.added) for (const slot of this.added.values()) fn(slot);
  }

  private nameAt(i: number): string {
    return this.text.slice(this.at[i], this.at[i + 1] - 1);
  }

  private isAt(i: number, name: string): boolean {
    return this.at[i + 1] - 1 - this.at[i] === name.length && this.text.startsWith(name, this.at[i]);
  }

  /** Sorted name `i` against `name`, in `byName` order (UTF-16 code units, as `<`). */
  private compareAt(i: number, name: string): number {
    const start = this.at[i];
    const length = this.at[i + 1] - 1 - start;
    const common = Math.min(length, name.length);
    for (let k = 0; k < common; k++) {
      const d = this.text.charCodeAt(start + k) - name.charCodeAt(k);
      if (d !== 0) return d;
    }
    return length - name.length;
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

  /** Sorts every live name, plus `moreNames` (which win over the others, and the later over the earlier). */
  private rebuild(moreNames: string[], moreSlots: number[]): void {
    const names: string[] = [];
    const slots: number[] = [];
    for (let i = 0; i < this.sorted; i++) {
      if (this.slots[i] === GONE) continue;
      names.push(this.nameAt(i));
      slots.push(this.slots[i]);
    }
    if (this.added) {
      for (const [name, slot] of this.added) {
        names.push(name);
        slots.push(slot);
      }
    }
    for (let k = 0; k < moreNames.length; k++) {
      names.push(moreNames[k]);
      slots.push(moreSlots[k]);
    }
    // Perf: a folder loaded from disk is written sorted, so checking is all it costs.
    let order: number[] | undefined;
    for (let k = 1; k < names.length && order === undefined; k++) {
      if (!(names[k - 1] < names[k])) order = names.map((_, n) => n).sort((a, b) => (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : a - b));
    }
    const n = names.length;
    const at = new Uint32Array(n + 1);
    const kept = new Int32Array(n);
    const parts: string[] = [];
    let count = 0;
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
      at[count] = offset;
      kept[count] = slots[from];
      offset += names[from].length + 1;
      count++;
    }
    at[count] = offset;
    this.text = parts.join('\0');
    this.at = count === n ? at : at.slice(0, count + 1);
    this.slots = count === n ? kept : kept.slice(0, count);
    this.sorted = count;
    this.sortedLive = count;
    this.added = undefined;
    this.cursor = 0;
  }
}
