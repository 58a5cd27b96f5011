/** `verify`: the read-only audit, over real folders (and a spy Io for what root cannot provoke). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { compileExcludes, includeAll } from '../src/tree/filter.js';
import { formatDifference, verify, type Difference, type VerifyOptions, type VerifyResult } from '../src/commands/verify.js';
import { errno, md5, SpyIo, tempDir, writeTree, type Spec } from './helpers/tree.js';

const OLD = 1_600_000_000; // 2020-09-13T12:26:40Z
const TEMP_NAME = '.folder-sync-0123456789abcdef.tmp';

/** Every regular file and folder below `root` (and `root`) gets mtime `OLD`, so two trees written a moment apart agree. */
function age(root: string): void {
  const folders = [root];
  for (const entry of fs.readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) fs.utimesSync(path.join(entry.parentPath, entry.name), OLD, OLD);
    if (entry.isDirectory()) folders.push(path.join(entry.parentPath, entry.name));
  }
  for (const folder of folders.reverse()) fs.utimesSync(folder, OLD, OLD);
}

/** A source and a replica written from the same spec, files aged to `OLD`. */
function twins(spec: Record<string, Spec>): { source: string; replica: string } {
  const base = tempDir('fs-verify-');
  const source = path.join(base, 'source');
  const replica = path.join(base, 'replica');
  for (const root of [source, replica]) {
    writeTree(root, spec);
    age(root);
  }
  return { source, replica };
}

/**
 * `verify` of the twins, their folders' mtimes first set alike (the tests change entries in them,
 * which moves them) unless `asTheyAre`.
 */
function run(t: { source: string; replica: string }, options: Partial<VerifyOptions> = {}, asTheyAre = false): Promise<VerifyResult> {
  if (!asTheyAre) for (const root of [t.source, t.replica]) ageFolders(root);
  return verify({ source: t.source, replica: t.replica, exclude: includeAll, threads: false, ...options });
}

function ageFolders(root: string): void {
  const folders = [root];
  const walk = (dir: string): void => {
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // unreadable: the test's point
    }
    for (const entry of names) {
      if (!entry.isDirectory()) continue;
      folders.push(path.join(dir, entry.name));
      walk(path.join(dir, entry.name));
    }
  };
  walk(root);
  for (const folder of folders.reverse()) fs.utimesSync(folder, OLD, OLD);
}

const diff = (kind: Difference['kind'], relPath: string, detail: string): Difference => ({ kind, relPath, detail });

/** Everything about both trees that a write of any kind would change: listing, bytes, modes, times, inodes. */
function snapshot(...roots: string[]): string {
  const seen: unknown[] = [];
  const walk = (abs: string, rel: string): void => {
    const st = fs.lstatSync(abs, { bigint: true });
    const common = { rel, mode: Number(st.mode), ino: String(st.ino), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs), size: String(st.size) };
    if (st.isDirectory()) {
      seen.push({ ...common, names: fs.readdirSync(abs).sort() });
      for (const name of fs.readdirSync(abs).sort()) walk(path.join(abs, name), rel + '/' + name);
    } else if (st.isSymbolicLink()) {
      seen.push({ ...common, target: fs.readlinkSync(abs) });
    } else if (st.isFile()) {
      seen.push({ ...common, bytes: fs.readFileSync(abs).toString('base64') });
    } else {
      seen.push(common); // a FIFO: never opened
    }
  };
  for (const root of roots) walk(root, root);
  return JSON.stringify(seen, null, 1);
}

const SAMPLE: Record<string, Spec> = {
  'a.txt': { content: 'alpha', mode: 0o644 },
  'docs': { dir: true, mode: 0o755 },
  'docs/b.md': 'bravo',
  'docs/deep/c.bin': Buffer.alloc(300_000, 7),
  'empty': { dir: true, mode: 0o755 },
  'to-a': { link: 'a.txt' },
};

