/** The listing threads: what they hand over, and how far ahead of the walk they may run. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { DIR, entryAt, FILE, type FolderListing, kindAt } from '../src/tree/entry.js';
import { type ListerJob } from '../src/tree/batches.js';
import { NativeWalkLister } from '../src/tree/native-walker.js';
import { NativeFolderLister } from '../src/tree/native-folder.js';
import { InlineLister } from '../src/tree/inline.js';
import { nodeIo } from '../src/replica/local/io.js';
import { prestartListers, spareListers, ThreadLister } from '../src/tree/thread-lister.js';
import { chooseListers } from '../src/tree/choose.js';
import { closeListers } from '../src/tree/lister.js';
import { joinRel } from '../src/tree/scan.js';
import { loadNative, type NativeWalk, type NativeWalker } from '../src/native.js';
import { mirrorDiff, setup, sync, tempDir } from './helpers/tree.js';

/** 80 folders of 200 files: 16,080 entries, several batches (4,096 each), so the thread can be held back. */
function bigTree(): string {
  const root = tempDir();
  for (let d = 0; d < 80; d++) {
    const dir = path.join(root, `d${String(d).padStart(2, '0')}`);
    fs.mkdirSync(dir);
    for (let f = 0; f < 200; f++) fs.writeFileSync(path.join(dir, `f${String(f).padStart(3, '0')}`), '');
  }
  return root;
}

const folders = Array.from({ length: 80 }, (_, d) => `d${String(d).padStart(2, '0')}`);

/** The native lister, to walk with (undefined if it is not built, or FOLDER_SYNC_NATIVE=0). */
const walker = loadNative();

/** The two listers that hand over batches: a listing thread, and the native walker (if built). */
const KINDS = [
  { name: 'a listing thread', skip: false as const, make: (job: ListerJob, options?: { detachAtOnce?: number }) => new ThreadLister(job, options) },
  {
    name: 'the native walker',
    skip: walker === undefined ? 'the native lister is not built, or FOLDER_SYNC_NATIVE=0' : (false as const),
    make: (job: ListerJob, options?: { detachAtOnce?: number }) => new NativeWalkLister(job, walker!, options),
  },
];

/** A listing thread listing natively (if built) or in JavaScript, and the native walker. */
const LISTERS = [
  { how: 'a listing thread, natively if built', native: true, kind: KINDS[0] },
  { how: 'a listing thread, in JavaScript', native: false, kind: KINDS[0] },
  { how: 'the native walker', native: true, kind: KINDS[1] },
];

