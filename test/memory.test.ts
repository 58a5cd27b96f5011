/**
 * Memory between passes: a pass that left much garbage is followed by a compacting collection,
 * whose emptied pages go back to the system; a pass that left little costs no collection.
 */
import assert from 'node:assert/strict';
import * as v8 from 'node:v8';
import { test } from 'node:test';
import { Memory } from '../src/cli/memory.js';

const oldSpace = () => v8.getHeapSpaceStatistics().find((space) => space.space_name === 'old_space')!;

test('after a pass that left garbage with survivors on every page, the heap is collected and compacted', () => {
  const memory = new Memory();
  memory.afterPass(); // (the floor: whatever the test runner holds)
  // What an adopting pass leaves: 200 MB of garbage, a record's worth of survivors on each page.
  const survivors: string[] = [];
  let garbage: { name: string; numbers: number[] }[] = [];
  for (let i = 0; i < 1_500_000; i++) {
    const name = `folder-${i % 977}/file-${i}.jpg`;
    garbage.push({ name, numbers: [i, i + 1, i + 2] });
    if (i % 100 === 0) survivors.push(name.slice(0, name.length - 1) + 'g');
  }
  garbage = [];
  const before = oldSpace().physical_space_size;
  const ms = memory.afterPass();
  assert.ok(ms > 0, 'a collection ran');
  const after = oldSpace();
  // Compacted: the pages hold little more than what lives (not one survivor a page).
  assert.ok(after.physical_space_size < before / 2, `old space ${before} -> ${after.physical_space_size} bytes`);
  assert.ok(after.physical_space_size < after.space_used_size * 1.5 + 8 * 1024 * 1024, `old space ${after.physical_space_size} bytes for ${after.space_used_size} used`);
  assert.equal(survivors.length, 15_000);
  assert.equal(garbage.length, 0);
  // Nothing new since: no collection.
  assert.equal(memory.afterPass(), 0);
});
