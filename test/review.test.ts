/**
 * Edges found in review: names near our own files, an unreadable ignore file, sources named like
 * a command, a closed pipe, `status` over a folder with a bad manifest, watches kept for folders
 * made during a pass.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { includeAll } from '../src/tree/filter.js';
import { SourceWatcher } from '../src/watch/watcher.js';
import { BIN, ROOT, cliEnv, runCli } from './helpers/cli.js';
import { nativeCopy } from '../src/native.js';
const poolCopies = (): boolean => nativeCopy() !== undefined;
import { mirrorDiff, readTree, settle, tempDir, writeTree } from './helpers/tree.js';

/** Each of `bad` given to `option`: one line, exit 2, nothing touched. */
function refusesBadCounts(w: ReturnType<typeof world>, log: string, option: string, bad: string[]): void {
  for (const value of bad) {
    const r = runCli([w.source, w.replica, '1', log, '--once', '--manifest', w.manifest, option, value], w.env);
    assert.equal(r.status, 2, value);
    assert.match(r.stderr, new RegExp(`${option} must be`));
    assert.equal(fs.existsSync(w.replica), false);
  }
}

function world() {
  const base = tempDir('fs-review-');
  return { base, source: path.join(base, 'source'), replica: path.join(base, 'replica'), manifest: path.join(base, 'state', 'm.json'), env: cliEnv(path.join(base, 'xdg')) };
}

