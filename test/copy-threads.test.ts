/**
 * Small copies written on copying threads (`CopyPool`), as a pass with many copies does: the
 * threshold is lowered to 1 so a small tree takes that way. The main thread still flushes,
 * renames and records each copy.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { CopyPool } from '../src/replica/local/copiers/threads.js';
import type { LocalContext } from '../src/replica/local/context.js';
import { Manifest } from '../src/manifest/manifest.js';
import { md5, mirrorDiff, numbered, readTree, settle, setup, sync, tempFiles, withoutAddon } from './helpers/tree.js';

const OLD = 1_600_000_000;
const THREADS = { threads: { excludes: [], own: [] }, copyThreadsFrom: 1, poolCopies: false };

function tree(): Record<string, { content: string; mode?: number; mtime?: number }> {
  const files: Record<string, { content: string; mode?: number; mtime?: number }> = {};
  for (let i = 0; i < 150; i++) files[`d${i % 7}/sub${i % 3}/f${i}.txt`] = { content: `file ${i} `.repeat(i + 1), mode: i % 5 === 0 ? 0o600 : 0o644, mtime: OLD + i };
  files['empty'] = { content: '', mtime: OLD };
  return files;
}

describe('copies written on copying threads', () => {
  test('every file arrives with its bytes, mode and mtime, recorded with its MD5; no temporary file stays; the next pass has nothing to do', async () => {
    const s = setup(tree());
    await settle(); // else the files may be copied within the racy window, and rightly read again next pass
    const result = await sync(s, THREADS);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(result.stats.copied, 151);
    assert.deepEqual(s.io.opens, [], 'every source was read on a copying thread, none on the main one');
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    assert.deepEqual(readTree(s.replica), readTree(s.source));
    assert.deepEqual(tempFiles(s.replica), []);
    const manifest = await Manifest.open(s.manifestPath, { source: s.source, replica: s.replica, warn: assert.fail });
    for (const relPath of ['d0/sub0/f0.txt', 'd3/sub2/f101.txt', 'empty']) {
      assert.equal(manifest.get(relPath)?.md5, md5(fs.readFileSync(path.join(s.source, relPath))), relPath);
    }

    const again = await sync(s, THREADS);
    assert.deepEqual(s.log.actions, []);
    assert.equal(again.stats.hashed, 0);
  });

  test('copies written on the threads are flushed as the main thread\'s: a syncfs a batch of 16 or more, then each file\'s own fsync', { skip: withoutAddon }, async () => {
    const s = setup(Object.fromEntries(numbered('d', 100).map((f, i) => [f, `file ${i}`])));
    let fsyncs = 0;
    s.io.fail = (call) => void (call === 'fsyncAsync' && fsyncs++);
    const result = await sync(s, THREADS);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(s.io.opens, []);
    assert.deepEqual(s.io.syncedFs, ['', '']); // two batches (64 and 36), their files opened by the threads
    assert.equal(fsyncs, 100);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('a source file that vanishes before its thread reads it is a warning, as on the main thread; the rest are copied', async () => {
    const s = setup(tree());
    // After the walk, the replica's folders are made before any copy starts: the file goes then.
    const real = s.io.mkdir;
    s.io.mkdir = (p, mode) => {
      if (p === path.join(s.replica, 'd0')) fs.rmSync(path.join(s.source, 'd6/sub2/f146.txt'));
      real(p, mode);
    };
    const result = await sync(s, THREADS);
    assert.equal(result.stats.copied, 150);
    assert.equal(result.stats.errors, 0, s.log.lines.join('\n'));
    assert.ok(s.log.lines.some((l) => l.includes('d6/sub2/f146.txt vanished from the source during the pass; skipped')), s.log.lines.join('\n'));
    assert.equal(fs.existsSync(path.join(s.replica, 'd6/sub2/f146.txt')), false);
    assert.deepEqual(tempFiles(s.replica), []);
  });

  test('a thread that fails is reported once, and its copies are declined (for the next copier), not failed', async () => {
    const s = setup(tree());
    fs.mkdirSync(path.join(s.replica, 'd0/sub0'), { recursive: true });
    const failures: string[] = [];
    const pool = new CopyPool(1, { sourceRoot: s.source, replicaRoot: s.replica } as LocalContext, 1 << 20, (error) => failures.push(error.message));
    const job = (relPath: string) => ({ relPath, size: 10, replacing: false, resume: false });
    try {
      const written = await pool.write(job('d0/sub0/f0.txt'));
      assert.ok(written.kind === 'written' && written.pending.md5 === md5(fs.readFileSync(path.join(s.source, 'd0/sub0/f0.txt'))));
      fs.closeSync(written.pending.output);
      // The thread dies (as from a crash): what is asked of it from now on is declined.
      await (pool as unknown as { threads: { worker: { terminate(): Promise<number> } }[] }).threads[0].worker.terminate();
      assert.deepEqual(await pool.write(job('d0/sub0/f21.txt')), { kind: 'declined' });
      assert.deepEqual(await pool.write(job('d0/sub0/f42.txt')), { kind: 'declined' });
      assert.equal(failures.length, 1, failures.join('\n'));
    } finally {
      await pool.close();
    }
  });

  test('updates replace the old files, with the new bytes recorded', async () => {
    const s = setup(tree());
    await sync(s, THREADS);
    for (let i = 0; i < 150; i += 10) fs.writeFileSync(path.join(s.source, `d${i % 7}/sub${i % 3}/f${i}.txt`), `changed ${i}`);
    const result = await sync(s, THREADS);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(result.stats.updated, 15);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    assert.deepEqual(tempFiles(s.replica), []);
    const manifest = await Manifest.open(s.manifestPath, { source: s.source, replica: s.replica, warn: assert.fail });
    assert.equal(manifest.get('d0/sub0/f0.txt')?.md5, md5('changed 0'));
  });
});
