/** The native lister (native/fswalk.c): built by `npm install`, and listing exactly as the JavaScript one does. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import { COPY_STEPS } from '../src/replica/local/copy.js';
import { fixMeta } from '../src/replica/local/ops.js';
import type { LocalContext } from '../src/replica/local/context.js';
import { metaFix } from '../src/replica/replica.js';
import { ALL_OWNERS, NO_OWNERS } from '../src/compare/owners.js';
import { DIR, entryFrom, FILE, kindAt, NUMS, SPECIAL, SYMLINK, type FolderListing } from '../src/tree/entry.js';
import { NativeWalkLister } from '../src/tree/native-walker.js';
import { ThreadLister } from '../src/tree/thread-lister.js';
import { loadNative } from '../src/native.js';
import { nodeIo } from '../src/replica/local/io.js';
import { decodeName } from '../src/tree/names.js';
import { nativeCopy } from '../src/native.js';
const poolCopies = (): boolean => nativeCopy() !== undefined;
import { byName, joinRel, listDir, toEntry } from '../src/tree/scan.js';
import { tempDir } from './helpers/tree.js';

const ROOT_DIR = fileURLToPath(new URL('..', import.meta.url));
const built = fs.existsSync(new URL('../build/Release/fswalk.node', import.meta.url));
const notBuilt = built ? false : 'the native lister was not built (npm install found no C compiler)';
/** Not built, or built and turned off (FOLDER_SYNC_NATIVE=0): the tests of what it does are skipped. */
const notUsed = notBuilt || (loadNative() ? false : 'FOLDER_SYNC_NATIVE=0: the native lister is not used');

/** Names whose order differs between UTF-8 bytes and UTF-16 code units, and others that sort oddly. */
const ODD_NAMES = ['a', 'B', 'b', 'b\uFFFDc', '10', '9', '.hidden', 'é', 'e\u0301', '\uE000', '\uFFEE', '\uFFFD', '😀', '𝄞', 'x\uE001', 'x😀', 'x\uFFEE', 'x𝄞', 'z'];
const TEMP = '.folder-sync-0123456789abcdef.tmp';
const NOT_TEMP = '.folder-sync-0123456789abcdeF.tmp';
/**
 * Not UTF-8: `b`, 0xFF, `c` would decode (with U+FFFD) to `b\uFFFDc`, also the name of a file that is
 * (its twin), and 0x80 to `\uFFFD`, another; `q`, 0xFE and `q`, 0xFF both to `q\uFFFD`; `一`, 0xFF
 * sorts after 0x80 as bytes, before it decoded. Each is listed, its bytes escaped (`names.ts`).
 */
const UNDECODABLE = [[0x62, 0xff, 0x63], [0x71, 0xfe], [0x71, 0xff], [0x80], [0xe4, 0xb8, 0x80, 0xff]].map((bytes) => Buffer.from(bytes));

/** A tree with every kind of entry and name the listers must agree on. */
function oddTree(): string {
  const root = tempDir('fs-native-');
  for (const [i, name] of ODD_NAMES.entries()) fs.writeFileSync(path.join(root, name), 'x'.repeat(i));
  fs.writeFileSync(path.join(root, TEMP), 'partial');
  fs.writeFileSync(path.join(root, NOT_TEMP), 'kept');
  for (const name of UNDECODABLE) fs.writeFileSync(Buffer.concat([Buffer.from(root + '/'), name]), 'undecodable');
  fs.symlinkSync('a', path.join(root, 'link'));
  fs.symlinkSync('nowhere', path.join(root, 'dangling'));
  fs.symlinkSync('sub', path.join(root, 'dirlink'));
  assert.equal(spawnSync('mkfifo', [path.join(root, 'pipe')]).status, 0);
  fs.mkdirSync(path.join(root, 'empty'));
  fs.mkdirSync(path.join(root, 'sub', 'skipme'), { recursive: true });
  fs.writeFileSync(path.join(root, 'sub', 'skipme', 'hidden'), 'excluded');
  fs.writeFileSync(path.join(root, 'sub', 'old'), 'old');
  fs.utimesSync(path.join(root, 'sub', 'old'), new Date('2001-02-03T04:05:06.789Z'), new Date('2001-02-03T04:05:06.789Z'));
  fs.chmodSync(path.join(root, 'sub', 'old'), 0o640);
  fs.mkdirSync(path.join(root, 'sub', 'deeper', 'deepest'), { recursive: true });
  fs.writeFileSync(path.join(root, 'sub', 'deeper', 'deepest', 'leaf'), 'leaf');
  // More names than a batch holds (4,096) and more text than its first buffer (128 KiB): the
  // lister must post what it has, or grow its buffer, and list the folder again.
  fs.mkdirSync(path.join(root, 'big'));
  for (let i = 0; i < 5000; i++) fs.writeFileSync(path.join(root, 'big', `${'n'.repeat(40)}-${i}-é`), '');
  return root;
}