describe('review edges', () => {
  test("a user's file named like a rotated log is ours only with rotation, and only up to --log-max-files", () => {
    const w = world();
    writeTree(w.source, { 'logs/sync2024.log': 'mine', 'logs/sync2.log': 'mine too', 'logs/sync3.log': 'and this', 'a.txt': 'a' });
    const log = path.join(w.source, 'logs', 'sync.log');
    const plain = runCli([w.source, w.replica, '1', log, '--once', '--manifest', w.manifest], w.env);
    assert.equal(plain.status, 0, plain.stderr);
    assert.deepEqual(fs.readdirSync(path.join(w.replica, 'logs')).sort(), ['sync2.log', 'sync2024.log', 'sync3.log']);

    // With rotation keeping 3 files, sync1.log and sync2.log are ours: never synced, never deleted.
    const rotating = runCli([w.source, w.replica, '1', log, '--once', '--manifest', w.manifest, '--log-max-size', '1M', '--log-max-files', '3'], w.env);
    assert.equal(rotating.status, 0, rotating.stderr);
    assert.deepEqual(fs.readdirSync(path.join(w.replica, 'logs')).sort(), ['sync2.log', 'sync2024.log', 'sync3.log']);
    fs.writeFileSync(path.join(w.source, 'logs', 'sync1.log'), 'rotated by us');
    fs.rmSync(path.join(w.source, 'logs', 'sync2.log'));
    const again = runCli([w.source, w.replica, '1', log, '--once', '--manifest', w.manifest, '--log-max-size', '1M', '--log-max-files', '3'], w.env);
    assert.equal(again.status, 0, again.stderr);
    // sync2.log left alone in the replica (ours), sync1.log not copied (ours), sync3.log still mirrored
    assert.deepEqual(fs.readdirSync(path.join(w.replica, 'logs')).sort(), ['sync2.log', 'sync2024.log', 'sync3.log']);
  });

  test('an ignore file that cannot be read: an error, nothing deleted, exit 1, the rest synced', () => {
    const w = world();
    writeTree(w.source, { '.folder-syncignore': '*.iso\n', 'a.txt': 'a' });
    writeTree(w.replica, { 'old.iso': 'kept by the ignore list', 'gone.txt': 'not in source' });
    const first = runCli([w.source, w.replica, '1', path.join(w.base, 'sync.log'), '--once', '--manifest', w.manifest], w.env);
    assert.equal(first.status, 0, first.stderr);
    assert.deepEqual(fs.readdirSync(w.replica).sort(), ['.folder-syncignore', 'a.txt', 'old.iso']);

    fs.rmSync(path.join(w.source, '.folder-syncignore'));
    fs.mkdirSync(path.join(w.source, '.folder-syncignore')); // EISDIR when read
    writeTree(w.source, { 'b.txt': 'b' });
    writeTree(w.replica, { 'gone2.txt': 'not in source either' });
    const second = runCli([w.source, w.replica, '1', path.join(w.base, 'sync.log'), '--once', '--manifest', w.manifest], w.env);
    assert.equal(second.status, 1);
    assert.match(second.stderr, /error: reading .*\.folder-syncignore: .*EISDIR.*; nothing is deleted this pass/);
    assert.equal(fs.readFileSync(path.join(w.replica, 'old.iso'), 'utf8'), 'kept by the ignore list');
    assert.equal(fs.readFileSync(path.join(w.replica, 'gone2.txt'), 'utf8'), 'not in source either');
    assert.equal(fs.readFileSync(path.join(w.replica, 'b.txt'), 'utf8'), 'b');
  });

  test('a source folder named status or verify, in the four-argument form, is synced', () => {
    const w = world();
    for (const name of ['status', 'verify']) {
      writeTree(path.join(w.base, name), { 'f.txt': name });
      // Run from the world's folder (relative operands): tsx is found by its resolved URL.
      const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), BIN, name, 'rep-' + name, '1', 'sync.log', '--once', '--manifest', `m-${name}.json`], { cwd: w.base, env: w.env, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(fs.readFileSync(path.join(w.base, 'rep-' + name, 'f.txt'), 'utf8'), name);
    }
  });

  test('a closed pipe on stdout ends no command with a stack trace', () => {
    const w = world();
    writeTree(w.source, Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f${i}.txt`, String(i)])));
    const bin = [process.execPath, '--import', 'tsx', BIN].map((a) => `'${a}'`).join(' ');
    for (const args of [`--help`, `'${w.source}' '${w.replica}' 1 '${w.base}/sync.log' --once --manifest '${w.manifest}'`]) {
      const r = spawnSync('sh', ['-c', `${bin} ${args} | head -c 1 >/dev/null`], { cwd: ROOT, env: w.env, encoding: 'utf8' });
      assert.doesNotMatch(r.stderr, /EPIPE|\n\s+at /, args);
    }
    // the sync went on to the end: its log has every line
    const log = fs.readFileSync(path.join(w.base, 'sync.log'), 'utf8');
    assert.match(log, /pass finished: 300 copied/);
  });

  test('status over the default folder: a bad manifest is reported, the others shown, exit 1', () => {
    const w = world();
    writeTree(w.source, { 'a.txt': 'a' });
    const state = path.join(w.base, 'xdg');
    assert.equal(runCli([w.source, w.replica, '1', path.join(w.base, 'sync.log'), '--once'], w.env).status, 0);
    fs.writeFileSync(path.join(state, 'folder-sync', 'broken.json'), '{ not json');
    const r = runCli(['status'], w.env);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /broken\.json is not a readable manifest/);
    assert.match(r.stdout, /^entries {4}1 file, 1 B$/m);
  });

  test('a watch added for a folder made during a pass survives the pass that did not list it', async () => {
    const w = world();
    writeTree(w.source, { 'a/x.txt': 'x' });
    let dues = 0;
    const watcher = new SourceWatcher({ root: w.source, exclude: includeAll, delayMs: 10, onDue: () => dues++, warn: () => {}, debug: () => {} });
    try {
      watcher.start();
      assert.equal(watcher.watching, 2);
      watcher.takeScope(includeAll);
      fs.mkdirSync(path.join(w.source, 'new'));
      await settle(300);
      assert.equal(watcher.watching, 3, 'the new folder is watched from its event');
      // the pass had listed '' and 'a' before 'new' was made
      watcher.reconcile(new Set(['', 'a']), true);
      assert.equal(watcher.watching, 3);
      watcher.takeScope(includeAll);
      const before = dues;
      fs.writeFileSync(path.join(w.source, 'new', 'y.txt'), 'y');
      await settle(300);
      assert.ok(dues > before, 'a write into the new folder is seen');
      assert.equal(watcher.trigger, 'new/y.txt');
      // a folder that is gone is dropped
      fs.rmSync(path.join(w.source, 'new'), { recursive: true });
      await settle(300);
      watcher.reconcile(new Set(['', 'a']), true);
      assert.equal(watcher.watching, 2);
    } finally {
      watcher.close();
    }
    assert.deepEqual(Object.keys(readTree(w.source)).sort(), ['a', 'a/x.txt']);
  });

  test('--copy-threads: 0 to 64; a first sync of 1,030 files is the same mirror with copying threads (2) or none (0)', () => {
    const w = world();
    writeTree(w.source, Object.fromEntries(Array.from({ length: 1030 }, (_, i) => [`d${i % 7}/f${i}.txt`, `content ${i} `.repeat(i % 50)])));
    const log = path.join(w.base, 'sync.log');
    refusesBadCounts(w, log, '--copy-threads', ['-1', '65', 'two']);
    for (const threads of ['2', '0']) {
      fs.rmSync(w.replica, { recursive: true, force: true });
      fs.rmSync(w.manifest, { force: true });
      fs.rmSync(w.manifest + '.d', { recursive: true, force: true });
      const r = runCli([w.source, w.replica, '1', log, '--once', '--manifest', w.manifest, '--copy-threads', threads, '--log-level', 'debug'], w.env);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /pass finished: 1030 copied/);
      // With the addon, small copies go to libuv's thread pool whatever --copy-threads says; without
      // it, to copying threads (2), or none (0).
      assert.equal(/1030 copies: the small ones written on 2 copying threads/.test(r.stdout), threads === '2' && !poolCopies(), r.stdout.slice(0, 2000));
      assert.equal(/copies written on the thread pool: 1030 of 1030 /.test(r.stdout), poolCopies(), r.stdout.slice(0, 2000));
      assert.deepEqual(mirrorDiff(w.source, w.replica), [], threads);
      const again = runCli([w.source, w.replica, '1', log, '--once', '--manifest', w.manifest, '--copy-threads', threads], w.env);
      assert.match(again.stdout, /pass finished: 0 copied, 0 moved, 0 updated, 0 deleted, 0 hashed/);
    }
  });

  test('--hash-threads: 1 to 64; one thread hashes a --checksum pass as well as two', () => {
    const w = world();
    // 520 files, both sides read: 1,040, enough for the hashing threads to be started.
    writeTree(w.source, Object.fromEntries(Array.from({ length: 520 }, (_, i) => [`d${i % 3}/f${i}.txt`, `content ${i} `.repeat(100)])));
    const log = path.join(w.base, 'sync.log');
    refusesBadCounts(w, log, '--hash-threads', ['0', '65', 'two']);
    assert.equal(runCli([w.source, w.replica, '1', log, '--once', '--manifest', w.manifest], w.env).status, 0);
    for (const threads of ['1', '2']) {
      // Corrupt one replica file behind the manifest's back (same size and mtime): --checksum reads all.
      const victim = path.join(w.replica, 'd1/f4.txt');
      const stat = fs.statSync(victim);
      fs.writeFileSync(victim, fs.readFileSync(victim, 'utf8').replace('content', 'CONTENT'));
      fs.utimesSync(victim, stat.atime, stat.mtime);
      const r = runCli([w.source, w.replica, '1', log, '--once', '--manifest', w.manifest, '--checksum', '--hash-threads', threads, '--log-level', 'debug'], w.env);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`1040 files to read: on ${threads} hashing threads`));
      // Both sides read, neither vouched for: the replica's is rewritten as changed content.
      assert.deepEqual(r.stdout.split('\n').filter((l) => l.startsWith('updated') || l.startsWith('restored')), ['updated d1/f4.txt (content changed)'], threads);
      assert.match(r.stdout, / 1041 hashed/, threads); // both sides of 520 files, and the copy of the one rewritten
      assert.equal(fs.readFileSync(victim, 'utf8'), `content 4 `.repeat(100));
      const v = runCli(['verify', w.source, w.replica, '--hash-threads', threads], w.env);
      assert.equal(v.status, 0, v.stdout + v.stderr);
    }
  });
});