/** A pair of trees with one of every kind of difference (and a path with two). */
function everyKind(): { source: string; replica: string } {
  const t = twins({ ...SAMPLE, 'gone.txt': 'gone', 'gone-dir/x': 'x', 'kind': 'file', 'same-size.txt': 'abcdef', 'link': { link: 'one' }, 'perm': { content: 'p', mode: 0o644 } });
  const r = (rel: string) => path.join(t.replica, rel);
  fs.rmSync(r('gone.txt'));
  fs.rmSync(r('gone-dir'), { recursive: true });
  writeTree(t.replica, { 'extra.txt': 'extra', 'extra-dir/y': 'y' });
  fs.rmSync(r('kind'));
  fs.mkdirSync(r('kind'));
  fs.writeFileSync(r('same-size.txt'), 'abcdeX');
  fs.utimesSync(r('same-size.txt'), OLD, OLD);
  fs.rmSync(r('link'));
  fs.symlinkSync('two', r('link'));
  fs.chmodSync(r('perm'), 0o600);
  fs.utimesSync(r('perm'), OLD + 60, OLD + 60);
  fs.chmodSync(r('docs'), 0o700);
  return t;
}

const EVERY_KIND: Difference[] = [
  diff('type', 'kind', 'file vs folder'),
  diff('extra', 'extra-dir', 'folder'),
  diff('extra', 'extra.txt', 'file, 5 bytes'),
  diff('mode', 'docs', '755 vs 700'),
  diff('missing', 'gone-dir', 'folder'),
  diff('missing', 'gone.txt', 'file, 4 bytes'),
  diff('link target', 'link', "'one' vs 'two'"),
  diff('mode', 'perm', '644 vs 600'),
  diff('mtime', 'perm', '2020-09-13T12:26:40Z vs 2020-09-13T12:27:40Z'),
  diff('content', 'same-size.txt', `md5 ${md5('abcdef').slice(0, 4)}… vs ${md5('abcdeX').slice(0, 4)}…`),
];

/** Sorted like `verify` sorts: by walk position, which for these top-level-ish paths is byName of the whole path. */
function byWalk(list: Difference[]): Difference[] {
  const order = ['', 'docs', 'extra-dir', 'extra.txt', 'gone-dir', 'gone.txt', 'kind', 'link', 'perm', 'same-size.txt'];
  return [...list].sort((a, b) => order.indexOf(a.relPath) - order.indexOf(b.relPath));
}

describe('trees in sync', () => {
  test('no differences; every path counted, every file on both sides hashed', async () => {
    const t = twins(SAMPLE);
    const result = await run(t);
    assert.deepEqual(result, { differences: [], entries: 7, filesHashed: 6, bytesHashed: 2 * (5 + 5 + 300_000) });
  });

  test('sub-second file and folder mtimes and symlink mtimes are not differences; a folder\'s mtime to the second is', async () => {
    const t = twins(SAMPLE);
    fs.utimesSync(path.join(t.replica, 'a.txt'), OLD + 0.5, OLD + 0.5);
    fs.utimesSync(path.join(t.replica, 'docs'), OLD + 0.5, OLD + 0.5);
    fs.lutimesSync(path.join(t.replica, 'to-a'), OLD, OLD);
    assert.deepEqual((await run(t, {}, true)).differences, []);
    fs.utimesSync(path.join(t.replica, 'docs'), OLD + 5, OLD + 5);
    assert.deepEqual((await run(t, {}, true)).differences, [diff('mtime', 'docs', '2020-09-13T12:26:40Z vs 2020-09-13T12:26:45Z')]);
  });
});

