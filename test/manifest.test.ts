/** The manifest on disk: shards, checkpoints, and every unusable shape it can be found in. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Manifest } from '../src/manifest/manifest.js';
import { SCHEMA_VERSION } from '../src/manifest/format.js';
import { RecordStore } from '../src/manifest/record-store.js';
import { FileRecord, type RecordFields } from '../src/compare/types.js';
import { tempDir } from './helpers/tree.js';

const pair = { source: '/src', replica: '/rep' };
const rec = (n: number) => new FileRecord(n.toString(16).padStart(32, '0'), n, 1_700_000_000, n, 1_700_000_001, 5, n, true, 1_700_000_000, n, 1_700_000_002, 7, n + 1);
/** A record's content, without the pass bookkeeping. */
const plain = (r: RecordFields | undefined) =>
  r === undefined
    ? undefined
    : { md5: r.md5, size: r.size, mtimeS: r.mtimeS, mtimeN: r.mtimeN, ctimeS: r.ctimeS, ctimeN: r.ctimeN, ino: r.ino, trusted: r.trusted, repMtimeS: r.repMtimeS, repMtimeN: r.repMtimeN, repCtimeS: r.repCtimeS, repCtimeN: r.repCtimeN, repIno: r.repIno };

async function open(file: string, warnings: string[] = [], shardSize = 64, groupSize?: number) {
  return Manifest.open(file, { ...pair, warn: (m) => warnings.push(m), shardSize, groupSize });
}

/** Every shard file's folder groups: `[shard, folder, group, records]` (schema 4, or 3). */
function shardGroups(file: string): [string, string, number, number][] {
  const out: [string, string, number, number][] = [];
  for (const name of fs.readdirSync(file + '.d').filter((n) => /^\d+\.json$/.test(n))) {
    const { version, folders } = JSON.parse(fs.readFileSync(path.join(file + '.d', name), 'utf8')) as { version: number; folders: unknown[] };
    const width = version === 3 ? 3 : 5;
    for (let k = 0; k < folders.length; k += width) out.push([name, folders[k] as string, folders[k + 1] as number, (folders[k + width - 1] as unknown[]).length / (version === 3 ? 14 : 12)]);
  }
  return out;
}

/** `r`'s 12 numbers as the manifest files hold them. */
const numbersOf = (r: FileRecord) => [r.size, r.mtimeS, r.mtimeN, r.ctimeS, r.ctimeN, r.ino, r.trusted ? 1 : 0, r.repMtimeS, r.repMtimeN, r.repCtimeS, r.repCtimeN, r.repIno];

/** A schema-3 shard's folder groups (as folder-sync 0.1 before schema 4 wrote them): folder, group, then 14 values per record. */
function v3Folders(groups: [dir: string, group: number, names: string[], first: number][]): unknown[] {
  return groups.flatMap(([dir, group, names, first]) => [dir, group, names.flatMap((name, k) => [name, rec(first + k).md5, ...numbersOf(rec(first + k))])]);
}

