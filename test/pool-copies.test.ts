/**
 * Small copies written by the addon on libuv's thread pool (`PoolCopier`, `Io.copyToTemp`), as a
 * pass with threads does whenever the addon is built. The main thread still flushes, renames and
 * records each copy; a copy the pool cannot make for want of a writable folder comes back to it.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { nativeCopy } from '../src/native.js';
const poolCopies = (): boolean => nativeCopy() !== undefined;
import { Manifest } from '../src/manifest/manifest.js';
import { errno, md5, mirrorDiff, readTree, settle, setup, sync, tempFiles, withoutAddon, type SyncSetup } from './helpers/tree.js';

const OLD = 1_600_000_000;
const THREADS = { threads: { excludes: [], own: [] } };

function tree(): Record<string, { content: string; mode?: number; mtime?: number }> {
  const files: Record<string, { content: string; mode?: number; mtime?: number }> = {};
  for (let i = 0; i < 90; i++) files[`d${i % 5}/sub${i % 2}/f${i}.txt`] = { content: `file ${i} `.repeat(i * 40 + 1), mode: i % 4 === 0 ? 0o600 : 0o644, mtime: OLD + i };
  files['empty'] = { content: '', mtime: OLD };
  return files;
}

async function recorded(s: SyncSetup, relPath: string): Promise<string | undefined> {
  const manifest = await Manifest.open(s.manifestPath, { source: s.source, replica: s.replica, warn: assert.fail });
  return manifest.get(relPath)?.md5;
}

/** An error as the addon rejects with: a code and the index of the step that failed. */
function addonError(code: string, step?: number): NodeJS.ErrnoException {
  return Object.assign(errno(code, 'failed'), step === undefined ? {} : { step });
}