describe('each kind of difference', () => {
  test('missing file', async () => {
    const t = twins(SAMPLE);
    fs.rmSync(path.join(t.replica, 'docs/b.md'));
    assert.deepEqual((await run(t)).differences, [diff('missing', 'docs/b.md', 'file, 5 bytes')]);
  });

  test('missing folder: reported once, its contents neither listed nor counted', async () => {
    const t = twins(SAMPLE);
    fs.rmSync(path.join(t.replica, 'docs'), { recursive: true });
    const result = await run(t);
    assert.deepEqual(result.differences, [diff('missing', 'docs', 'folder')]);
    assert.equal(result.entries, 4);
    assert.equal(result.filesHashed, 2);
  });

  test('extra file', async () => {
    const t = twins(SAMPLE);
    writeTree(t.replica, { 'docs/new.txt': 'new!' });
    assert.deepEqual((await run(t)).differences, [diff('extra', 'docs/new.txt', 'file, 4 bytes')]);
  });

  test('extra folder: reported once', async () => {
    const t = twins(SAMPLE);
    writeTree(t.replica, { 'more/one': '1', 'more/deeper/two': '2', 'more/link': { link: 'one' } });
    assert.deepEqual((await run(t)).differences, [diff('extra', 'more', 'folder')]);
  });

  test('type: file, folder and symlink swapped; a replaced folder is not descended', async () => {
    const t = twins(SAMPLE);
    const r = (rel: string) => path.join(t.replica, rel);
    fs.rmSync(r('a.txt'));
    fs.mkdirSync(r('a.txt'));
    fs.writeFileSync(r('a.txt/inside'), 'not compared');
    fs.rmSync(r('docs'), { recursive: true });
    fs.symlinkSync('a.txt', r('docs'));
    fs.rmSync(r('to-a'));
    fs.writeFileSync(r('to-a'), 'a.txt');
    assert.deepEqual((await run(t)).differences, [
      diff('type', 'a.txt', 'file vs folder'),
      diff('type', 'docs', 'folder vs symlink'),
      diff('type', 'to-a', 'symlink vs file'),
    ]);
  });

  test('content: same size, same mtime, different bytes (found only by reading)', async () => {
    const t = twins(SAMPLE);
    const changed = Buffer.alloc(300_000, 7);
    changed[299_999] = 8; // the very last byte
    fs.writeFileSync(path.join(t.replica, 'docs/deep/c.bin'), changed);
    fs.utimesSync(path.join(t.replica, 'docs/deep/c.bin'), OLD, OLD);
    const a = md5(Buffer.alloc(300_000, 7));
    const b = md5(changed);
    assert.deepEqual((await run(t)).differences, [diff('content', 'docs/deep/c.bin', `md5 ${a.slice(0, 4)}… vs ${b.slice(0, 4)}…`)]);
  });

  test('content: different sizes', async () => {
    const t = twins(SAMPLE);
    fs.writeFileSync(path.join(t.replica, 'a.txt'), 'alpha!');
    fs.utimesSync(path.join(t.replica, 'a.txt'), OLD, OLD);
    assert.deepEqual((await run(t)).differences, [diff('content', 'a.txt', 'size 5 vs 6 bytes')]);
  });

  test('mode: files and folders (the roots too), not symlinks', async () => {
    const t = twins(SAMPLE);
    fs.chmodSync(path.join(t.replica, 'a.txt'), 0o4755);
    fs.chmodSync(path.join(t.replica, 'empty'), 0o700);
    fs.chmodSync(t.replica, 0o711);
    fs.chmodSync(t.source, 0o755);
    assert.deepEqual((await run(t)).differences, [
      diff('mode', '', '755 vs 711'),
      diff('mode', 'a.txt', '644 vs 4755'),
      diff('mode', 'empty', '755 vs 700'),
    ]);
  });

  test('mtime: whole seconds, files only', async () => {
    const t = twins(SAMPLE);
    fs.utimesSync(path.join(t.replica, 'docs/b.md'), OLD - 1, OLD - 1);
    assert.deepEqual((await run(t)).differences, [diff('mtime', 'docs/b.md', '2020-09-13T12:26:40Z vs 2020-09-13T12:26:39Z')]);
  });

  test('link target (dangling targets are compared as text, never followed)', async () => {
    const t = twins({ ...SAMPLE, 'dangling': { link: 'nowhere/at/all' } });
    fs.rmSync(path.join(t.replica, 'to-a'));
    fs.symlinkSync('docs/b.md', path.join(t.replica, 'to-a'));
    assert.deepEqual((await run(t)).differences, [diff('link target', 'to-a', "'a.txt' vs 'docs/b.md'")]);
  });

  test('several differences on one path: each reported, in kind order, though content is found last', async () => {
    const t = twins(SAMPLE);
    const r = path.join(t.replica, 'a.txt');
    fs.writeFileSync(r, 'ALPHA');
    fs.chmodSync(r, 0o600);
    fs.utimesSync(r, OLD + 3600, OLD + 3600);
    const heard: Difference[] = [];
    const result = await run(t, { onDifference: (d) => heard.push(d) });
    const expected = [
      diff('content', 'a.txt', `md5 ${md5('alpha').slice(0, 4)}… vs ${md5('ALPHA').slice(0, 4)}…`),
      diff('mode', 'a.txt', '644 vs 600'),
      diff('mtime', 'a.txt', '2020-09-13T12:26:40Z vs 2020-09-13T13:26:40Z'),
    ];
    assert.deepEqual(result.differences, expected);
    // Told as found: the walk's findings first, the content once the files were read.
    assert.deepEqual(heard, [expected[1], expected[2], expected[0]]);
  });

  test('special files: skipped on both sides, but one only in the replica is extra', async () => {
    const t = twins(SAMPLE);
    execFileSync('mkfifo', [path.join(t.source, 'pipe-in-source')]);
    execFileSync('mkfifo', [path.join(t.source, 'pipe-over-file')]);
    fs.writeFileSync(path.join(t.replica, 'pipe-over-file'), 'the mirror leaves this alone');
    execFileSync('mkfifo', [path.join(t.replica, 'pipe-in-replica')]);
    const result = await run(t);
    assert.deepEqual(result.differences, [diff('extra', 'pipe-in-replica', 'special file')]);
    assert.equal(result.entries, 8);
  });
});