describe('sharded manifest', () => {
  test('getIn (the folder looked up once, records read in place) finds what get finds, in one shard or many', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file);
    const paths = ['top.txt', 'a/x.txt', 'a/b/y.txt', 'é/ü.txt'];
    for (const [i, relPath] of paths.entries()) m.set(relPath, rec(i));
    for (let i = 0; i < 3000; i++) m.set(`dir${i % 50}/file${i}.txt`, rec(i)); // forces several shards at save
    for (const round of ['one shard', 'resharded']) {
      for (const relPath of [...paths, 'dir3/file3.txt', 'dir3/file2999.txt', 'a/missing.txt']) {
        const slash = relPath.lastIndexOf('/');
        const found = m.getIn(slash === -1 ? '' : relPath.slice(0, slash))(relPath.slice(slash + 1), relPath);
        assert.deepEqual(plain(found), plain(m.peek(relPath)), `${relPath} (${round})`);
        assert.equal(found === undefined, relPath === 'a/missing.txt' || relPath === 'dir3/file2999.txt', relPath);
      }
      await m.save();
    }
  });

  test('splits past the shard size, reloads every record, and rewrites only changed shards', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file);
    for (let i = 0; i < 3000; i++) m.set(`dir${i % 50}/file${i}.txt`, rec(i));
    await m.save();
    const shardDir = file + '.d';
    const shards = fs.readdirSync(shardDir);
    assert.equal(shards.length, 64); // 3000 / 64 → 47 → next power of two
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).entries, undefined);

    const again = await open(file);
    assert.equal(again.size, 3000);
    assert.deepEqual(plain(again.get('dir7/file7.txt')), plain(rec(7)));

    const before = new Map(shards.map((n) => [n, fs.statSync(path.join(shardDir, n)).mtimeMs]));
    const changed = () => fs.readdirSync(shardDir).filter((n) => fs.statSync(path.join(shardDir, n)).mtimeMs !== before.get(n));
    again.bytesWritten = 0;
    await new Promise((r) => setTimeout(r, 20));
    again.set('dir7/file7.txt', rec(99999));
    await again.save();
    // A small change goes to a journal: no shard is rewritten.
    assert.deepEqual(changed(), ['journal-1.json']);
    assert.ok(again.bytesWritten < 1_000, `wrote ${again.bytesWritten} bytes`);
    assert.deepEqual(plain((await open(file)).get('dir7/file7.txt')), plain(rec(99999)));
    // Folding rewrites only the shard that holds the changed record, and drops the journal.
    const reopened = await open(file);
    reopened.bytesWritten = 0;
    await reopened.save({ fold: true });
    const rewritten = changed();
    assert.equal(rewritten.length, 1, rewritten.join());
    assert.match(rewritten[0], /^\d+\.json$/);
    assert.ok(reopened.bytesWritten < 20_000, `wrote ${reopened.bytesWritten} bytes`);
    assert.deepEqual(plain((await open(file)).get('dir7/file7.txt')), plain(rec(99999)));
  });

  test('records looked up in a pass are kept and the others forgotten, pass after pass (one-byte pass tags wrap at 255)', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file);
    m.set('d/kept', rec(1));
    for (let pass = 1; pass <= 600; pass++) {
      m.beginPass();
      m.set(`d/new${pass}`, rec(pass)); // set during a pass counts as seen in it
      assert.ok(m.getIn('d')('kept', 'd/kept') !== undefined, `pass ${pass}`);
      assert.equal(m.forgetUnseen(), pass === 1 ? 0 : 1, `pass ${pass}`);
      assert.equal(m.peek(`d/new${pass - 1}`), undefined, `pass ${pass}`);
      assert.equal(m.size, 2);
    }
  });

  test('RecordStore.loadGroup: every MD5 in its own slot, through reused slots and past a chunk of slots', () => {
    const store = new RecordStore();
    for (const [i, name] of ['a', 'b', 'c', 'd'].entries()) store.put('x', name, rec(i), 0);
    assert.ok(store.remove('x', 'b') && store.remove('x', 'd')); // two free slots, taken first, out of order
    const names = Array.from({ length: 20_000 }, (_, i) => `f${String(i).padStart(5, '0')}`); // more than 16,384 slots
    const records = names.map((_, i) => rec(1000 + i));
    assert.equal(store.loadGroup('y', names.join('/'), records.map((r) => r.md5).join(''), records.flatMap(numbersOf)), names.length);
    for (const [i, name] of names.entries()) assert.deepEqual(plain(store.get(store.find('y', name))), plain(records[i]), name);
    assert.equal(store.get(store.find('x', 'c')).md5, rec(2).md5);
  });

  test('forgetUnseen: a folder all seen keeps every record, one partly seen loses the rest, one never seen goes, and it is all saved', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file);
    const names = (dir: string) => Array.from({ length: 40 }, (_, i) => `${dir}/f${i}`);
    for (const [i, relPath] of [...names('all'), ...names('part'), ...names('none')].entries()) m.set(relPath, rec(i));
    await m.save();
    m.beginPass();
    const all = m.getIn('all');
    for (const relPath of names('all')) assert.ok(all(relPath.slice(4), relPath));
    const part = m.getIn('part');
    for (const relPath of names('part').filter((_, i) => i % 2 === 0)) assert.ok(part(relPath.slice(5), relPath));
    assert.equal(m.forgetUnseen(), 60);
    assert.equal(m.size, 60);
    await m.save();
    const reopened = await open(file);
    assert.deepEqual(names('all').map((p) => reopened.peek(p) !== undefined), names('all').map(() => true));
    assert.deepEqual(names('part').map((p) => reopened.peek(p) !== undefined), names('part').map((_, i) => i % 2 === 0));
    assert.deepEqual(names('none').map((p) => reopened.peek(p)), names('none').map(() => undefined));
    assert.equal(reopened.size, 60);
  });

  test('a folder rename moves records across shards correctly', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file, [], 8);
    for (let i = 0; i < 200; i++) m.set(`old/f${i}`, rec(i));
    await m.save();
    const r = await open(file, [], 8);
    for (let i = 0; i < 200; i++) {
      r.delete(`old/f${i}`);
      r.set(`new/f${i}`, rec(i));
    }
    await r.save();
    const back = await open(file, [], 8);
    assert.equal(back.size, 200);
    for (let i = 0; i < 200; i++) {
      assert.equal(back.get(`old/f${i}`), undefined);
      assert.deepEqual(plain(back.get(`new/f${i}`)), plain(rec(i)));
    }
  });

  test('a crash between two shard writes leaves each record old-and-valid or new-and-valid', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file, [], 8);
    for (let i = 0; i < 200; i++) m.set(`d${i % 40}/f${i}`, rec(i));
    await m.save();
    const oldShards = new Map(fs.readdirSync(file + '.d').map((n) => [n, fs.readFileSync(path.join(file + '.d', n))]));
    const n = await open(file, [], 8);
    for (let i = 0; i < 200; i++) n.set(`d${i % 40}/f${i}`, rec(i + 1000));
    await n.save({ fold: true });
    // "crash": half of the shards never got their new version
    [...oldShards].slice(0, oldShards.size / 2).forEach(([name, bytes]) => fs.writeFileSync(path.join(file + '.d', name), bytes));
    const after = await open(file, [], 8);
    assert.equal(after.size, 200);
    let olds = 0;
    for (let i = 0; i < 200; i++) {
      const got = JSON.stringify(plain(after.get(`d${i % 40}/f${i}`)));
      assert.ok(got === JSON.stringify(plain(rec(i))) || got === JSON.stringify(plain(rec(i + 1000))));
      if (got === JSON.stringify(plain(rec(i)))) olds++;
    }
    assert.ok(olds > 0 && olds < 200);
  });

  test('a corrupt shard loses only its own records', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file, [], 8);
    for (let i = 0; i < 200; i++) m.set(`d${i % 40}/f${i}`, rec(i));
    await m.save();
    fs.writeFileSync(path.join(file + '.d', '0.json'), '{"trunc');
    const warnings: string[] = [];
    const after = await open(file, warnings, 8);
    assert.ok(after.size > 150 && after.size < 200);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /shard .*0\.json.*kept as/);
  });
});

