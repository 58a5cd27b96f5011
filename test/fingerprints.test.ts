/**
 * A file's fingerprint (size, mtime, ctime, inode) as every code path sees it must agree: the
 * native lister, Node's number stats (the listing threads), Node's BigInt stats (fstat after a
 * read, the inline lister). A file that never matches its own fingerprint is read, warned about
 * and skipped every pass, and a change to it never reaches the replica.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { inodeNumber, toEntry } from '../src/tree/scan.js';
import { mountExt4, settle, setup, sync, tempDir, tryMount as mount } from './helpers/tree.js';

const THREADS = { threads: { excludes: [], own: [] } };


describe('fingerprints as every code path sees them', () => {
  test('an inode number of 2^63 or more (Node\'s BigInt stats hold it signed) is the unsigned number the kernel gives', () => {
    const stats = fs.lstatSync(tempDir(), { bigint: true });
    const big = Object.assign(Object.create(Object.getPrototypeOf(stats)), stats, { ino: -9223372036854775806n });
    assert.equal(inodeNumber(-9223372036854775806n), 9223372036854775810);
    assert.equal(toEntry('x', big).ino, 9223372036854775810);
    assert.equal(inodeNumber(12345n), 12345);
  });

  test('a replica on a filesystem that keeps whole seconds and no date past 2038 (ext4 with 128-byte inodes): its files\' mtimes set once, not every pass', { skip: process.getuid?.() === 0 ? false : 'needs root to mount' }, async (t) => {
    const disk = mountExt4(tempDir('fs-coarse-'), ['-I', '128']);
    if (disk === undefined) return t.skip('cannot make and mount an ext4 image here');
    const { mnt } = disk;
    try {
      const s = { ...setup({ 'half.txt': 'half a second', 'y2050.txt': 'a date ext4 -I 128 cannot hold', 'whole.txt': 'whole seconds' }), replica: path.join(mnt, 'replica') };
      for (const options of [{}, THREADS]) {
        fs.utimesSync(path.join(s.source, 'half.txt'), '1600000000.5', '1600000000.5');
        fs.utimesSync(path.join(s.source, 'y2050.txt'), '2524608000', '2524608000');
        fs.utimesSync(path.join(s.source, 'whole.txt'), '1600000000', '1600000000');
        await settle();
        fs.rmSync(s.replica, { recursive: true, force: true });
        fs.rmSync(path.dirname(s.manifestPath), { recursive: true, force: true });
        const first = await sync(s, options);
        assert.equal(first.stats.copied, 3, s.log.lines.join('\n'));
        assert.equal(fs.statSync(path.join(s.replica, 'half.txt')).mtimeMs, 1600000000_000, 'the filesystem kept whole seconds');
        await settle();
        for (const pass of [{ ...options }, { ...options, checksum: true }]) {
          await sync(s, pass);
          assert.deepEqual(s.log.actions, [], `${JSON.stringify(pass)}: nothing to fix, nothing said`);
        }
        fs.utimesSync(path.join(s.source, 'half.txt'), '1600000100.25', '1600000100.25');
        await settle();
        await sync(s, options);
        assert.deepEqual(s.log.actions, ['updated half.txt (mtime)'], 'a change to the source\'s mtime is still carried over');
        assert.equal(fs.statSync(path.join(s.replica, 'half.txt')).mtimeMs, 1600000100_000);
        await sync(s, options);
        assert.deepEqual(s.log.actions, []);
        // A chmod of the replica file (its ctime may not move within the second): still seen.
        fs.chmodSync(path.join(s.replica, 'whole.txt'), 0o600);
        await sync(s, options);
        assert.deepEqual(s.log.actions, ['updated whole.txt (permissions)']);
        assert.equal(fs.statSync(path.join(s.replica, 'whole.txt')).mode & 0o777, fs.statSync(path.join(s.source, 'whole.txt')).mode & 0o777);
      }
    } finally {
      disk.unmount();
    }
  });

  test('a source on an overlay mount with inode numbers past 2^63 (xino): left alone once copied, and a change to it is copied', { skip: process.getuid?.() === 0 ? false : 'needs root to mount' }, async (t) => {
    const base = tempDir('fs-overlay-');
    const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((name) => path.join(base, name));
    for (const dir of [lower, upper, work, merged]) fs.mkdirSync(dir);
    // The lower layer on another filesystem (tmpfs) is what gives its files xino's high inode numbers.
    if (!mount('-t', 'tmpfs', 'tmpfs', lower)) return t.skip('cannot mount a tmpfs here');
    try {
      for (const name of ['f1.txt', 'f2.txt']) fs.writeFileSync(path.join(lower, name), `lower ${name}`);
      if (!mount('-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work},xino=on`, merged)) return t.skip('cannot mount an overlay here');
      try {
        if (fs.lstatSync(path.join(merged, 'f1.txt'), { bigint: true }).ino >= 0n) return t.skip('this overlay gives no inode number past 2^63');
        const s = { ...setup(), source: merged };
        await settle(); // (files older than the racy window: their records are trusted)
        const first = await sync(s, THREADS);
        assert.equal(first.stats.copied, 2, s.log.lines.join('\n'));
        await settle();
        const again = await sync(s, THREADS);
        assert.deepEqual(s.log.lines.filter((line) => !line.startsWith('pass finished')), [], 'nothing to say');
        assert.equal(again.stats.hashed, 0, 'both sides vouched for by their records');
        fs.writeFileSync(path.join(merged, 'f1.txt'), 'LOWER f1.txt'); // the same size
        await settle();
        await sync(s, THREADS);
        assert.deepEqual(s.log.warnings, []);
        assert.deepEqual(s.log.actions, ['updated f1.txt (content changed)']);
        assert.equal(fs.readFileSync(path.join(s.replica, 'f1.txt'), 'utf8'), 'LOWER f1.txt');
      } finally {
        spawnSync('umount', [merged]);
      }
    } finally {
      spawnSync('umount', [lower]);
    }
  });
});
