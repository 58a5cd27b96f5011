/**
 * Metadata as it was: owners and groups (as root; as a user, through setpriv), folder times,
 * nanosecond mtimes, folders that shut us out, entries that change type during a pass. Real
 * folders, asserted on the replica's lstat and on what a no-change pass opens and changes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { groupsOnly } from '../src/compare/owners.js';
import { loadNative } from '../src/native.js';
import { BIN } from './helpers/cli.js';
import { errno, mirrorDiff, settle, setup, sync, tempDir, writeTree, type SyncSetup } from './helpers/tree.js';

const asRoot = process.getuid?.() === 0;
const notRoot = asRoot ? false : 'needs root (to give files other owners)';
const OLD = 1_600_000_000n * 1_000_000_000n; // 2020-09-13T12:26:40Z, in ns

/** Every entry below `root` (and `root`): kind, owner, group, mode, mtime (ns), and ctime and inode (what a change would move). */
function metadata(root: string): Record<string, { uid: bigint; gid: bigint; mode: bigint; mtimeNs: bigint; ctimeNs: bigint; ino: bigint }> {
  const out: ReturnType<typeof metadata> = {};
  const walk = (abs: string, rel: string): void => {
    const st = fs.lstatSync(abs, { bigint: true });
    out[rel] = { uid: st.uid, gid: st.gid, mode: st.mode, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino };
    if (st.isDirectory()) for (const name of fs.readdirSync(abs).sort()) walk(path.join(abs, name), rel === '.' ? name : `${rel}/${name}`);
  };
  walk(root, '.');
  return out;
}

/** What must match between the two trees: owner, group, mode and mtime of every entry (links: owner, group, mtime). */
function sameMetadata(s: SyncSetup, ignore: string[] = []): void {
  const source = metadata(s.source);
  const replica = metadata(s.replica);
  for (const name of ignore) delete replica[name];
  assert.deepEqual(Object.keys(replica), Object.keys(source));
  for (const [rel, a] of Object.entries(source)) {
    const b = replica[rel];
    assert.deepEqual({ uid: b.uid, gid: b.gid, mode: b.mode, mtimeNs: b.mtimeNs }, { uid: a.uid, gid: a.gid, mode: a.mode, mtimeNs: a.mtimeNs }, rel);
  }
}

/** Folders' mtimes set to `OLD` plus a few ns each, deepest first (so writing one changes no other's). */
/** The pass after: nothing logged, no file opened or hashed, nothing in the replica changed (folders included). */
async function quietPass(s: SyncSetup, options: Parameters<typeof sync>[1] = {}): Promise<void> {
  const before = metadata(s.replica);
  const again = await sync(s, options);
  assert.deepEqual(s.log.actions, [], 'a no-change pass after it');
  assert.deepEqual(s.io.opens, []);
  assert.equal(again.stats.hashed, 0);
  assert.deepEqual(metadata(s.replica), before, 'nothing in the replica changed, folders included');
}

function ageFolders(root: string): void {
  const folders: string[] = [];
  const walk = (dir: string): void => {
    folders.push(dir);
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(dir, e.name));
  };
  walk(root);
  folders.reverse().forEach((dir, i) => {
    const ns = OLD + BigInt(i * 1_000 + 7);
    spawnSync('touch', ['-d', `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`, dir]);
  });
}

