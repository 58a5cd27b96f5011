/** Passes over real folders: the replica must read back equal to the source. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Manifest } from '../src/manifest/manifest.js';
import { hasRsync, rsyncCheck } from './helpers/cli.js';
import { errno, md5, mirrorDiff, numbered, readTree, refusedWhileReadOnly, settle, setup, sync, tempFiles, writePastReadOnly, writeTree } from './helpers/tree.js';

const OLD = 1_600_000_000; // an mtime well outside the racy window

describe('a first pass', () => {
  test('mirrors files, empty folders, links (dangling too), modes and mtimes', async () => {
    const s = setup({
      'a.txt': { content: 'alpha', mode: 0o640, mtime: OLD },
      'docs/b.md': 'bravo',
      'docs/deep/c.bin': Buffer.alloc(300_000, 7),
      'empty': { dir: true },
      'locked': { dir: true, mode: 0o555 },
      'locked/inside.txt': 'in a read-only folder',
      'exec.sh': { content: '#!/bin/sh\n', mode: 0o755 },
      'to-a': { link: 'a.txt' },
      'dangling': { link: 'nowhere/at/all' },
      'zero': '',
    });
    await settle();
    const result = await sync(s);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    if (hasRsync()) assert.equal(rsyncCheck(s.source, s.replica), '');
    assert.equal(result.exitStatus, 0);
    assert.equal(result.stats.copied, 8); // 6 files + 2 links
    assert.equal(result.stats.updated, 0);
    assert.equal(result.stats.deleted, 0);
    assert.equal(result.stats.errors, 0);
    assert.equal(readTree(s.replica)['locked'].mode, '555');
    assert.equal(readTree(s.replica)['dangling'].target, 'nowhere/at/all');
    assert.match(s.log.lines.at(-1)!, /^pass finished: 8 copied, 0 moved, 0 updated, 0 deleted, 6 hashed, 0 errors; .* transferred in [\d.]+ s$/);
    assert.ok(s.log.actions.includes('copied a.txt (new)'));
    assert.deepEqual(tempFiles(s.replica), []);

    // The manifest holds each file's fingerprints and MD5, read back from disk.
    const manifest = await Manifest.open(s.manifestPath, { source: s.source, replica: s.replica, warn: assert.fail });
    const record = manifest.get('docs/deep/c.bin');
    assert.equal(record?.md5, md5(Buffer.alloc(300_000, 7)));
    const st = fs.lstatSync(path.join(s.replica, 'docs/deep/c.bin'), { bigint: true });
    assert.equal(record?.size, 300_000);
    assert.equal(`${record?.repMtimeS}${String(record?.repMtimeN).padStart(9, '0')}`, String(st.mtimeNs));
    assert.equal(`${record?.repCtimeS}${String(record?.repCtimeN).padStart(9, '0')}`, String(st.ctimeNs));
    assert.equal(record?.repIno, Number(st.ino));
    assert.equal(record?.trusted, true);
    assert.equal(manifest.size, 6);
  });

  test('adopts identical files already in the replica (hashes both sides, copies nothing)', async () => {
    const s = setup({ 'x/one.txt': { content: 'one', mtime: OLD }, 'two.txt': { content: 'two', mtime: OLD } });
    fs.cpSync(s.source, s.replica, { recursive: true, preserveTimestamps: true });
    const result = await sync(s);
    assert.equal(result.stats.copied + result.stats.updated, 0);
    assert.equal(result.stats.hashed, 4);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('skips FIFOs with a warning and leaves the rest synced', async (t) => {
    const s = setup({ 'a.txt': 'a' });
    const fifo = path.join(s.source, 'pipe');
    const made = await import('node:child_process').then((cp) => cp.spawnSync('mkfifo', [fifo]).status === 0);
    if (!made) return t.skip('mkfifo is not available');
    const result = await sync(s);
    assert.ok(s.log.warnings.some((w) => w === 'skipped pipe (special file)'));
    assert.equal(result.exitStatus, 0);
    assert.equal(fs.existsSync(path.join(s.replica, 'pipe')), false);
    assert.equal(fs.readFileSync(path.join(s.replica, 'a.txt'), 'utf8'), 'a');
  });

  test('handles names as they come: spaces, unicode, newline, leading dash, 255 bytes, deep trees', async () => {
    const long = 'L'.repeat(251) + '.txt';
    const deep = Array.from({ length: 40 }, (_, i) => `d${i}`).join('/');
    const s = setup({
      'with space.txt': 's',
      'ünïcödé ✓.txt': 'u',
      'new\nline.txt': 'n',
      '-rf': 'dash',
      [long]: 'long',
      [`${deep}/bottom.txt`]: 'deep',
      '__proto__': 'proto',
      'constructor': 'ctor',
    });
    await settle();
    const first = await sync(s);
    assert.equal(first.stats.errors, 0);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    assert.ok(s.log.actions.includes('copied new\\nline.txt (new)'));
    await settle();
    const again = await sync(s);
    assert.equal(again.stats.hashed, 0);
    assert.equal(again.stats.copied, 0);
  });
});

describe('change detection', () => {
  test('a pass over an unchanged tree opens no file', async () => {
    const s = setup({ 'a.txt': 'a', 'b/c.txt': 'c', 'b/d/e.txt': 'e', 'l': { link: 'a.txt' } });
    await sync(s);
    await settle();
    await sync(s); // the first pass's records may be racy: this one settles them
    const result = await sync(s);
    assert.deepEqual(s.io.opens, []);
    assert.equal(result.stats.hashed, 0);
    assert.equal(result.stats.copied + result.stats.updated + result.stats.deleted, 0);
  });

  test('content rewritten with size and mtime put back (only ctime moved) is rehashed and copied', async () => {
    const s = setup({ 'doc.txt': { content: 'version-1', mtime: OLD } });
    await sync(s);
    await settle();
    writeTree(s.source, { 'doc.txt': { content: 'version-2', mtime: OLD } }); // like `touch -d`
    const result = await sync(s);
    assert.equal(result.stats.updated, 1);
    assert.equal(fs.readFileSync(path.join(s.replica, 'doc.txt'), 'utf8'), 'version-2');
    assert.ok(s.log.actions.includes('updated doc.txt (content changed)'));
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('mtime touched, content same: fixes the mtime without rewriting, source read once', async () => {
    const s = setup({ 'a.txt': { content: 'same', mtime: OLD }, 'b.txt': { content: 'other', mtime: OLD } });
    await settle();
    await sync(s);
    await settle();
    const inoBefore = fs.statSync(path.join(s.replica, 'a.txt')).ino;
    fs.utimesSync(path.join(s.source, 'a.txt'), OLD + 100, OLD + 100);
    await settle();
    const result = await sync(s);
    assert.deepEqual(s.io.opens, [path.join(s.source, 'a.txt')]);
    assert.equal(result.stats.updated, 1);
    assert.equal(result.stats.bytesCopied, 0);
    assert.equal(fs.statSync(path.join(s.replica, 'a.txt')).ino, inoBefore);
    assert.equal(fs.statSync(path.join(s.replica, 'a.txt')).mtimeMs, (OLD + 100) * 1000);
    assert.ok(s.log.actions.includes('updated a.txt (mtime)'));
  });

  test('permission change only: chmod on the replica, no copy', async () => {
    const s = setup({ 'a.sh': { content: 'echo', mode: 0o644, mtime: OLD } });
    await sync(s);
    await settle();
    fs.chmodSync(path.join(s.source, 'a.sh'), 0o700);
    const result = await sync(s);
    assert.equal(result.stats.bytesCopied, 0);
    assert.equal(readTree(s.replica)['a.sh'].mode, '700');
    assert.ok(s.log.actions.includes('updated a.sh (permissions)'));
  });

  test('replica drift: an edited or removed replica file is restored, the rest is not read', async () => {
    const s = setup({ 'keep.txt': { content: 'keep', mtime: OLD }, 'edit.txt': { content: 'original', mtime: OLD }, 'gone.txt': { content: 'gone', mtime: OLD }, 'touched.txt': { content: 'touch', mtime: OLD } });
    await settle();
    await sync(s);
    await settle();
    fs.writeFileSync(path.join(s.replica, 'edit.txt'), 'tampered'); // same size
    fs.rmSync(path.join(s.replica, 'gone.txt'));
    fs.utimesSync(path.join(s.replica, 'touched.txt'), OLD + 5, OLD + 5);
    const result = await sync(s);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    if (hasRsync()) assert.equal(rsyncCheck(s.source, s.replica), '');
    assert.ok(s.log.actions.includes('restored edit.txt (changed in replica)'));
    assert.ok(s.log.actions.includes('copied gone.txt (new)'));
    assert.ok(s.log.actions.includes('updated touched.txt (mtime)'));
    // keep.txt was vouched for by the cache on both sides: never opened.
    assert.ok(!s.io.opens.some((p) => p.endsWith('keep.txt')));
    assert.equal(result.stats.hashed, 4); // edit.txt replica + its copy, gone.txt copy, touched.txt replica
  });

  test('--checksum rehashes every file on both sides', async () => {
    const s = setup({ 'a.txt': 'a', 'b.txt': 'b' });
    await sync(s);
    await settle();
    const result = await sync(s, { checksum: true });
    assert.equal(result.stats.hashed, 4);
    assert.equal(result.stats.copied + result.stats.updated, 0);
  });

  test('a file modified within the racy window is not trusted next pass', async () => {
    const s = setup({ 'hot.txt': 'v1' });
    await sync(s); // written moments ago: racy, recorded untrusted
    let manifest = await Manifest.open(s.manifestPath, { source: s.source, replica: s.replica, warn: assert.fail });
    assert.equal(manifest.get('hot.txt')?.trusted, false);
    await settle();
    const result = await sync(s);
    assert.equal(result.stats.hashed, 1);
    assert.equal(result.stats.copied + result.stats.updated, 0);
    manifest = await Manifest.open(s.manifestPath, { source: s.source, replica: s.replica, warn: assert.fail });
    assert.equal(manifest.get('hot.txt')?.trusted, true);
    assert.equal((await sync(s)).stats.hashed, 0);
  });
});

describe('deletes and type changes', () => {
  test('deletes what the source no longer has: files, links, whole folders', async () => {
    const s = setup({ 'a.txt': 'a', 'old/x.txt': 'x', 'old/sub/y.txt': 'y', 'old/empty': { dir: true }, 'l': { link: 'a.txt' } });
    await sync(s);
    fs.rmSync(path.join(s.source, 'old'), { recursive: true });
    fs.rmSync(path.join(s.source, 'l'));
    const result = await sync(s);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    assert.equal(result.stats.deleted, 6); // x.txt, y.txt, sub/, empty/, old/, l
    assert.ok(s.log.actions.includes('deleted old/ (not in source)'));
    const manifest = await Manifest.open(s.manifestPath, { source: s.source, replica: s.replica, warn: assert.fail });
    assert.equal(manifest.get('old/x.txt'), undefined);
  });

  for (const [from, to] of [
    ['file', 'dir'],
    ['dir', 'file'],
    ['file', 'symlink'],
    ['symlink', 'file'],
    ['dir', 'symlink'],
    ['symlink', 'dir'],
  ] as const) {
    test(`a path that changed from ${from} to ${to}`, async () => {
      const make = (kind: string, root: string) => {
        const abs = path.join(root, 'p');
        fs.rmSync(abs, { recursive: true, force: true });
        if (kind === 'file') fs.writeFileSync(abs, `a ${kind}`);
        if (kind === 'dir') writeTree(abs, { 'child.txt': 'child', 'sub/grand.txt': 'grand' });
        if (kind === 'symlink') fs.symlinkSync('target-text', abs);
      };
      const s = setup({ 'other.txt': 'o' });
      make(from, s.source);
      await sync(s);
      assert.deepEqual(mirrorDiff(s.source, s.replica), []);
      make(to, s.source);
      const result = await sync(s);
      assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
      assert.deepEqual(mirrorDiff(s.source, s.replica), []);
      if (hasRsync()) assert.equal(rsyncCheck(s.source, s.replica), '');
      assert.deepEqual(tempFiles(s.replica), []);
    });
  }
});

describe('excludes', () => {
  test('excluded paths are not copied, not walked, and left alone in the replica', async () => {
    const s = setup({ 'a.txt': 'a', 'x.tmp': 't', 'sub/y.tmp': 't', 'node_modules/pkg/i.js': 'i', 'sub/keep.js': 'k', '.hidden': 'h' });
    writeTree(s.replica, { 'mine.tmp': 'replica only, excluded', 'cache/keep.tmp': 'kept', 'cache/drop.txt': 'dropped' });
    const result = await sync(s, { excludes: ['*.tmp', 'node_modules'] });
    const replica = readTree(s.replica);
    assert.deepEqual(Object.keys(replica).sort(), ['.hidden', 'a.txt', 'cache', 'cache/keep.tmp', 'mine.tmp', 'sub', 'sub/keep.js']);
    assert.equal(result.stats.deleted, 1); // cache/drop.txt; cache/ stays for its excluded file
    // not descended into
    assert.ok(!s.log.lines.some((l) => l.includes('node_modules')));
  });

  test('an excluded folder is never listed', async () => {
    const s = setup({ 'big/a.txt': 'a', 'b.txt': 'b' });
    const listed: string[] = [];
    const readdir = s.io.readdir;
    s.io.readdir = (p: string) => (listed.push(p), readdir(p));
    await sync(s, { excludes: ['big'] });
    assert.ok(!listed.some((p) => p.includes('big')));
  });
});

describe('dry run and guards', () => {
  test('--dry-run logs every action and changes neither replica nor manifest', async () => {
    const s = setup({ 'a.txt': 'a', 'd/b.txt': 'b' });
    const result = await sync(s, { dryRun: true });
    assert.equal(fs.existsSync(s.replica), false);
    assert.equal(fs.existsSync(s.manifestPath), false);
    assert.ok(s.log.actions.includes('would copy a.txt (new)'));
    assert.ok(s.log.actions.includes('would create d/ (new folder)'));
    assert.equal(result.stats.copied, 2);

    await sync(s);
    const before = readTree(s.replica);
    const manifestBefore = fs.readFileSync(s.manifestPath, 'utf8');
    fs.rmSync(path.join(s.source, 'a.txt'));
    fs.writeFileSync(path.join(s.source, 'new.txt'), 'new');
    await sync(s, { dryRun: true });
    assert.deepEqual(readTree(s.replica), before);
    assert.equal(fs.readFileSync(s.manifestPath, 'utf8'), manifestBefore);
    assert.ok(s.log.actions.includes('would delete a.txt (not in source)'));
  });

  test('--max-delete refuses every delete over the limit, still copies, exits 1', async () => {
    const s = setup({ 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', 'd/e.txt': 'e' });
    await sync(s);
    for (const f of ['a.txt', 'b.txt', 'd']) fs.rmSync(path.join(s.source, f), { recursive: true });
    fs.writeFileSync(path.join(s.source, 'new.txt'), 'n');
    const refused = await sync(s, { maxDelete: { count: 3 } }); // 4 entries: a, b, d/e.txt, d/
    assert.equal(refused.exitStatus, 1);
    assert.equal(refused.stats.deleted, 0);
    assert.ok(fs.existsSync(path.join(s.replica, 'a.txt')));
    assert.ok(fs.existsSync(path.join(s.replica, 'new.txt')));
    assert.ok(s.log.errors.some((e) => e.includes('refusing to delete 4 entries') && e.includes('--max-delete 3')));
    const allowed = await sync(s, { maxDelete: { count: 4 } });
    assert.equal(allowed.exitStatus, 0);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('--max-delete 0 refuses a single delete', async () => {
    const s = setup({ 'a.txt': 'a' });
    await sync(s);
    fs.rmSync(path.join(s.source, 'a.txt'));
    const result = await sync(s, { maxDelete: { count: 0 } });
    assert.equal(result.exitStatus, 1);
    assert.ok(fs.existsSync(path.join(s.replica, 'a.txt')));
  });
});

describe('failures are logged, skipped and counted', () => {
  test('an unreadable source folder deletes nothing beneath it (exit 1)', async () => {
    const s = setup({ 'ok.txt': 'ok', 'secret/a.txt': 'a', 'secret/b.txt': 'b' });
    await sync(s);
    fs.writeFileSync(path.join(s.source, 'new.txt'), 'new');
    s.io.fail = (call, p) => (call === 'readdir' && p.endsWith('/source/secret') ? errno('EACCES', 'permission denied') : undefined);
    const result = await sync(s);
    assert.equal(result.exitStatus, 1);
    assert.equal(result.stats.deleted, 0);
    assert.ok(fs.existsSync(path.join(s.replica, 'secret/a.txt')));
    assert.ok(fs.existsSync(path.join(s.replica, 'new.txt')));
    assert.ok(s.log.errors.some((e) => e.includes('reading source folder secret') && e.includes('EACCES')));
    // the records beneath it are kept for when it is readable again
    const manifest = await Manifest.open(s.manifestPath, { source: s.source, replica: s.replica, warn: assert.fail });
    assert.ok(manifest.get('secret/a.txt'));
  });

  test('an unreadable file is an error for that file only', async () => {
    const s = setup({ 'bad.txt': 'bad', 'good.txt': 'good' });
    s.io.fail = (call, p) => (call === 'openRead' && p.endsWith('bad.txt') ? errno('EACCES', 'permission denied') : undefined);
    const result = await sync(s);
    assert.equal(result.exitStatus, 1);
    assert.equal(result.stats.errors, 1);
    assert.equal(fs.readFileSync(path.join(s.replica, 'good.txt'), 'utf8'), 'good');
    assert.ok(s.log.errors.some((e) => /^copying \(opening\) bad\.txt: EACCES/.test(e)));
    s.io.fail = undefined;
    const retry = await sync(s);
    assert.equal(retry.exitStatus, 0);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('a write failure (ENOSPC) cleans its temporary file and the pass goes on', async () => {
    const s = setup({ 'big.bin': Buffer.alloc(3 << 20, 1), 'small.txt': 's' });
    let writes = 0;
    s.io.fail = (call) => (call === 'write' && ++writes === 2 ? errno('ENOSPC', 'no space left on device') : undefined);
    const result = await sync(s);
    assert.equal(result.exitStatus, 1);
    assert.deepEqual(tempFiles(s.replica), []);
    assert.equal(fs.existsSync(path.join(s.replica, 'big.bin')), false);
    assert.ok(s.log.errors.some((e) => e.includes('ENOSPC')));
  });

  test('copies over many batches, one rename failing (EIO), a read-only folder: the rest land in order, recorded; the failed one keeps its old content', async () => {
    const files = [...numbered('ro', 150), ...numbered('rw', 150)];
    const s = setup({ ro: { dir: true, mode: 0o555 }, ...Object.fromEntries(files.map((f) => [f, { content: `old ${f}`, mtime: OLD }])) });
    await sync(s);
    writePastReadOnly(s.source, Object.fromEntries(files.map((f) => [f, `new content of ${f}`])));
    await settle();
    const roDir = path.join(s.replica, 'ro');
    const broken = path.join(s.replica, 'rw/f070.txt');
    const readOnly = refusedWhileReadOnly(roDir);
    s.io.fail = (call, p) => (call === 'rename' && p === broken ? errno('EIO', 'i/o error') : readOnly(call, p));
    const result = await sync(s);
    assert.equal(result.exitStatus, 1);
    assert.deepEqual(s.log.errors, ['copying (renaming into place) rw/f070.txt: EIO: i/o error']);
    const landed = files.filter((f) => f !== 'rw/f070.txt');
    assert.deepEqual(s.log.actions, landed.map((f) => `updated ${f} (content changed)`));
    for (const f of landed) assert.equal(fs.readFileSync(path.join(s.replica, f), 'utf8'), `new content of ${f}`);
    assert.equal(fs.readFileSync(broken, 'utf8'), 'old rw/f070.txt');
    assert.deepEqual(tempFiles(s.replica), []);
    assert.equal(fs.statSync(roDir).mode & 0o7777, 0o555);
    for (const f of landed) assert.equal(result.manifest.get(f)?.md5, md5(`new content of ${f}`), f);
    assert.equal(result.manifest.get('rw/f070.txt')?.md5, md5('old rw/f070.txt'));
    // The next pass copies that one file and nothing else.
    s.io.fail = undefined;
    const retry = await sync(s);
    assert.equal(retry.exitStatus, 0);
    assert.deepEqual(s.log.actions, ['updated rw/f070.txt (content changed)']);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('temporary files left by a crash are swept', async () => {
    const s = setup({ 'a.txt': 'a', 'd/b.txt': 'b' });
    await sync(s);
    fs.writeFileSync(path.join(s.replica, '.folder-sync-0123456789abcdef.tmp'), 'half');
    fs.writeFileSync(path.join(s.replica, 'd', '.folder-sync-fedcba9876543210.tmp'), 'half');
    const result = await sync(s);
    assert.equal(result.stats.deleted, 0); // swept silently: ours, not the user's
    assert.deepEqual(s.log.actions, []);
    assert.deepEqual(tempFiles(s.replica), []);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });
});
