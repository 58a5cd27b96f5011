/**
 * Large copies with threads: the kernel copies the file (`Io.copyInKernel`) while a hashing thread
 * reads it. The threshold is lowered to 1 MiB so small test files take that way.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { tempPathFor } from '../src/replica/local/context.js';
import { nodeIo } from '../src/replica/local/io.js';
import { Manifest } from '../src/manifest/manifest.js';
import { errno, md5, mirrorDiff, readTree, settle, setup, sync, tempDir, tempFiles, type SyncSetup } from './helpers/tree.js';

const OLD = 1_600_000_000;
// Small copies on the main thread (not the addon's thread pool), where `fail('write')` reaches them.
const THREADS = { threads: { excludes: [], own: [] }, kernelCopyMinBytes: 1 << 20, poolCopies: false };

/** Runs `hook` when the pass starts its kernel copy, then lets the real copy go on. */
function beforeKernelCopy(s: SyncSetup, hook: (output: number) => void): void {
  const real = s.io.copyInKernel;
  s.io.copyInKernel = (input, output, signal) => {
    hook(output);
    return real(input, output, signal);
  };
}

async function recordedMd5(s: SyncSetup, relPath: string): Promise<string | undefined> {
  const manifest = await Manifest.open(s.manifestPath, { source: s.source, replica: s.replica, warn: assert.fail });
  return manifest.get(relPath)?.md5;
}