interface Seen {
  relDir: string;
  names: string[];
  nums: number[];
  temps: string[];
}

/**
 * Every folder's listing, taken depth first as the walk takes them (`skipme` is excluded): by a
 * listing thread, natively or in JavaScript, or by the native walker.
 */
async function listAll(root: string, native: boolean | 'walker'): Promise<{ seen: Seen[]; liveBatches: number }> {
  // The thread takes the environment as it starts: the native lister even when the suite runs
  // with FOLDER_SYNC_NATIVE=0 (or this would compare the JavaScript lister with itself).
  const before = process.env.FOLDER_SYNC_NATIVE;
  delete process.env.FOLDER_SYNC_NATIVE;
  let lister: ThreadLister | NativeWalkLister;
  try {
    // (The walker excludes nothing: it lists `skipme` too, and the walk does not take it.)
    lister = native === 'walker' ? new NativeWalkLister({ root, excludes: [], own: [] }, loadNative()!) : new ThreadLister({ root, excludes: ['skipme'], own: [], native });
  } finally {
    if (before !== undefined) process.env.FOLDER_SYNC_NATIVE = before;
  }
  const seen: Seen[] = [];
  try {
    const visit = async (relDir: string): Promise<void> => {
      const listing: FolderListing = await lister.list(relDir);
      seen.push({ relDir, names: [...listing.names], nums: Array.from(listing.nums), temps: [...listing.temps] });
      for (let i = 0; i < listing.names.length; i++) {
        if (kindAt(listing, i) === DIR && listing.names[i] !== 'skipme') await visit(joinRel(relDir, listing.names[i]));
      }
      lister.discard(listing);
    };
    await visit('');
    return { seen, liveBatches: lister.liveBatches };
  } finally {
    await lister.close();
  }
}

