/** The manifest on disk: shards, checkpoints, and every unusable shape it can be found in. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Manifest, SCHEMA_VERSION } from '../src/manifest.js';
import { tempDir } from './helpers/tree.js';

const pair = { source: '/src', replica: '/rep' };
const rec = (n: number) => ({ src: `f:${n}:1:1:${n}`, md5: n.toString(16).padStart(32, '0'), rep: `f:${n}:2:2:${n}` });

async function open(file: string, warnings: string[] = [], shardSize = 64) {
  return Manifest.open(file, { ...pair, warn: (m) => warnings.push(m), shardSize });
}

describe('sharded manifest', () => {
  test('splits past the shard size, reloads every record, and rewrites only changed shards', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file);
    for (let i = 0; i < 3000; i++) m.set(`dir${i % 50}/file${i}.txt`, rec(i));
    await m.checkpoint();
    const shardDir = file + '.d';
    const shards = fs.readdirSync(shardDir);
    assert.equal(shards.length, 64); // 3000 / 64 → 47 → next power of two
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).entries, undefined);

    const again = await open(file);
    assert.equal(again.size, 3000);
    assert.deepEqual(again.get('dir7/file7.txt'), rec(7));

    const before = new Map(shards.map((n) => [n, fs.statSync(path.join(shardDir, n)).mtimeMs]));
    again.bytesWritten = 0;
    await new Promise((r) => setTimeout(r, 20));
    again.set('dir7/file7.txt', rec(99999));
    await again.checkpoint();
    const rewritten = shards.filter((n) => fs.statSync(path.join(shardDir, n)).mtimeMs !== before.get(n));
    assert.equal(rewritten.length, 1);
    assert.ok(again.bytesWritten < 20_000, `wrote ${again.bytesWritten} bytes`);
    assert.deepEqual((await open(file)).get('dir7/file7.txt'), rec(99999));
  });

  test('a folder rename moves records across shards correctly', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file, [], 8);
    for (let i = 0; i < 200; i++) m.set(`old/f${i}`, rec(i));
    await m.checkpoint();
    const r = await open(file, [], 8);
    for (let i = 0; i < 200; i++) {
      r.delete(`old/f${i}`);
      r.set(`new/f${i}`, rec(i));
    }
    await r.checkpoint();
    const back = await open(file, [], 8);
    assert.equal(back.size, 200);
    for (let i = 0; i < 200; i++) {
      assert.equal(back.get(`old/f${i}`), undefined);
      assert.deepEqual(back.get(`new/f${i}`), rec(i));
    }
  });

  test('a crash between two shard writes leaves each record old-and-valid or new-and-valid', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file, [], 8);
    for (let i = 0; i < 200; i++) m.set(`f${i}`, rec(i));
    await m.checkpoint();
    const oldShards = new Map(fs.readdirSync(file + '.d').map((n) => [n, fs.readFileSync(path.join(file + '.d', n))]));
    const n = await open(file, [], 8);
    for (let i = 0; i < 200; i++) n.set(`f${i}`, rec(i + 1000));
    await n.checkpoint();
    // "crash": half of the shards never got their new version
    [...oldShards].slice(0, oldShards.size / 2).forEach(([name, bytes]) => fs.writeFileSync(path.join(file + '.d', name), bytes));
    const after = await open(file, [], 8);
    assert.equal(after.size, 200);
    let olds = 0;
    for (let i = 0; i < 200; i++) {
      const got = after.get(`f${i}`);
      assert.ok(JSON.stringify(got) === JSON.stringify(rec(i)) || JSON.stringify(got) === JSON.stringify(rec(i + 1000)));
      if (JSON.stringify(got) === JSON.stringify(rec(i))) olds++;
    }
    assert.ok(olds > 0 && olds < 200);
  });

  test('a corrupt shard loses only its own records', async () => {
    const file = path.join(tempDir(), 'm.json');
    const m = await open(file, [], 8);
    for (let i = 0; i < 200; i++) m.set(`f${i}`, rec(i));
    await m.checkpoint();
    fs.writeFileSync(path.join(file + '.d', '0.json'), '{"trunc');
    const warnings: string[] = [];
    const after = await open(file, warnings, 8);
    assert.ok(after.size > 150 && after.size < 200);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /shard .*0\.json.*kept as/);
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
    ['older schema', JSON.stringify({ format: 'folder-sync manifest', version: 0, ...pair, shards: 1 }), /old schema/],
    ['another pair', JSON.stringify({ format: 'folder-sync manifest', version: SCHEMA_VERSION, source: '/x', replica: '/y', shards: 1 }), /another pair/],
    ['malformed entries', JSON.stringify({ format: 'folder-sync manifest', version: SCHEMA_VERSION, ...pair, shards: 1, entries: [1] }), /malformed entries/],
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
      await m.checkpoint();
      assert.deepEqual((await open(file)).get('a'), rec(1));
    });
  }

  test('entries of the wrong shape inside a valid manifest are dropped, the rest kept', async () => {
    const file = path.join(tempDir(), 'm.json');
    fs.writeFileSync(file, JSON.stringify({ format: 'folder-sync manifest', version: SCHEMA_VERSION, ...pair, shards: 1, entries: { good: ['a', 'b', 'c'], bad: [1, 2], worse: 'x' } }));
    const m = await open(file);
    assert.equal(m.size, 1);
    assert.deepEqual(m.get('good'), { src: 'a', md5: 'b', rep: 'c' });
  });
});