describe('excludes and temporary files', () => {
  test('an excluded difference is not reported, and an excluded folder is not listed on either side', async () => {
    const t = twins({ ...SAMPLE, 'cache/x.bin': 'x' });
    writeTree(t.replica, { 'cache/only-here': 'y', 'debug.log': 'log', 'docs/deep/trace.log': 'log' });
    fs.writeFileSync(path.join(t.source, 'cache/x.bin'), 'changed');
    fs.rmSync(path.join(t.replica, 'a.txt'));
    const io = new SpyIo();
    const listed: string[] = [];
    io.fail = (call, p) => {
      if (call === 'readdir') listed.push(path.relative(path.dirname(t.source), p));
      return undefined;
    };
    const result = await run(t, { io, exclude: compileExcludes(['cache/', '*.log']) });
    assert.deepEqual(result.differences, [diff('missing', 'a.txt', 'file, 5 bytes')]);
    assert.deepEqual(listed.sort(), ['replica', 'replica/docs', 'replica/docs/deep', 'replica/empty', 'source', 'source/docs', 'source/docs/deep', 'source/empty']);
  });

  test('our temporary files are ignored on both sides; a look-alike name is not', async () => {
    const t = twins(SAMPLE);
    writeTree(t.source, { [TEMP_NAME]: 'half a copy' });
    writeTree(t.replica, { [`docs/${TEMP_NAME}`]: 'half a copy', '.folder-sync-notours.tmp': 'a user file' });
    const result = await run(t);
    assert.deepEqual(result.differences, [diff('extra', '.folder-sync-notours.tmp', 'file, 11 bytes')]);
    assert.equal(result.entries, 8);
  });
});

