/**
 * Fault injection with real processes: kill -9 a pass at many points of its progress, run a pass
 * after each, and check the mirror is exact, no temporary file is left, and the work redone is
 * bounded (only what was not yet in the replica is copied again). Also SIGINT mid-copy.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { cliEnv, exited, hasRsync, rsyncCheck, runCli, startCli, summaryCounts, waitFor } from './helpers/cli.js';
import { mirrorDiff, settle, tempDir, tempFiles, writeTree, type Spec } from './helpers/tree.js';

const DIRS = 8;
const PER_DIR = 60;

function makeWorld(bigMiB: number) {
  const base = tempDir('fs-crash-');
  const source = path.join(base, 'source');
  const spec: Record<string, Spec> = {};
  for (let d = 0; d < DIRS; d++) for (let f = 0; f < PER_DIR; f++) spec[`d${d}/file-${f}.txt`] = `content of ${d}/${f}\n`.repeat(1 + (f % 7));
  spec['d3/link'] = { link: 'file-1.txt' };
  spec['empty'] = { dir: true };
  writeTree(source, spec);
  const big = Buffer.alloc(bigMiB << 20);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
  fs.writeFileSync(path.join(source, 'd4', 'big.bin'), big); // in the middle of the walk
  return { base, source, total: DIRS * PER_DIR + 2, env: cliEnv(path.join(base, 'state')) };
}

/** Complete entries (files and links) present in the replica: copies land by rename, so present = complete. */
function presentEntries(replica: string): number {
  if (!fs.existsSync(replica)) return 0;
  let n = 0;
  for (const dir of fs.readdirSync(replica)) {
    const abs = path.join(replica, dir);
    if (!fs.lstatSync(abs).isDirectory()) continue;
    n += fs.readdirSync(abs).filter((name) => !name.startsWith('.folder-sync-')).length;
  }
  return n;
}

describe('kill -9 at any point, then a pass', () => {
  test('exact mirror, no temporary file, nothing complete copied twice', async () => {
    const w = makeWorld(24);
    await settle();
    const targets = [0, 0.05, 0.15, 0.3, 0.45, 0.5, 0.6, 0.75, 0.9, 0.99, 1];
    let midPass = 0;
    for (const [i, fraction] of targets.entries()) {
      const replica = path.join(w.base, `replica-${i}`);
      const manifest = path.join(w.base, `manifest-${i}.json`);
      const log = path.join(w.base, `log-${i}.txt`);
      const args = [w.source, replica, '1', log, '--once', '--manifest', manifest];
      const child = startCli(args, w.env);
      const goal = Math.floor(fraction * w.total);
      // Perf of the test: poll progress (entries in the replica) rather than guess times.
      await waitFor(
        () => '',
        () => child.exitCode !== null || presentEntries(replica) >= goal || (fraction === 0.5 && tempFiles(replica).length > 0),
        60_000,
      ).catch(() => undefined);
      child.kill('SIGKILL');
      await exited(child);
      const present = presentEntries(replica);
      if (present > 0 && present < w.total) midPass++;

      const recovery = runCli(args, w.env);
      assert.equal(recovery.status, 0, recovery.stdout + recovery.stderr);
      const counts = summaryCounts(recovery.stdout);
      assert.equal(counts.copied, w.total - present, `kill at ${fraction}: ${present} present, recovery copied ${counts.copied}`);
      assert.equal(counts.updated, 0);
      assert.deepEqual(mirrorDiff(w.source, replica), []);
      assert.deepEqual(tempFiles(replica), []);
      if (hasRsync()) assert.equal(rsyncCheck(w.source, replica), '');
      const again = runCli(args, w.env);
      assert.deepEqual(summaryCounts(again.stdout), { copied: 0, updated: 0, deleted: 0, hashed: 0, errors: 0 });
    }
    assert.ok(midPass >= 5, `only ${midPass} kills landed mid-pass`);
  });

  test('killed in the middle of a large copy: the next pass resumes it', async (t) => {
    const w = makeWorld(192);
    const replica = path.join(w.base, 'replica');
    const log = path.join(w.base, 'log.txt');
    const args = [w.source, replica, '1', log, '--once'];
    const temp = () => tempFiles(path.join(replica, 'd4')).find((file) => fs.statSync(file).size >= 8 << 20);
    const child = startCli(args, w.env);
    await waitFor(() => '', () => temp() !== undefined || child.exitCode !== null, 60_000, 2);
    child.kill('SIGKILL');
    await exited(child);
    if (temp() === undefined) return t.skip('the copy finished before it could be killed: nothing to resume');
    const recovery = runCli(args, w.env);
    assert.equal(recovery.status, 0, recovery.stderr);
    assert.match(recovery.stdout, /copied d4\/big\.bin \(new; resumed after [\d.]+ MiB\)/);
    assert.deepEqual(mirrorDiff(w.source, replica), []);
    assert.deepEqual(tempFiles(replica), []);
  });

  test('a first sync killed after its checkpoints: the next pass reads only what they did not record', async (t) => {
    const base = tempDir('fs-crash-');
    const source = path.join(base, 'source');
    const spec: Record<string, Spec> = {};
    for (let d = 0; d < 12; d++) for (let f = 0; f < 250; f++) spec[`d${d}/file-${f}.txt`] = `content of ${d}/${f}\n`;
    writeTree(source, spec);
    await settle();
    const total = 3000;
    const replica = path.join(base, 'replica');
    const manifest = path.join(base, 'm.json');
    const args = [source, replica, '1', path.join(base, 'log.txt'), '--once', '--manifest', manifest];
    const env = cliEnv(path.join(base, 'state'));
    // A checkpoint every 1,000 operations: killed once the second is written.
    const child = startCli(args, env);
    await waitFor(() => '', () => fs.existsSync(path.join(manifest + '.d', 'journal-2.json')) || child.exitCode !== null, 60_000, 2);
    child.kill('SIGKILL');
    await exited(child);
    const present = presentEntries(replica);
    if (child.exitCode === 0 || present === total) return t.skip('the pass finished before it could be killed');
    // The first sync's main file is written with its first checkpoint: without it, a load ignores the journals.
    assert.ok(fs.existsSync(manifest), 'no main manifest file after two checkpoints');
    const journals = fs.readdirSync(manifest + '.d').filter((name) => /^journal-\d+\.json$/.test(name));
    const recorded = journals.reduce((n, name) => n + (JSON.parse(fs.readFileSync(path.join(manifest + '.d', name), 'utf8')) as { records: unknown[] }).records.length / 14, 0);
    assert.ok(recorded > 1000, `${recorded} records in ${journals.join()}`);

    const recovery = runCli(args, env);
    assert.equal(recovery.status, 0, recovery.stderr);
    // Copied: what was not there (hashed while copied). Read on both sides: what was there but not
    // recorded yet. What the journals recorded: not read.
    const counts = summaryCounts(recovery.stdout);
    assert.equal(counts.copied, total - present);
    assert.equal(counts.hashed, total - present + 2 * (present - recorded), `${present} present, ${recorded} recorded`);
    assert.deepEqual(mirrorDiff(source, replica), []);
    assert.deepEqual(tempFiles(replica), []);
  });
});

