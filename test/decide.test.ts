/** The pure steps, table-tested: excludes, the per-file decision, the plan. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compareDirs, compareFiles, compareLinks, metaReason, metaToFix, settleFile } from '../src/compare/diff.js';
import { compileExcludes, plainNames } from '../src/tree/filter.js';
import { distrustCache, isRacy, makeRecord, trustCache } from '../src/compare/fingerprint.js';
import { planOps } from '../src/compare/plan.js';
import type { Change, FileRecord } from '../src/compare/types.js';
import type { Entry } from '../src/tree/entry.js';
import { ALL_OWNERS, groupsOnly, NO_OWNERS } from '../src/compare/owners.js';

function entry(over: Partial<Entry> = {}): Entry {
  return { name: 'f', kind: 'file', size: 10, mode: 0o644, mtimeS: 1000, mtimeN: 0, ctimeS: 1000, ctimeN: 0, atimeS: 0, atimeN: 0, ino: 1, uid: 1000, gid: 1000, nlink: 1, dev: 1, ...over };
}

describe('excludes', () => {
  const cases: [string[], string, boolean, boolean][] = [
    // patterns, relPath, isDir, excluded
    [['*.tmp'], 'a.tmp', false, true],
    [['*.tmp'], 'deep/er/a.tmp', false, true],
    [['*.tmp'], 'a.tmp.txt', false, false],
    [['*'], '.hidden', false, true],
    [['*.log'], 'x/.hidden.log', false, true],
    [['node_modules'], 'a/b/node_modules', true, true],
    [['docs/*.md'], 'docs/a.md', false, true],
    [['docs/*.md'], 'x/docs/a.md', false, false],
    [['docs/*.md'], 'docs/sub/a.md', false, false],
    [['**/build/**'], 'a/build/x.o', false, true],
    [['/top'], 'top', false, true],
    [['/top'], 'a/top', false, false],
    [['cache/'], 'cache', true, true],
    [['cache/'], 'cache', false, false],
    [['*.txt', '!keep.txt'], 'keep.txt', false, false],
    [['*.txt', '!keep.txt'], 'other.txt', false, true],
    [['[ab].txt'], 'a.txt', false, true],
    [[], 'anything', false, false],
  ];
  for (const [patterns, relPath, isDir, excluded] of cases) {
    test(`${JSON.stringify(patterns)} ${relPath}${isDir ? '/' : ''} → ${excluded ? 'excluded' : 'kept'}`, () => {
      assert.equal(compileExcludes(patterns)(relPath, isDir), excluded);
    });
  }

  test('plain names (the native walker does not descend into folders so named): each excludes its folders at any depth; anything else is not one', () => {
    const plain: [string[], string[]][] = [
      [[], []],
      [['node_modules'], ['node_modules']],
      [['.git', 'cache/', 'a b', 'été'], ['.git', 'cache', 'a b', 'été']],
    ];
    for (const [patterns, names] of plain) {
      assert.deepEqual(plainNames(patterns), names, JSON.stringify(patterns));
      const exclude = compileExcludes(patterns);
      for (const name of names) for (const relPath of [name, `a/${name}`, `a/b/${name}`]) assert.ok(exclude(relPath, true), `${JSON.stringify(patterns)} ${relPath}`);
    }
    // A glob, a path, an anchor, a negation (even of another name), an escape, a comment mark: not plain.
    for (const patterns of [['*.tmp'], ['a/b'], ['/build'], ['!x'], ['x', '!y'], ['x\\y'], ['#c'], ['{a,b}'], ['@(a)'], ['[ab]'], ['a?'], ['/']]) {
      assert.equal(plainNames(patterns), undefined, JSON.stringify(patterns));
    }
  });
});

describe('compareFiles: when the cache vouches, and what must be read', () => {
  const src = entry();
  const rep = entry({ ino: 2, ctimeS: 2000 });
  const record: FileRecord = makeRecord('m', src, rep, true);
  const cases: [string, Entry, Entry, FileRecord | undefined, string | undefined][] = [
    ['both sides as recorded → nothing', src, rep, record, undefined],
    // (Permission bits are not in the record: a chmod within one tick of a coarse ctime moves no fingerprint.)
    ['both as recorded, replica mode differs → meta', src, entry({ ino: 2, ctimeS: 2000, mode: 0o600 }), record, 'meta'],
    ['no record, same size → read both', src, rep, undefined, 'file'],
    ['no record, sizes differ → copy without reading', src, entry({ size: 11 }), undefined, 'update:content changed'],
    ['source ctime moved (touch -d) → read the source', entry({ ctimeN: 5 }), rep, record, 'file'],
    ['source size moved → copy', entry({ size: 12 }), rep, record, 'update:content changed'],
    ['replica size moved → restore', src, entry({ ino: 2, size: 3 }), record, 'update:changed in replica'],
    ['replica inode moved (replaced) → read it', src, entry({ ino: 9 }), record, 'file'],
    ['racy record (untrusted) → read the source', src, rep, makeRecord('m', src, rep, false), 'file'],
  ];
  for (const [name, s, r, rec, expected] of cases) {
    test(name, () => {
      const change = compareFiles('p', s, r, rec, trustCache, ALL_OWNERS);
      const got = change === undefined ? undefined : change.type === 'update' ? `update:${change.reason}` : change.type === 'meta' ? 'meta' : change.type;
      assert.equal(got, expected);
    });
  }

  test('a vouched side is not read again', () => {
    const change = compareFiles('p', entry({ ctimeN: 5 }), rep, record, trustCache, ALL_OWNERS);
    assert.equal(change?.type, 'file');
    if (change?.type !== 'file') return;
    assert.equal(change.sourceMd5, undefined);
    assert.equal(change.replicaMd5, 'm');
  });

  test('--checksum trusts nothing', () => {
    const change = compareFiles('p', src, rep, record, distrustCache, ALL_OWNERS);
    assert.equal(change?.type, 'file');
  });

  test('an mtime as we left it (both fingerprints as recorded, the record trusted): read if need be, then no mtime to fix; bits always compared; a racy record or one side moved: fixed', () => {
    // The replica's mtime is not the source's: its filesystem kept whole seconds of it.
    const coarse = entry({ ino: 2, ctimeS: 2000, mtimeN: 0 });
    const src5 = entry({ mtimeN: 500_000_000 });
    const settled = (change: Change | undefined) => metaToFix(settleFile(change as Extract<Change, { type: 'file' }>, 'm', 'm', 0) as Extract<Change, { type: 'meta' }>, ALL_OWNERS);
    assert.equal(settled(compareFiles('p', src5, coarse, makeRecord('m', src5, coarse, true), distrustCache, ALL_OWNERS)), undefined, '--checksum');
    assert.equal(compareFiles('p', src5, coarse, makeRecord('m', src5, coarse, true), trustCache, ALL_OWNERS), undefined);
    // A racy record: a chmod in the same tick may hide behind it.
    assert.equal(settled(compareFiles('p', src5, coarse, makeRecord('m', src5, coarse, false), trustCache, ALL_OWNERS)), 'mtime', 'racy');
    // The bits differ with fingerprints as recorded (a chmod within one coarse ctime tick): fixed.
    const chmodded = { ...coarse, mode: 0o600 };
    const meta = compareFiles('p', src5, chmodded, makeRecord('m', src5, coarse, true), trustCache, ALL_OWNERS) as Extract<Change, { type: 'meta' }>;
    assert.equal(meta.type, 'meta');
    assert.equal(metaToFix(meta, ALL_OWNERS), 'permissions');
    assert.equal(settled(compareFiles('p', src5, chmodded, makeRecord('m', src5, coarse, true), distrustCache, ALL_OWNERS)), 'permissions', '--checksum');
    // The source touched since (its ctime moved): the mtime is fixed, whatever the replica kept.
    const touched = compareFiles('p', entry({ mtimeN: 700_000_000, ctimeN: 9 }), coarse, makeRecord('m', src5, coarse, true), trustCache, ALL_OWNERS) as Extract<Change, { type: 'file' }>;
    assert.equal(metaToFix(settleFile(touched, 'm', 'm', 0) as Extract<Change, { type: 'meta' }>, ALL_OWNERS), 'mtime');
    // No record: read both, fix.
    const fresh = compareFiles('p', src5, coarse, undefined, trustCache, ALL_OWNERS) as Extract<Change, { type: 'file' }>;
    assert.equal(metaToFix(settleFile(fresh, 'm', 'm', 0) as Extract<Change, { type: 'meta' }>, ALL_OWNERS), 'mtime');
  });

  test('settleFile: equal MD5s → meta; different → update with the right reason', () => {
    const change = compareFiles('p', entry({ ctimeN: 5 }), rep, record, trustCache, ALL_OWNERS) as Extract<Change, { type: 'file' }>;
    assert.equal(settleFile(change, 'm', 'm', 0).type, 'meta');
    const upd = settleFile(change, 'x', 'm', 0);
    assert.equal(upd.type === 'update' && upd.reason, 'content changed');
    const drift = compareFiles('p', src, entry({ ino: 9 }), record, trustCache, ALL_OWNERS) as Extract<Change, { type: 'file' }>;
    const restored = settleFile(drift, 'm', 'other', 0);
    assert.equal(restored.type === 'update' && restored.reason, 'changed in replica');
  });
});

describe('metadata, links, folders, racy', () => {
  test('metaReason', () => {
    assert.equal(metaReason(entry(), entry(), ALL_OWNERS), undefined);
    assert.equal(metaReason(entry(), entry({ mode: 0o600 }), ALL_OWNERS), 'permissions');
    assert.equal(metaReason(entry(), entry({ mtimeN: 1_000 }), ALL_OWNERS), undefined); // within libuv's microsecond
    assert.equal(metaReason(entry(), entry({ mtimeS: 2000 }), ALL_OWNERS), 'mtime');
    assert.equal(metaReason(entry(), entry({ mode: 0, mtimeS: 0 }), ALL_OWNERS), 'permissions, mtime');
  });
  test('owners: as root every owner and group; as a user, the groups it is in; the owner never', () => {
    const source = entry({ uid: 1234, gid: 5678 });
    const replica = entry({ uid: 0, gid: 0 });
    assert.equal(metaReason(source, replica, ALL_OWNERS), 'owner, group');
    assert.equal(metaReason(source, entry({ uid: 1234, gid: 0, mode: 0o600 }), ALL_OWNERS), 'group, permissions');
    assert.equal(metaReason(source, replica, groupsOnly([5678])), 'group');
    assert.equal(metaReason(source, replica, groupsOnly([42])), undefined);
    assert.equal(metaReason(source, replica, NO_OWNERS), undefined);
    // A chown in the source (content and mtime as recorded on both sides, the ctime moved): read, then only the owner to fix.
    const before = entry({ uid: 0, gid: 0 });
    const record = makeRecord('m', before, replica, true);
    const chowned = compareFiles('p', { ...source, ctimeN: 9 }, replica, record, trustCache, ALL_OWNERS) as Extract<Change, { type: 'file' }>;
    assert.equal(chowned.type, 'file');
    assert.equal(metaToFix(settleFile(chowned, 'm', 'm', 0) as Extract<Change, { type: 'meta' }>, ALL_OWNERS), 'owner, group');
    // Both sides as recorded but the owner differs (chown in the replica moves its ctime: never as recorded; here, as given): a fix.
    assert.equal(compareFiles('p', before, before, makeRecord('m', before, before, true), trustCache, ALL_OWNERS), undefined);
    assert.equal(compareFiles('p', source, replica, makeRecord('m', source, replica, true), trustCache, ALL_OWNERS)?.type, 'meta');
  });
  test('compareLinks and compareDirs', () => {
    const l = entry({ kind: 'symlink' });
    assert.equal(compareLinks('l', l, l, 'a', 'a', ALL_OWNERS), undefined);
    assert.equal(compareLinks('l', l, l, 'a', 'b', ALL_OWNERS)?.type, 'link');
    assert.equal(compareDirs('d', entry({ kind: 'dir' }), entry({ kind: 'dir', mode: 0o700 }), ALL_OWNERS)?.type, 'dirmeta');
    // Folder times are kept, so a folder whose mtime differs is news; its own link's mtime and owner too.
    assert.equal(compareDirs('d', entry({ kind: 'dir' }), entry({ kind: 'dir', mtimeS: 5 }), ALL_OWNERS)?.type, 'dirmeta');
    assert.equal(compareDirs('d', entry({ kind: 'dir' }), entry({ kind: 'dir', mtimeN: 900 }), ALL_OWNERS), undefined);
    assert.deepEqual(compareLinks('l', l, entry({ kind: 'symlink', uid: 7 }), 'a', 'a', ALL_OWNERS), { type: 'link', relPath: 'l', source: l, replica: entry({ kind: 'symlink', uid: 7 }), reason: 'owner' });
  });
  test('isRacy: the ctime decides; fine timestamps get 100 ms, whole-second ones 2 s', () => {
    const nowMs = 10_000_000;
    assert.equal(isRacy(entry({ ctimeS: 9_999, ctimeN: 950_000_001 }), nowMs), true);
    assert.equal(isRacy(entry({ ctimeS: 9_999, ctimeN: 500_000_007 }), nowMs), false);
    assert.equal(isRacy(entry({ ctimeS: 9_999, ctimeN: 0 }), nowMs), true); // whole seconds: coarse filesystem
    assert.equal(isRacy(entry({ ctimeS: 9_998, ctimeN: 0 }), nowMs + 50), true); // 2 s and the clock's room
    assert.equal(isRacy(entry({ ctimeS: 9_998, ctimeN: 0 }), nowMs + 150), false);
    assert.equal(isRacy(entry({ mtimeS: 99_999, ctimeS: 9_000, ctimeN: 5 }), nowMs), false); // a future mtime is not racy
  });
});

describe('planOps', () => {
  const dir = entry({ kind: 'dir', mode: 0o755 });
  const file = entry();
  const link = entry({ kind: 'symlink' });

  test('creations first, deletes after (children first), folder modes deepest first', () => {
    const plan = planOps([
      { type: 'new', relPath: 'd', source: dir },
      { type: 'new', relPath: 'd/e', source: dir },
      { type: 'new', relPath: 'd/e/f', source: file },
      { type: 'extra', relPath: 'old/x', replica: file },
      { type: 'extra', relPath: 'old', replica: dir },
      { type: 'new', relPath: 'l', source: link },
    ]);
    assert.deepEqual(plan.upserts.map((o) => `${o.op} ${o.relPath}`), ['mkdir d', 'mkdir d/e', 'copy d/e/f', 'link l']);
    assert.deepEqual(plan.deletes.map((o) => o.relPath), ['old/x', 'old']);
    assert.deepEqual(plan.dirMetas.map((o) => o.relPath), ['d/e', 'd']);
    assert.equal(plan.deleteCount, 2);
    assert.equal(plan.deleteBytes, 10);
  });

  test('type changes: renames where they can, delete-then-create where a folder is involved', () => {
    const plan = planOps([
      { type: 'kind', relPath: 'a', source: file, replica: link },
      { type: 'extra', relPath: 'b/child', replica: file },
      { type: 'kind', relPath: 'b', source: file, replica: dir },
      { type: 'kind', relPath: 'c', source: dir, replica: file },
      { type: 'new', relPath: 'c/inner', source: file },
    ]);
    assert.deepEqual(plan.upserts.map((o) => `${o.op} ${o.relPath}`), ['copy a']);
    assert.deepEqual(plan.deletes.map((o) => o.relPath), ['b/child', 'b', 'c']);
    assert.deepEqual(plan.afterDeletes.map((o) => `${o.op} ${o.relPath}`), ['copy b', 'mkdir c', 'copy c/inner']);
    assert.equal(plan.deleteCount, 3);
  });
});
