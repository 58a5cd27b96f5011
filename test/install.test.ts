/**
 * Copies put in place while the next batch is written (`install`, `nextBatch` in src/pass.ts) and
 * renamed on the thread pool (`finishCopy`): what the pipelining must keep true. The thread pool
 * renames later than it is asked to (4 threads, shared with the flushes); these tests delay
 * `renameAsync` to play that out.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { errno, md5, mirrorDiff, numbered, refusedWhileReadOnly, settle, setup, sync, tempFiles, writePastReadOnly, type SyncSetup } from './helpers/tree.js';

const OLD = 1_600_000_000;

/** `count` files `d/f000.txt`… mirrored (contents `old <name>`, an old mtime), then rewritten in the source. */
async function mirroredThenRewritten(count: number, content: (name: string) => string): Promise<{ s: SyncSetup; names: string[] }> {
  const names = numbered('d', count);
  const s = setup(Object.fromEntries(names.map((f) => [f, { content: `old ${f}`, mtime: OLD }])));
  await sync(s);
  for (const f of names) fs.writeFileSync(path.join(s.source, f), content(f));
  await settle();
  return { s, names };
}

describe('copies put in place while the next batch is written', () => {
  test('a rename refused after another copy of its batch put the folder back (EACCES checked when the rename runs, as the kernel does): retried, lands', async () => {
    const s = setup({ ro: { dir: true, mode: 0o555 }, 'ro/f1': '1', 'ro/f2': '2', 'ro/f3': '3' });
    await sync(s);
    writePastReadOnly(s.source, Object.fromEntries(['f1', 'f2', 'f3'].map((f) => [`ro/${f}`, `changed ${f}`])));
    const roDir = path.join(s.replica, 'ro');
    s.io.fail = refusedWhileReadOnly(roDir);
    // The thread pool renames later than it is asked to, one after another when they queue (4
    // threads, 64 renames): the permission is checked when each runs.
    const real = s.io.renameAsync;
    let queued = 0;
    s.io.renameAsync = async (a, b) => {
      await delay(20 * queued++);
      return real(a, b);
    };
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    for (const f of ['f1', 'f2', 'f3']) assert.equal(fs.readFileSync(path.join(roDir, f), 'utf8'), `changed ${f}`);
    assert.deepEqual(tempFiles(s.replica), []);
    assert.equal(fs.statSync(roDir).mode & 0o7777, 0o555);
  });

  test('one slow rename in a batch being put in place: the next batch waits (records and lines stay in order, at most one install at a time)', async () => {
    const { s, names } = await mirroredThenRewritten(202, (f) => `new ${f}`);
    // f010: batch 0 (installed in the background while batch 2 is written: nextBatch);
    // f100: batch 1 (installed in the background when finishCopies is called).
    const slow = new Set(['d/f010.txt', 'd/f100.txt'].map((f) => path.join(s.replica, f)));
    const real = s.io.renameAsync;
    s.io.renameAsync = async (a, b) => {
      if (slow.has(b)) await delay(300);
      return real(a, b);
    };
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(s.log.actions, names.map((f) => `updated ${f} (content changed)`));
    for (const f of names) assert.equal(result.manifest.get(f)?.md5, md5(`new ${f}`), f);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('a copy that fails while earlier batches are still being put in place: its error is logged in its place, between its neighbours\' lines', async () => {
    const { s, names } = await mirroredThenRewritten(200, (f) => `newer ${f}`); // sizes differ: copied unread
    // f150 is in batch 2, written while batch 0 is put in place (slowly: renames queue on the pool).
    s.io.fail = (call, p) => (call === 'openRead' && p.endsWith('/d/f150.txt') ? errno('EACCES', 'permission denied') : undefined);
    const real = s.io.renameAsync;
    s.io.renameAsync = async (a, b) => (await delay(2), real(a, b));
    const result = await sync(s);
    assert.equal(result.exitStatus, 1);
    const expected = names.map((f) => (f === 'd/f150.txt' ? 'error: copying (opening) d/f150.txt: EACCES: permission denied' : `updated ${f} (content changed)`));
    assert.deepEqual(s.log.lines.filter((line) => line.startsWith('updated') || line.startsWith('error')), expected);
  });
});

describe('backups and interruptions, with copies put in place in the background', () => {
  test('--backup-dir: while a batch is put in place, at most one replica file is missing (moved to the backup, not yet replaced)', async () => {
    const { s, names } = await mirroredThenRewritten(40, (f) => `new ${f}`);
    const backupDir = path.join(path.dirname(s.source), 'backup');
    let worst = 0;
    const rename = s.io.rename;
    s.io.rename = (a, b) => {
      rename(a, b);
      // Just after a backup: a crash now leaves how many replica files gone (in the backup, their new version a temporary file)?
      if (b.startsWith(backupDir)) worst = Math.max(worst, names.filter((f) => !fs.existsSync(path.join(s.replica, f))).length);
    };
    // The thread pool is busy (4 threads; the next batch's 64 fsyncs are queued there too): a rename waits its turn.
    const renameAsync = s.io.renameAsync;
    s.io.renameAsync = async (a, b) => (await delay(5), renameAsync(a, b));
    const result = await sync(s, { backupDir });
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    assert.ok(worst <= 1, `${worst} replica files missing at once`);
  });

  test('SIGINT while batches are in flight: what landed is recorded, the rest keeps its old content, no temporary file, modes back', async () => {
    const names = Array.from({ length: 300 }, (_, i) => `${i % 2 ? 'ro' : 'rw'}/f${String(i).padStart(3, '0')}.txt`);
    const s = setup({ ro: { dir: true, mode: 0o555 }, ...Object.fromEntries(names.map((f) => [f, { content: `old ${f}`, mtime: OLD }])) });
    await sync(s);
    writePastReadOnly(s.source, Object.fromEntries(names.map((f) => [f, `new ${f}`])));
    await settle();
    const roDir = path.join(s.replica, 'ro');
    s.io.fail = refusedWhileReadOnly(roDir);
    const real = s.io.renameAsync;
    let renames = 0;
    let opensAfterStop = 0;
    s.io.renameAsync = async (a, b) => {
      renames++;
      await delay(1);
      return real(a, b);
    };
    const openWrite = s.io.openWrite;
    s.io.openWrite = (p, flags) => {
      if (renames >= 100) opensAfterStop++;
      return openWrite(p, flags);
    };
    const result = await sync(s, { shouldStop: () => renames >= 100 });
    assert.equal(result.interrupted, true);
    assert.deepEqual(tempFiles(s.replica), []);
    assert.equal(fs.statSync(roDir).mode & 0o7777, 0o555);
    let landed = 0;
    for (const f of names) {
      const content = fs.readFileSync(path.join(s.replica, f), 'utf8');
      assert.ok(content === `old ${f}` || content === `new ${f}`, f);
      if (content === `new ${f}`) landed++;
      assert.equal(result.manifest.get(f)?.md5, md5(content), f);
    }
    assert.equal(s.log.actions.length, landed);
    assert.ok(landed >= 100 && landed < names.length, `${landed} landed`);
    // Started nothing new: at most the copy being written when the stop came, and its batch's flush.
    assert.ok(opensAfterStop <= 64, `${opensAfterStop} temporary files opened after the stop`);
  });
});
