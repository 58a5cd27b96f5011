/** Never propagate a disaster: delete guards, a vanished or replaced source, moves, backups. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { parseMaxDelete, parseSize } from '../src/cli/config.js';
import { cliEnv, runCli, summaryCounts } from './helpers/cli.js';
import { mirrorDiff, mountExt4, readTree, settle, setup, sync, tempDir, writeTree, type Spec } from './helpers/tree.js';

function tree(n: number, prefix = 'f'): Record<string, Spec> {
  const spec: Record<string, Spec> = {};
  for (let i = 0; i < n; i++) spec[`${prefix}${i}.txt`] = `content ${prefix} ${i}\n`.repeat(1 + (i % 5));
  return spec;
}

describe('a vanished or replaced source', () => {
  test('an emptied source deletes nothing (exit 1) until --allow-mass-delete', async () => {
    const s = setup({ 'a.txt': 'a', 'd/b.txt': 'b' });
    await sync(s);
    fs.rmSync(s.source, { recursive: true });
    fs.mkdirSync(s.source); // like an unmounted mount point: the folder is there, empty
    const refused = await sync(s);
    assert.equal(refused.exitStatus, 1);
    assert.equal(refused.stats.deleted, 0);
    assert.ok(fs.existsSync(path.join(s.replica, 'd/b.txt')));
    assert.ok(s.log.errors.some((e) => /source .* is empty but the manifest lists 2 files .*--allow-mass-delete/.test(e)), s.log.errors.join('\n'));
    const allowed = await sync(s, { allowMassDelete: true });
    assert.equal(allowed.exitStatus, 0);
    assert.deepEqual(readTree(s.replica), {});
  });

  test('the same emptiness on a first pass (no manifest) protects a full replica too', async () => {
    const s = setup({});
    writeTree(s.replica, { 'precious.txt': 'p' });
    const result = await sync(s);
    assert.equal(result.exitStatus, 1);
    assert.ok(fs.existsSync(path.join(s.replica, 'precious.txt')));
    assert.ok(s.log.errors.some((e) => /is empty but the replica holds 1 entries/.test(e)));
  });

  test('a source folder replaced by another one (new inode) still copies, but deletes nothing', async () => {
    const s = setup({ 'a.txt': 'a', 'b.txt': 'b' });
    await sync(s);
    fs.renameSync(s.source, s.source + '-old');
    writeTree(s.source, { 'c.txt': 'c' }); // a different disk mounted at the same place
    const result = await sync(s);
    assert.equal(result.exitStatus, 1);
    assert.equal(result.stats.copied, 1);
    assert.equal(result.stats.deleted, 0);
    assert.ok(s.log.errors.some((e) => /is not the folder synced before: its device\/inode is \d+\/\d+, was \d+\/\d+/.test(e)), s.log.errors.join('\n'));
    assert.ok(fs.existsSync(path.join(s.replica, 'a.txt')));
    // Accepted once, the new folder is the source from then on.
    assert.equal((await sync(s, { allowMassDelete: true })).exitStatus, 0);
    fs.writeFileSync(path.join(s.source, 'd.txt'), 'd');
    fs.rmSync(path.join(s.source, 'c.txt'));
    const next = await sync(s);
    assert.equal(next.exitStatus, 0);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });
});

describe('a vanished replica (its disk not mounted)', () => {
  test('a replica found empty while the manifest lists files in it: nothing done (exit 1) until the disk is back, or --allow-empty-replica', async () => {
    const s = setup(tree(20));
    await sync(s);
    fs.rmSync(s.replica, { recursive: true });
    const refused = await sync(s);
    assert.equal(refused.exitStatus, 1);
    assert.deepEqual(s.log.errors, [`replica ${s.replica} is empty but the manifest lists 20 files copied there (is its disk unmounted?); nothing done. If it is meant to be empty (a new disk), run once with --allow-empty-replica`]);
    assert.deepEqual(s.log.actions, []);
    assert.deepEqual(fs.readdirSync(s.replica), [], 'created, as the contract says, and left empty');
    assert.equal(refused.manifest.size, 20, 'the records kept for the disk\'s return');
    const dry = await sync(s, { dryRun: true });
    assert.equal(dry.exitStatus, 1, 'a dry run says the same');
    const allowed = await sync(s, { allowEmptyReplica: true });
    assert.equal(allowed.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(allowed.stats.copied, 20);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('a replica on a disk that is unmounted, then mounted again: nothing copied beneath it meanwhile; then nothing to do', { skip: process.getuid?.() === 0 ? false : 'needs root to mount' }, async (t) => {
    const disk = mountExt4(tempDir('fs-unmounted-'));
    if (disk === undefined) return t.skip('cannot make and mount an ext4 image here');
    try {
      for (const replica of [disk.mnt, path.join(disk.mnt, 'below')]) {
        const s = { ...setup(tree(30)), replica };
        await settle();
        await sync(s);
        disk.unmount();
        const refused = await sync(s);
        assert.equal(refused.exitStatus, 1, replica);
        assert.deepEqual(s.log.actions, [], replica);
        assert.ok(!fs.existsSync(replica) || fs.readdirSync(replica).length === 0, 'nothing written on the disk beneath');
        if (replica !== disk.mnt) fs.rmSync(replica, { recursive: true }); // (created, as the contract says)
        assert.ok(disk.mount());
        const back = await sync(s);
        assert.equal(back.exitStatus, 0, s.log.lines.join('\n'));
        assert.deepEqual(s.log.actions, []);
        assert.equal(back.stats.hashed, 0);
        assert.deepEqual(mirrorDiff(s.source, replica), []);
      }
    } finally {
      disk.unmount();
    }
  });
});

describe('delete limits', () => {
  test('60% of the files deleted with --max-delete 10%: nothing deleted, numbers in the log', async () => {
    const s = setup(tree(50));
    await sync(s);
    for (let i = 0; i < 30; i++) fs.rmSync(path.join(s.source, `f${i}.txt`));
    fs.writeFileSync(path.join(s.source, 'new.txt'), 'new');
    const result = await sync(s, { maxDelete: { percent: 10 } });
    assert.equal(result.exitStatus, 1);
    assert.equal(result.stats.deleted, 0);
    assert.equal(result.stats.copied, 1);
    assert.ok(s.log.errors.some((e) => e.includes('refusing to delete 30 entries: more than --max-delete 10% (5 of 50 replica entries)')), s.log.errors.join('\n'));
    assert.equal(fs.readdirSync(s.replica).length, 51);
    const ok = await sync(s, { maxDelete: { percent: 60 } });
    assert.equal(ok.exitStatus, 0);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('--max-delete-bytes refuses past the byte limit, allows under it', async () => {
    const s = setup({ 'big.bin': Buffer.alloc(3000, 1), 'small.txt': 'tiny' });
    await sync(s);
    fs.rmSync(path.join(s.source, 'big.bin'));
    const refused = await sync(s, { maxDeleteBytes: 2048 });
    assert.equal(refused.exitStatus, 1);
    assert.ok(fs.existsSync(path.join(s.replica, 'big.bin')));
    assert.ok(s.log.errors.some((e) => e.includes('refusing to delete 2.9 KiB (3000 bytes) of files: more than --max-delete-bytes 2.0 KiB (2048 bytes)')), s.log.errors.join('\n'));
    const allowed = await sync(s, { maxDeleteBytes: 4096 });
    assert.equal(allowed.exitStatus, 0);
    assert.equal(fs.existsSync(path.join(s.replica, 'big.bin')), false);
  });

  test('limits parse as documented', () => {
    assert.deepEqual(parseMaxDelete('10%'), { percent: 10 });
    assert.deepEqual(parseMaxDelete('7'), { count: 7 });
    assert.throws(() => parseMaxDelete('150%'), /between 0% and 100%/);
    assert.equal(parseSize('500M', 'x'), 500 * 2 ** 20);
    assert.equal(parseSize('2G', 'x'), 2 * 2 ** 30);
    assert.equal(parseSize('1.5K', 'x'), 1536);
    assert.equal(parseSize('2MB', 'x'), 2_000_000);
    assert.equal(parseSize('3MiB', 'x'), 3 * 2 ** 20);
    assert.equal(parseSize('4096', 'x'), 4096);
    assert.throws(() => parseSize('lots', '--max-delete-bytes'), /--max-delete-bytes must be a size/);
  });
});

describe('moves and renames', () => {
  test('a renamed folder of 1,000 files is renamed in the replica: nothing copied', async () => {
    const spec: Record<string, Spec> = {};
    for (let i = 0; i < 1000; i++) spec[`album/sub${i % 10}/photo-${i}.jpg`] = `jpeg bytes ${i} `.repeat(3 + (i % 7));
    const s = setup(spec);
    await settle();
    await sync(s);
    await settle();
    fs.renameSync(path.join(s.source, 'album'), path.join(s.source, 'Album 2024'));
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.errors.join('\n'));
    assert.equal(result.stats.copied, 0);
    assert.equal(result.stats.bytesCopied, 0);
    assert.equal(result.stats.moved, 1000);
    assert.equal(result.stats.deleted, 11); // album/ and its 10 subfolders, emptied by the moves
    assert.ok(s.log.actions.includes('moved album/sub3/photo-3.jpg -> Album 2024/sub3/photo-3.jpg (moved in source)'));
    assert.match(s.log.lines.at(-1)!, /0 copied, 1000 moved, 0 updated, 11 deleted/);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    await settle();
    const after = await sync(s);
    assert.equal(after.stats.hashed, 0); // the moved files are recorded under their new paths
  });

  test('a single moved file is renamed, hashed once, not copied', async () => {
    const s = setup({ 'inbox/report.pdf': Buffer.alloc(50_000, 3), 'other.txt': 'o' });
    await settle();
    await sync(s);
    fs.mkdirSync(path.join(s.source, 'archive'));
    fs.renameSync(path.join(s.source, 'inbox/report.pdf'), path.join(s.source, 'archive/report-final.pdf'));
    const result = await sync(s);
    assert.equal(result.stats.moved, 1);
    assert.equal(result.stats.copied, 0);
    assert.equal(result.stats.hashed, 1);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('a new file with a vanished file\'s size but other content is copied, not moved', async () => {
    const s = setup({ 'a.txt': 'aaaa' });
    await sync(s);
    fs.rmSync(path.join(s.source, 'a.txt'));
    fs.writeFileSync(path.join(s.source, 'b.txt'), 'bbbb');
    const result = await sync(s);
    assert.equal(result.stats.moved, 0);
    assert.equal(result.stats.copied, 1);
    assert.equal(fs.readFileSync(path.join(s.replica, 'b.txt'), 'utf8'), 'bbbb');
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });
});

describe('--backup-dir', () => {
  test('deleted and overwritten files land under <dir>/<time>/<relPath>', async () => {
    const s = setup({ 'keep.txt': 'keep', 'docs/old.txt': 'old', 'docs/edit.txt': 'v1', 'gone/deep/x.txt': 'x' });
    await sync(s);
    const backupDir = path.join(path.dirname(s.replica), 'backups');
    fs.rmSync(path.join(s.source, 'docs/old.txt'));
    fs.rmSync(path.join(s.source, 'gone'), { recursive: true });
    fs.writeFileSync(path.join(s.source, 'docs/edit.txt'), 'version 2');
    const result = await sync(s, { backupDir });
    assert.equal(result.exitStatus, 0, s.log.errors.join('\n'));
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    const stamps = fs.readdirSync(backupDir);
    assert.equal(stamps.length, 1);
    assert.match(stamps[0], /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z$/);
    const saved = readTree(path.join(backupDir, stamps[0]));
    assert.deepEqual(Object.keys(saved).filter((k) => saved[k].kind === 'file').sort(), ['docs/edit.txt', 'docs/old.txt', 'gone/deep/x.txt']);
    assert.equal(fs.readFileSync(path.join(backupDir, stamps[0], 'docs/edit.txt'), 'utf8'), 'v1');
  });
});

describe('guards on the command line', () => {
  function world() {
    const base = tempDir('fs-guard-');
    const source = path.join(base, 'source');
    writeTree(source, tree(20));
    return { base, source, replica: path.join(base, 'replica'), log: path.join(base, 'log'), env: cliEnv(path.join(base, 'state')) };
  }

  test('--max-delete 10% and --max-delete-bytes, exit 1 with the numbers', () => {
    const w = world();
    assert.equal(runCli([w.source, w.replica, '1', w.log, '--once'], w.env).status, 0);
    for (let i = 0; i < 5; i++) fs.rmSync(path.join(w.source, `f${i}.txt`));
    const pct = runCli([w.source, w.replica, '1', w.log, '--once', '--max-delete', '10%'], w.env);
    assert.equal(pct.status, 1);
    assert.match(pct.stderr, /refusing to delete 5 entries: more than --max-delete 10% \(2 of 20 replica entries\)/);
    const bytes = runCli([w.source, w.replica, '1', w.log, '--once', '--max-delete-bytes', '10B'], w.env);
    assert.equal(bytes.status, 1);
    assert.match(bytes.stderr, /--max-delete-bytes/);
    const ok = runCli([w.source, w.replica, '1', w.log, '--once', '--max-delete', '25%', '--max-delete-bytes', '1M'], w.env);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(summaryCounts(ok.stdout).deleted, 5);
  });

  test('an emptied source: exit 1, then --allow-mass-delete', () => {
    const w = world();
    assert.equal(runCli([w.source, w.replica, '1', w.log, '--once'], w.env).status, 0);
    for (const name of fs.readdirSync(w.source)) fs.rmSync(path.join(w.source, name));
    const refused = runCli([w.source, w.replica, '1', w.log, '--once'], w.env);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /is empty but the manifest lists 20 files.*--allow-mass-delete/);
    assert.equal(fs.readdirSync(w.replica).length, 20);
    const allowed = runCli([w.source, w.replica, '1', w.log, '--once', '--allow-mass-delete'], w.env);
    assert.equal(allowed.status, 0);
    assert.equal(fs.readdirSync(w.replica).length, 0);
  });

  test('--backup-dir inside the source is bad usage; inside the replica it is kept out of the sync', () => {
    const w = world();
    const inside = runCli([w.source, w.replica, '1', w.log, '--once', '--backup-dir', path.join(w.source, 'bk')], w.env);
    assert.equal(inside.status, 2);
    assert.match(inside.stderr, /backup dir .* is inside source/);
    assert.equal(runCli([w.source, w.replica, '1', w.log, '--once'], w.env).status, 0);
    fs.rmSync(path.join(w.source, 'f1.txt'));
    const r = runCli([w.source, w.replica, '1', w.log, '--once', '--backup-dir', path.join(w.replica, '.trash')], w.env);
    assert.equal(r.status, 0, r.stderr);
    const stamp = fs.readdirSync(path.join(w.replica, '.trash'))[0];
    assert.ok(fs.existsSync(path.join(w.replica, '.trash', stamp, 'f1.txt')));
    const again = runCli([w.source, w.replica, '1', w.log, '--once', '--backup-dir', path.join(w.replica, '.trash')], w.env);
    assert.equal(summaryCounts(again.stdout).deleted, 0); // the backups are not "extra" entries
  });
});

describe('review regressions (guards)', () => {
  test('an emptied source is refused even when the replica side of the walk is incomplete', async () => {
    const s = setup({ 'a.txt': 'a', 'd/b.txt': 'b' });
    await sync(s);
    fs.writeFileSync(Buffer.concat([Buffer.from(s.replica + '/d/bad'), Buffer.from([0xff])]), 'x');
    for (const name of fs.readdirSync(s.source)) fs.rmSync(path.join(s.source, name), { recursive: true });
    const result = await sync(s);
    assert.equal(result.exitStatus, 1);
    assert.equal(result.stats.deleted, 0);
    assert.ok(fs.existsSync(path.join(s.replica, 'a.txt')));
  });

  test('a source folder deleted and recreated (ext4 reuses the inode) is caught by its birth time', async (t) => {
    const s = setup({ 'f1': '1', 'f2': '2', 'f3': '3' });
    await sync(s);
    const before = fs.statSync(s.source, { bigint: true });
    if (before.birthtimeNs === 0n) return t.skip('no birth time on this filesystem');
    fs.rmSync(s.source, { recursive: true });
    await settle(20);
    writeTree(s.source, { 'f1': '1', 'new': 'new' });
    const result = await sync(s);
    assert.equal(result.stats.deleted, 0);
    assert.equal(result.exitStatus, 1);
    assert.ok(s.log.errors.some((e) => /not the folder synced before/.test(e)), s.log.errors.join('\n'));
  });

  test('--max-delete 29% of 100 allows 29 deletes (no floating-point loss)', async () => {
    const s = setup(tree(100));
    await sync(s);
    for (let i = 0; i < 29; i++) fs.rmSync(path.join(s.source, `f${i}.txt`));
    const result = await sync(s, { maxDelete: { percent: 29 } });
    assert.equal(result.exitStatus, 0, s.log.errors.join('\n'));
    assert.equal(result.stats.deleted, 29);
  });

  test('a replaced source does not rearrange the replica by moves either', async () => {
    const s = setup({ 'photos/p1.jpg': 'one', 'photos/p2.jpg': 'two' });
    await sync(s);
    fs.renameSync(s.source, s.source + '-disk1');
    writeTree(s.source, { 'old/p1.jpg': 'one', 'old/p2.jpg': 'two' });
    const result = await sync(s);
    assert.equal(result.stats.moved, 0);
    assert.equal(fs.readFileSync(path.join(s.replica, 'photos/p1.jpg'), 'utf8'), 'one');
    assert.equal(fs.readFileSync(path.join(s.replica, 'old/p1.jpg'), 'utf8'), 'one');
  });

  test('a refused pass keeps the manifest: remounted, nothing is read again', async () => {
    const s = setup({ 'a.txt': 'a', 'b.txt': 'b' });
    await settle();
    await sync(s);
    fs.renameSync(s.source, s.source + '-away');
    fs.mkdirSync(s.source);
    assert.equal((await sync(s)).exitStatus, 1); // "unmounted": refused
    fs.rmdirSync(s.source);
    fs.renameSync(s.source + '-away', s.source);
    const back = await sync(s);
    assert.equal(back.exitStatus, 0);
    assert.equal(back.stats.hashed, 0);
  });

  test('a backup dir inside the replica reserves exactly its own path', () => {
    const base = tempDir('fs-guard-');
    const source = path.join(base, 'source');
    const replica = path.join(base, 'replica');
    writeTree(source, { 'old.1': '1', 'old.lock': 'l', 'old.d/x': 'x', 'normal': 'n' });
    const r = runCli([source, replica, '1', path.join(base, 'log'), '--once', '--backup-dir', path.join(replica, 'old')], cliEnv(path.join(base, 'state')));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(replica).sort(), ['normal', 'old.1', 'old.d', 'old.lock']);
  });
});
