/**
 * `--watch`'s scoped passes, with a live watcher on real folders: each change is mirrored by a pass
 * that lists only what events named; what only a full pass can see brings one, with its reason.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { includeAll } from '../src/tree/filter.js';
import { loadNative } from '../src/native.js';
import { PassKinds } from '../src/cli/passes.js';
import { SourceWatcher } from '../src/watch/watcher.js';
import { cliEnv, exited, startCli, waitFor } from './helpers/cli.js';
import { mirrorDiff, tempDir, writeTree } from './helpers/tree.js';

const summaries = (text: string): string[] => text.split('\n').filter((line) => line.includes('pass finished'));

function world(spec: Parameters<typeof writeTree>[1]) {
  const base = tempDir('fs-scoped-');
  const source = path.join(base, 'source');
  const replica = path.join(base, 'replica');
  writeTree(source, spec);
  return { base, source, replica, log: path.join(base, 'sync.log'), env: cliEnv(path.join(base, 'state')) };
}

/** Starts a watching folder-sync; `step` makes a change and waits for the pass it brings: its summary and the lines before it. */
async function watching(w: ReturnType<typeof world>, interval = '10') {
  const child = startCli([w.source, w.replica, interval, w.log, '--watch', '--watch-delay', '0.2'], w.env);
  await waitFor(child.output, (t) => summaries(t).length >= 1);
  const step = async (change: () => void, until: () => boolean = () => mirrorDiff(w.source, w.replica).length === 0): Promise<{ summary: string; lines: string[] }> => {
    const before = child.output().length;
    const count = summaries(child.output()).length;
    change();
    await waitFor(child.output, (t) => summaries(t).length > count && until(), 15_000);
    const lines = child.output().slice(before).split('\n').filter(Boolean);
    return { summary: summaries(child.output()).at(-1)!, lines };
  };
  return { child, step };
}

describe('--watch: scoped passes', () => {
  test('an edit, a new file, a deletion, a folder made with content, a folder renamed, a folder deleted, a move between folders: each mirrored by a scoped pass', async () => {
    const w = world({ 'a/f.txt': 'f', 'a/g.txt': 'g', 'b/h.txt': 'h', 'c/deep/x.txt': 'x', 'top.txt': 't' });
    const { child, step } = await watching(w);
    try {
      const scoped = (r: { summary: string }) => assert.match(r.summary, /\(scoped: \d+ folders? listed, \d+ trusted\)$/, r.summary);
      const src = (rel: string) => path.join(w.source, rel);

      let r = await step(() => fs.writeFileSync(src('a/f.txt'), 'f, edited'));
      scoped(r);
      assert.ok(r.lines.includes('updated a/f.txt (content changed)'), r.lines.join('\n'));
      assert.match(r.summary, /\(scoped: 1 folder listed, 3 trusted\)/); // 5 files: a/'s 2 checked, 3 trusted

      r = await step(() => fs.writeFileSync(src('b/new.txt'), 'new'));
      scoped(r);
      assert.ok(r.lines.includes('copied b/new.txt (new)'), r.lines.join('\n'));

      r = await step(() => fs.rmSync(src('a/g.txt')));
      scoped(r);
      assert.ok(r.lines.includes('deleted a/g.txt (not in source)'), r.lines.join('\n'));

      r = await step(() => writeTree(w.source, { 'made/sub/one.txt': '1', 'made/two.txt': '2' }));
      scoped(r);
      assert.ok(r.lines.includes('copied made/sub/one.txt (new)'), r.lines.join('\n'));

      r = await step(() => fs.renameSync(src('c'), src('renamed')));
      scoped(r);
      // With the addon's inotify the two halves of the rename are paired: one rename in the replica.
      if (loadNative()) assert.ok(r.lines.includes('moved c/ -> renamed/ (moved in source)'), r.lines.join('\n'));
      assert.equal(fs.readFileSync(path.join(w.replica, 'renamed/deep/x.txt'), 'utf8'), 'x');

      // A folder and its grandchild in one pass (not the child between them): both listed.
      r = await step(() => {
        fs.writeFileSync(src('top.txt'), 't, edited');
        fs.writeFileSync(src('renamed/deep/x.txt'), 'x, edited');
      });
      scoped(r);
      assert.ok(r.lines.includes('updated top.txt (content changed)') && r.lines.includes('updated renamed/deep/x.txt (content changed)'), r.lines.join('\n'));
      assert.match(r.summary, /\(scoped: 2 folders listed, /);

      r = await step(() => fs.rmSync(src('made'), { recursive: true }));
      scoped(r);
      assert.ok(r.lines.includes('deleted made/ (not in source)'), r.lines.join('\n'));

      r = await step(() => fs.renameSync(src('b/h.txt'), src('a/h.txt')));
      scoped(r);
      assert.ok(r.lines.includes('moved b/h.txt -> a/h.txt (moved in source)'), r.lines.join('\n'));
      assert.deepEqual(mirrorDiff(w.source, w.replica), []);
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exited(child), 0);
    }
  });

  test('an exclude rule changed (.folder-syncignore) brings a full pass, and so does a burst past the cap', async () => {
    const w = world({ 'a/f.txt': 'f', 'junk.tmp': 'j' });
    const { child, step } = await watching(w);
    try {
      let r = await step(
        () => fs.writeFileSync(path.join(w.source, '.folder-syncignore'), '*.tmp\n'),
        () => !fs.existsSync(path.join(w.replica, 'junk.tmp')) || true,
      );
      assert.ok(r.lines.includes('full pass: the exclude rules changed (options, .folder-syncignore)'), r.lines.join('\n'));
      assert.doesNotMatch(r.summary, /scoped/);

      r = await step(() => {
        for (let i = 0; i < 600; i++) writeTree(w.source, { [`burst/d${i}/f.txt`]: String(i) });
      });
      await waitFor(child.output, (t) => /full pass: \d+ folders changed, more than the cap of 512/.test(t) && mirrorDiff(w.source, w.replica, (rel) => rel.endsWith('.tmp')).length === 0, 15_000);
      void r;
    } finally {
      child.kill('SIGTERM');
      await exited(child);
    }
  });

  test('a replica edit is not seen by a scoped pass; the next full pass (the interval) repairs it', async () => {
    const w = world({ 'a/f.txt': 'original', 'b/g.txt': 'g' });
    const { child, step } = await watching(w, '0.1'); // a full pass every 6 s
    try {
      fs.writeFileSync(path.join(w.replica, 'a/f.txt'), 'EDITED IN THE REPLICA');
      const r = await step(() => fs.writeFileSync(path.join(w.source, 'b/new.txt'), 'n'), () => fs.existsSync(path.join(w.replica, 'b/new.txt')));
      assert.match(r.summary, /scoped/);
      assert.equal(fs.readFileSync(path.join(w.replica, 'a/f.txt'), 'utf8'), 'EDITED IN THE REPLICA', 'a scoped pass trusts what it does not list');
      await waitFor(child.output, (t) => t.includes('full pass: the interval') && fs.readFileSync(path.join(w.replica, 'a/f.txt'), 'utf8') === 'original', 20_000);
      assert.deepEqual(mirrorDiff(w.source, w.replica), []);
    } finally {
      child.kill('SIGTERM');
      await exited(child);
    }
  });
});

