/**
 * Files' deletes unlinked on libuv's thread pool (`applyDeletes` in src/pass.ts), logged, counted
 * and forgotten in the plan's order; a failed one is done again on the main thread as before.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { errno, mirrorDiff, numbered, setup, sync } from './helpers/tree.js';

/** A mirrored tree of `count` files in a few folders, then every third one removed from the source. */
async function mirroredThenRemoved(count: number) {
  const names = numbered('d', count).map((name, i) => `f${i % 4}/${name}`);
  const s = setup(Object.fromEntries(names.map((name, i) => [name, `file ${i}`])));
  await sync(s);
  const removed = names.filter((_, i) => i % 3 === 0);
  for (const name of removed) fs.rmSync(path.join(s.source, name));
  return { s, names, removed };
}

describe('deletes unlinked on the thread pool', () => {
  test('every file the source lost is unlinked there, each line in the plan\'s order, each record forgotten; the mirror is exact', async () => {
    const { s, removed } = await mirroredThenRemoved(300);
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(result.stats.deleted, removed.length);
    assert.deepEqual(s.io.poolUnlinks.map((p) => path.relative(s.replica, p)).sort(), [...removed].sort());
    assert.deepEqual(
      s.log.actions,
      [...removed].sort().map((name) => `deleted ${name} (not in source)`),
    );
    for (const name of removed) assert.equal(result.manifest.get(name), undefined, name);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('lines in the plan\'s order, not in the order the unlinks end', async () => {
    const { s, removed } = await mirroredThenRemoved(60);
    const real = s.io.unlinkAsync;
    const first = path.join(s.replica, [...removed].sort()[0]);
    s.io.unlinkAsync = async (p) => {
      if (p === first) await new Promise((resolve) => setTimeout(resolve, 100)); // ends last
      return real(p);
    };
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(s.log.actions, [...removed].sort().map((name) => `deleted ${name} (not in source)`));
  });

  test('a folder gone from the source with more files than are unlinked at once: its files first, then the folder, no error', async () => {
    const names = numbered('gone', 150);
    const s = setup({ ...Object.fromEntries(names.map((name) => [name, 'x'])), 'stay.txt': 'stay' });
    await sync(s);
    fs.rmSync(path.join(s.source, 'gone'), { recursive: true });
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(result.stats.deleted, 151);
    assert.equal(s.log.actions.at(-1), 'deleted gone/ (not in source)');
    assert.equal(s.io.poolUnlinks.length, 150);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('with --backup-dir, or in a dry run, nothing is unlinked on the pool: files are moved to the backup, or only named', async () => {
    const { s, removed } = await mirroredThenRemoved(12);
    const dry = await sync(s, { dryRun: true });
    assert.equal(dry.stats.deleted, removed.length);
    assert.deepEqual(s.io.poolUnlinks, []);
    for (const name of removed) assert.ok(fs.existsSync(path.join(s.replica, name)), name);
    const backupDir = path.join(path.dirname(s.replica), 'backup');
    const backed = await sync(s, { backupDir });
    assert.equal(backed.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(s.io.poolUnlinks, []);
    const [stamp] = fs.readdirSync(backupDir);
    for (const name of removed) assert.ok(fs.existsSync(path.join(backupDir, stamp, name)), name);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('an unlink the pool could not make is made again on the main thread (made then: no error); one that fails there too is an error, as before; one gone meanwhile has no line', async () => {
    const { s, removed } = await mirroredThenRemoved(30);
    const [once, always, vanishing] = removed.map((name) => path.join(s.replica, name));
    let failedOnce = false;
    s.io.fail = (call, p) => {
      if (call !== 'unlink') return undefined;
      if (p === once && !failedOnce) return (failedOnce = true), errno('EBUSY', 'resource busy');
      return p === always ? errno('EIO', 'i/o error') : undefined;
    };
    const real = s.io.unlinkAsync;
    s.io.unlinkAsync = (p) => {
      if (p === vanishing) fs.rmSync(p); // after the walk saw it
      return real(p);
    };
    const result = await sync(s);
    assert.equal(result.exitStatus, 1);
    assert.ok(failedOnce);
    assert.deepEqual(s.log.errors, [`deleting ${removed[1]}: EIO: i/o error`]);
    assert.deepEqual(
      s.log.actions,
      removed.filter((name) => name !== removed[1] && name !== removed[2]).sort().map((name) => `deleted ${name} (not in source)`),
    );
    assert.equal(result.stats.deleted, removed.length - 2);
    assert.ok(fs.existsSync(always));
    assert.ok(!fs.existsSync(once));
    s.io.fail = undefined;
    await sync(s);
    assert.deepEqual(s.log.actions, [`deleted ${removed[1]} (not in source)`]);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('stopped in the middle of a run: every file unlinked has its line, none more; the next pass deletes the rest', async () => {
    const { s, removed } = await mirroredThenRemoved(600);
    const stopped = await sync(s, { shouldStop: () => s.log.actions.length >= 50 });
    const lines = s.log.actions.filter((l) => l.startsWith('deleted '));
    const unlinked = removed.filter((name) => !fs.existsSync(path.join(s.replica, name)));
    assert.ok(lines.length >= 50 && lines.length < removed.length, `${lines.length} lines`);
    assert.deepEqual(lines, [...unlinked].sort().map((name) => `deleted ${name} (not in source)`));
    assert.equal(stopped.stats.deleted, unlinked.length);
    const next = await sync(s);
    assert.equal(next.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(next.stats.deleted, removed.length - unlinked.length);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });
});