describe('the layout on disk', () => {
  test('a folder bigger than a group is spread over shards a group at a time, and shrinking it leaves no stale group behind', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file, [], 8, 10);
    for (let i = 0; i < 35; i++) m.set(`big/f${i}`, rec(i));
    for (let i = 0; i < 40; i++) m.set(`small${i % 8}/f${i}`, rec(100 + i));
    await m.save({ fold: true });
    const groups = shardGroups(file).filter(([, dir]) => dir === 'big');
    assert.deepEqual(groups.map(([, , g, n]) => [g, n]).sort(), [[0, 10], [1, 10], [2, 10], [3, 5]]);
    assert.ok(new Set(groups.map(([shard]) => shard)).size > 1, 'the groups are spread over shards');
    const back = await open(file, [], 8, 10);
    assert.equal(back.size, 75);
    for (let i = 0; i < 35; i++) assert.deepEqual(plain(back.get(`big/f${i}`)), plain(rec(i)));

    for (let i = 0; i < 20; i++) back.delete(`big/f${i}`);
    back.set('big/f34', rec(3434));
    await back.save({ fold: true });
    assert.deepEqual(shardGroups(file).filter(([, dir]) => dir === 'big').map(([, , g, n]) => [g, n]).sort(), [[0, 10], [1, 5]]);
    const shrunk = await open(file, [], 8, 10);
    assert.equal(shrunk.size, 55);
    for (let i = 0; i < 20; i++) assert.equal(shrunk.peek(`big/f${i}`), undefined, `big/f${i} came back`);
    assert.deepEqual(plain(shrunk.get('big/f34')), plain(rec(3434)));
    assert.deepEqual(plain(shrunk.get('small3/f11')), plain(rec(111)));
  });

  test('seconds outside 1970–2106 are kept exactly, through a journal and a fold; what is not a whole number never matches (NaN)', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file);
    const r = rec(5);
    m.set('d/1969', new FileRecord(r.md5, 5, -86_400, 5, 1_700_000_001, 5, 5, true, 2 ** 33, 5, 1_700_000_002, 7, 6));
    m.set('d/odd', new FileRecord(r.md5, 5, 0.5, 5, 1_700_000_001, 5, 5, true, 1, 5, 1_700_000_002, 7, 6));
    await m.save();
    const journaled = (await open(file)).get('d/1969')!;
    assert.deepEqual([journaled.mtimeS, journaled.repMtimeS], [-86_400, 2 ** 33]);
    await m.save({ fold: true });
    const back = (await open(file)).get('d/1969')!;
    assert.equal(back.md5, r.md5);
    assert.deepEqual([back.mtimeS, back.repMtimeS], [-86_400, 2 ** 33]);
    assert.deepEqual([back.ctimeS, back.repCtimeS, back.mtimeN, back.ino, back.repIno], [1_700_000_001, 1_700_000_002, 5, 5, 6]);
    assert.ok(Number.isNaN((await open(file)).get('d/odd')!.mtimeS));
  });

  test('a reshard cut short (the main file still says the old count) loses no record', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file, [], 4);
    for (let i = 0; i < 100; i++) m.set(`d${i % 20}/f${i}`, rec(i));
    await m.save({ fold: true });
    const main = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.equal(main.shards, 32);
    // The new layout's files are all written, the main file is not: it still says 16.
    fs.writeFileSync(file, JSON.stringify({ ...main, shards: 16 }));
    const warnings: string[] = [];
    const after = await open(file, warnings, 8);
    assert.deepEqual(warnings, []);
    assert.equal(after.size, 100);
    for (let i = 0; i < 100; i++) assert.deepEqual(plain(after.get(`d${i % 20}/f${i}`)), plain(rec(i)));
    await after.save();
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).shards, 16);
    assert.ok(shardGroups(file).every(([name]) => Number(name.slice(0, -5)) < 16));
    assert.equal((await open(file, [], 8)).size, 100);
  });

  test('a reshard cut short after the new upper shards but before the lower ones are rewritten loses no record', async () => {
    const dir = tempDir();
    const before = path.join(dir, 'before', 'm.json');
    const after = path.join(dir, 'after', 'm.json');
    for (const [file, size] of [[before, 8], [after, 2]] as const) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const m = await open(file, [], size);
      for (let i = 0; i < 100; i++) m.set(`d${i % 20}/f${i}`, rec(i));
      await m.save({ fold: true });
    }
    const oldCount = JSON.parse(fs.readFileSync(before, 'utf8')).shards as number;
    assert.ok(JSON.parse(fs.readFileSync(after, 'utf8')).shards > oldCount);
    // The fold writes the highest shards first: the new upper ones are there, the lower ones and
    // the main file are still those of the old layout.
    for (const name of fs.readdirSync(after + '.d')) {
      if (Number(name.slice(0, -5)) >= oldCount) fs.copyFileSync(path.join(after + '.d', name), path.join(before + '.d', name));
    }
    const m = await open(before, [], 8);
    assert.equal(m.size, 100);
    for (let i = 0; i < 100; i++) assert.deepEqual(plain(m.get(`d${i % 20}/f${i}`)), plain(rec(i)));
  });

  test('a schema-2 manifest (flat records by path, with a journal) is migrated, and a migration cut short is finished', async () => {
    const file = path.join(tempDir(), 'm.json');
    const flat = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => {
      const r = rec(from + k);
      return [`d${(from + k) % 5}/f${from + k}`, r.md5, r.size, r.mtimeS, r.mtimeN, r.ctimeS, r.ctimeN, r.ino, 1, r.repMtimeS, r.repMtimeN, r.repCtimeS, r.repCtimeN, r.repIno];
    }).flat();
    fs.writeFileSync(file, JSON.stringify({ format: 'folder-sync manifest', version: 2, ...pair, shards: 2 }));
    fs.mkdirSync(file + '.d');
    const write = (name: string, data: object) => fs.writeFileSync(path.join(file + '.d', name), JSON.stringify({ format: 'folder-sync manifest', ...data }));
    write('0.json', { version: 2, records: flat(0, 20) });
    write('1.json', { version: 2, records: flat(20, 40) });
    write('journal-1.json', { version: 2, records: flat(1000, 1001), forgotten: ['d0/f0'] });
    const warnings: string[] = [];
    const m = await open(file, warnings, 64);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /schema 2: migrated 40 records to schema 4/);
    assert.equal(m.size, 40);
    assert.equal(m.get('d0/f0'), undefined);
    assert.deepEqual(plain(m.get('d0/f1000')), plain(rec(1000)));
    await m.save();
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).version, 4);
    // Every shard rewritten in the new layout, the journal folded in.
    assert.deepEqual(fs.readdirSync(file + '.d').sort(), ['0.json', '1.json']);
    for (const name of ['0.json', '1.json']) assert.equal(JSON.parse(fs.readFileSync(path.join(file + '.d', name), 'utf8')).version, 4);
    const again: string[] = [];
    const back = await open(file, again, 64);
    assert.deepEqual(again, []);
    assert.equal(back.size, 40);
    assert.deepEqual(plain(back.get('d3/f23')), plain(rec(23)));

    // Cut short: the main file still says schema 2, one shard is already schema 4, one is not.
    const cut = path.join(tempDir(), 'm.json');
    fs.writeFileSync(cut, JSON.stringify({ format: 'folder-sync manifest', version: 2, ...pair, shards: 2 }));
    fs.mkdirSync(cut + '.d');
    fs.copyFileSync(path.join(file + '.d', '0.json'), path.join(cut + '.d', '0.json'));
    fs.writeFileSync(path.join(cut + '.d', '1.json'), JSON.stringify({ format: 'folder-sync manifest', version: 2, records: flat(2000, 2010) }));
    const inZero = shardGroups(file).filter(([name]) => name === '0.json').reduce((n, [, , , count]) => n + count, 0);
    const finished = await open(cut, [], 64);
    assert.equal(finished.size, inZero + 10);
    assert.deepEqual(plain(finished.get('d1/f2001')), plain(rec(2001)));
    // Finished at the next save: every shard in the new layout, the same records read back.
    await finished.save();
    assert.equal(JSON.parse(fs.readFileSync(cut, 'utf8')).version, 4);
    for (const name of fs.readdirSync(cut + '.d')) assert.equal(JSON.parse(fs.readFileSync(path.join(cut + '.d', name), 'utf8')).version, 4, name);
    assert.equal((await open(cut, [], 64)).size, inZero + 10);
  });

  test('a schema-3 manifest (values per record) is migrated, and a migration cut short is finished', async () => {
    const file = path.join(tempDir(), 'm.json');
    fs.writeFileSync(file, JSON.stringify({ format: 'folder-sync manifest', version: 3, ...pair, shards: 2 }));
    fs.mkdirSync(file + '.d');
    const write = (name: string, data: object) => fs.writeFileSync(path.join(file + '.d', name), JSON.stringify({ format: 'folder-sync manifest', ...data }));
    // Which shard a folder is in does not matter for loading (one in the wrong one is moved home).
    write('0.json', { version: 3, folders: v3Folders([['', 0, ['top'], 0], ['a', 0, ['x', 'y', 'z'], 1]]) });
    write('1.json', { version: 3, folders: v3Folders([['a/b', 0, ['é', '😀'], 4]]) });
    write('journal-1.json', { version: 3, records: ['a/y', rec(77).md5, ...numbersOf(rec(77))], forgotten: ['a/z'] });
    const warnings: string[] = [];
    const m = await open(file, warnings, 64);
    assert.deepEqual(warnings, [`manifest ${file} has schema 3: migrated 5 records to schema 4`]);
    const expected = new Map([['top', rec(0)], ['a/x', rec(1)], ['a/y', rec(77)], ['a/b/é', rec(4)], ['a/b/😀', rec(5)]]);
    const check = (manifest: Manifest) => {
      assert.equal(manifest.size, expected.size);
      for (const [relPath, r] of expected) assert.deepEqual(plain(manifest.get(relPath)), plain(r), relPath);
      assert.equal(manifest.get('a/z'), undefined);
    };
    check(m);
    await m.save();
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).version, 4);
    for (const name of fs.readdirSync(file + '.d')) assert.equal(JSON.parse(fs.readFileSync(path.join(file + '.d', name), 'utf8')).version, 4, name);
    const again: string[] = [];
    check(await open(file, again, 64));
    assert.deepEqual(again, []);

    // Cut short: the main file still says schema 3, one shard is already schema 4, one is not.
    const cut = path.join(tempDir(), 'm.json');
    fs.writeFileSync(cut, JSON.stringify({ format: 'folder-sync manifest', version: 3, ...pair, shards: 2 }));
    fs.mkdirSync(cut + '.d');
    const [v4, v3] = fs.readdirSync(file + '.d').sort();
    fs.copyFileSync(path.join(file + '.d', v4), path.join(cut + '.d', v4));
    const inV4 = shardGroups(file).filter(([name]) => name === v4).reduce((n, [, , , count]) => n + count, 0);
    fs.writeFileSync(path.join(cut + '.d', v3), JSON.stringify({ format: 'folder-sync manifest', version: 3, folders: v3Folders([['c', 0, ['p', 'q'], 50]]) }));
    const finished = await open(cut, [], 64);
    assert.equal(finished.size, inV4 + 2);
    assert.deepEqual(plain(finished.get('c/q')), plain(rec(51)));
    await finished.save();
    for (const name of fs.readdirSync(cut + '.d')) assert.equal(JSON.parse(fs.readFileSync(path.join(cut + '.d', name), 'utf8')).version, 4, name);
    const back = await open(cut, [], 64);
    assert.equal(back.size, inV4 + 2);
    assert.deepEqual(plain(back.get('c/p')), plain(rec(50)));
  });
});

