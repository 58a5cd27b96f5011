/** Bugs found in review, each pinned by a test that failed before its fix. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { tempPathFor } from '../src/replica/local/context.js';
import { Manifest } from '../src/manifest/manifest.js';
import { BIN, hasRsync, ROOT, rsyncCheck } from './helpers/cli.js';
import { errno, mirrorDiff, readTree, refusedWhileReadOnly, settle, setup, sync, tempDir, tempFiles, writePastReadOnly, writeTree } from './helpers/tree.js';

describe('review regressions', () => {
  test('a resumed temporary file longer than a rewritten source is cut to the source', async () => {
    const s = setup({ 'data.bin': Buffer.alloc(2 << 20, 0x22) });
    fs.mkdirSync(s.replica, { recursive: true });
    fs.writeFileSync(tempPathFor(s.replica, 'data.bin'), Buffer.alloc(5 << 20, 0x11)); // differs from byte 0, and longer
    const result = await sync(s);
    assert.equal(result.exitStatus, 0);
    assert.equal(fs.statSync(path.join(s.replica, 'data.bin')).size, 2 << 20);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    assert.deepEqual(tempFiles(s.replica), []);
  });

  test('a replica whose parent folders are missing is created with them', async () => {
    const s = setup({ 'a.txt': 'a' });
    s.replica = path.join(s.replica, 'deep', 'er', 'mirror');
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(fs.readFileSync(path.join(s.replica, 'a.txt'), 'utf8'), 'a');
  });

  test('files dated before 1970 or after 2106 are not read again by a no-change pass (the manifest keeps their seconds exactly)', async () => {
    const s = setup({ 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', 'd.txt': 'd' });
    const at = (name: string, date: string) => assert.equal(spawnSync('touch', ['-d', date, path.join(s.source, name)]).status, 0);
    at('a.txt', '1960-01-01 00:00:00.5');
    at('b.txt', '1969-12-31 23:59:59.25');
    at('c.txt', '1901-06-01');
    fs.utimesSync(path.join(s.source, 'd.txt'), 5_000_000_000, 5_000_000_000); // 2128
    await settle();
    assert.equal((await sync(s)).stats.hashed, 4);
    for (let pass = 0; pass < 2; pass++) {
      const again = await sync(s); // the manifest read back from its files each time
      assert.equal(again.stats.hashed, 0, s.log.lines.join('\n'));
      assert.deepEqual(s.io.opens, []);
    }
  });

  test('mtimes before 1970 are kept, and a second pass leaves them alone', async () => {
    const s = setup({ 'old.txt': 'x', 'link': { link: 'old.txt' } });
    assert.equal(spawnSync('touch', ['-h', '-d', '1960-01-01 00:00:00.5', path.join(s.source, 'old.txt'), path.join(s.source, 'link')]).status, 0);
    await settle();
    await sync(s);
    assert.equal(fs.statSync(path.join(s.replica, 'old.txt')).mtime.getUTCFullYear(), 1960);
    assert.equal(fs.lstatSync(path.join(s.replica, 'link')).mtime.getUTCFullYear(), 1960);
    const again = await sync(s);
    assert.deepEqual(s.log.actions, []);
    assert.equal(again.stats.updated, 0);
    if (hasRsync()) assert.equal(rsyncCheck(s.source, s.replica), '');
  });

  test('deletes refused by --max-delete leave a replica file in the way of a folder untouched', async () => {
    const s = setup({ 'x': { dir: true, mode: 0o750 }, 'x/c': '1' });
    writeTree(s.replica, { 'x': { content: 'old', mode: 0o644 } });
    const result = await sync(s, { maxDelete: { count: 0 } });
    assert.equal(result.exitStatus, 1);
    assert.equal(fs.statSync(path.join(s.replica, 'x')).mode & 0o7777, 0o644);
    assert.ok(s.log.errors.some((e) => e === 'cannot replace x (type changed): its delete was refused'), s.log.errors.join('\n'));
    assert.equal(result.stats.errors, s.log.errors.length);
  });

  test('a read-only replica folder (0555) is opened for the copy and closed again after', async () => {
    const s = setup({ 'ro': { dir: true, mode: 0o555 }, 'ro/f.txt': 'v1' });
    await sync(s);
    writePastReadOnly(s.source, { 'ro/f.txt': 'version 2' });
    // As root the folder's mode stops nothing: play the non-root user's EACCES.
    const roDir = path.join(s.replica, 'ro');
    const denied = () => (fs.statSync(roDir).mode & 0o200) === 0;
    s.io.fail = (call, p) => (call === 'openWrite' && p.startsWith(roDir + '/') && denied() ? errno('EACCES', 'permission denied') : undefined);
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(fs.readFileSync(path.join(roDir, 'f.txt'), 'utf8'), 'version 2');
    assert.equal(fs.statSync(roDir).mode & 0o7777, 0o555);
  });

  test('a file moved out of a read-only folder (not root: EACCES on the folder it leaves) is moved, both folders\' modes kept', async () => {
    const content = 'x'.repeat(5000);
    const s = setup({ ro: { dir: true, mode: 0o555 }, 'ro/a.bin': content, 'ro/k': 'k' });
    await settle();
    await sync(s);
    const roSource = path.join(s.source, 'ro');
    fs.chmodSync(roSource, 0o755);
    fs.renameSync(path.join(roSource, 'a.bin'), path.join(s.source, 'a.bin'));
    fs.chmodSync(roSource, 0o555);
    const roDir = path.join(s.replica, 'ro');
    s.io.fail = refusedWhileReadOnly(roDir);
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(s.log.actions, ['moved ro/a.bin -> a.bin (moved in source)']);
    assert.equal(fs.readFileSync(path.join(s.replica, 'a.bin'), 'utf8'), content);
    assert.equal(fs.statSync(roDir).mode & 0o7777, 0o555);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('as a user who is not root (setpriv, for real): copies into, moves out of and deletes in read-only folders, their modes kept', { skip: process.getuid?.() === 0 ? false : 'needs root to drop to another user' }, (t) => {
    const base = tempDir('fs-nobody-');
    const nobody = (args: string[]) =>
      spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    if (nobody(['--version']).status !== 0) return t.skip('setpriv cannot run the program as nobody here');
    const [source, replica] = [path.join(base, 'S'), path.join(base, 'R')];
    writeTree(source, { ro: { dir: true, mode: 0o555 }, 'ro/a.bin': 'a'.repeat(5000), 'ro/gone.txt': 'gone', 'ro/k': 'k', ro2: { dir: true, mode: 0o555 } });
    spawnSync('chown', ['-R', '65534:65534', base]);
    fs.chmodSync(base, 0o755);
    const args = [source, replica, '1', path.join(base, 'log'), '--once', '--manifest', path.join(base, 'm.json')];
    const first = nobody(args);
    assert.equal(first.status, 0, first.stdout + first.stderr);
    // As the source's owner would: into the read-only folders through u+w, and back.
    const writable = (dir: string, fn: () => void) => (fs.chmodSync(dir, 0o755), fn(), fs.chmodSync(dir, 0o555));
    writable(path.join(source, 'ro'), () => {
      fs.renameSync(path.join(source, 'ro', 'a.bin'), path.join(source, 'a.bin'));
      fs.rmSync(path.join(source, 'ro', 'gone.txt'));
      fs.writeFileSync(path.join(source, 'ro', 'new.txt'), 'new');
      fs.chownSync(path.join(source, 'ro', 'new.txt'), 65534, 65534);
    });
    const second = nobody(args);
    assert.equal(second.status, 0, second.stdout + second.stderr);
    for (const line of ['moved ro/a.bin -> a.bin (moved in source)', 'deleted ro/gone.txt (not in source)', 'copied ro/new.txt (new)']) assert.match(second.stdout, new RegExp(`^${line.replace(/[().]/g, '\\$&')}$`, 'm'));
    assert.deepEqual(mirrorDiff(source, replica), []);
    for (const dir of ['ro', 'ro2']) assert.equal(fs.statSync(path.join(replica, dir)).mode & 0o7777, 0o555, dir);
    assert.deepEqual(tempFiles(replica), []);
  });

  test('a move whose rename fails for another reason (EIO) is copied instead, with a warning; the old file goes next pass', async () => {
    const s = setup({ 'a.bin': 'y'.repeat(5000), 'k': 'k' });
    await settle();
    await sync(s);
    fs.renameSync(path.join(s.source, 'a.bin'), path.join(s.source, 'b.bin'));
    const moving = path.join(s.replica, 'a.bin'); // (the copy's rename is of its temporary file)
    s.io.fail = (call, p) => (call === 'rename' && p === moving ? errno('EIO', 'i/o error, rename') : undefined);
    const result = await sync(s);
    s.io.fail = undefined;
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(s.log.warnings, ['moving a.bin -> b.bin: EIO: i/o error, rename; copied instead']);
    assert.deepEqual(s.log.actions, ['copied b.bin (new)']);
    await sync(s);
    assert.deepEqual(s.log.actions, ['deleted a.bin (not in source)']);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('a file with an mtime in the future is not re-read every pass', async () => {
    const s = setup({ 'future.txt': 'f' });
    const future = Date.now() / 1000 + 10 * 365 * 86400;
    fs.utimesSync(path.join(s.source, 'future.txt'), future, future);
    await settle();
    await sync(s);
    const again = await sync(s);
    assert.equal(again.stats.hashed, 0);
  });

  test('the log file in the replica excludes exactly its own companions', async () => {
    const s = setup({ 'notes.txt': 'n', '.notes.x': 'x', 'notes.lock.txt': 'l' });
    // `notes` is our log inside the replica: the config's own-path exclusion keeps it, nothing more.
    const { buildConfig } = await import('../src/cli/config.js');
    fs.mkdirSync(s.replica, { recursive: true });
    const config = buildConfig(
      { source: s.source, replica: s.replica, interval: '1', logFile: path.join(s.replica, 'notes') },
      { manifest: s.manifestPath },
    );
    const result = await sync(s, { exclude: config.exclude });
    assert.equal(result.exitStatus, 0);
    assert.deepEqual(Object.keys(readTree(s.replica)).sort(), ['.notes.x', 'notes.lock.txt', 'notes.txt']);
  });

  test('a manifest with an absurd shard count is rebuilt, not loaded', async () => {
    const file = path.join(tempDir(), 'm.json');
    fs.writeFileSync(file, JSON.stringify({ format: 'folder-sync manifest', version: 2, source: '/s', replica: '/r', shards: 1 << 30 }));
    const warnings: string[] = [];
    const m = await Manifest.open(file, { source: '/s', replica: '/r', warn: (w) => warnings.push(w) });
    assert.equal(m.size, 0);
    assert.match(warnings[0], /bad shard count/);
  });
});

describe('review regressions (batched copies)', () => {
  test('several copies into one read-only folder (non-root EACCES) all land, no temp left', async () => {
    const s = setup({ 'ro': { dir: true, mode: 0o555 }, 'ro/f1': '1', 'ro/f2': '2', 'ro/f3': '3' });
    await sync(s);
    writePastReadOnly(s.source, Object.fromEntries(['f1', 'f2', 'f3'].map((f) => [`ro/${f}`, `changed ${f}`])));
    const roDir = path.join(s.replica, 'ro');
    s.io.fail = refusedWhileReadOnly(roDir);
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    for (const f of ['f1', 'f2', 'f3']) assert.equal(fs.readFileSync(path.join(roDir, f), 'utf8'), `changed ${f}`);
    assert.deepEqual(tempFiles(s.replica), []);
    assert.equal(fs.statSync(roDir).mode & 0o7777, 0o555);
  });
});
