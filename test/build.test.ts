/**
 * What `npm run build` ships: the program bundled by `scripts/build.mjs` (the other tests run the
 * sources through tsx). Built here into a folder of its own, then run on real folders through
 * each of its entries: the command, and the listing, copying and hashing threads it starts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { cliEnv, ROOT, summaryCounts } from './helpers/cli.js';
import { nativeCopy } from '../src/native.js';
const poolCopies = (): boolean => nativeCopy() !== undefined;
import { mirrorDiff, tempDir, writeTree, type Spec } from './helpers/tree.js';

// At the top level, as dist/ is: the program finds ../package.json and ../build/ from there.
const out = path.join(ROOT, `dist-test-${process.pid}`);

before(async () => {
  const { bundle } = (await import(pathToFileURL(path.join(ROOT, 'scripts', 'build.mjs')).href)) as { bundle: (outdir: string) => Promise<void> };
  await bundle(out);
});
after(() => fs.rmSync(out, { recursive: true, force: true }));

function run(args: string[], stateHome: string, env: Record<string, string> = {}): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [path.join(out, 'bin.js'), ...args], { cwd: ROOT, env: { ...cliEnv(stateHome), ...env }, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, output: r.stdout + r.stderr };
}

describe('the built program', () => {
  test('has one file per entry, and answers --version', () => {
    for (const name of ['bin', 'lister-worker', 'hash-worker', 'copy-worker']) assert.ok(fs.existsSync(path.join(out, `${name}.js`)), name);
    const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const r = run(['--version'], tempDir());
    assert.equal(r.status, 0, r.output);
    assert.equal(r.output.trim(), version);
  });

  test('mirrors a tree on every kind of thread: listing (with an exclude pattern), copying (first sync), the native walker and hashing (every mtime touched, nothing excluded)', () => {
    const base = tempDir();
    const source = path.join(base, 'source');
    const replica = path.join(base, 'replica');
    // 1,100 files: past the 1,024 from which a pass starts copying and hashing threads.
    const spec: Record<string, Spec> = { 'link': { link: 'd0/f0.txt' }, 'skip.tmp': 'excluded' };
    for (let i = 0; i < 1100; i++) spec[`d${i % 11}/f${i}.txt`] = { content: `file ${i}\n`.repeat(1 + (i % 7)), mtime: 1_600_000_000 };
    writeTree(source, spec);
    const args = [source, replica, '1', path.join(base, 'sync.log'), '--once', '--exclude', '*.tmp', '--log-level', 'debug'];

    const first = run(args, base);
    assert.equal(first.status, 0, first.output);
    // (The program run inherits FOLDER_SYNC_NATIVE.)
    const native = fs.existsSync(path.join(ROOT, 'build', 'Release', 'fswalk.node')) && process.env.FOLDER_SYNC_NATIVE !== '0';
    assert.match(first.output, native ? /^lister: native, in listing threads/m : /^lister: JavaScript/m);
    assert.match(first.output, native && poolCopies() ? /^copies written on the thread pool: 1100 of 1100 \(those under 16\.0 MiB\)$/m : /^1100 copies: the small ones written on 2 copying threads$/m);
    assert.deepEqual(summaryCounts(first.output), { copied: 1101, updated: 0, deleted: 0, hashed: 1100, errors: 0 });
    assert.deepEqual(mirrorDiff(source, replica, (rel) => rel === 'skip.tmp'), []);
    assert.ok(!fs.existsSync(path.join(replica, 'skip.tmp')));
    assert.equal(fs.readlinkSync(path.join(replica, 'link')), 'd0/f0.txt');

    for (let i = 0; i < 1100; i++) fs.utimesSync(path.join(source, `d${i % 11}`, `f${i}.txt`), 1_700_000_000, 1_700_000_000);
    // Without the pattern: the file it left out is copied now.
    const touched = run(args.filter((arg) => arg !== '--exclude' && arg !== '*.tmp'), base);
    assert.equal(touched.status, 0, touched.output);
    assert.match(touched.output, native ? /^lister: native, walking in threads of its own$/m : /^lister: JavaScript/m);
    assert.match(touched.output, /^1100 files to read: on 2 hashing threads$/m);
    assert.deepEqual(summaryCounts(touched.output), { copied: 1, updated: 1100, deleted: 0, hashed: 1101, errors: 0 });
    assert.deepEqual(mirrorDiff(source, replica), []);
    assert.equal(fs.statSync(path.join(replica, 'd5', 'f5.txt')).mtimeMs, 1_700_000_000_000);
  });

  test('without the addon, a first sync of many files writes them on copying threads', () => {
    const base = tempDir();
    const source = path.join(base, 'source');
    const replica = path.join(base, 'replica');
    writeTree(source, Object.fromEntries(Array.from({ length: 1030 }, (_, i) => [`d${i % 7}/f${i}.txt`, `file ${i}\n`.repeat(1 + (i % 5))])));
    const r = run([source, replica, '1', path.join(base, 'sync.log'), '--once', '--log-level', 'debug'], base, { FOLDER_SYNC_NATIVE: '0' });
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /^1030 copies: the small ones written on 2 copying threads$/m);
    assert.deepEqual(summaryCounts(r.output), { copied: 1030, updated: 0, deleted: 0, hashed: 1030, errors: 0 });
    assert.deepEqual(mirrorDiff(source, replica), []);
  });
});