describe('owners and groups', () => {
  test('as root: files, folders and links keep their owner and group (lchown, never following a link)', { skip: notRoot }, async () => {
    const s = setup({ 'a.txt': 'a', 'd/b.txt': 'b', 'd/e': { dir: true }, l: { link: 'a.txt' }, 'd/l2': { link: '../nowhere' } });
    fs.chownSync(path.join(s.source, 'a.txt'), 1234, 5678);
    fs.chownSync(path.join(s.source, 'd'), 2000, 3000);
    fs.chownSync(path.join(s.source, 'd/b.txt'), 4000, 5000);
    fs.chownSync(path.join(s.source, 'd/e'), 6000, 7000);
    fs.lchownSync(path.join(s.source, 'l'), 8000, 9000);
    fs.lchownSync(path.join(s.source, 'd/l2'), 8001, 9001);
    ageFolders(s.source);
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    sameMetadata(s);
    // The link target's owner is untouched: a link's chown never follows it.
    assert.equal(fs.statSync(path.join(s.replica, 'a.txt')).uid, 1234);
  });

  test('as root: a chown in the source updates the owner without rewriting the file, and the pass after opens nothing, changes no folder', { skip: notRoot }, async () => {
    const s = setup({ 'a.txt': 'alpha', 'd/b.txt': 'bravo' });
    ageFolders(s.source);
    await settle();
    await sync(s);
    const inode = fs.statSync(path.join(s.replica, 'd/b.txt')).ino;
    fs.chownSync(path.join(s.source, 'd/b.txt'), 4242, 4343);
    await settle(); // (a file changed within 100 ms of its read is read again next pass: the racy rule)
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(s.log.actions, ['updated d/b.txt (owner, group)']);
    assert.equal(fs.statSync(path.join(s.replica, 'd/b.txt')).ino, inode, 'not rewritten');
    sameMetadata(s);
    await quietPass(s);
  });

  test('as a user: the groups it is in are kept, others and the owner are not; a chgrp is an update', { skip: notRoot }, async () => {
    // (Run as root with a user's rule: the calls are the same a user makes, and root may make them.)
    const s = setup({ 'mine.txt': 'm', 'theirs.txt': 't', d: { dir: true } });
    fs.chownSync(path.join(s.source, 'mine.txt'), 1234, 4242);
    fs.chownSync(path.join(s.source, 'theirs.txt'), 1234, 5555);
    fs.chownSync(path.join(s.source, 'd'), 1234, 4242);
    const owners = groupsOnly([4242]);
    assert.equal((await sync(s, { owners })).exitStatus, 0, s.log.lines.join('\n'));
    const st = (rel: string) => fs.lstatSync(path.join(s.replica, rel));
    assert.deepEqual([st('mine.txt').uid, st('mine.txt').gid], [0, 4242]);
    assert.deepEqual([st('theirs.txt').uid, st('theirs.txt').gid], [0, 0]);
    assert.deepEqual([st('d').uid, st('d').gid], [0, 4242]);
    assert.equal((await sync(s, { owners })).stats.updated, 0, 'the owner and the other group are not differences');
  });

  test('a file system that refuses owners: one warning a pass, not one a file, the rest of each entry kept, exit 0', { skip: notRoot }, async () => {
    const s = setup({ 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', d: { dir: true } });
    for (const name of ['a.txt', 'b.txt', 'c.txt', 'd']) fs.chownSync(path.join(s.source, name), 1234, 5678);
    s.io.fail = (call) => (call === 'fchown' || call === 'lchown' ? errno('EPERM', 'operation not permitted') : undefined);
    const first = await sync(s);
    assert.equal(first.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(first.stats.copied, 3);
    assert.equal(s.log.warnings.filter((w) => w.includes('cannot set owners or groups')).length, 1, s.log.warnings.join('\n'));
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    // A pass that only finds owners to fix: no line for them, one warning, exit 0.
    fs.chmodSync(path.join(s.source, 'b.txt'), 0o600);
    const second = await sync(s);
    assert.equal(second.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(s.log.actions, ['updated b.txt (permissions)']);
    assert.equal(s.log.warnings.length, 1, s.log.warnings.join('\n'));
  });
});

describe('times', () => {
  test('file, folder and link times to the nanosecond (with the addon), folders set once their content is final', { skip: loadNative() ? false : 'the addon is not built: times are kept to the microsecond' }, async () => {
    const s = setup({ 'a.txt': 'a', 'd/b.txt': 'b', 'd/e/c.txt': 'c', 'd/l': { link: 'b.txt' } });
    for (const [rel, at] of [['a.txt', '2001-02-03 04:05:06.123456789'], ['d/b.txt', '1999-01-01 00:00:00.000000001'], ['d/l', '2002-02-02 02:02:02.987654321']]) {
      assert.equal(spawnSync('touch', ['-h', '-d', at, path.join(s.source, rel)]).status, 0);
    }
    ageFolders(s.source);
    assert.equal((await sync(s)).exitStatus, 0, s.log.lines.join('\n'));
    sameMetadata(s);
    assert.equal(fs.lstatSync(path.join(s.replica, 'a.txt'), { bigint: true }).mtimeNs % 1_000_000_000n, 123_456_789n);
  });

  test('folder times after copies, deletes and moves into them; a no-change pass opens no file and changes no folder', async () => {
    const s = setup({ 'a/x.txt': 'x', 'a/y.txt': 'y', 'b/z.txt': 'zed', 'c/keep.txt': 'k', 'c/deep/w.txt': 'w' });
    ageFolders(s.source);
    await settle();
    await sync(s);
    sameMetadata(s);
    fs.writeFileSync(path.join(s.source, 'a/new.txt'), 'new'); // a copy into a/
    fs.rmSync(path.join(s.source, 'a/y.txt')); // a delete from a/
    fs.renameSync(path.join(s.source, 'b/z.txt'), path.join(s.source, 'c/deep/z.txt')); // a move from b/ into c/deep/
    fs.mkdirSync(path.join(s.source, 'c/new')); // a folder created in c/
    await settle(); // (a file changed within 100 ms of its read is read again next pass: the racy rule)
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.ok(s.log.actions.includes('moved b/z.txt -> c/deep/z.txt (moved in source)'), s.log.actions.join('\n'));
    sameMetadata(s);
    await quietPass(s);
  });

  test('a folder whose mtime alone differs (touched) gets the source\'s, silently; a dry run touches nothing', async () => {
    const s = setup({ 'd/a.txt': 'a' });
    await sync(s);
    spawnSync('touch', ['-d', '2010-10-10 10:10:10.5', path.join(s.source, 'd')]);
    const before = metadata(s.replica);
    await sync(s, { dryRun: true });
    assert.deepEqual(metadata(s.replica), before);
    const result = await sync(s);
    assert.deepEqual(s.log.actions, []);
    assert.equal(result.stats.updated, 0);
    sameMetadata(s);
  });
});

describe('a replica folder that shuts us out', () => {
  const setpriv = spawnSync('setpriv', ['--version']).status === 0;
  const skip = !asRoot ? 'needs root (to run as nobody through setpriv)' : !setpriv ? 'no setpriv' : false;

  /** The CLI as `nobody` (in groups 65534 and 4242) on `base`'s trees: its status and output. */
  function asNobody(base: string, ...extra: string[]): { status: number | null; out: string } {
    const args = ['--reuid=65534', '--regid=65534', '--groups=65534,4242', '--', process.execPath, '--import', import.meta.resolve('tsx'), BIN];
    const r = spawnSync('setpriv', [...args, 'source', 'replica', '1', 'sync.log', '--once', '--manifest', 'm.json', ...extra], { cwd: base, encoding: 'utf8', timeout: 60_000, env: { ...process.env, HOME: base } });
    return { status: r.status, out: r.stdout + r.stderr };
  }

  test('as nobody: a source folder made unreadable, then readable again: the next pass opens the replica folder for itself, exit 0, an exact mirror', { skip }, () => {
    const base = tempDir('fs-nobody-');
    fs.chmodSync(base, 0o755);
    writeTree(path.join(base, 'source'), { 'locked/f.txt': 'f', 'open/g.txt': 'g', 'ours.txt': 'o', 'theirs.txt': 't' });
    spawnSync('chown', ['-R', '65534:65534', base]);
    fs.chownSync(path.join(base, 'source/ours.txt'), 65534, 4242); // a group nobody is in (setpriv's --groups)
    fs.chownSync(path.join(base, 'source/theirs.txt'), 65534, 5555); // one it is not in
    fs.chmodSync(path.join(base, 'source/locked'), 0o000);
    const first = asNobody(base);
    assert.equal(first.status, 1, first.out); // the source folder cannot be read
    assert.match(first.out, /reading source folder locked: EACCES/);
    const replica = path.join(base, 'replica');
    assert.equal(fs.statSync(path.join(replica, 'locked')).mode & 0o777, 0o000, 'mirrored as the source had it');
    assert.equal(fs.statSync(path.join(replica, 'ours.txt')).gid, 4242);
    assert.equal(fs.statSync(path.join(replica, 'theirs.txt')).gid, 65534);

    fs.chmodSync(path.join(base, 'source/locked'), 0o750);
    const second = asNobody(base, '--log-level', 'debug');
    assert.equal(second.status, 0, second.out);
    assert.match(second.out, /replica folder locked \(mode 000\) opened for this pass/);
    assert.equal(fs.statSync(path.join(replica, 'locked')).mode & 0o777, 0o750);
    assert.equal(fs.readFileSync(path.join(replica, 'locked/f.txt'), 'utf8'), 'f');
    assert.deepEqual(mirrorDiff(path.join(base, 'source'), replica), []);
    const third = asNobody(base);
    assert.equal(third.status, 0, third.out);
    assert.match(third.out, /0 copied, 0 moved, 0 updated, 0 deleted, 0 hashed, 0 errors/);
  });
});

describe('an entry that changes type during a pass', () => {
  test('a file that became a link, a link that became a file: warnings (the next pass mirrors them), exit 0', async () => {
    const s = setup({ 'f.txt': 'file', 'l': { link: 'f.txt' }, 'g.txt': 'same size', 'h.txt': 'h' });
    await sync(s);
    fs.writeFileSync(path.join(s.source, 'g.txt'), 'SAME SIZE'); // to be read (same size: the content decides)
    fs.writeFileSync(path.join(s.source, 'h.txt'), 'h2 longer'); // to be copied
    fs.rmSync(path.join(s.source, 'l'));
    fs.symlinkSync('g.txt', path.join(s.source, 'l')); // a link to read
    // Between the walk and the reads: g.txt becomes a link, h.txt a folder, l a file.
    const swap = new Set(['g.txt', 'h.txt', 'l']);
    s.io.fail = (call, p) => {
      const name = path.basename(p);
      if (path.dirname(p) !== s.source || !swap.has(name) || !['openRead', 'readlink'].includes(call)) return undefined;
      swap.delete(name);
      fs.rmSync(p);
      if (name === 'g.txt') fs.symlinkSync('f.txt', p);
      else if (name === 'h.txt') fs.mkdirSync(p);
      else fs.writeFileSync(p, 'now a file');
      return undefined;
    };
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(result.stats.errors, 0);
    assert.ok(s.log.warnings.filter((w) => w.includes('changed type')).length >= 2, s.log.warnings.join('\n'));
    s.io.fail = undefined;
    assert.equal((await sync(s)).exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });
});


describe('--hard-links', () => {
  /** The replica's names of one inode, by inode, as sorted lists. */
  function linkSets(root: string, names: string[]): string[][] {
    const byInode = new Map<bigint, string[]>();
    for (const name of names) {
      const ino = fs.lstatSync(path.join(root, name), { bigint: true }).ino;
      byInode.set(ino, [...(byInode.get(ino) ?? []), name]);
    }
    return [...byInode.values()].map((set) => set.sort()).sort((a, b) => a[0].localeCompare(b[0]));
  }

  /** A pass, then a no-change pass: no action, no file opened, nothing in the replica changed. */
  async function settled(s: SyncSetup): Promise<void> {
    await settle();
    const result = await sync(s, { hardLinks: true });
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    await quietPass(s, { hardLinks: true });
  }

  test('a group across folders is one file in the replica: copied once, the other names linked; it grows, loses a name, a name becomes a file of its own, the group moves', async () => {
    const s = setup({ 'a/x': 'one', 'solo': 'solo' });
    const src = (rel: string) => path.join(s.source, rel);
    fs.mkdirSync(src('b'));
    fs.linkSync(src('a/x'), src('a/y'));
    fs.linkSync(src('a/x'), src('b/z'));
    await settle();
    const first = await sync(s, { hardLinks: true });
    assert.equal(first.stats.bytesCopied, 3 + 4, 'the group copied once');
    assert.ok(s.log.actions.includes('copied a/y (hard link to a/x)') && s.log.actions.includes('copied b/z (hard link to a/x)'), s.log.actions.join('\n'));
    assert.deepEqual(linkSets(s.replica, ['a/x', 'a/y', 'b/z', 'solo']), [['a/x', 'a/y', 'b/z'], ['solo']]);
    await settled(s);

    fs.linkSync(src('a/x'), src('b/w')); // grown
    await settled(s);
    assert.deepEqual(linkSets(s.replica, ['a/x', 'a/y', 'b/z', 'b/w']), [['a/x', 'a/y', 'b/w', 'b/z']]);

    fs.rmSync(src('a/y')); // one name deleted
    await settled(s);
    assert.deepEqual(linkSets(s.replica, ['a/x', 'b/z', 'b/w']), [['a/x', 'b/w', 'b/z']]);

    fs.rmSync(src('b/z'));
    fs.writeFileSync(src('b/z'), 'one'); // a file of its own, with the same content
    await settled(s);
    assert.deepEqual(linkSets(s.replica, ['a/x', 'b/z', 'b/w']), [['a/x', 'b/w'], ['b/z']]);

    fs.mkdirSync(src('c'));
    fs.renameSync(src('a/x'), src('c/x')); // the group moved
    fs.renameSync(src('b/w'), src('c/w'));
    await settle();
    await sync(s, { hardLinks: true });
    assert.equal(s.log.actions.filter((l) => l.startsWith('copied c/') && !l.includes('hard link')).length, 0, 'moved, not copied: ' + s.log.actions.join('\n'));
    await settled(s);
    assert.deepEqual(linkSets(s.replica, ['c/x', 'c/w', 'b/z']), [['b/z'], ['c/w', 'c/x']]);
  });

  test('without --hard-links, linked source files are separate copies; verify --hard-links tells the difference', async () => {
    const s = setup({ 'a': 'linked' });
    fs.linkSync(path.join(s.source, 'a'), path.join(s.source, 'b'));
    await settle();
    await sync(s);
    assert.deepEqual(linkSets(s.replica, ['a', 'b']), [['a'], ['b']]);
    const { verify } = await import('../src/commands/verify.js');
    const { includeAll } = await import('../src/tree/filter.js');
    const plain = await verify({ source: s.source, replica: s.replica, exclude: includeAll, threads: false });
    assert.deepEqual(plain.differences.filter((d) => d.kind !== 'mtime'), []);
    const linked = await verify({ source: s.source, replica: s.replica, exclude: includeAll, threads: false, hardLinks: true });
    assert.deepEqual(linked.differences.filter((d) => d.kind === 'hard link'), [{ kind: 'hard link', relPath: 'b', detail: 'linked to a in the source, not in the replica' }]);
    await sync(s, { hardLinks: true });
    assert.deepEqual(linkSets(s.replica, ['a', 'b']), [['a', 'b']]);
    const after = await verify({ source: s.source, replica: s.replica, exclude: includeAll, threads: false, hardLinks: true });
    assert.deepEqual(after.differences, []);
  });
});

describe('any file name, any link target', () => {
  const bytes = (root: string, ...parts: (string | number[])[]) => Buffer.concat([Buffer.from(root + '/'), ...parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p)))]);

  for (const threads of [false, true]) {
    test(`names and link targets that are not UTF-8 are mirrored byte for byte, logged escaped, recorded, exit 0 (threads: ${threads})`, async () => {
      const s = setup({ 'ok.txt': 'ok' });
      fs.writeFileSync(bytes(s.source, 'caf', [0xe9], '.txt'), 'latin-1 name'); // `café.txt` from an old disk
      fs.mkdirSync(bytes(s.source, 'd', [0xe9], 'j', [0xe0]));
      fs.writeFileSync(bytes(s.source, 'd', [0xe9], 'j', [0xe0], '/in', [0xff]), 'deep');
      fs.symlinkSync(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]), bytes(s.source, 'link'));
      fs.writeFileSync(bytes(s.source, 'b', [0xff], 'c'), 'twin 1'); // decoded with U+FFFD, these three would be one name
      fs.writeFileSync(bytes(s.source, 'b', [0xfe], 'c'), 'twin 2');
      fs.writeFileSync(path.join(s.source, 'b\uFFFDc'), 'twin 3');
      await settle();
      const options = threads ? { threads: { excludes: ['*.log'], own: [] } } : {};
      const result = await sync(s, options);
      assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
      assert.deepEqual(s.log.errors, []);
      assert.ok(s.log.actions.includes('copied caf\\xe9.txt (new)'), s.log.actions.join('\n'));
      assert.ok(s.log.actions.includes('copied d\\xe9j\\xe0/in\\xff (new)'), s.log.actions.join('\n'));
      assert.ok(s.log.actions.includes('copied link -> caf\\xe9.txt (new)'), s.log.actions.join('\n'));
      const listing = (root: string) => fs.readdirSync(root, { encoding: 'buffer', recursive: false }).map((b) => b.toString('hex')).sort();
      assert.deepEqual(listing(s.replica), listing(s.source));
      assert.deepEqual(fs.readFileSync(bytes(s.replica, 'd', [0xe9], 'j', [0xe0], '/in', [0xff]), 'utf8'), 'deep');
      assert.deepEqual(fs.readlinkSync(bytes(s.replica, 'link'), { encoding: 'buffer' }), fs.readlinkSync(bytes(s.source, 'link'), { encoding: 'buffer' }));
      for (const [name, content] of [[[0xff], 'twin 1'], [[0xfe], 'twin 2']] as const) assert.equal(fs.readFileSync(bytes(s.replica, 'b', [...name], 'c'), 'utf8'), content);
      assert.equal(fs.readFileSync(path.join(s.replica, 'b\uFFFDc'), 'utf8'), 'twin 3');
      assert.equal(result.manifest.peek('caf\udce9.txt')?.size, 'latin-1 name'.length, 'recorded under its escaped name');
      const again = await sync(s, options);
      assert.deepEqual(s.log.actions, []);
      assert.equal(again.stats.hashed, 0, 'the manifest vouches for them (read back from its files)');
      // A link target changed to other bytes is seen, and mirrored.
      fs.rmSync(bytes(s.source, 'link'));
      fs.symlinkSync(Buffer.from([0x63, 0x61, 0x66, 0xe8]), bytes(s.source, 'link'));
      await sync(s, options);
      assert.deepEqual(s.log.actions, ['updated link -> caf\\xe8 (link target changed)']);
      assert.deepEqual(fs.readlinkSync(bytes(s.replica, 'link'), { encoding: 'buffer' }), Buffer.from([0x63, 0x61, 0x66, 0xe8]));
    });
  }

  test('an exclude pattern matches such a name by its other characters (a wildcard for the byte)', async () => {
    const s = setup({ 'keep.txt': 'k' });
    fs.writeFileSync(bytes(s.source, 'caf', [0xe9], '.tmp'), 'x');
    await sync(s, { excludes: ['caf*.tmp'] });
    assert.deepEqual(fs.readdirSync(s.replica), ['keep.txt']);
  });
});