/** Each listing must arrive within a few seconds: a held-back thread that is never let go would hang here. */
async function take(lister: ThreadLister | NativeWalkLister, relDir: string): Promise<FolderListing> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`listing ${relDir} never came`)), 10_000);
  });
  try {
    return await Promise.race([lister.list(relDir), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('listing threads', () => {
  test('a thread started ahead of need (as bin.ts does) is taken by the next lister and lists its tree like a new one', async () => {
    const root = bigTree();
    prestartListers(1);
    assert.equal(spareListers(), 1);
    const early = new ThreadLister({ root, excludes: ['d01'], own: [] });
    assert.equal(spareListers(), 0, 'the spare was taken');
    // No spare left: the next one starts its own thread.
    const late = new ThreadLister({ root, excludes: [], own: [] });
    try {
      assert.deepEqual((await take(early, '')).names, folders);
      for (const dir of folders.filter((d) => d !== 'd01')) assert.equal((await take(early, dir)).names.length, 200, dir);
      // The spare got its whole job, excludes included: an excluded folder is not descended.
      await assert.rejects(take(early, 'd01'), { code: 'ENOENT' });
      assert.deepEqual((await take(late, '')).names, folders);
    } finally {
      await early.close();
      await late.close();
    }
  });

  test('spare threads no pass takes do not keep the process alive', () => {
    const lister = new URL('../src/tree/thread-lister.ts', import.meta.url).href;
    const started = Date.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `const m = await import(${JSON.stringify(lister)}); m.prestartListers(2); console.log(m.spareListers());`], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.signal, null, `the process had to be killed after ${Date.now() - started} ms`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '2');
  });

  test('a native walker left listing (never closed, held back waiting for room) does not keep the process alive, nor trouble its exit', { skip: KINDS[1].skip }, () => {
    const root = bigTree();
    const lister = new URL('../src/tree/native-walker.ts', import.meta.url).href;
    const native = new URL('../src/native.ts', import.meta.url).href;
    const script = `const m = await import(${JSON.stringify(lister)}); const n = await import(${JSON.stringify(native)});
      const w = new m.NativeWalkLister({ root: ${JSON.stringify(root)}, excludes: [], own: [], maxAhead: 8 }, n.loadNative());
      const top = await w.list(''); const d00 = await w.list('d00'); console.log(top.names.length, d00.names.length);`;
    const started = Date.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.signal, null, `the process had to be killed after ${Date.now() - started} ms`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '80 200');
  });

  test('a folder that became a link while the native walker was held back is not followed: it is an error, not the linked folder\'s names', { skip: KINDS[1].skip }, async () => {
    const root = bigTree();
    // Held to 8 entries ahead, the walker has posted its first batch (the root and ~20 folders) and waits.
    const lister = new NativeWalkLister({ root, excludes: [], own: [], maxAhead: 8 }, walker!);
    try {
      assert.deepEqual((await take(lister, '')).names, folders);
      fs.rmSync(path.join(root, 'd79'), { recursive: true });
      fs.symlinkSync(path.join(root, 'd00'), path.join(root, 'd79'));
      await assert.rejects(take(lister, 'd79'), (error: NodeJS.ErrnoException) => error.code === 'ENOTDIR' || error.code === 'ELOOP');
    } finally {
      await lister.close();
    }
  });

  test('the native walker lists a folder excluded by a plain name in its parent, and does not descend into it', { skip: KINDS[1].skip }, async () => {
    const root = bigTree();
    fs.mkdirSync(path.join(root, 'd05', 'd01')); // the name at another depth
    fs.writeFileSync(path.join(root, 'd05', 'd01', 'deep'), '');
    const lister = new NativeWalkLister({ root, excludes: ['d01'], own: [] }, walker!);
    try {
      assert.deepEqual((await take(lister, '')).names, folders);
      assert.equal((await take(lister, 'd00')).names.length, 200);
      assert.ok((await take(lister, 'd05')).names.includes('d01'));
      await assert.rejects(take(lister, 'd05/d01'), { code: 'ENOENT' });
      for (const dir of folders.filter((d) => d > 'd05')) assert.equal((await take(lister, dir)).names.length, 200, dir);
      await assert.rejects(take(lister, 'd01'), { code: 'ENOENT' });
    } finally {
      await lister.close();
    }
  });

  test('a pass lists with native walkers when nothing is excluded and the native lister is built, else with listing threads', async () => {
    const root = bigTree();
    const kinds = (lists: Parameters<typeof chooseListers>[2]) => {
      const listers = chooseListers(root, root, lists, { threads: true });
      void closeListers(listers);
      return [listers.source, listers.replica].map((lister) => lister.constructor.name);
    };
    const walkers = walker === undefined ? ['ThreadLister', 'ThreadLister'] : ['NativeWalkLister', 'NativeWalkLister'];
    assert.deepEqual(kinds({ excludes: [], own: [] }), walkers);
    // Our manifest's own folder in a tree: the walker lists it, the walk leaves it.
    assert.deepEqual(kinds({ excludes: [], own: [{ kind: 'manifest', path: 'm.json' }] }), walkers);
    // Plain names: the walker does not descend into folders so named. A glob, or a negation, may
    // leave out (or bring back) folders only micromatch can tell.
    assert.deepEqual(kinds({ excludes: ['node_modules', '.git/'], own: [] }), walkers);
    assert.deepEqual(kinds({ excludes: ['*.tmp'], own: [] }), ['ThreadLister', 'ThreadLister']);
    assert.deepEqual(kinds({ excludes: ['node_modules', '!node_modules'], own: [] }), ['ThreadLister', 'ThreadLister']);
    // A backup dir in a tree only grows, and no pass needs its listing.
    assert.deepEqual(kinds({ excludes: [], own: [{ kind: 'backup', path: 'old' }] }), ['ThreadLister', 'ThreadLister']);
  });

  for (const { how, native, kind } of LISTERS) {
    test(`names and paths beyond ASCII, a folder whose names outgrow a batch's text buffer, and temporary files arrive intact, each entry with its own numbers (${how})`, { skip: kind.skip }, async () => {
      const root = tempDir();
      const long = (i: number) => 'é'.repeat(100) + String(i).padStart(4, '0'); // 204 bytes of UTF-8
      fs.mkdirSync(path.join(root, 'big'));
      // 800 names of 204 bytes: 163 KB, more than the 128 KiB a batch's text starts with.
      for (let i = 0; i < 800; i++) fs.writeFileSync(path.join(root, 'big', long(i)), 'x'.repeat(i % 7));
      fs.mkdirSync(path.join(root, 'plain'));
      fs.writeFileSync(path.join(root, 'plain', 'a'), 'abc');
      fs.writeFileSync(path.join(root, 'plain', '.folder-sync-0123456789abcdef.tmp'), '');
      fs.mkdirSync(path.join(root, 'été'));
      fs.writeFileSync(path.join(root, 'été', 'ñ1'), '123');
      fs.writeFileSync(path.join(root, 'été', '🙂'), '12345');
      fs.mkdirSync(path.join(root, '日本'));
      fs.mkdirSync(path.join(root, '日本', 'ü'));
      fs.writeFileSync(path.join(root, '日本', 'ü', 'z'), '1234567');
      const lister = kind.make({ root, excludes: [], own: [], native });
      const sizes = (listing: FolderListing) => Object.fromEntries(listing.names.map((name, i) => [name, entryAt(listing, i).size]));
      try {
        assert.deepEqual((await take(lister, '')).names, ['big', 'plain', 'été', '日本']);
        const big = await take(lister, 'big');
        assert.equal(big.names.length, 800);
        for (const i of [0, 1, 6, 399, 799]) assert.equal(sizes(big)[long(i)], i % 7, long(i));
        const plain = await take(lister, 'plain');
        assert.deepEqual(sizes(plain), { a: 3 });
        assert.deepEqual(plain.temps, ['.folder-sync-0123456789abcdef.tmp']);
        assert.deepEqual(sizes(await take(lister, 'été')), { ñ1: 3, '🙂': 5 });
        assert.deepEqual((await take(lister, '日本')).names, ['ü']);
        assert.deepEqual(sizes(await take(lister, '日本/ü')), { z: 7 });
        await assert.rejects(take(lister, 'missing'), { code: 'ENOENT' });
      } finally {
        await lister.close();
      }
    });
  }

  for (const kind of KINDS) {
    test(`a thread held to a few entries ahead still hands over every folder, taken in its order (${kind.name})`, { skip: kind.skip }, async () => {
      const root = bigTree();
      const lister = kind.make({ root, excludes: [], own: [], maxAhead: 8 });
      try {
        assert.deepEqual((await take(lister, '')).names, folders);
        for (const dir of folders) {
          const listing = await take(lister, dir);
          assert.equal(listing.names.length, 200, dir);
          assert.equal(listing.names[199], 'f199');
        }
      } finally {
        await lister.close();
      }
    });
  }

  for (const kind of KINDS) {
    test(`taken out of order (as replica-only folders are), a held-back thread is let go instead of waiting forever, even when what it skips spans several batches (${kind.name})`, { skip: kind.skip }, async () => {
      const root = bigTree();
      const lister = kind.make({ root, excludes: [], own: [], maxAhead: 8 });
      try {
        await take(lister, '');
        for (const dir of [...folders].reverse()) assert.equal((await take(lister, dir)).names.length, 200, dir);
      } finally {
        await lister.close();
      }
    });
  }

  for (const kind of KINDS) {
    test(`a batch is freed only once every listing in it is discarded: what is still in use reads right, and a listing discarded twice counts once (${kind.name})`, { skip: kind.skip }, async () => {
      const root = bigTree();
      for (let f = 0; f < 5; f++) fs.writeFileSync(path.join(root, `top${f}`), 'x'.repeat(f)); // sizes 0–4 in the root
      const lister = kind.make({ root, excludes: [], own: [] }, { detachAtOnce: 1 });
      const sizesOf = (listing: FolderListing) => listing.names.map((_, i) => entryAt(listing, i).size);
      try {
        // As the walk does: the root stays in use while its folders are taken and discarded.
        const top = await take(lister, '');
        const rootSizes = sizesOf(top);
        assert.deepEqual(rootSizes.slice(-5), [0, 1, 2, 3, 4]);
        let freed = 0;
        for (const dir of folders) {
          const listing = await take(lister, dir);
          assert.equal(listing.names.length, 200, dir);
          assert.equal(kindAt(listing, 199), FILE, dir);
          lister.discard(listing);
          lister.discard(listing);
          if (listing.nums.buffer.byteLength === 0) freed++;
        }
        assert.ok(freed > 0, 'batches whose listings were all discarded are freed');
        // The root's batch is not: the root is still in use.
        assert.deepEqual(sizesOf(top), rootSizes);
        lister.discard(top);
        assert.equal(top.nums.buffer.byteLength, 0, 'the last batch goes with the root');
      } finally {
        await lister.close();
      }
    });
  }

  for (const { how, native, kind } of LISTERS) {
    test(`a folder that cannot be listed reaches the walk as its error, and a batch holding it is freed all the same (${how})`, { skip: kind.skip }, async () => {
      // d/…/deep: 5,000 files in the last folder before `deep` (so `deep` begins a batch of its
      // own), and in `deep` a folder whose path passes PATH_MAX (ENAMETOOLONG, even for root).
      // The JavaScript lister cannot lstat it by its path, so `deep` is the folder it could not
      // list; the native one lstats it relative to `deep`, and fails to open it.
      const root = tempDir();
      let parent = root;
      while (parent.length < 3840) {
        parent = path.join(parent, 'd'.repeat(200));
        fs.mkdirSync(parent);
      }
      for (let f = 0; f < 5000; f++) fs.writeFileSync(path.join(parent, `f${f}`), '');
      const deep = path.join(parent, 'deep');
      fs.mkdirSync(deep);
      // Its name ends in '€'s (3 bytes of UTF-8), one of which straddles byte 4,096 of its path:
      // a path cut short at a whole character there would name `deep` again.
      const before = Buffer.byteLength(deep + '/');
      const pad = (4095 - before) % 3;
      const tooLong = 'x'.repeat(pad) + '€'.repeat(Math.ceil((4100 - before - pad) / 3));
      assert.ok(Buffer.byteLength(tooLong) <= 255 && (before + pad) % 3 === 4095 % 3);
      const here = process.cwd();
      process.chdir(deep);
      try {
        fs.mkdirSync(tooLong); // by a relative path: the absolute one is too long
      } finally {
        process.chdir(here);
      }
      const nativeUsed = native && loadNative() !== undefined;
      const lister = kind.make({ root, excludes: [], own: [], native }, { detachAtOnce: 1 });
      const taken: FolderListing[] = [];
      const failed: [string, string | undefined][] = [];
      try {
        // As the walk does: depth first, each listing discarded after its folders.
        const visit = async (relDir: string): Promise<void> => {
          let listing: FolderListing;
          try {
            listing = await take(lister, relDir);
          } catch (error) {
            failed.push([relDir, (error as NodeJS.ErrnoException).code]);
            return;
          }
          taken.push(listing);
          for (let i = 0; i < listing.names.length; i++) if (kindAt(listing, i) === DIR) await visit(joinRel(relDir, listing.names[i]));
          lister.discard(listing);
        };
        await visit('');
        const deepRel = path.relative(root, deep);
        assert.deepEqual(failed, [[nativeUsed ? `${deepRel}/${tooLong}` : deepRel, 'ENAMETOOLONG']]);
        assert.ok(taken.some((listing) => listing.names.length === 5001));
        // Every batch is freed, the one holding the folder that could not be listed too.
        assert.deepEqual(taken.map((listing) => listing.nums.buffer.byteLength), taken.map(() => 0));
        assert.equal(lister.liveBatches, 0, 'the batch of the folder that could not be listed is freed too');
      } finally {
        await lister.close();
        process.chdir(deep);
        try {
          fs.rmdirSync(tooLong);
        } finally {
          process.chdir(here);
        }
      }
    });
  }

  for (const kind of KINDS) {
    test(`a folder the walk passes over (to take it later) does not keep its whole batch (${kind.name})`, { skip: kind.skip }, async () => {
      // r/a (4,500 files: fills a batch), r/b, r/c: the walk takes a and c, then b (as replica-only folders are).
      const root = tempDir();
      fs.mkdirSync(path.join(root, 'a'));
      for (let f = 0; f < 4500; f++) fs.writeFileSync(path.join(root, 'a', `f${f}`), 'x'.repeat(f % 3));
      fs.mkdirSync(path.join(root, 'b'));
      fs.writeFileSync(path.join(root, 'b', 'only'), 'late');
      fs.mkdirSync(path.join(root, 'c'));
      const lister = kind.make({ root, excludes: [], own: [] }, { detachAtOnce: 1 });
      try {
        const top = await take(lister, '');
        const a = await take(lister, 'a');
        lister.discard(a);
        const c = await take(lister, 'c');
        lister.discard(c);
        // b and c came in the same batch; with c discarded and b passed over, that batch is freed.
        assert.equal(c.nums.buffer.byteLength, 0);
        const b = await take(lister, 'b');
        assert.deepEqual(b.names, ['only']);
        assert.equal(entryAt(b, 0).size, 4);
        lister.discard(b);
        assert.equal(b.nums.buffer.byteLength, 0);
        lister.discard(top);
        assert.equal(lister.liveBatches, 0);
      } finally {
        await lister.close();
      }
    });
  }

  for (const kind of KINDS) {
    test(`a walk waiting for a folder still gets it when what arrives meanwhile is a short batch (posted early, before a big folder) (${kind.name})`, { skip: kind.skip }, async () => {
      // a/ (1 file), b/ (5,000: more than a batch holds, so the batch before it is posted short), c/ (empty).
      const root = tempDir();
      fs.mkdirSync(path.join(root, 'a'));
      fs.writeFileSync(path.join(root, 'a', 'f'), '');
      fs.mkdirSync(path.join(root, 'b'));
      for (let f = 0; f < 5000; f++) fs.writeFileSync(path.join(root, 'b', `f${f}`), '');
      fs.mkdirSync(path.join(root, 'c'));
      const lister = kind.make({ root, excludes: [], own: [], maxAhead: 1 });
      try {
        // Asked for before anything arrived: everything before it is let go of as it comes.
        assert.deepEqual((await take(lister, 'c')).names, []);
      } finally {
        await lister.close();
      }
    });
  }

  test('a thread that ends before its tree is listed fails the walk waiting on it, instead of leaving it waiting', async () => {
    const root = bigTree();
    const lister = new ThreadLister({ root, excludes: [], own: [], maxAhead: 8 });
    await take(lister, '');
    // Held to 8 entries ahead, the thread has not listed d79 when it ends.
    await (lister as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await new Promise((resolve) => setImmediate(resolve)); // its exit event
    await assert.rejects(async () => lister.list('d79'), /listing thread ended \(status \d+\) before .* was listed/);
    await lister.close();
  });

  test('a thread that fails reports its own reason, not only that it ended', async () => {
    const root = bigTree();
    // micromatch refuses a pattern over 64 KiB: the thread's set-up throws, it reports and ends.
    const lister = new ThreadLister({ root, excludes: ['x'.repeat(70_000)], own: [] });
    try {
      await assert.rejects(take(lister, ''), /exceeds maximum allowed length/);
      await new Promise((resolve) => setTimeout(resolve, 100)); // its exit, after the report
      await assert.rejects(take(lister, 'd01'), /exceeds maximum allowed length/);
    } finally {
      await lister.close();
    }
  });

  for (const kind of KINDS) {
    test(`close() ends a thread that waits for room (${kind.name})`, { skip: kind.skip }, async () => {
      const root = bigTree();
      const lister = kind.make({ root, excludes: [], own: [], maxAhead: 8 });
      await take(lister, '');
      await new Promise((resolve) => setTimeout(resolve, 200)); // the thread fills its room and waits
      await lister.close();
      if (lister instanceof NativeWalkLister) {
        // (close() does not wait for the walker's thread, which never calls into Node: it is asked
        // directly whether it has ended, woken from its wait for room rather than left there.)
        const { native, walker: handle } = lister as unknown as { native: NativeWalk; walker: NativeWalker };
        assert.equal(native.walkNext(handle, 5000), true);
      }
    });
  }
});

describe('listing threads started before the pass (the CLI starts its first pass\'s early)', () => {
  /** Real threads on the setup's trees, with their list and close calls counted. */
  function started(s: { source: string; replica: string }) {
    const calls = { listed: 0, closed: 0 };
    const wrap = (root: string): ThreadLister => {
      const lister = new ThreadLister({ root, excludes: [], own: [] });
      const list = lister.list.bind(lister);
      const close = lister.close.bind(lister);
      lister.list = (relDir) => {
        calls.listed++;
        return list(relDir);
      };
      lister.close = () => {
        calls.closed++;
        return close();
      };
      return lister;
    };
    return { calls, listers: { source: wrap(s.source), replica: wrap(s.replica) } };
  }

  test('are the ones the pass lists with, and it closes them', async () => {
    const s = setup({ 'a.txt': 'alpha', 'd/b.txt': 'beta' });
    fs.mkdirSync(s.replica);
    fs.writeFileSync(path.join(s.replica, 'stale.txt'), 'old');
    const { calls, listers } = started(s);
    const result = await sync(s, { listers });
    assert.equal(result.exitStatus, 0);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    assert.equal(fs.readFileSync(path.join(s.replica, 'd/b.txt'), 'utf8'), 'beta');
    assert.equal(fs.existsSync(path.join(s.replica, 'stale.txt')), false);
    assert.equal(calls.listed, 3, "the two roots and the source's d, listed through them");
    assert.equal(calls.closed, 2);
  });

  test('are closed when the pass cannot start (the source is gone), so they cannot keep the process alive', async () => {
    const s = setup({ 'a.txt': 'alpha' });
    fs.mkdirSync(s.replica);
    const { calls, listers } = started(s);
    fs.rmSync(s.source, { recursive: true });
    const result = await sync(s, { listers });
    assert.equal(result.exitStatus, 1);
    assert.match(s.log.errors.join('\n'), /reading source .*nothing done/);
    assert.equal(calls.listed, 0);
    assert.equal(calls.closed, 2);
  });

  test('are closed when the manifest cannot be loaded', async () => {
    const s = setup({ 'a.txt': 'alpha' });
    fs.mkdirSync(s.replica);
    const { calls, listers } = started(s);
    await assert.rejects(sync(s, { listers, manifest: Promise.reject(new Error('manifest unreadable')) }), /manifest unreadable/);
    assert.equal(calls.closed, 2);
  });
});

describe('the folder lister of scoped passes (the addon on the main thread)', () => {
  test('lists each folder as the inline lister does: names in the walk\'s order, numbers, temporary files; big folders; names not UTF-8; a missing folder', { skip: walker === undefined ? 'the native lister is not built' : false }, () => {
    const root = tempDir();
    fs.mkdirSync(path.join(root, 'big'));
    // 1,500 names of 204 bytes: more text and more entries than the lister's buffers start with.
    for (let i = 0; i < 1500; i++) fs.writeFileSync(path.join(root, 'big', 'é'.repeat(100) + String(i).padStart(4, '0')), 'x'.repeat(i % 7));
    fs.writeFileSync(path.join(root, 'big', '.folder-sync-0123456789abcdef.tmp'), '');
    fs.mkdirSync(path.join(root, 'odd'));
    for (const name of ['🙂', '\uffee', 'a', 'ü']) fs.writeFileSync(path.join(root, 'odd', name), name);
    fs.writeFileSync(Buffer.concat([Buffer.from(path.join(root, 'odd') + '/'), Buffer.from([0x66, 0xe9])]), 'latin-1'); // "f\xe9"
    fs.symlinkSync('nowhere', path.join(root, 'odd', 'link'));
    const native = new NativeFolderLister(walker!, root);
    const inline = new InlineLister(nodeIo, root);
    for (const dir of ['', 'big', 'odd']) {
      const a = native.list(dir);
      const b = inline.list(dir);
      assert.deepEqual(a.names, b.names, dir);
      assert.deepEqual([...a.nums], [...b.nums], dir);
      assert.deepEqual(a.temps, b.temps, dir);
    }
    assert.equal(native.list('big').names.length, 1500);
    assert.deepEqual(native.list('big').temps, ['.folder-sync-0123456789abcdef.tmp']);
    assert.deepEqual(native.list('odd').names, ['a', 'f\udce9', 'link', 'ü', '🙂', '\uffee']);
    assert.throws(() => native.list('missing'), { code: 'ENOENT' });
  });
});