describe('unusable manifests are set aside and rebuilt', () => {
  const shapes: [string, string, RegExp][] = [
    ['garbage bytes', '\x00\xff\x13garbage', /cannot read manifest/],
    ['truncated JSON', '{"format":"folder-sync manifest","vers', /cannot read manifest/],
    ['empty file', '', /cannot read manifest|not a folder-sync manifest/],
    ['JSON of the wrong shape (array)', '[1,2,3]', /not a folder-sync manifest/],
    ['JSON of the wrong shape (object)', '{"posts":[]}', /not a folder-sync manifest/],
    ['JSON null', 'null', /not a folder-sync manifest/],
    ['newer schema', JSON.stringify({ format: 'folder-sync manifest', version: SCHEMA_VERSION + 1, ...pair, shards: 1 }), /newer folder-sync/],
    ['unknown older schema', JSON.stringify({ format: 'folder-sync manifest', version: 0, ...pair, shards: 1 }), /unknown old schema/],
    ['another pair', JSON.stringify({ format: 'folder-sync manifest', version: SCHEMA_VERSION, source: '/x', replica: '/y', shards: 1 }), /another pair/],
    ['bad shard count', JSON.stringify({ format: 'folder-sync manifest', version: SCHEMA_VERSION, ...pair, shards: 3 }), /bad shard count/],
  ];
  for (const [name, content, message] of shapes) {
    test(name, async () => {
      const dir = tempDir();
      const file = path.join(dir, 'm.json');
      fs.writeFileSync(file, content);
      const warnings: string[] = [];
      const m = await open(file, warnings);
      assert.equal(m.size, 0);
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0], message);
      const aside = fs.readdirSync(dir).filter((n) => n.startsWith('m.json.corrupt-'));
      assert.equal(aside.length, 1);
      assert.equal(fs.readFileSync(path.join(dir, aside[0]), 'utf8'), content);
      m.set('a', rec(1));
      await m.save();
      assert.deepEqual(plain((await open(file)).get('a')), plain(rec(1)));
    });
  }

  test('groups of the wrong shape inside a valid shard are dropped (names out of order or repeated too), the rest kept', async () => {
    const file = path.join(tempDir(), 'm.json');
    fs.writeFileSync(file, JSON.stringify({ format: 'folder-sync manifest', version: SCHEMA_VERSION, ...pair, shards: 1 }));
    fs.mkdirSync(file + '.d');
    const md5 = (n: number) => rec(n).md5;
    const nums = (n: number) => numbersOf(rec(n));
    const folders = [
      ['good', 0, 'a/b', md5(1) + md5(2), [...nums(1), ...nums(2)]],
      ['not a number', 0, 'a', md5(1), ['x', ...nums(1).slice(1)]],
      ['numbers short', 0, 'a', md5(1), nums(1).slice(1)],
      ['not hex', 0, 'a', 'zz' + md5(1).slice(2), nums(1)],
      ['md5 short', 0, 'a', md5(1).slice(1), nums(1)],
      ['too many names', 0, 'a/b', md5(1), nums(1)],
      ['too few names', 0, 'a', md5(1) + md5(2), [...nums(1), ...nums(2)]],
      ['empty name', 0, 'a//b', md5(1) + md5(2) + md5(3), [...nums(1), ...nums(2), ...nums(3)]],
      ['trailing slash', 0, 'a/', md5(1), nums(1)],
      ['NUL', 0, 'a\0', md5(1), nums(1)],
      ['names not a string', 0, ['a'], md5(1), nums(1)],
      ['no records', 0, '', '', []],
      [7, 0, 'a', md5(1), nums(1)],
      ['bad group', -1, 'a', md5(1), nums(1)],
      ['bad group', '0', 'a', md5(1), nums(1)],
      // A save writes names in order: two swapped would put records under each other's names.
      ['swapped', 0, 'b/a', md5(4) + md5(5), [...nums(4), ...nums(5)]],
      ['repeated', 0, 'a/a', md5(4) + md5(5), [...nums(4), ...nums(5)]],
      // Infinity (a damaged journal's 1e999) written back as -1, not as null (which would drop the group).
      ['infinite', 0, 'a/b', md5(8) + md5(9), [...nums(8), ...nums(9)]],
    ].flat();
    fs.writeFileSync(path.join(file + '.d', '0.json'), JSON.stringify({ format: 'folder-sync manifest', version: SCHEMA_VERSION, folders }));
    const text = fs.readFileSync(path.join(file + '.d', '0.json'), 'utf8');
    fs.writeFileSync(path.join(file + '.d', '0.json'), text.replace(`[${nums(8).join(',')},`, `[1e999,${nums(8).slice(1).join(',')},`));
    const m = await open(file);
    assert.equal(m.size, 4);
    assert.deepEqual(plain(m.get('good/a')), plain(rec(1)));
    assert.deepEqual(plain(m.get('good/b')), plain(rec(2)));
    assert.equal(m.get('infinite/a')?.size, Infinity);
    assert.deepEqual(plain(m.get('infinite/b')), plain(rec(9)));
    // Names added after loading are written in order; the infinite size as -1 (never matching).
    m.set('good/c', rec(3));
    m.set('good/0', rec(10));
    await m.save({ fold: true });
    const shard = JSON.parse(fs.readFileSync(path.join(file + '.d', '0.json'), 'utf8')) as { folders: unknown[] };
    assert.equal(shard.folders[shard.folders.indexOf('good') + 2], '0/a/b/c');
    const back = await open(file);
    assert.equal(back.size, 6);
    for (const [name, n] of [['0', 10], ['a', 1], ['b', 2], ['c', 3]] as const) assert.deepEqual(plain(back.get(`good/${name}`)), plain(rec(n)), name);
    assert.equal(back.get('infinite/a')?.size, -1);
    assert.equal(back.get('infinite/a')?.md5, rec(8).md5);
  });

  test('records of the wrong shape inside a valid schema-3 shard are dropped, the rest kept', async () => {
    const file = path.join(tempDir(), 'm.json');
    fs.writeFileSync(file, JSON.stringify({ format: 'folder-sync manifest', version: 3, ...pair, shards: 1 }));
    fs.mkdirSync(file + '.d');
    const md5 = 'd41d8cd98f00b204e9800998ecf8427e';
    const good = ['good', md5, 1, 2, 3, 4, 5, 6, 1, 7, 8, 9, 10, 11];
    const badNumber = ['bad', md5, 'x', 2, 3, 4, 5, 6, 1, 7, 8, 9, 10, 11];
    const badMd5 = ['bad2', 'abc', 1, 2, 3, 4, 5, 6, 1, 7, 8, 9, 10, 11];
    const badName = ['a/b', md5, 1, 2, 3, 4, 5, 6, 1, 7, 8, 9, 10, 11];
    // Triples of folder, group, records; the last three have a bad folder or group.
    const folders = ['', 0, [...badNumber, ...good, ...badMd5, ...badName], 7, 0, [...good], 'x', -1, [...good], 'y', '0', [...good]];
    fs.writeFileSync(path.join(file + '.d', '0.json'), JSON.stringify({ format: 'folder-sync manifest', version: 3, folders }));
    const m = await open(file);
    assert.equal(m.size, 1);
    assert.equal(m.get('good')?.md5, md5);
    assert.equal(m.get('good')?.repIno, 11);
  });

  test('a schema-1 manifest is migrated record by record, never misread', async () => {
    const file = path.join(tempDir(), 'm.json');
    const v1 = {
      format: 'folder-sync manifest', version: 1, ...pair, shards: 1,
      entries: { 'a.txt': ['f:5:1700000000123456789:1700000001000000005:42', 'd41d8cd98f00b204e9800998ecf8427e', 'f:5:1700000000123456000:1700000002000000007:43'], 'racy.txt': ['', 'aa'.repeat(16), 'f:1:1:1:1'], 'junk': [1], 'not-md5': ['', 'aa', 'f:1:1:1:1'] },
    };
    fs.writeFileSync(file, JSON.stringify(v1));
    const warnings: string[] = [];
    const m = await open(file, warnings);
    assert.match(warnings[0], /schema 1: migrated 2 records/);
    const a = m.get('a.txt')!;
    assert.deepEqual([a.size, a.mtimeS, a.mtimeN, a.ctimeS, a.ctimeN, a.ino, a.trusted], [5, 1_700_000_000, 123_456_789, 1_700_000_001, 5, 42, true]);
    assert.deepEqual([a.repMtimeS, a.repMtimeN, a.repCtimeS, a.repCtimeN, a.repIno], [1_700_000_000, 123_456_000, 1_700_000_002, 7, 43]);
    assert.equal(m.get('racy.txt')?.trusted, false);
    await m.save();
    const back = await open(file);
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).version, SCHEMA_VERSION);
    assert.equal(back.size, 2);
  });
});