describe('times at the ends of the range', () => {
  // (With threads: the addon lists, copies and fixes; Node's own BigInt lstat turns such a time into
  // -2^63 s itself, a limit of Node's that a pass without the addon keeps.)
  test('an atime of 2^63 - 1 s (tmpfs keeps one) is kept, not turned into -2^63 by a cast, on a copy and on a fix', { skip: loadNative() ? false : 'the addon sets times to the nanosecond; without it Node\'s utimes takes doubles' }, async () => {
    if (!fs.existsSync('/dev/shm')) return;
    const base = fs.mkdtempSync('/dev/shm/fs-times-');
    try {
      const s = { ...setup(), source: path.join(base, 'source'), replica: path.join(base, 'replica') };
      writeTree(s.source, { 'far.txt': 'far' });
      const far = path.join(s.source, 'far.txt');
      if (spawnSync('touch', ['-a', '-d', '@9223372036854775807', far]).status !== 0) return;
      const threads = { threads: { excludes: [], own: [] } };
      await sync(s, threads);
      const atime = (p: string) => spawnSync('stat', ['-c', '%X', p], { encoding: 'utf8' }).stdout.trim();
      assert.equal(atime(path.join(s.replica, 'far.txt')), '9223372036854775807');
      spawnSync('touch', ['-m', '-d', '@1000', far]);
      spawnSync('touch', ['-a', '-d', '@9223372036854775807', far]);
      await settle();
      await sync(s, threads);
      assert.deepEqual(s.log.actions, ['updated far.txt (mtime)']);
      assert.equal(atime(path.join(s.replica, 'far.txt')), '9223372036854775807');
      assert.equal(fs.statSync(path.join(s.replica, 'far.txt'), { bigint: true }).mtimeNs, 1_000_000_000_000n);
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});