describe('--watch: lost events', () => {
  test('an overflowed event queue (IN_Q_OVERFLOW, injected) makes the next pass a full one, with its reason', { skip: loadNative() ? false : 'only the addon reads inotify itself (fs.watch never says)' }, async () => {
    const root = tempDir('fs-lost-');
    writeTree(root, { 'a/f.txt': 'f' });
    const watcher = new SourceWatcher({ root, exclude: includeAll, delayMs: 10, onDue: () => {}, warn: () => {}, debug: () => {} });
    try {
      watcher.start();
      const kinds = new PassKinds(600_000, root, root, watcher);
      assert.deepEqual(kinds.next(Date.now(), [], includeAll), { full: 'at start' });
      kinds.done({ full: 'at start' }, Date.now(), 2);
      // What the kernel writes when its queue overflows: an event of wd -1, mask IN_Q_OVERFLOW.
      const overflow = Buffer.alloc(16);
      overflow.writeInt32LE(-1, 0);
      overflow.writeUInt32LE(0x4000, 4);
      (watcher as unknown as { backend: { read(events: Buffer): void } }).backend.read(overflow);
      const next = kinds.next(Date.now(), [], includeAll);
      assert.deepEqual(next, { full: "events may have been lost: the kernel's event queue overflowed (fs.inotify.max_queued_events)" });
      // And the pass after is scoped again.
      kinds.done(next, Date.now(), 2);
      fs.writeFileSync(path.join(root, 'a/g.txt'), 'g');
      await waitFor(() => String(watcher.due ?? ''), (t) => t !== '', 5_000);
      const after = kinds.next(Date.now(), [], includeAll);
      assert.ok('scope' in after && after.scope.folders.has('a'), JSON.stringify(after, (_, v) => (v instanceof Set ? [...v] : v)));
    } finally {
      watcher.close();
    }
  });

  test('a filesystem mounted in the source, unmounted: the next pass is a full one, with its reason', { skip: loadNative() && canMount() ? false : 'needs the addon (inotify) and mount(2)' }, async () => {
    const w = world({ 'a/f.txt': 'f' });
    const disk = path.join(w.source, 'disk');
    fs.mkdirSync(disk);
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', 'none', disk]).status, 0);
    let mounted = true;
    try {
      writeTree(disk, { 'photo.jpg': 'on the disk' });
      const { child } = await watching(w);
      try {
        assert.equal(fs.readFileSync(path.join(w.replica, 'disk/photo.jpg'), 'utf8'), 'on the disk');
        assert.equal(spawnSync('umount', [disk]).status, 0);
        mounted = false;
        // The folder beneath is empty: a scoped pass would not have listed it (no event names it).
        await waitFor(child.output, (t) => t.includes('full pass: events may have been lost: a filesystem in the source was unmounted (disk)') && !fs.existsSync(path.join(w.replica, 'disk/photo.jpg')), 15_000);
        assert.deepEqual(mirrorDiff(w.source, w.replica), []);
      } finally {
        child.kill('SIGTERM');
        await exited(child);
      }
    } finally {
      if (mounted) spawnSync('umount', [disk]);
    }
  });
});

/** Whether this process may mount a tmpfs (root, not in a container that forbids it). */
function canMount(): boolean {
  const at = tempDir('fs-mount-');
  if (spawnSync('mount', ['-t', 'tmpfs', 'none', at]).status !== 0) return false;
  spawnSync('umount', [at]);
  return true;
}