describe('journals: checkpoints during a pass', () => {
  test('a checkpoint writes only what changed since the last one; a crash before the save loses nothing', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file, [], 8);
    for (let i = 0; i < 100; i++) m.set(`f${i}`, rec(i));
    await m.save();
    m.bytesWritten = 0;
    m.set('f1', rec(1001));
    await m.checkpoint();
    const first = m.bytesWritten;
    assert.ok(first < 500, `journal of one record wrote ${first} bytes`);
    m.set('new', rec(7));
    m.delete('f2');
    await m.checkpoint();
    const journals = fs.readdirSync(file + '.d').filter((n) => n.startsWith('journal-'));
    assert.equal(journals.length, 2);
    // "crash": no save. The next open replays the journals over the shards.
    const after = await open(file, [], 8);
    assert.deepEqual(plain(after.get('f1')), plain(rec(1001)));
    assert.deepEqual(plain(after.get('new')), plain(rec(7)));
    assert.equal(after.get('f2'), undefined);
    assert.equal(after.size, 100);
    await after.save({ fold: true });
    assert.deepEqual(fs.readdirSync(file + '.d').filter((n) => n.startsWith('journal-')), []);
    assert.deepEqual(plain((await open(file, [], 8)).get('f1')), plain(rec(1001)));
  });

  test('a new manifest (a first sync) killed after a checkpoint loses nothing: the first checkpoint writes the main file too', async () => {
    for (const start of ['none', 'set aside'] as const) {
      const dir = tempDir();
      const file = path.join(dir, 'm.json');
      if (start === 'set aside') fs.writeFileSync(file, '{"garbage');
      const m = await open(file, [], 8);
      for (let i = 0; i < 50; i++) m.set(`d/f${i}`, rec(i));
      await m.checkpoint();
      assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).version, SCHEMA_VERSION, start);
      m.bytesWritten = 0;
      m.set('d/f50', rec(50));
      await m.checkpoint();
      assert.ok(m.bytesWritten < 500, `${start}: the second checkpoint wrote ${m.bytesWritten} bytes: the main file again?`);
      // "kill -9": no save.
      const warnings: string[] = [];
      const after = await open(file, warnings, 8);
      assert.deepEqual(warnings, [], start);
      assert.equal(after.size, 51, start);
      for (let i = 0; i <= 50; i++) assert.deepEqual(plain(after.get(`d/f${i}`)), plain(rec(i)), `${start}: d/f${i}`);
    }
  });
});