describe('small copies written on the thread pool', { skip: poolCopies() ? false : withoutAddon || 'the addon was built without copyToTemp (no OpenSSL headers)' }, () => {
  test('every file arrives with its bytes, bits and mtime, none read on the main thread, each recorded with its MD5; no temporary file stays; the next pass has nothing to do', async () => {
    const s = setup(tree());
    await settle(); // else the files may be copied within the racy window, and rightly read again next pass
    const result = await sync(s, THREADS);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(result.stats.copied, 91);
    assert.equal(s.io.poolCopies.length, 91);
    assert.deepEqual(s.io.opens, [], 'no source opened on the main thread');
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    assert.deepEqual(readTree(s.replica), readTree(s.source));
    assert.equal(fs.statSync(path.join(s.replica, 'd0/sub0/f0.txt')).mode & 0o777, 0o600);
    assert.deepEqual(tempFiles(s.replica), []);
    for (const relPath of ['d0/sub0/f0.txt', 'd3/sub1/f53.txt', 'empty']) {
      assert.equal(await recorded(s, relPath), md5(fs.readFileSync(path.join(s.source, relPath))), relPath);
    }
    assert.ok(s.log.lines.some((l) => l.includes('copied d3/sub1/f53.txt')), s.log.lines.join('\n'));

    const again = await sync(s, THREADS);
    assert.deepEqual(s.log.actions, []);
    assert.equal(again.stats.hashed, 0);
  });

  test('updates replace the old files, with the new bytes recorded', async () => {
    const s = setup(tree());
    await sync(s, THREADS);
    for (let i = 0; i < 90; i += 10) fs.writeFileSync(path.join(s.source, `d${i % 5}/sub${i % 2}/f${i}.txt`), `changed ${i}`);
    s.io.poolCopies = [];
    const result = await sync(s, THREADS);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(result.stats.updated, 9);
    assert.equal(s.io.poolCopies.length, 9);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    assert.deepEqual(tempFiles(s.replica), []);
    assert.equal(await recorded(s, 'd0/sub0/f0.txt'), md5('changed 0'));
  });

  test('a copy refused for its folder\'s permission (EACCES creating the temporary file), or not made by the addon at all (ENOSYS), is written on the main thread', async () => {
    const s = setup(tree());
    const [readOnly, noAddon] = ['d1/sub1/f1.txt', 'd2/sub0/f2.txt'].map((rel) => path.join(s.source, rel));
    s.io.fail = (call, p) => (call !== 'copyToTemp' ? undefined : p === readOnly ? addonError('EACCES', 2) : p === noAddon ? addonError('ENOSYS') : undefined);
    const result = await sync(s, THREADS);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(result.stats.copied, 91);
    assert.deepEqual(s.io.opens.sort(), [readOnly, noAddon].sort(), 'those two, and only those, read on the main thread');
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    assert.equal(await recorded(s, 'd1/sub1/f1.txt'), md5(fs.readFileSync(readOnly)));
    assert.deepEqual(tempFiles(s.replica), []);
  });

  test('a source that changed while read (ECHANGED) is left for the next pass with a warning; a failed step is an error naming it; the other files are copied', async () => {
    const s = setup(tree());
    await sync(s, THREADS);
    const [changing, failing] = ['d1/sub1/f11.txt', 'd2/sub0/f12.txt'];
    for (const rel of [changing, failing, 'd3/sub1/f13.txt']) fs.writeFileSync(path.join(s.source, rel), `new ${rel}`);
    s.io.fail = (call, p) =>
      call !== 'copyToTemp' ? undefined : p.endsWith(changing) ? addonError('ECHANGED') : p.endsWith(failing) ? addonError('EIO', 3) : undefined;
    const result = await sync(s, THREADS);

    assert.equal(result.exitStatus, 1);
    assert.equal(result.stats.updated, 1);
    assert.deepEqual(s.log.errors, [`copying (writing) ${failing}: EIO: failed`]);
    assert.ok(s.log.lines.some((l) => l.includes(`${changing} changed while it was being copied; left as it was, it will be copied next pass`)), s.log.lines.join('\n'));
    for (const rel of [changing, failing]) assert.equal(fs.readFileSync(path.join(s.replica, rel), 'utf8'), tree()[rel].content, `${rel}: the old version stays`);
    assert.equal(fs.readFileSync(path.join(s.replica, 'd3/sub1/f13.txt'), 'utf8'), 'new d3/sub1/f13.txt');
    assert.deepEqual(tempFiles(s.replica), []);

    s.io.fail = undefined;
    const next = await sync(s, THREADS);
    assert.equal(next.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(next.stats.updated, 2);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('a source file that vanishes before the pool reads it is a warning, as on the main thread; the rest are copied', async () => {
    const s = setup(tree());
    const gone = path.join(s.source, 'd4/sub0/f84.txt');
    // After the walk, the replica's folders are made before any copy starts: the file goes then.
    const real = s.io.mkdir;
    s.io.mkdir = (p, mode) => {
      if (p === path.join(s.replica, 'd0')) fs.rmSync(gone);
      real(p, mode);
    };
    const result = await sync(s, THREADS);
    assert.equal(result.stats.copied, 90);
    assert.equal(result.stats.errors, 0, s.log.lines.join('\n'));
    assert.ok(s.io.poolCopies.includes(gone), 'asked of the pool');
    assert.ok(s.log.lines.some((l) => l.includes('d4/sub0/f84.txt vanished from the source during the pass; skipped')), s.log.lines.join('\n'));
    assert.equal(fs.existsSync(path.join(s.replica, 'd4/sub0/f84.txt')), false);
    assert.deepEqual(tempFiles(s.replica), []);
  });

  test('stopped while copies are under way on the pool: each one put in place is logged and recorded, no temporary file stays, the next pass copies the rest', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 400; i++) files[`d${i % 9}/f${String(i).padStart(3, '0')}.txt`] = `content ${i} `.repeat(50 + i);
    const s = setup(files);
    const stopped = await sync(s, { ...THREADS, shouldStop: () => s.log.actions.length >= 70 });
    assert.equal(stopped.exitStatus, 0, s.log.lines.join('\n'));
    const copied = s.log.actions.filter((l) => l.startsWith('copied ') && l.endsWith('.txt (new)')).map((l) => l.slice('copied '.length, -' (new)'.length));
    assert.ok(copied.length >= 60 && copied.length < 400, `${copied.length} copied`);
    assert.equal(stopped.stats.copied, copied.length);
    for (const rel of Object.keys(files)) {
      const inReplica = path.join(s.replica, rel);
      if (copied.includes(rel)) {
        assert.equal(fs.readFileSync(inReplica, 'utf8'), files[rel], rel);
        assert.equal(stopped.manifest.get(rel)?.md5, md5(files[rel]), rel);
      } else {
        assert.equal(fs.existsSync(inReplica), false, `${rel}: in the replica, not logged`);
      }
    }
    assert.deepEqual(tempFiles(s.replica), []);
    const next = await sync(s, THREADS);
    assert.equal(next.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(next.stats.copied, 400 - copied.length);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('--copy-threads 0 means no copying threads, nothing more: the addon still writes the small copies on the pool', async () => {
    const s = setup(tree());
    const result = await sync(s, { ...THREADS, copyThreads: 0, copyThreadsFrom: 1 });
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(s.io.poolCopies.length, 91);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('without the addon\'s copies and with --copy-threads 0, every copy is written on the main thread', async () => {
    const s = setup(tree());
    const result = await sync(s, { ...THREADS, poolCopies: false, copyThreads: 0, copyThreadsFrom: 1 });
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(s.io.poolCopies, []);
    assert.equal(s.io.opens.length, 91);
    assert.ok(!s.log.debugs.some((line) => line.includes('copying threads')), s.log.debugs.join('\n'));
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });
});