describe('large copies: in the kernel while a thread hashes', () => {
  test('same bytes, the real MD5, mode and mtime; the temporary file private until done, then gone', async () => {
    const data = randomBytes(3 << 20);
    const s = setup({ 'big.bin': { content: data, mode: 0o640, mtime: OLD }, 'small.txt': { content: 'small', mtime: OLD } });
    await settle(); // else the files may be copied within the racy window, and rightly read again next pass
    const modes: string[] = [];
    beforeKernelCopy(s, (output) => modes.push((fs.fstatSync(output).mode & 0o7777).toString(8)));
    const result = await sync(s, THREADS);

    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(s.io.kernelCopies, [tempPathFor(s.replica, 'big.bin')]); // the small file went byte by byte
    assert.deepEqual(modes, ['600']);
    assert.ok(fs.readFileSync(path.join(s.replica, 'big.bin')).equals(data));
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    const seen = readTree(s.replica)['big.bin'];
    assert.equal(seen.mode, '640');
    assert.equal(seen.mtimeUs, OLD * 1e6);
    assert.equal(await recordedMd5(s, 'big.bin'), md5(data));
    assert.deepEqual(tempFiles(s.replica), []);
    assert.equal(result.stats.copied, 2);
    assert.equal(result.stats.hashed, 2); // once each
    assert.equal(result.stats.bytesCopied, data.length + 5);
    assert.ok(s.log.actions.includes('copied big.bin (new)'));

    // The record vouches for both sides: the next pass reads nothing.
    const again = await sync(s, THREADS);
    assert.deepEqual(s.log.actions, []);
    assert.equal(again.stats.hashed, 0);
  });

  test('a source cut short during the copy: no hang, the replica keeps its version, the next pass copies', { timeout: 30_000 }, async () => {
    const old = randomBytes(3 << 20);
    const s = setup({ 'big.bin': old });
    await sync(s);
    const sourceAbs = path.join(s.source, 'big.bin');
    fs.writeFileSync(sourceAbs, randomBytes(3 << 20));
    await settle();
    beforeKernelCopy(s, () => fs.truncateSync(sourceAbs, 1 << 20)); // a log truncated in place
    const result = await sync(s, THREADS);

    assert.equal(s.io.kernelCopies.length, 1);
    assert.deepEqual(s.log.warnings, ['big.bin changed while it was being copied; left as it was, it will be copied next pass']);
    assert.equal(result.stats.errors, 0);
    assert.ok(fs.readFileSync(path.join(s.replica, 'big.bin')).equals(old));
    assert.equal(await recordedMd5(s, 'big.bin'), md5(old));
    assert.deepEqual(tempFiles(s.replica), []);

    s.io.copyInKernel = nodeIo.copyInKernel;
    await settle();
    const next = await sync(s, THREADS);
    assert.equal(next.stats.updated, 1);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('a kernel copy that fails, or ends short or long without an error, is done again byte by byte', async () => {
    const data = randomBytes(3 << 20);
    const s = setup({ 'failed.bin': data, 'long.bin': data.subarray(2), 'short.bin': data.subarray(1) });
    s.io.fail = (call, p) => (call === 'copyInKernel' && p.endsWith(tempPathFor('', 'failed.bin')) ? errno('EIO', 'i/o error') : undefined);
    const real = s.io.copyInKernel;
    s.io.copyInKernel = (input, output, signal) =>
      real(input, output, signal).then(() => {
        // A `cat` that stopped early, or wrote a byte too many.
        const size = fs.fstatSync(output).size;
        if (size === data.length - 1) fs.ftruncateSync(output, 1 << 20);
        else fs.writeSync(output, Buffer.from('!'), 0, 1, size);
      });
    const result = await sync(s, THREADS);

    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.equal(s.io.kernelCopies.length, 3);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    assert.equal(await recordedMd5(s, 'failed.bin'), md5(data));
    assert.equal(await recordedMd5(s, 'long.bin'), md5(data.subarray(2)));
    assert.equal(await recordedMd5(s, 'short.bin'), md5(data.subarray(1)));
    assert.equal(result.stats.hashed, 3);
    assert.deepEqual(tempFiles(s.replica), []);
  });

  test('when the byte copy fails too, its error is reported as before: no temporary file, the replica unchanged', async () => {
    const old = randomBytes(3 << 20);
    const s = setup({ 'big.bin': old, 'other.txt': 'other' });
    await sync(s);
    fs.writeFileSync(path.join(s.source, 'big.bin'), randomBytes(3 << 20));
    fs.writeFileSync(path.join(s.source, 'other.txt'), 'changed');
    await settle();
    s.io.fail = (call) => (call === 'copyInKernel' ? errno('ENOSPC', 'no space left on device') : call === 'write' ? errno('ENOSPC', 'no space left on device') : undefined);
    const result = await sync(s, THREADS);

    assert.equal(result.exitStatus, 1);
    assert.deepEqual(s.log.errors, ['copying (writing) big.bin: ENOSPC: no space left on device', 'copying (writing) other.txt: ENOSPC: no space left on device']);
    assert.ok(fs.readFileSync(path.join(s.replica, 'big.bin')).equals(old));
    assert.deepEqual(tempFiles(s.replica), []);
  });

  test('a stop request during the copy ends it at once and removes its temporary file', { timeout: 30_000 }, async () => {
    const s = setup({ 'big.bin': randomBytes(3 << 20) });
    let stopping = false;
    let aborted = false;
    // A copy that would never end by itself.
    s.io.copyInKernel = (_input, _output, signal) => {
      stopping = true;
      return new Promise((_, reject) => signal.addEventListener('abort', () => ((aborted = true), reject(new Error('killed')))));
    };
    const result = await sync(s, { ...THREADS, shouldStop: () => stopping });

    assert.equal(aborted, true);
    assert.equal(result.interrupted, true);
    assert.match(result.summary, /^pass stopped: 0 copied/);
    assert.deepEqual(tempFiles(s.replica), []);
    assert.equal(fs.existsSync(path.join(s.replica, 'big.bin')), false);
  });

  test('below the threshold, and to resume a cut-short copy, the bytes go through this thread', async () => {
    const data = randomBytes(3 << 20);
    const s = setup({ 'big.bin': data, 'medium.bin': randomBytes(512 << 10) });
    fs.mkdirSync(s.replica, { recursive: true });
    fs.writeFileSync(tempPathFor(s.replica, 'big.bin'), data.subarray(0, 2 << 20)); // left by a killed pass
    const result = await sync(s, THREADS);

    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(s.io.kernelCopies, []);
    assert.ok(s.log.actions.includes('copied big.bin (new; resumed after 2.0 MiB)'));
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    assert.deepEqual(tempFiles(s.replica), []);
  });
});

describe('a left-over temporary file an orphaned cat may still be writing', () => {
  test('is resumed only once it stops changing', { timeout: 30_000 }, async () => {
    const data = randomBytes(3 << 20);
    const s = setup({ 'big.bin': data });
    fs.mkdirSync(s.replica, { recursive: true });
    const temp = tempPathFor(s.replica, 'big.bin');
    fs.writeFileSync(temp, data.subarray(0, 1 << 20));
    // Like a cat outliving a kill -9: the file grows for a while after the pass has started.
    let written = 1 << 20;
    const writer = setInterval(() => {
      if (written >= 2 << 20) return clearInterval(writer);
      fs.appendFileSync(temp, data.subarray(written, written + (256 << 10)));
      written += 256 << 10;
    }, 150);
    try {
      const result = await sync(s, THREADS);
      assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
      // Waited for the writer: every byte it wrote is kept, none written after our check.
      assert.ok(s.log.actions.includes('copied big.bin (new; resumed after 2.0 MiB)'), s.log.actions.join('\n'));
      assert.ok(fs.readFileSync(path.join(s.replica, 'big.bin')).equals(data));
      assert.deepEqual(tempFiles(s.replica), []);
    } finally {
      clearInterval(writer);
    }
  });

  test('one too small to resume is unlinked, not rewritten in place (a file below the kernel threshold)', async () => {
    const data = randomBytes(3 << 20);
    const s = setup({ 'big.bin': data });
    fs.mkdirSync(s.replica, { recursive: true });
    const temp = tempPathFor(s.replica, 'big.bin');
    fs.writeFileSync(temp, 'a few bytes');
    const orphan = fs.openSync(temp, 'r+'); // what an orphaned cat would still hold
    try {
      const result = await sync(s, { ...THREADS, kernelCopyMinBytes: 16 << 20 });
      assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
      // Writes through the orphan's descriptor land in an unlinked inode, not in the replica.
      fs.writeSync(orphan, Buffer.from('late bytes'), 0, 10, 0);
      assert.ok(fs.readFileSync(path.join(s.replica, 'big.bin')).equals(data));
      assert.equal(fs.fstatSync(orphan).nlink, 0);
    } finally {
      fs.closeSync(orphan);
    }
  });
});

describe('the kernel copy itself (cat)', () => {
  test('copies one descriptor into the other and leaves the target private', async () => {
    const dir = tempDir();
    const data = randomBytes(5 << 20);
    fs.writeFileSync(path.join(dir, 'in'), data, { mode: 0o644 });
    const input = fs.openSync(path.join(dir, 'in'), 'r');
    const output = fs.openSync(path.join(dir, 'out'), 'w', 0o600);
    try {
      await nodeIo.copyInKernel(input, output, new AbortController().signal);
      assert.equal(fs.fstatSync(output).mode & 0o7777, 0o600);
    } finally {
      fs.closeSync(input);
      fs.closeSync(output);
    }
    assert.ok(fs.readFileSync(path.join(dir, 'out')).equals(data));
  });

  test('a stopped copy is killed, and settles only once the process is gone', { timeout: 10_000 }, async () => {
    const dir = tempDir();
    const fifo = path.join(dir, 'fifo');
    const made = await import('node:child_process').then((cp) => cp.spawnSync('mkfifo', [fifo]).status === 0);
    assert.ok(made, 'mkfifo');
    // Opened read-write so the open does not wait for a writer; `cat` then waits for bytes forever.
    const input = fs.openSync(fifo, fs.constants.O_RDWR);
    const output = fs.openSync(path.join(dir, 'out'), 'w', 0o600);
    const stop = new AbortController();
    try {
      const copying = nodeIo.copyInKernel(input, output, stop.signal);
      setTimeout(() => stop.abort(), 100);
      await assert.rejects(copying, /cat killed by SIGKILL/);
    } finally {
      fs.closeSync(input);
      fs.closeSync(output);
    }
  });
});