describe('journals: what a save writes', () => {
  const journalNames = (file: string) => fs.readdirSync(file + '.d').filter((n) => n.startsWith('journal-')).sort();
  const shardNames = (file: string) => fs.readdirSync(file + '.d').filter((n) => /^\d+\.json$/.test(n));

  test('small changes pile up as journals across passes, replayed in order; past an eighth of the records they fold', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file, [], 256);
    for (let i = 0; i < 4000; i++) m.set(`d${i % 40}/f${i}`, rec(i));
    await m.save();
    assert.deepEqual(journalNames(file), []);
    assert.equal(shardNames(file).length, 16);
    const shardBytes = (name: string) => fs.readFileSync(path.join(file + '.d', name));
    const pristine = new Map(shardNames(file).map((n) => [n, shardBytes(n)]));

    // Three passes, each changing, adding and dropping a few records: three journals, shards untouched.
    for (let pass = 1; pass <= 3; pass++) {
      const p = await open(file, [], 256);
      p.set(`d1/f1`, rec(100 + pass));
      p.set(`d2/new${pass}`, rec(200 + pass));
      p.delete(`d3/f${3 + 40 * (20 + pass)}`);
      p.bytesWritten = 0;
      await p.save();
      assert.ok(p.bytesWritten < 2_000, `pass ${pass} wrote ${p.bytesWritten} bytes`);
      assert.equal(journalNames(file).length, pass);
    }
    for (const [name, bytes] of pristine) assert.deepEqual(shardBytes(name), bytes, `${name} was rewritten`);
    const after = await open(file, [], 256);
    assert.deepEqual(plain(after.get('d1/f1')), plain(rec(103)));
    for (let pass = 1; pass <= 3; pass++) {
      assert.deepEqual(plain(after.get(`d2/new${pass}`)), plain(rec(200 + pass)));
      assert.equal(after.get(`d3/f${3 + 40 * (20 + pass)}`), undefined);
    }
    assert.equal(after.size, 4000);

    // A change of more than an eighth of 4000 records (but under 2 shards' worth of reshard): folded.
    for (let i = 0; i < 600; i++) after.set(`d${i % 40}/f${i}`, rec(i + 50_000));
    await after.save();
    assert.deepEqual(journalNames(file), []);
    const folded = await open(file, [], 256);
    assert.equal(folded.size, 4000);
    assert.deepEqual(plain(folded.get('d1/f1')), plain(rec(50_001)));
    assert.deepEqual(plain(folded.get('d2/new3')), plain(rec(203)));
    assert.equal(folded.get('d3/f843'), undefined);
  });

  test('a save with nothing new writes no journal; the checkpoints of a pass and its save are all replayed', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file, [], 256);
    for (let i = 0; i < 3000; i++) m.set(`f${i}`, rec(i));
    await m.save();
    const p = await open(file, [], 256);
    p.bytesWritten = 0;
    await p.save();
    assert.equal(p.bytesWritten, 0);
    p.set('f1', rec(1));
    await p.checkpoint();
    p.set('f2', rec(2222));
    await p.save();
    assert.deepEqual(journalNames(file), ['journal-1.json', 'journal-2.json']);
    const q = await open(file, [], 256);
    q.set('f3', rec(3333));
    await q.save();
    assert.deepEqual(journalNames(file), ['journal-1.json', 'journal-2.json', 'journal-3.json']);
    const r = await open(file, [], 256);
    assert.deepEqual([r.get('f2'), r.get('f3')].map(plain), [plain(rec(2222)), plain(rec(3333))]);
  });

  test('a crash between a journal and the fold that includes it leaves every record old-and-valid or new-and-valid', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file, [], 8);
    for (let i = 0; i < 200; i++) m.set(`f${i}`, rec(i));
    await m.save({ fold: true });
    const j = await open(file, [], 8);
    for (let i = 0; i < 10; i++) j.set(`f${i}`, rec(i + 1000));
    await j.save();
    const journal = fs.readFileSync(path.join(file + '.d', 'journal-1.json'));
    const k = await open(file, [], 8);
    for (let i = 0; i < 10; i++) k.set(`f${i}`, rec(i + 2000));
    await k.save({ fold: true });
    // "crash": the fold rewrote the shards, but the journal it included was never removed.
    fs.writeFileSync(path.join(file + '.d', 'journal-1.json'), journal);
    const after = await open(file, [], 8);
    assert.equal(after.size, 200);
    for (let i = 0; i < 10; i++) {
      const got = JSON.stringify(plain(after.get(`f${i}`)));
      // The journal replayed over the newer shard brings back its older (still true) record.
      assert.ok([rec(i + 1000), rec(i + 2000)].some((r) => JSON.stringify(plain(r)) === got), `f${i}: ${got}`);
    }
    for (let i = 10; i < 200; i++) assert.deepEqual(plain(after.get(`f${i}`)), plain(rec(i)));
  });
});

