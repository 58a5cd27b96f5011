/**
 * Metadata fixes (touched mtimes, changed permission bits) made in batches on the thread pool
 * (`applyMetas` in src/pass.ts, `fixMetas` in native/fswalk.c), recorded and logged in the plan's
 * order as one at a time: what the batching must keep true.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { errno, mirrorDiff, numbered, settle, setup, sync, withoutAddon, type SyncSetup } from './helpers/tree.js';

const OLD = 1_600_000_000;
const NEW = 1_700_000_000.25;

/**
 * 600 files `d/f000.txt`… mirrored, then touched in the source (a new mtime); every 7th also gets
 * new permission bits. Their expected lines, in the plan's order.
 */
async function mirroredThenTouched(): Promise<{ s: SyncSetup; names: string[]; lines: string[] }> {
  const names = numbered('d', 600);
  const s = setup(Object.fromEntries(names.map((f) => [f, { content: `content of ${f}`, mtime: OLD, mode: 0o644 }])));
  await sync(s);
  names.forEach((f, i) => {
    fs.utimesSync(path.join(s.source, f), NEW, NEW);
    if (i % 7 === 0) fs.chmodSync(path.join(s.source, f), 0o600);
  });
  await settle();
  const lines = names.map((f, i) => `updated ${f} (${i % 7 === 0 ? 'permissions, mtime' : 'mtime'})`);
  return { s, names, lines };
}

/** Whether each replica file has its source's mtime and bits, and is the file it was (not rewritten). */
function assertFixed(s: SyncSetup, names: string[], inodes: Map<string, number>): void {
  for (const f of names) {
    const [source, replica] = [s.source, s.replica].map((root) => fs.lstatSync(path.join(root, f)));
    assert.equal(replica.mtimeMs, source.mtimeMs, f);
    assert.equal(replica.mode, source.mode, f);
    assert.equal(replica.ino, inodes.get(f), `${f} was not rewritten`);
  }
}

function inodesOf(s: SyncSetup, names: string[]): Map<string, number> {
  return new Map(names.map((f) => [f, fs.lstatSync(path.join(s.replica, f)).ino]));
}

/** Whether each record holds its own replica file's inode, mtime and ctime (not another's). */
function assertRecordsTrue(s: SyncSetup, names: string[], manifest: Awaited<ReturnType<typeof sync>>['manifest']): void {
  for (const f of names) {
    const record = manifest.get(f);
    const replica = fs.lstatSync(path.join(s.replica, f), { bigint: true });
    assert.equal(BigInt(record!.repMtimeS) * 1_000_000_000n + BigInt(record!.repMtimeN), replica.mtimeNs, f);
    assert.equal(BigInt(record!.repCtimeS) * 1_000_000_000n + BigInt(record!.repCtimeN), replica.ctimeNs, f);
    assert.equal(record!.repIno, Number(replica.ino), f);
  }
}

