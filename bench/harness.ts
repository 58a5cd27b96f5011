/**
 * The benchmark's plumbing: configuration from the environment, where things live in the cache
 * folder, and how folder-sync and its peers are run (untimed preparation passes and timed runs).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Measure, tail, timed } from './proc.js';

/** The repository root (this file is in `<root>/bench/`). */
export const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
/** The built command the benchmark times. */
export const BIN = path.join(ROOT, 'dist', 'bin.js');

export interface Config {
  /** Cache folder: trees, working copy, replicas, manifests, logs. `BENCH_DIR`. */
  cacheDir: string;
  /** Timed runs per tool and scenario. `BENCH_RUNS`, default 3. */
  runs: number;
  /** Scenario names to run, or undefined for all. `BENCH_ONLY=a,b`. */
  only: string[] | undefined;
  /** Extra arguments for every timed folder-sync pass. `BENCH_FS_ARGS` (split on spaces). */
  fsExtraArgs: string[];
}

/** Reads the configuration from the environment; throws on a malformed value. */
export function readConfig(env: NodeJS.ProcessEnv): Config {
  const runs = env.BENCH_RUNS === undefined || env.BENCH_RUNS === '' ? 3 : Number(env.BENCH_RUNS);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`BENCH_RUNS must be a positive integer, got ${JSON.stringify(env.BENCH_RUNS)}`);
  const only = env.BENCH_ONLY?.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return {
    cacheDir: path.resolve(env.BENCH_DIR || path.join(ROOT, '.bench-cache')),
    runs,
    only: only && only.length > 0 ? only : undefined,
    fsExtraArgs: (env.BENCH_FS_ARGS ?? '').split(/\s+/).filter((s) => s !== ''),
  };
}

/** One timed run, of folder-sync or of a peer. */
export interface Sample extends Measure {
  /** folder-sync only: bytes of manifest files created or replaced by the run. */
  manifestBytes?: number;
  /** folder-sync only: the `pass finished: …` line. */
  summary?: string;
}

/** What folder-sync is pointed at for one pass. */
export interface FsTarget {
  source: string;
  replica: string;
  manifest: string;
  /** Options this target needs (a remote replica's `--ssh-*`). */
  args?: string[];
  /** `replica` is a remote address, not a local folder. */
  remote?: true;
}

/** A folder-sync run that exited non-zero (the benchmark then exits non-zero). */
export interface Failure {
  what: string;
  exitCode: number;
  output: string;
}

export class Harness {
  readonly failures: Failure[] = [];
  /** Arguments every *untimed* preparation pass adds (`--no-fsync` when the CLI has it). */
  prepArgs: string[] = [];

  constructor(readonly cfg: Config, readonly log: (line: string) => void) {}

  // --- Paths -------------------------------------------------------------------------------

  dir(...parts: string[]): string {
    return path.join(this.cfg.cacheDir, ...parts);
  }
  replica(name: string): string {
    return this.dir('replicas', name);
  }
  manifest(name: string): string {
    return this.dir('manifests', `${name}.json`);
  }
  logFile(name: string): string {
    fs.mkdirSync(this.dir('logs'), { recursive: true });
    return this.dir('logs', name);
  }

  /** Removes a manifest and everything folder-sync keeps beside it (`.d/`, `.lock`, temporaries). */
  removeManifest(manifest: string): void {
    const dir = path.dirname(manifest);
    const base = path.basename(manifest);
    if (!fs.existsSync(dir)) return;
    for (const name of fs.readdirSync(dir)) {
      if (name === base || name.startsWith(base + '.') || name.startsWith('.' + base)) {
        fs.rmSync(path.join(dir, name), { recursive: true, force: true });
      }
    }
  }

  // --- folder-sync ---------------------------------------------------------------------------

  /** The command line of one `--once` pass. */
  private fsArgs(target: FsTarget, logFile: string, extra: string[]): string[] {
    return [BIN, target.source, target.replica, '1', logFile, '--once', '--manifest', target.manifest, ...(target.args ?? []), ...extra];
  }

