/** The folder index of the manifest's records: it must answer exactly as a Map would. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FolderIndex, namesInOrder } from '../src/manifest/folder-index.js';

/** A small deterministic generator (tests must replay the same operations). */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x / 0x80000000;
  };
}

// '😀' (a surrogate pair) sorts before U+FF41 and U+E000 in code units (as `<`), after them in code points.
const NAMES = ['a', 'b', 'ab', 'a b', 'B', 'Z', 'é', 'e\u0301', '日本', '😀', '\uFF41', '\uE000', 'a.txt', 'a.txt~', 'file10', 'file9', 'x'.repeat(300)];

function contents(index: FolderIndex): [string, number][] {
  return [...index].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
}

function sortedModel(model: Map<string, number>): [string, number][] {
  return [...model].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
}

describe('folder index', () => {
  test('random sets, deletes and lookups answer as a Map does, across rebuilds', () => {
    for (const seed of [1, 2, 3]) {
      const next = random(seed);
      const drop = (): void => assert.fail('nothing was appended');
      const index = new FolderIndex(drop);
      const model = new Map<string, number>();
      const name = () => (next() < 0.2 ? NAMES[Math.floor(next() * NAMES.length)] : `f${Math.floor(next() * 400)}`);
      for (let step = 0; step < 6000; step++) {
        const n = name();
        const r = next();
        if (r < 0.5) {
          index.set(n, step);
          model.set(n, step);
        } else if (r < 0.7) {
          assert.equal(index.delete(n), model.delete(n), `delete ${n} at step ${step}`);
        } else {
          assert.equal(index.get(n), model.get(n), `get ${n} at step ${step}`);
        }
        assert.equal(index.size, model.size);
      }
      assert.deepEqual(contents(index), sortedModel(model));
    }
  });

  test('names appended while loading are found once sealed; of a name appended twice the later slot stays, the earlier is dropped', () => {
    const dropped: number[] = [];
    const index = new FolderIndex((slot) => dropped.push(slot));
    // Out of order, with duplicates: a folder found in two shard files (a reshard cut short).
    const appended: [string, number][] = [['m', 1], ['c', 2], ['z', 3], ['c', 4], ['a', 5], ['m', 6], ['m', 7], ['é', 8]];
    for (const [n, slot] of appended) index.append(n, slot);
    assert.equal(index.size, appended.length, 'not sealed yet: every append counts');
    index.seal();
    assert.deepEqual(dropped.sort(), [1, 2, 6]);
    assert.deepEqual(contents(index), [['a', 5], ['c', 4], ['m', 7], ['z', 3], ['é', 8]]);
    assert.equal(index.size, 5);
    for (const [n, slot] of contents(index)) assert.equal(index.get(n), slot);
    assert.equal(index.get('b'), undefined);
    assert.equal(index.get(''), undefined);
  });

  test('names adopted as a shard holds them (joined by /, in order) answer as a Map does; into a used index they are refused; order is checked in code units', () => {
    /** `names` joined, and their starts, the text's length plus one, then `slots` (the layout `adopt` takes). */
    const layout = (names: string[], slots: number[]): [string, Int32Array<ArrayBuffer>] => {
      const index = new Int32Array(2 * names.length + 1);
      let at = 0;
      names.forEach((n, i) => {
        index[i] = at;
        at += n.length + 1;
      });
      index[names.length] = at;
      index.set(slots, names.length + 1);
      return [names.join('/'), index];
    };
    const sorted = [...new Set(NAMES)].sort();
    const slots = sorted.map((_, i) => 100 + i);
    const index = new FolderIndex(() => assert.fail('nothing was appended'));
    assert.ok(index.adopt(...layout(sorted, slots)));
    assert.equal(index.size, sorted.length);
    assert.deepEqual([...index], sorted.map((n, i) => [n, slots[i]]));
    for (const [i, n] of [...sorted.entries()].reverse()) assert.equal(index.get(n), slots[i], n);
    assert.equal(index.get('a/b'), undefined);
    assert.equal(index.get('c'), undefined);
    // Used as any other: a name set, one deleted; `ordered` sorts the added one in.
    index.set('c', 7);
    assert.ok(index.delete('a'));
    const model = new Map(sorted.map((n, i) => [n, slots[i]]));
    model.set('c', 7);
    model.delete('a');
    assert.deepEqual([...index.ordered()], sortedModel(model));
    assert.equal(index.adopt(...layout(['x'], [1])), false, 'not into an index that holds names');
    assert.deepEqual([...index.ordered()], sortedModel(model));

    // In order as `<` has it ('😀', a surrogate pair, before U+FF41); out of order (as code points
    // would have it), or a name twice, not.
    assert.ok(namesInOrder(...layout(sorted, slots)));
    assert.ok(namesInOrder(...layout(['a', 'ab', 'b', '😀', '\uFF41'], [0, 1, 2, 3, 4])));
    for (const names of [['a', '\uFF41', '😀'], ['a', 'b', 'b'], ['b', 'a'], ['ab', 'a']]) {
      assert.equal(namesInOrder(...layout(names, names.map((_, i) => i))), false, names.join());
    }
  });

  test('a lookup out of order, or of a name not there, still finds the right slot (the cursor is only a first guess)', () => {
    const index = new FolderIndex(() => {});
    const names = Array.from({ length: 1000 }, (_, i) => `n${String(i).padStart(4, '0')}`);
    names.forEach((n, i) => index.append(n, i));
    index.seal();
    const next = random(7);
    for (let k = 0; k < 3000; k++) {
      const i = Math.floor(next() * 1100);
      assert.equal(index.get(`n${String(i).padStart(4, '0')}`), i < 1000 ? i : undefined);
    }
    // In order, as the walk asks, with gaps (new files) between.
    for (let i = 0; i < 1000; i++) {
      assert.equal(index.get(`n${String(i).padStart(4, '0')}-new`), undefined);
      assert.equal(index.get(names[i]), i);
    }
  });

  test('deleting while iterating visits each remaining name once', () => {
    const index = new FolderIndex(() => {});
    for (let i = 0; i < 100; i++) index.append(`s${i}`, i);
    index.seal();
    for (let i = 0; i < 50; i++) index.set(`t${i}`, 100 + i); // some sorted, some added
    const visited: string[] = [];
    for (const [n, slot] of index) {
      visited.push(n);
      if (slot % 2 === 0) assert.ok(index.delete(n));
    }
    assert.equal(new Set(visited).size, 150);
    assert.equal(visited.length, 150);
    assert.equal(index.size, 75);
    for (const [n, slot] of index) assert.equal(slot % 2, 1, `${n} should have been deleted`);
  });

  test('compacted after most of its names are deleted, a folder still answers as before', () => {
    const index = new FolderIndex(() => {});
    for (let i = 0; i < 500; i++) index.append(`n${i}`, i);
    index.seal();
    for (let i = 0; i < 500; i++) if (i % 10 !== 0) index.delete(`n${i}`);
    index.compact();
    assert.equal(index.size, 50);
    for (let i = 0; i < 500; i++) assert.equal(index.get(`n${i}`), i % 10 === 0 ? i : undefined, `n${i}`);
    for (let i = 0; i < 500; i += 10) index.delete(`n${i}`);
    index.compact();
    assert.equal(index.size, 0);
    assert.deepEqual([...index], []);
    index.set('again', 7);
    assert.deepEqual([...index], [['again', 7]]);
  });

  test('a deleted sorted name set again is found again, and counted once', () => {
    const index = new FolderIndex(() => {});
    index.append('a', 1);
    index.append('b', 2);
    index.seal();
    assert.ok(index.delete('a'));
    assert.equal(index.delete('a'), false);
    assert.equal(index.size, 1);
    index.set('a', 9);
    assert.equal(index.get('a'), 9);
    assert.equal(index.size, 2);
    const slots: number[] = [];
    index.forEachSlot((slot) => slots.push(slot));
    assert.deepEqual(slots.sort(), [2, 9]);
  });

  test('everySlot: live slots only, sorted and added ones, stopping at the first that fails', () => {
    const index = new FolderIndex(() => {});
    for (const [name, slot] of [['a', 1], ['b', 2], ['c', 3]] as const) index.append(name, slot);
    index.seal();
    index.delete('b');
    index.set('z', 7); // not among the sorted names
    const asked: number[] = [];
    assert.equal(index.everySlot((slot) => (asked.push(slot), true)), true);
    assert.deepEqual(asked, [1, 3, 7]);
    asked.length = 0;
    assert.equal(index.everySlot((slot) => (asked.push(slot), slot !== 3)), false);
    assert.deepEqual(asked, [1, 3]);
    assert.equal(index.everySlot((slot) => slot !== 7), false);
    assert.equal(new FolderIndex(() => {}).everySlot(() => false), true);
  });
});