describe('unreadable entries', () => {
  test('a folder that cannot be listed is reported, its contents skipped, the rest compared', async () => {
    const t = twins(SAMPLE);
    writeTree(t.replica, { 'docs/deep/extra.txt': 'not seen', 'zzz.txt': 'extra' });
    const io = new SpyIo();
    io.fail = (call, p) => (call === 'readdir' && p === path.join(t.replica, 'docs') ? errno('EACCES', 'permission denied') : undefined);
    const result = await run(t, { io });
    assert.deepEqual(result.differences, [diff('unreadable', 'docs', 'replica: EACCES: permission denied'), diff('extra', 'zzz.txt', 'file, 5 bytes')]);
    assert.equal(result.filesHashed, 2);
  });

  test('a file that cannot be opened or read, and a link that cannot be read, on either side', async () => {
    const t = twins({ ...SAMPLE, 'b.txt': 'bravo', 'c.txt': 'charlie' });
    fs.writeFileSync(path.join(t.replica, 'c.txt'), 'CHARLIE');
    fs.utimesSync(path.join(t.replica, 'c.txt'), OLD, OLD);
    const io = new SpyIo();
    io.fail = (call, p) => {
      if (call === 'openRead' && p === path.join(t.source, 'a.txt')) return errno('EACCES', 'permission denied');
      if (call === 'read' && p === path.join(t.replica, 'docs/deep/c.bin')) return errno('EIO', 'i/o error');
      if (call === 'readlink' && p === path.join(t.replica, 'to-a')) return errno('EIO', 'i/o error');
      return undefined;
    };
    const result = await run(t, { io });
    assert.deepEqual(result.differences, [
      diff('unreadable', 'a.txt', 'source: EACCES: permission denied'),
      diff('content', 'c.txt', `md5 ${md5('charlie').slice(0, 4)}… vs ${md5('CHARLIE').slice(0, 4)}…`),
      diff('unreadable', 'docs/deep/c.bin', 'replica: EIO: i/o error'),
      diff('unreadable', 'to-a', 'replica: EIO: i/o error'),
    ]);
    assert.equal(result.filesHashed, 10 - 2);
  });

  test('the source root cannot be listed', async () => {
    const t = twins(SAMPLE);
    const io = new SpyIo();
    io.fail = (call, p) => (call === 'readdir' && p === t.source ? errno('EIO', 'i/o error') : undefined);
    const result = await run(t, { io });
    assert.deepEqual(result, { differences: [diff('unreadable', '', 'source: EIO: i/o error')], entries: 0, filesHashed: 0, bytesHashed: 0 });
  });

  test('a name that is not valid UTF-8 is compared by its bytes: read on both sides, an extra one reported', async () => {
    const t = twins(SAMPLE);
    const latin1 = (root: string, name: string) => Buffer.concat([Buffer.from(root + '/' + name), Buffer.from([0xe9])]);
    fs.writeFileSync(latin1(t.source, 'caf'), 'on both sides');
    fs.writeFileSync(latin1(t.replica, 'caf'), 'ON BOTH SIDES');
    fs.utimesSync(latin1(t.source, 'caf'), OLD, OLD);
    fs.utimesSync(latin1(t.replica, 'caf'), OLD, OLD);
    fs.writeFileSync(latin1(t.replica, 'docs/r'), 'replica only');
    const result = await run(t);
    assert.deepEqual(result.differences, [
      diff('content', 'caf\udce9', `md5 ${md5('on both sides').slice(0, 4)}… vs ${md5('ON BOTH SIDES').slice(0, 4)}…`),
      diff('extra', 'docs/r\udce9', 'file, 12 bytes'),
    ]);
    assert.equal(formatDifference(result.differences[0]).split(' (')[0], 'content  caf\\xe9');
    assert.equal(result.entries, 9);
  });

  for (const threads of [false, true]) {
    test(`a file swapped for a symlink before it is read is refused, not followed (threads: ${threads})`, async () => {
      const t = twins({ 'a.txt': 'alpha', 'b.txt': 'bravo' });
      const r = path.join(t.replica, 'a.txt');
      let calls = 0;
      // Asked before the walk (1) and before the files are read (2); the next question comes from the hashing step.
      const shouldStop = () => {
        if (++calls === 3) {
          fs.rmSync(r);
          fs.symlinkSync(path.join(t.source, 'a.txt'), r);
        }
        return false;
      };
      const result = await run(t, { threads, shouldStop });
      assert.deepEqual(
        result.differences.map((d) => [d.kind, d.relPath]),
        [['unreadable', 'a.txt']],
      );
      assert.match(result.differences[0].detail, /^replica: ELOOP: /);
      assert.equal(result.filesHashed, 3);
    });
  }
});