describe('metadata fixed in batches on the thread pool', () => {
  test('600 touched files: three batches (256, 256, 88); every replica file fixed in place, recorded as it is now, its line in the plan order; the next pass finds nothing', { skip: withoutAddon }, async () => {
    const { s, names, lines } = await mirroredThenTouched();
    const inodes = inodesOf(s, names);
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(s.io.metaBatches, [256, 256, 88]);
    assert.deepEqual(s.log.actions, lines);
    assert.equal(result.stats.updated, 600);
    assertFixed(s, names, inodes);
    // The records hold the replica's fingerprint as fixed (its new mtime and ctime).
    assertRecordsTrue(s, names, result.manifest);
    const again = await sync(s);
    assert.deepEqual(s.log.actions, []);
    assert.deepEqual(s.io.opens, [], 'the cache vouches for both sides: nothing is read');
    assert.equal(again.stats.hashed, 0);
  });

  test('a run mixing files to fix with files only to record (the manifest lost, every third file touched): each record is its own file\'s', { skip: withoutAddon }, async () => {
    const names = numbered('d', 300);
    const s = setup(Object.fromEntries(names.map((f) => [f, { content: `content of ${f}`, mtime: OLD }])));
    await sync(s);
    fs.rmSync(s.manifestPath);
    fs.rmSync(s.manifestPath + '.d', { recursive: true, force: true });
    names.forEach((f, i) => i % 3 === 0 && fs.utimesSync(path.join(s.source, f), NEW, NEW));
    await settle();
    const inodes = inodesOf(s, names);
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(s.io.metaBatches, [86, 14], 'the files to fix among ops 0–255, then 256–299');
    assert.deepEqual(s.log.actions, names.filter((_, i) => i % 3 === 0).map((f) => `updated ${f} (mtime)`));
    assertFixed(s, names, inodes);
    assertRecordsTrue(s, names, result.manifest);
    await sync(s);
    assert.deepEqual(s.io.opens, [], 'every record vouches for its files');
  });

  test('times before 1970 with a fraction of a second, listed by every lister: copied, then fixed in place, then left alone', async () => {
    // -100.25 s: Node's BigInt times and the kernel split it differently (-100 and -0.25 s, or -101
    // and +0.75 s); every lister and the fixes must agree. (As strings: utimes takes a negative
    // number for "now".)
    const BEFORE = '-100.25';
    const EARLIER = '-101.25';
    for (const options of [{}, { threads: { excludes: ['*.tmp'], own: [] } }, { threads: { excludes: [], own: [] } }]) {
      const names = numbered('d', 3);
      const s = setup(Object.fromEntries(names.map((f) => [f, { content: `content of ${f}`, mtime: OLD }])));
      for (const f of names) fs.utimesSync(path.join(s.source, f), BEFORE, BEFORE);
      const label = JSON.stringify(options);
      const first = await sync(s, options);
      assert.equal(first.exitStatus, 0, `${label}: ${s.log.lines.join('\n')}`);
      assert.deepEqual(s.log.warnings, [], label);
      assert.equal(first.stats.copied, 3, label);
      const inodes = inodesOf(s, names);
      await sync(s, options);
      assert.deepEqual(s.log.actions, [], label);
      for (const f of names) fs.utimesSync(path.join(s.source, f), EARLIER, EARLIER);
      const touched = await sync(s, options);
      assert.equal(touched.exitStatus, 0, `${label}: ${s.log.lines.join('\n')}`);
      assert.deepEqual(s.log.actions, names.map((f) => `updated ${f} (mtime)`), label);
      assertFixed(s, names, inodes);
      assert.equal(fs.lstatSync(path.join(s.replica, names[0]), { bigint: true }).mtimeNs, -101_250_000_000n, label);
      await sync(s, options);
      assert.deepEqual(s.log.actions, [], label);
    }
  });

  test('a file whose utimes fails in the second batch: its error in its place, the rest fixed; the next pass fixes it', async () => {
    const { s, names, lines } = await mirroredThenTouched();
    const inodes = inodesOf(s, names);
    const doomed = path.join(s.replica, 'd/f300.txt');
    s.io.fail = (call, p) => (call === 'utimes' && p === doomed ? errno('EIO', 'i/o error, utime') : undefined);
    const result = await sync(s);
    assert.equal(result.exitStatus, 1);
    assert.deepEqual(s.log.errors, ['setting mtime of d/f300.txt: EIO: i/o error, utime']);
    const at = s.log.lines.indexOf('error: setting mtime of d/f300.txt: EIO: i/o error, utime');
    assert.deepEqual(s.log.lines.slice(at - 1, at + 2), [lines[299], s.log.lines[at], lines[301]], 'in its place');
    assert.deepEqual(s.log.actions, lines.filter((_, i) => i !== 300));
    assertFixed(s, names.filter((f) => f !== 'd/f300.txt'), inodes);
    assert.equal(fs.lstatSync(doomed).mtimeMs, OLD * 1000);

    s.io.fail = undefined;
    const next = await sync(s);
    assert.equal(next.exitStatus, 0);
    assert.deepEqual(s.log.actions, ['updated d/f300.txt (mtime)']);
    assertFixed(s, names, inodes);
  });

  test('without the addon (ENOSYS) every fix is made on the main thread, the same; a batch the pool refuses (EAGAIN) is made there alone', async () => {
    for (const refusal of ['ENOSYS', 'EAGAIN']) {
      const { s, names, lines } = await mirroredThenTouched();
      const inodes = inodesOf(s, names);
      let utimes = 0;
      const real = s.io.utimes;
      s.io.utimes = (p, a, m) => (utimes++, real(p, a, m));
      let batches = 0;
      s.io.fail = (call) => {
        if (call !== 'fixMetas') return undefined;
        batches++;
        return refusal === 'ENOSYS' || batches === 1 ? errno(refusal, 'fixMetas failed') : undefined;
      };
      const result = await sync(s);
      assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
      assert.deepEqual(s.log.actions, lines);
      assertFixed(s, names, inodes);
      if (refusal === 'ENOSYS') {
        // The batches asked for before the first answer came (METAS_AHEAD), none after it.
        assert.ok(batches <= 2, `${batches} batches asked for`);
        assert.equal(utimes, 600, "all made with the Io's own calls");
      } else if (!withoutAddon) {
        assert.equal(batches, 3);
        assert.equal(utimes, 256, 'the first batch only');
        assert.ok(s.log.debugs.some((line) => line.startsWith('metadata fixes made on the main thread for a batch (EAGAIN')), s.log.debugs.join('\n'));
      }
      await sync(s);
      assert.deepEqual(s.log.actions, []);
    }
  });

  test('an Io whose fixMetas throws instead of rejecting: every fix made on the main thread', async () => {
    const { s, names, lines } = await mirroredThenTouched();
    const inodes = inodesOf(s, names);
    s.io.fixMetas = () => {
      throw errno('EIO', 'i/o error');
    };
    const result = await sync(s);
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(s.log.actions, lines);
    assertFixed(s, names, inodes);
  });

  test('a replica file rewritten at the same size after the walk, before its fix: left as it is, warned about, not recorded; the next pass restores it', async () => {
    for (const onPool of [true, false]) {
      const { s, lines } = await mirroredThenTouched();
      const doomed = path.join(s.replica, 'd/f010.txt');
      const real = s.io.fixMetas;
      s.io.fixMetas = async (fixes) => {
        if (fs.readFileSync(doomed, 'utf8').startsWith('content')) fs.writeFileSync(doomed, 'CONTENT OF d/f010.txt');
        if (!onPool) throw errno('ENOSYS', 'fixMetas failed');
        return real(fixes);
      };
      const result = await sync(s);
      assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
      assert.deepEqual(s.log.warnings, ['d/f010.txt changed in the replica during the pass; left as it is, it will be looked at again next pass']);
      assert.deepEqual(s.log.actions, lines.filter((_, i) => i !== 10));
      assert.equal(result.manifest.get('d/f010.txt')?.repMtimeS, OLD, 'its old record kept');
      assert.equal(fs.readFileSync(doomed, 'utf8'), 'CONTENT OF d/f010.txt');

      s.io.fixMetas = real;
      await settle();
      const next = await sync(s);
      assert.equal(next.exitStatus, 0, s.log.lines.join('\n'));
      assert.deepEqual(s.log.actions, ['updated d/f010.txt (content changed)']);
      assert.equal(fs.readFileSync(doomed, 'utf8'), 'content of d/f010.txt');
      assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    }
  });

  test('a replica file to move, rewritten at the same size after the walk: copied instead, the rewritten one deleted next pass', async () => {
    const s = setup({ 'a.txt': { content: 'content of a', mtime: OLD }, 'keep.txt': { content: 'keep', mtime: OLD } });
    await settle();
    await sync(s);
    fs.renameSync(path.join(s.source, 'a.txt'), path.join(s.source, 'b.txt'));
    const from = path.join(s.replica, 'a.txt');
    let looks = 0;
    s.io.fail = (call, p) => {
      // Its first lstat is the walk's, the second the move's check.
      if (call === 'lstat' && p === from && ++looks === 2) fs.writeFileSync(from, 'CONTENT OF A');
      return undefined;
    };
    const result = await sync(s);
    s.io.fail = undefined;
    assert.equal(result.exitStatus, 0, s.log.lines.join('\n'));
    assert.deepEqual(s.log.actions, ['copied b.txt (new)']);
    assert.equal(fs.readFileSync(path.join(s.replica, 'b.txt'), 'utf8'), 'content of a');
    await sync(s);
    assert.deepEqual(s.log.actions, ['deleted a.txt (not in source)']);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
  });

  test('stopped in the middle of a run: what is recorded is true; the next pass finishes, reading only the files fixed but not recorded', { skip: withoutAddon }, async () => {
    const { s, names } = await mirroredThenTouched();
    const inodes = inodesOf(s, names);
    const stopped = await sync(s, { shouldStop: () => s.log.actions.length >= 100 });
    assert.equal(stopped.stats.updated, 100);
    // Recorded: the first 100, fixed. Made but not recorded: the rest of their batch, and the
    // batches under way (METAS_AHEAD) when it stopped.
    assert.deepEqual(stopped.manifest.get(names[99])?.repMtimeS, Math.floor(NEW));
    assert.deepEqual(stopped.manifest.get(names[599])?.repMtimeS, OLD);
    await settle();
    const next = await sync(s);
    assert.equal(next.exitStatus, 0, s.log.lines.join('\n'));
    assertFixed(s, names, inodes);
    assert.deepEqual(mirrorDiff(s.source, s.replica), []);
    // Those fixed in the stopped pass but not recorded are read (their replica no longer matches its
    // record), found the same and recorded without a line; the others are fixed with one.
    const silent = names.slice(100).filter((f) => !s.log.actions.some((line) => line.startsWith(`updated ${f} `)));
    assert.ok(silent.length > 0 && silent.length <= 3 * 256, `${silent.length} fixed but not recorded`);
    for (const f of silent) assert.ok(s.io.opens.includes(path.join(s.replica, f)), `${f} read`);
    assert.equal(next.stats.updated + silent.length, 500);
    const last = await sync(s);
    assert.deepEqual(s.log.actions, []);
    assert.equal(last.stats.hashed, 0);
  });
});