  /**
   * An untimed pass that brings the replica and manifest to the source's state. Uses
   * `prepArgs` (no fsync): preparation needs the same end state, not the same durability.
   */
  prepare(tag: string, target: FsTarget): void {
    makeParents(target);
    const logFile = this.logFile(`${tag}-fs.log`);
    fs.rmSync(logFile, { force: true });
    const out = this.logFile(`${tag}-fs-prep.out`);
    const fd = fs.openSync(out, 'w');
    const started = performance.now();
    let r;
    try {
      r = spawnSync(process.execPath, this.fsArgs(target, logFile, this.prepArgs), { stdio: ['ignore', fd, fd] });
    } finally {
      fs.closeSync(fd);
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    const exitCode = r.status ?? 128;
    this.log(`  [${tag}] folder-sync prep pass (${seconds} s, exit ${exitCode}): ${summaryLine(out) ?? '(no summary line)'}`);
    if (r.error) throw new Error(`cannot run ${process.execPath}: ${r.error.message}`);
    if (exitCode !== 0) this.fail(`${tag}: folder-sync preparation pass`, exitCode, out);
  }

  /** A timed pass, with the manifest bytes it wrote and its summary line. */
  timedFs(tag: string, run: number, target: FsTarget): Sample {
    makeParents(target);
    const logFile = this.logFile(`${tag}-fs.log`);
    fs.rmSync(logFile, { force: true });
    const out = this.logFile(`${tag}-fs-run${run}.out`);
    const before = snapshotManifest(target.manifest);
    const m = timed(process.execPath, this.fsArgs(target, logFile, this.cfg.fsExtraArgs), out, this.logFile('time.txt'));
    const manifestBytes = bytesWritten(before, snapshotManifest(target.manifest));
    const summary = summaryLine(out);
    this.log(`  [${tag} #${run}] folder-sync ${m.seconds.toFixed(2)} s, ${(m.maxRssKiB / 1024).toFixed(0)} MiB, ` +
      `manifest ${(manifestBytes / 1024).toFixed(1)} KiB, exit ${m.exitCode}: ${summary ?? '(no summary line)'}`);
    if (m.exitCode !== 0) this.fail(`${tag} run ${run}: folder-sync timed pass`, m.exitCode, out);
    return { ...m, manifestBytes, summary };
  }

  /** A timed peer command (rsync, md5sum, a shell pipeline). */
  timedPeer(tag: string, run: number, label: string, command: string, args: string[]): Sample {
    const out = this.logFile(`${tag}-${label.replace(/\W+/g, '_')}-run${run}.out`);
    const m = timed(command, args, out, this.logFile('time.txt'));
    this.log(`  [${tag} #${run}] ${label} ${m.seconds.toFixed(2)} s, ${(m.maxRssKiB / 1024).toFixed(0)} MiB, exit ${m.exitCode}`);
    if (m.exitCode !== 0) this.log(`  [${tag} #${run}] ${label} failed: ${tail(out, 2000).trim()}`);
    return m;
  }

  private fail(what: string, exitCode: number, outputFile: string): void {
    const output = tail(outputFile, 4000).trim().split('\n').slice(-15).join('\n');
    this.failures.push({ what, exitCode, output });
    this.log(`  !! ${what} exited ${exitCode}; last lines of its output (${outputFile}):\n${output}`);
  }
}

/**
 * Creates the folders that hold the replica and the manifest (not the replica itself: creating
 * it is part of a first pass).
 */
function makeParents(target: FsTarget): void {
  if (!target.remote) fs.mkdirSync(path.dirname(target.replica), { recursive: true });
  fs.mkdirSync(path.dirname(target.manifest), { recursive: true });
}

/** The last `pass finished: …` line of a run's console output, if any. */
export function summaryLine(outputFile: string): string | undefined {
  const matches = tail(outputFile).match(/pass finished: .*/g);
  return matches?.at(-1);
}

// --- Manifest bytes written ------------------------------------------------------------------

interface FileStamp {
  size: bigint;
  mtimeNs: bigint;
  ino: bigint;
}

/** Size, mtime and inode of the manifest file and of every file under `<manifest>.d/`. */
export function snapshotManifest(manifest: string): Map<string, FileStamp> {
  const out = new Map<string, FileStamp>();
  const add = (file: string): void => {
    const st = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
    if (!st) return;
    if (st.isFile()) out.set(file, { size: st.size, mtimeNs: st.mtimeNs, ino: st.ino });
    else if (st.isDirectory()) for (const name of fs.readdirSync(file)) add(path.join(file, name));
  };
  add(manifest);
  add(manifest + '.d');
  return out;
}

/** Sum of the sizes of the files that are new in `after` or whose mtime or inode changed. */
export function bytesWritten(before: Map<string, FileStamp>, after: Map<string, FileStamp>): number {
  let total = 0n;
  for (const [file, now] of after) {
    const was = before.get(file);
    if (!was || was.mtimeNs !== now.mtimeNs || was.ino !== now.ino) total += now.size;
  }
  return Number(total);
}