describe('an audit', () => {
  for (const threads of [false, true]) {
    test(`writes nothing on either side (threads: ${threads})`, async () => {
      const t = everyKind();
      execFileSync('mkfifo', [path.join(t.source, 'pipe')]);
      execFileSync('mkfifo', [path.join(t.replica, 'pipe')]);
      writeTree(t.replica, { [TEMP_NAME]: 'half' });
      for (const root of [t.source, t.replica]) ageFolders(root);
      const before = snapshot(t.source, t.replica);
      const result = await run(t, { threads }, true);
      assert.deepEqual(result.differences, byWalk(EVERY_KIND));
      assert.equal(snapshot(t.source, t.replica), before);
    });
  }

  test('hashing on threads or on the main thread gives the same result', async () => {
    const t = everyKind();
    // Enough files for several batches on both threads.
    const many: Record<string, string> = {};
    for (let i = 0; i < 150; i++) many[`many/f${String(i).padStart(3, '0')}`] = `file ${i}`.repeat(i);
    const f077 = many['many/f077'];
    const changed = 'X' + f077.slice(1);
    writeTree(t.source, many);
    writeTree(t.replica, { ...many, 'many/f077': changed });
    age(path.join(t.source, 'many'));
    age(path.join(t.replica, 'many'));
    const onMain = await run(t, { threads: false });
    const onThreads = await run(t, { threads: true });
    assert.deepEqual(onThreads, onMain);
    assert.deepEqual(onMain.differences, [
      ...byWalk(EVERY_KIND).slice(0, 7),
      diff('content', 'many/f077', `md5 ${md5(f077).slice(0, 4)}… vs ${md5(changed).slice(0, 4)}…`),
      ...byWalk(EVERY_KIND).slice(7),
    ]);
    assert.equal(onMain.filesHashed, 2 * (3 + 2 + 150));
  });

  test('differences are in walk order: a folder, then its contents, then its next sibling', async () => {
    const t = twins({ 'a/b': 'same size', 'a-c': 'c', 'a/z': 'z' });
    fs.writeFileSync(path.join(t.replica, 'a/b'), 'SAME SIZE');
    fs.utimesSync(path.join(t.replica, 'a/b'), OLD, OLD);
    fs.rmSync(path.join(t.replica, 'a-c'));
    fs.rmSync(path.join(t.replica, 'a/z'));
    const result = await run(t);
    // Code-unit order of whole paths would put `a-c` first ('-' < '/').
    assert.deepEqual(
      result.differences.map((d) => [d.kind, d.relPath]),
      [
        ['content', 'a/b'],
        ['missing', 'a/z'],
        ['missing', 'a-c'],
      ],
    );
  });

  for (const threads of [false, true]) {
    test(`stops when asked after the walk: its findings kept, no file read (threads: ${threads})`, async () => {
      const t = twins({ 'a.txt': 'alpha', 'b.txt': { content: 'bravo', mode: 0o644 }, 'empty.txt': '' });
      fs.chmodSync(path.join(t.replica, 'b.txt'), 0o600);
      const io = new SpyIo();
      let calls = 0;
      const result = await run(t, { io, threads, shouldStop: () => ++calls > 2 }); // asked before the walk, then before the files are read
      assert.deepEqual(result, { differences: [diff('mode', 'b.txt', '644 vs 600')], entries: 3, filesHashed: 0, bytesHashed: 0 });
      assert.deepEqual(io.opens, []);
    });
  }

  test('stops when asked: nothing compared, nothing read', async () => {
    const t = everyKind();
    const io = new SpyIo();
    const result = await run(t, { io, shouldStop: () => true });
    assert.deepEqual(result, { differences: [], entries: 0, filesHashed: 0, bytesHashed: 0 });
    assert.deepEqual(io.opens, []);
  });
});

describe('formatDifference', () => {
  test('one line each: kind, path (escaped), detail', () => {
    assert.deepEqual(
      [
        diff('content', 'photos/a.jpg', 'md5 0cc1… vs 9e10…'),
        diff('missing', 'new\nline.txt', 'file, 3 bytes'),
        diff('mode', '', '755 vs 700'),
        diff('link target', 'l', "'a\tb' vs 'c'"),
        diff('unreadable', 'docs', 'replica: EACCES: permission denied'),
      ].map(formatDifference),
      [
        'content  photos/a.jpg (md5 0cc1… vs 9e10…)',
        'missing  new\\nline.txt (file, 3 bytes)',
        'mode     . (755 vs 700)',
        "link target l ('a\\tb' vs 'c')",
        'unreadable docs (replica: EACCES: permission denied)',
      ],
    );
  });
});
