/**
 * The files a pass must read before it can decide (the cache cannot vouch for them): on the main
 * thread when they are few, on hashing threads from `hashThreadsFrom` of them (1,024 by default;
 * lowered to 1 here so a small tree takes that way). Either way the same decisions, and a
 * `hashing` progress line that counts up to its totals.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import type { Counters, Progress } from '../src/log/progress.js';
import { readTree, setMtime, settle, setup, sync, type SyncSetup } from './helpers/tree.js';

const OLD = 1_600_000_000;
// Small copies on the main thread (not the addon's thread pool): its opens are counted here.
const THREADS = { threads: { excludes: [], own: [] }, poolCopies: false };

/** 12 files of 1–12 KiB. */
function tree(): Record<string, { content: string; mtime: number }> {
  const files: Record<string, { content: string; mtime: number }> = {};
  for (let i = 0; i < 12; i++) files[`d${i % 3}/f${i}.txt`] = { content: `${i}`.padEnd(1024 * (i + 1), '.'), mtime: OLD + i };
  return files;
}

/** Every file's mtime moved (contents unchanged), and one rewritten with other bytes of the same size. */
function touchAllAndEditOne(s: SyncSetup): string {
  for (let i = 0; i < 12; i++) setMtime(path.join(s.source, `d${i % 3}/f${i}.txt`), OLD + 1000 + i);
  const edited = path.join(s.source, 'd1/f4.txt');
  fs.writeFileSync(edited, 'E'.repeat(5 * 1024));
  setMtime(edited, OLD + 2000);
  return edited;
}

/** Only the edited file was copied; the others only had their mtime set; the replica is the source. */
function assertDecided(s: SyncSetup, bytesCopied: number): void {
  assert.deepEqual(s.log.actions.filter((a) => !a.endsWith('(mtime)')), ['updated d1/f4.txt (content changed)']);
  assert.equal(s.log.actions.length, 12);
  assert.equal(bytesCopied, 5 * 1024);
  assert.deepEqual(readTree(s.replica), readTree(s.source));
  assert.equal(fs.readFileSync(path.join(s.replica, 'd1/f4.txt'), 'utf8'), 'E'.repeat(5 * 1024));
}

/** Records each phase and its counters as they stand when the phase ends. */
class PhaseSpy implements Progress {
  ended: { phase: string; counters: Counters }[] = [];
  private current: { phase: string; read: () => Counters } | undefined;
  begin(phase: string, read: () => Counters): void {
    this.current = { phase, read };
  }
  end(): void {
    if (this.current) this.ended.push({ phase: this.current.phase, counters: this.current.read() });
    this.current = undefined;
  }
}

describe('files read before deciding', () => {
  test('a few, read on the main thread: one hashing phase whose counters reach their totals; touched files only get their mtime, the edited one is copied', async () => {
    const s = setup(tree());
    await sync(s, THREADS);
    touchAllAndEditOne(s);
    const progress = new PhaseSpy();
    const result = await sync(s, { ...THREADS, progress });
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));

    const hashing = progress.ended.filter((p) => p.phase === 'hashing');
    assert.equal(hashing.length, 1, JSON.stringify(progress.ended));
    const size = Object.values(tree()).reduce((sum, f) => sum + f.content.length, 0);
    assert.deepEqual(hashing[0].counters, { files: 12, bytes: size, totalFiles: 12, totalBytes: size });
    // Read here: through the pass's Io, every source once, and the edited one again to copy it.
    assert.equal(s.io.opens.filter((p) => p.startsWith(s.source)).length, 13);

    assertDecided(s, result.stats.bytesCopied);
  });

  test('from hashThreadsFrom of them, read on the hashing threads: the same decisions, and the main thread opens only what it copies', async () => {
    const s = setup(tree());
    await sync(s, THREADS);
    const edited = touchAllAndEditOne(s);
    await settle(); // else the files may be read within the racy window, and rightly read again next pass
    const debug: string[] = [];
    s.log.debug = (message: string) => void debug.push(message);
    const progress = new PhaseSpy();
    const result = await sync(s, { ...THREADS, hashThreadsFrom: 1, progress });
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));

    assert.ok(debug.includes('12 files to read: on 2 hashing threads'), debug.join('\n'));
    assert.deepEqual(
      progress.ended.filter((p) => p.phase === 'hashing').map((p) => p.counters.totalFiles),
      [12],
    );
    assert.deepEqual(s.io.opens, [edited], 'only the copy opened a source on the main thread');

    assertDecided(s, result.stats.bytesCopied);
    const again = await sync(s, THREADS);
    assert.equal(again.stats.hashed, 0, 'every record written: nothing left to read');
  });
});