describe('signals mid-pass', () => {
  test('SIGINT during a large copy: rolls it back, writes the manifest, exits 0', async () => {
    const w = makeWorld(192);
    const replica = path.join(w.base, 'replica');
    const log = path.join(w.base, 'log.txt');
    const manifest = path.join(w.base, 'm.json');
    const args = [w.source, replica, '1', log, '--manifest', manifest];
    const child = startCli(args, w.env);
    await waitFor(() => '', () => tempFiles(path.join(replica, 'd4')).length > 0 || child.exitCode !== null, 60_000);
    child.kill('SIGINT');
    assert.equal(await exited(child), 0, child.output());
    assert.match(child.output(), /SIGINT received/);
    assert.match(child.output(), /pass stopped: /);
    assert.match(fs.readFileSync(log, 'utf8'), /stopped on SIGINT/);
    assert.deepEqual(tempFiles(replica), []);
    assert.equal(JSON.parse(fs.readFileSync(manifest, 'utf8')).format, 'folder-sync manifest');
    assert.equal(fs.existsSync(manifest + '.lock'), false);
    const finish = runCli([...args, '--once'], w.env);
    assert.equal(finish.status, 0);
    assert.deepEqual(mirrorDiff(w.source, replica), []);
  });

  test('SIGINT twice: ends (at once if the second one is seen), leaving nothing half-written', async () => {
    const w = makeWorld(192);
    const replica = path.join(w.base, 'replica');
    const args = [w.source, replica, '1', path.join(w.base, 'log.txt')];
    const child = startCli(args, w.env);
    await waitFor(() => '', () => tempFiles(path.join(replica, 'd4')).length > 0 || child.exitCode !== null, 60_000);
    child.kill('SIGINT');
    // The second only once the first was seen: sent back to back, the two may reach it as one.
    await waitFor(child.output, (t) => /SIGINT received/.test(t) || child.exitCode !== null, 30_000);
    child.kill('SIGINT');
    const code = await exited(child);
    assert.equal(code, 130, child.output());
    assert.match(child.output(), /second SIGINT, exiting now/);
    const finish = runCli([...args, '--once'], w.env);
    assert.equal(finish.status, 0, finish.stderr);
    assert.deepEqual(mirrorDiff(w.source, replica), []);
    assert.deepEqual(tempFiles(replica), []);
  });
});
