/**
 * `watch-1m`: folder-sync under `--watch` on the 1M small-file tree, as a user keeps it: started
 * once (its first pass adopts or checks the replica), then changes come. Measured, each in the
 * same run as `rsync -a --delete` over the same tree:
 * - 10 changes in 10 folders (8 edits, 1 new file, 1 deletion): the time from the last change to
 *   the pass's summary line, minus `--watch-delay`;
 * - a burst of 10,000 edits across 1,000 folders: the same, and the replica checked after;
 * - the watcher's resident memory between passes (VmRSS): after a first pass that found nothing
 *   to do, and after one that adopted an existing replica with no manifest (reading both sides).
 *
 * The source is the cached tree itself: every change is undone after its run (contents, mtimes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BIN, bytesWritten, snapshotManifest, type Harness, type Sample } from './harness.js';
import { run } from './proc.js';
import type { Row } from './report.js';
import { readList, treePaths, type FileEntry } from './trees.js';

const DELAY_S = 0.5;

interface Watcher {
  child: ChildProcess;
  /** The summary lines so far, with when each arrived (ms). */
  passes: { line: string; at: number }[];
  output: () => string;
}

/** Starts a watching folder-sync on `source` → `replica`; resolves once its first pass ended. */
async function startWatcher(h: Harness, source: string, replica: string, manifest: string, tag: string): Promise<Watcher> {
  const log = h.logFile(`${tag}.log`);
  const child = spawn(process.execPath, [BIN, source, replica, '600', log, '--watch', '--watch-delay', String(DELAY_S), '--manifest', manifest], { stdio: ['ignore', 'pipe', 'pipe'] });
  const passes: { line: string; at: number }[] = [];
  let out = '';
  const take = (chunk: Buffer) => {
    const at = Date.now();
    out += chunk.toString();
    for (const line of chunk.toString().split('\n')) if (line.includes('pass finished')) passes.push({ line, at });
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const w = { child, passes, output: () => out };
  await until(() => passes.length >= 1, 30 * 60_000, () => out);
  return w;
}

async function until(ready: () => boolean, ms: number, output: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`watch-1m: timed out; output so far:\n${output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The watcher's resident memory now, in KiB (VmRSS). */
function rssKiB(child: ChildProcess): number {
  const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

/** Changes made to the source, and how to undo them. */
interface Change {
  apply(): void;
  undo(): void;
}

/** An edit of `file` (appended bytes), undone with its old content and times. */
function edit(abs: string): Change {
  let before: { bytes: Buffer; atime: Date; mtime: Date } | undefined;
  return {
    apply: () => {
      const st = fs.statSync(abs);
      before = { bytes: fs.readFileSync(abs), atime: st.atime, mtime: st.mtime };
      fs.appendFileSync(abs, 'watch-1m edit\n');
    },
    undo: () => {
      fs.writeFileSync(abs, before!.bytes);
      fs.utimesSync(abs, before!.atime, before!.mtime);
    },
  };
}

function added(abs: string): Change {
  return { apply: () => fs.writeFileSync(abs, 'watch-1m new file\n'), undo: () => fs.rmSync(abs, { force: true }) };
}

function deleted(abs: string): Change {
  let before: { bytes: Buffer; atime: Date; mtime: Date; mode: number } | undefined;
  return {
    apply: () => {
      const st = fs.statSync(abs);
      before = { bytes: fs.readFileSync(abs), atime: st.atime, mtime: st.mtime, mode: st.mode & 0o7777 };
      fs.rmSync(abs);
    },
    undo: () => {
      fs.writeFileSync(abs, before!.bytes, { mode: before!.mode });
      fs.utimesSync(abs, before!.atime, before!.mtime);
    },
  };
}

/** Files of the tree grouped by folder, folders in a fixed order. */
function byFolder(files: FileEntry[]): Map<string, string[]> {
  const folders = new Map<string, string[]>();
  for (const f of files) {
    const dir = path.dirname(f.rel);
    folders.set(dir, [...(folders.get(dir) ?? []), f.rel]);
  }
  return folders;
}

/** Waits for the pass after `count` summaries; the time from `lastChangeAt` to its summary, minus the delay. */
async function latency(w: Watcher, count: number, lastChangeAt: number): Promise<{ seconds: number; line: string }> {
  await until(() => w.passes.length > count, 10 * 60_000, w.output);
  const pass = w.passes[count];
  return { seconds: (pass.at - lastChangeAt) / 1000 - DELAY_S, line: pass.line };
}

/**
 * Waits until the watcher is quiet: the pass `pending` changes bring (if they bring one), then
 * until no pass has come for a while (a busy tree may get more than one).
 */
async function quiet(w: Watcher, pending: boolean): Promise<void> {
  const count = w.passes.length;
  if (pending) await until(() => w.passes.length > count, 10 * 60_000, w.output);
  for (let seen = w.passes.length; ; seen = w.passes.length) {
    await new Promise((r) => setTimeout(r, 2 * DELAY_S * 1000 + 500));
    if (w.passes.length === seen) return;
  }
}

function rsyncTime(source: string, replica: string): Sample {
  const started = performance.now();
  run('rsync', ['-a', '--delete', source + '/', replica + '/']);
  return { seconds: (performance.now() - started) / 1000, maxRssKiB: 0, exitCode: 0 };
}

export async function runWatchScenario(h: Harness, log: (line: string) => void): Promise<Row[]> {
  const tree = treePaths(h.cfg.cacheDir, 't1m');
  const source = tree.dir;
  const files = readList(tree.list);
  const folders = [...byFolder(files).entries()].filter(([, names]) => names.length >= 12);
  const replica = h.replica('watch-1m-fs');
  const manifest = h.manifest('watch-1m-fs');
  const rsyncReplica = h.replica('watch-1m-rsync');
  const rows: Row[] = [];

  // The replicas, made once and kept (untimed): folder-sync's by a pass of its own, rsync's by rsync.
  // (Also after an interrupted run: so the watcher's first pass is one that finds nothing to do.)
  log('  watch-1m: the replica brought up to date (untimed)');
  run(process.execPath, [BIN, source, replica, '1', h.logFile('watch-1m-prep.log'), '--once', '--no-fsync', '--manifest', manifest]);
  if (!fs.existsSync(rsyncReplica)) {
    log('  watch-1m: rsync\'s replica (untimed)');
    fs.mkdirSync(rsyncReplica, { recursive: true });
    run('rsync', ['-a', '--delete', source + '/', rsyncReplica + '/']);
  }

  const w = await startWatcher(h, source, replica, manifest, 'watch-1m');
  const noChangeRss = rssKiB(w.child);
  log(`  watch-1m: watching; first pass: ${w.passes[0].line.trim()}; VmRSS ${Math.round(noChangeRss / 1024)} MiB`);
  const tenFs: Sample[] = [];
  const tenRsync: Sample[] = [];
  const burstFs: Sample[] = [];
  const burstRsync: Sample[] = [];
  try {
    for (let runNo = 1; runNo <= h.cfg.runs; runNo++) {
      // 10 changes in 10 folders: 8 edits, 1 new file, 1 deletion.
      const picked = folders.slice(runNo * 37, runNo * 37 + 10);
      const changes: Change[] = picked.slice(0, 8).map(([, names]) => edit(path.join(source, names[0])));
      changes.push(added(path.join(source, picked[8][0], `watch-1m-new-${runNo}.txt`)));
      changes.push(deleted(path.join(source, picked[9][1][1])));
      let count = w.passes.length;
      let manifestBefore = snapshotManifest(manifest);
      for (const c of changes) c.apply();
      const ten = await latency(w, count, Date.now());
      await new Promise((r) => setTimeout(r, 500)); // (the manifest is saved after the summary line)
      tenFs.push({ seconds: ten.seconds, maxRssKiB: rssKiB(w.child), exitCode: 0, summary: ten.line, manifestBytes: bytesWritten(manifestBefore, snapshotManifest(manifest)) });
      log(`  [watch-1m #${runNo}] 10 changes: ${ten.seconds.toFixed(2)} s after the delay, manifest ${((tenFs.at(-1)!.manifestBytes ?? 0) / 1024).toFixed(1)} KiB written: ${ten.line.trim()}`);
      tenRsync.push(rsyncTime(source, rsyncReplica));
      log(`  [watch-1m #${runNo}] rsync -a --delete: ${tenRsync.at(-1)!.seconds.toFixed(2)} s`);
      for (const c of changes.reverse()) c.undo();
      await quiet(w, true);
      rsyncTime(source, rsyncReplica);

      // A burst: 10,000 edits across 1,000 folders.
      const burst = folders.slice(1000 + runNo * 1000, 2000 + runNo * 1000).flatMap(([, names]) => names.slice(0, 10).map((name) => edit(path.join(source, name))));
      count = w.passes.length;
      manifestBefore = snapshotManifest(manifest);
      for (const c of burst) c.apply();
      const lastAt = Date.now();
      const b = await latency(w, count, lastAt);
      // A busy tree may get more than one pass: wait for quiet, and count to the last one.
      await quiet(w, false);
      const last = w.passes.at(-1)!;
      const seconds = (last.at - lastAt) / 1000 - DELAY_S;
      burstFs.push({ seconds: Math.max(seconds, b.seconds), maxRssKiB: rssKiB(w.child), exitCode: 0, summary: last.line, manifestBytes: bytesWritten(manifestBefore, snapshotManifest(manifest)) });
      log(`  [watch-1m #${runNo}] burst of ${burst.length}: ${Math.max(seconds, b.seconds).toFixed(2)} s after the delay: ${last.line.trim()}`);
      checkReplica(source, replica, folders.slice(1000 + runNo * 1000, 2000 + runNo * 1000).flatMap(([, names]) => names.slice(0, 10)));
      burstRsync.push(rsyncTime(source, rsyncReplica));
      log(`  [watch-1m #${runNo}] rsync -a --delete after the burst: ${burstRsync.at(-1)!.seconds.toFixed(2)} s`);
      for (const c of burst.reverse()) c.undo();
      await quiet(w, true);
      rsyncTime(source, rsyncReplica);
    }
  } finally {
    w.child.kill('SIGTERM');
    await new Promise((r) => w.child.once('exit', r));
  }
  rows.push({ scenario: 'watch-1m: 10 changes', fs: tenFs, peer: 'rsync -a --delete', peerSamples: tenRsync });
  rows.push({ scenario: 'watch-1m: 10,000 edits in 1,000 folders', fs: burstFs, peer: 'rsync -a --delete', peerSamples: burstRsync });

  // Memory after a first pass that adopts the replica (no manifest: both sides read).
  const adoptManifest = h.manifest('watch-1m-adopt');
  h.removeManifest(adoptManifest);
  const adopting = await startWatcher(h, source, replica, adoptManifest, 'watch-1m-adopt');
  await new Promise((r) => setTimeout(r, 3000));
  const adoptRss = rssKiB(adopting.child);
  log(`  watch-1m: after an adopting first pass (${adopting.passes[0].line.trim()}): VmRSS ${Math.round(adoptRss / 1024)} MiB`);
  adopting.child.kill('SIGTERM');
  await new Promise((r) => adopting.child.once('exit', r));
  h.removeManifest(adoptManifest);
  rows.push({ scenario: 'watch-1m: memory after a no-change first pass', fs: [{ seconds: 0, maxRssKiB: noChangeRss, exitCode: 0 }], peer: '—', note: 'VmRSS between passes, in the RSS column' });
  rows.push({ scenario: 'watch-1m: memory after an adopting first pass', fs: [{ seconds: 0, maxRssKiB: adoptRss, exitCode: 0 }], peer: '—', note: 'VmRSS between passes, in the RSS column' });
  return rows;
}

/** Throws unless every file of `rels` has the same bytes in the replica as in the source. */
function checkReplica(source: string, replica: string, rels: string[]): void {
  for (const rel of rels) {
    const a = fs.readFileSync(path.join(source, rel));
    const b = fs.readFileSync(path.join(replica, rel));
    if (!a.equals(b)) throw new Error(`watch-1m: ${rel} differs in the replica after the burst`);
  }
}