describe('native lister', () => {
  test('npm install built it, it loads (built from these sources: its version is this code\'s), and FOLDER_SYNC_NATIVE=0 turns it off', { skip: notBuilt }, () => {
    const before = process.env.FOLDER_SYNC_NATIVE; // (set when the suite runs with the JavaScript lister)
    try {
      delete process.env.FOLDER_SYNC_NATIVE;
      assert.equal(typeof loadNative()?.list, 'function');
      process.env.FOLDER_SYNC_NATIVE = '0';
      assert.equal(loadNative(), undefined);
    } finally {
      if (before === undefined) delete process.env.FOLDER_SYNC_NATIVE;
      else process.env.FOLDER_SYNC_NATIVE = before;
    }
  });

  test('syncFs writes out the filesystem of an open file (0) or answers the errno (a closed descriptor: EBADF); nodeIo.syncFs rejects with it as fs would', { skip: notUsed }, async () => {
    const native = loadNative()!;
    const fd = fs.openSync(path.join(tempDir(), 'f'), 'w');
    fs.writeSync(fd, 'x');
    assert.equal(await native.syncFs(fd), 0);
    await nodeIo.syncFs(fd);
    fs.closeSync(fd);
    assert.equal(await native.syncFs(fd), os.constants.errno.EBADF);
    await assert.rejects(nodeIo.syncFs(fd), { code: 'EBADF', errno: -os.constants.errno.EBADF, syscall: 'syncfs' });
    assert.throws(() => native.syncFs(-1), TypeError);
  });

  test('fixMetas sets owners, bits and times as fixMeta does (times to the nanosecond, before 1970 too), answers each lstat, refuses a file changed since the walk, and each failure as fs throws it', { skip: notUsed }, async () => {
    const root = tempDir('fs-native-metas-');
    const [viaNode, viaNative, changed, missing] = ['node.txt', 'native.txt', 'changed.txt', 'missing.txt'].map((name) => path.join(root, name));
    for (const p of [viaNode, viaNative, changed]) fs.writeFileSync(p, 'x');
    const seen = (p: string) => toEntry(path.basename(p), fs.lstatSync(p, { bigint: true }));
    // Source times as the walk splits them: an mtime before 1970 (-1.5 s), an atime with nanoseconds.
    const source = { ...seen(viaNode), mode: 0o604, mtimeS: -2, mtimeN: 500_000_000, atimeS: 1_700_000_000, atimeN: 123_456_789 };
    const owners = process.getuid?.() === 0 ? ALL_OWNERS : NO_OWNERS;
    const owned = { ...source, uid: owners === ALL_OWNERS ? 4321 : source.uid, gid: owners === ALL_OWNERS ? 8765 : source.gid };
    fixMeta({ io: nodeIo, replicaRoot: root, owners, ownerRefused: assert.fail } as LocalContext, metaFix('node.txt', owned, seen(viaNode), owners));
    const fix = { mode: 0o604, uid: owners.uid(owned), gid: owners.gid(owned), atimeS: source.atimeS, atimeN: source.atimeN, mtimeS: source.mtimeS, mtimeN: source.mtimeN };
    const changedSeen = seen(changed);
    fs.writeFileSync(changed, 'y'); // rewritten at the same size since the walk saw it
    const changedBefore = fs.lstatSync(changed, { bigint: true });
    const { nums, errors } = await nodeIo.fixMetas([
      { abs: viaNative, seen: seen(viaNative), ...fix },
      { abs: changed, seen: changedSeen, ...fix },
      { abs: missing, seen: changedSeen, ...fix },
    ]);

    const [a, b] = [viaNode, viaNative].map((p) => fs.lstatSync(p, { bigint: true }));
    assert.equal(b.mode & 0o7777n, 0o604n);
    assert.equal(b.mtimeNs, -1_500_000_000n);
    assert.equal(b.atimeNs, 1_700_000_000_123_456_789n, 'to the nanosecond');
    assert.deepEqual([b.mode, b.mtimeNs, b.atimeNs, b.uid, b.gid], [a.mode, a.mtimeNs, a.atimeNs, a.uid, a.gid], 'as fixMeta sets them (through the addon\'s utimens)');
    if (owners === ALL_OWNERS) assert.deepEqual([b.uid, b.gid], [4321n, 8765n]);
    assert.deepEqual(entryFrom('native.txt', nums, 0), toEntry('native.txt', b));
    assert.equal(errors?.[0], undefined);
    // Changed since the walk: refused, and left as it is.
    assert.equal((errors?.[1] as NodeJS.ErrnoException | undefined)?.code, 'ECHANGED');
    assert.deepEqual(fs.lstatSync(changed, { bigint: true }), changedBefore);
    // Missing: the first lstat fails, in Node's words for the same call.
    let expected: NodeJS.ErrnoException | undefined;
    try {
      fs.lstatSync(missing);
    } catch (error) {
      expected = error as NodeJS.ErrnoException;
    }
    assert.deepEqual({ ...errors?.[2], message: errors?.[2]?.message }, { code: 'ENOENT', errno: expected?.errno, syscall: 'lstat', message: expected?.message });
    // A time before 1970 split as BigInt division once split it (-100 s and -0.25 s) is the same time.
    const split = await nodeIo.fixMetas([{ abs: viaNative, seen: seen(viaNative), ...fix, mode: undefined, mtimeS: -100, mtimeN: -250_000_000 }]);
    assert.equal(split.errors, undefined);
    assert.equal(fs.lstatSync(viaNative, { bigint: true }).mtimeNs, -100_250_000_000n);
    // Bad arguments throw at once.
    assert.throws(() => loadNative()!.fixMetas(['x'], new Float64Array(12), new Float64Array(NUMS)), TypeError);
    assert.throws(() => loadNative()!.fixMetas([1 as never], new Float64Array(13), new Float64Array(NUMS)), TypeError);
  });

  test('copyToTemp writes the source\'s bytes into a private temporary file with the source\'s bits, answers its MD5 and fstat, and fails as fs would, naming its step, with nothing left behind', { skip: notUsed || (poolCopies() ? false : 'built without copyToTemp (no OpenSSL headers)') }, async () => {
    const root = tempDir('fs-native-copy-');
    const source = path.join(root, 'source.bin');
    const data = Buffer.concat([randomBytes(3 << 20), Buffer.from('tail')]); // more than one 1 MiB read
    fs.writeFileSync(source, data, { mode: 0o640 });
    fs.chmodSync(source, 0o640);
    const temp = path.join(root, '.folder-sync-0123456789abcdef.tmp');
    fs.writeFileSync(temp, randomBytes(4 << 20)); // left over, longer: truncated, not written over
    const copied = await nodeIo.copyToTemp(source, temp, 1 << 30);
    try {
      assert.equal(copied.md5, createHash('md5').update(data).digest('hex'));
      // (Its atime as before the read, which may have moved it.)
      const { atimeS: _s, atimeN: _n, ...before } = entryFrom('source.bin', copied.nums, 0);
      const { atimeS: _S, atimeN: _N, ...now } = toEntry('source.bin', fs.lstatSync(source, { bigint: true }));
      assert.deepEqual(before, now);
      assert.equal(fs.fstatSync(copied.fd).mode & 0o7777, 0o640);
      assert.ok(fs.readFileSync(temp).equals(data));
    } finally {
      fs.closeSync(copied.fd);
    }
    const fails = async (from: string, to: string, expected: { code: string; step?: number; syscall?: string; path?: string }) => {
      const error = await nodeIo.copyToTemp(from, to, expected.code === 'ETOOBIG' ? data.length : 1 << 30).then(
        () => assert.fail(`${from} -> ${to} was copied`),
        (e: NodeJS.ErrnoException & { step?: number }) => e,
      );
      assert.deepEqual({ code: error.code, step: error.step, syscall: error.syscall }, { code: expected.code, step: expected.step, syscall: expected.syscall });
      if (expected.path) assert.ok(error.message.endsWith(`${expected.syscall} '${expected.path}'`), error.message);
      if (expected.step !== undefined) assert.equal(COPY_STEPS[expected.step], ['opening', 'reading', 'creating temporary file for'][expected.step]);
      assert.equal(fs.existsSync(to), false, 'no temporary file left');
    };
    await fails(path.join(root, 'missing'), path.join(root, 't1.tmp'), { code: 'ENOENT', step: 0, syscall: 'open', path: path.join(root, 'missing') });
    fs.symlinkSync('source.bin', path.join(root, 'link'));
    await fails(path.join(root, 'link'), path.join(root, 't2.tmp'), { code: 'ELOOP', step: 0, syscall: 'open', path: path.join(root, 'link') });
    await fails(source, path.join(root, 'no-folder', 't4.tmp'), { code: 'ENOENT', step: 2, syscall: 'open', path: path.join(root, 'no-folder', 't4.tmp') });
    // A call on a descriptor names no path, as Node's: reading a folder.
    const dirError = await nodeIo.copyToTemp(root, path.join(root, 't3.tmp'), 1 << 30).catch((e: Error) => e);
    assert.deepEqual({ ...(dirError as object), message: (dirError as Error).message }, { code: 'EISDIR', errno: -os.constants.errno.EISDIR, syscall: 'read', step: 1, message: 'EISDIR: illegal operation on a directory, read' });
    assert.equal(fs.existsSync(path.join(root, 't3.tmp')), false);
    // Grown to the limit since the walk (the caller copies it otherwise): no step, nothing left.
    await fails(source, path.join(root, 't5.tmp'), { code: 'ETOOBIG' });
    assert.throws(() => loadNative()!.copyToTemp!(source, temp, new Float64Array(NUMS - 1), new Uint8Array(16), 1), TypeError);
    assert.throws(() => loadNative()!.copyToTemp!(source, temp, new Float64Array(NUMS), new Uint8Array(15), 1), TypeError);
    assert.throws(() => loadNative()!.copyToTemp!(source, temp, new Float64Array(NUMS), new Uint8Array(16), 'x' as never), TypeError);
  });

  test('copyToTemp: a write that fails (a file size limit: EFBIG) is the writing step, named without a path as Node names it, and leaves no temporary file', { skip: notUsed || (poolCopies() ? false : 'built without copyToTemp') || (spawnSync('prlimit', ['--version']).status === 0 ? false : 'no prlimit') }, () => {
    const root = tempDir('fs-native-efbig-');
    fs.writeFileSync(path.join(root, 'source.bin'), randomBytes(64 << 10));
    // Node ignores SIGXFSZ: past RLIMIT_FSIZE, write fails with EFBIG.
    const script = `import('${pathToFileURL(path.join(ROOT_DIR, 'src/replica/local/io.ts')).href}').then(({ nodeIo }) => nodeIo.copyToTemp(process.argv[1] + '/source.bin', process.argv[1] + '/t.tmp', 1 << 30)).then(() => console.log('copied'), (e) => console.log(JSON.stringify({ code: e.code, step: e.step, syscall: e.syscall, message: e.message })))`;
    const r = spawnSync('prlimit', ['--fsize=4096', process.execPath, '--import', 'tsx', '-e', script, root], { encoding: 'utf8', cwd: ROOT_DIR });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { code: 'EFBIG', step: 3, syscall: 'write', message: 'EFBIG: file too large, write' });
    assert.equal(COPY_STEPS[3], 'writing');
    assert.equal(fs.existsSync(path.join(root, 't.tmp')), false);
  });

  test('lists every folder exactly as the JavaScript lister does, in a listing thread and walking in its own: names (those not UTF-8 too), order, numbers, temporary files', { skip: notUsed }, async () => {
    const root = oddTree();
    // Reading the folders once sets their atimes (relatime) before the compared runs: by the walker,
    // which reads `skipme` too.
    await listAll(root, 'walker');
    const native = await listAll(root, true);
    const walker = await listAll(root, 'walker');
    const js = await listAll(root, false);
    assert.deepEqual(native.seen, js.seen);
    assert.equal(native.liveBatches, 0);
    assert.deepEqual(walker.seen, js.seen);
    // One batch is held: the last, with sub/skipme, which the walk never takes (closing frees it).
    assert.equal(walker.liveBatches, 1);

    // And the JavaScript lister is right, so both are.
    assert.deepEqual(native.seen.map((s) => s.relDir), ['', 'big', 'empty', 'sub', 'sub/deeper', 'sub/deeper/deepest']);
    const top = native.seen[0];
    const escaped = UNDECODABLE.map((bytes) => decodeName(bytes));
    assert.deepEqual(escaped, ['b\udcffc', 'q\udcfe', 'q\udcff', '\udc80', '一\udcff']);
    const expected = [...ODD_NAMES, ...escaped, NOT_TEMP, 'link', 'dangling', 'dirlink', 'pipe', 'empty', 'sub', 'big'].sort(byName);
    assert.deepEqual(top.names, expected);
    assert.deepEqual(top.temps, [TEMP]);
    assert.equal(top.nums[top.names.indexOf('b\uFFFDc') * NUMS + 1], ODD_NAMES.indexOf('b\uFFFDc'), 'the twin that is UTF-8 is itself');
    assert.equal(top.nums[top.names.indexOf('b\udcffc') * NUMS + 1], 'undecodable'.length, 'and the one that is not, itself');
    // The main thread's own lister (tests, and passes without threads) lists the root alike.
    const inline = listDir(nodeIo, root);
    assert.deepEqual([...inline.entries.keys()], top.names);
    assert.deepEqual(inline.temps, top.temps);
    const kindOf = (name: string) => top.nums[top.names.indexOf(name) * NUMS];
    assert.deepEqual(['a', 'link', 'dirlink', 'pipe', 'sub'].map(kindOf), [FILE, SYMLINK, SYMLINK, SPECIAL, DIR]);
    const sub = native.seen.find((s) => s.relDir === 'sub')!;
    assert.deepEqual(sub.names, ['deeper', 'old', 'skipme']);
    const old = sub.nums.slice(NUMS, 2 * NUMS);
    const st = fs.lstatSync(path.join(root, 'sub', 'old'), { bigint: true });
    assert.deepEqual(old, [FILE, 3, 0o640, 981173106, 789000000, Number(st.ctimeNs / 1_000_000_000n), Number(st.ctimeNs % 1_000_000_000n), 981173106, 789000000, Number(st.ino), Number(st.uid), Number(st.gid), 1, Number(st.dev)]);
    const big = native.seen.find((s) => s.relDir === 'big')!;
    assert.equal(big.names.length, 5000);
    assert.deepEqual(big.names, [...big.names].sort(byName));
  });
});
