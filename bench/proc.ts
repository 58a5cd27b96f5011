/**
 * Child processes for the benchmark: plain helper commands (cp, rm, sync) and timed runs wrapped
 * in GNU time for wall seconds and peak RSS.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

export const GNU_TIME = '/usr/bin/time';

/** Runs a helper command to completion; throws with its stderr when it fails. */
export function run(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${command}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${[command, ...args].join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().slice(0, 2000)}`);
  }
  return r.stdout;
}

/** True when `command --version` (or `args`) runs: the tool is installed. */
export function hasCommand(command: string, args: string[] = ['--version']): boolean {
  const r = spawnSync(command, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/** Removes a path recursively (`rm -rf` is much faster than fs.rmSync on 100k-file trees). */
export function removeTree(target: string): void {
  if (fs.existsSync(target)) run('rm', ['-rf', '--', target]);
}

/** Flushes dirty pages, so writeback from the previous run does not land in the next timing. */
export function syncDisks(): void {
  run('sync', []);
}

/**
 * Drops the page cache (needs root and a writable /proc/sys). Returns false when not allowed;
 * the first failure is remembered, so later calls cost nothing.
 */
let dropAllowed: boolean | undefined;
export function dropCaches(): boolean {
  if (dropAllowed === false) return false;
  try {
    syncDisks();
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    dropAllowed = true;
  } catch {
    dropAllowed = false;
  }
  return dropAllowed;
}

/** One timed run's measurements. */
export interface Measure {
  /** Wall-clock seconds, as GNU time's `%e` (10 ms resolution). */
  seconds: number;
  /** Peak resident set size in KiB, GNU time's `%M` (largest of the process tree's members). */
  maxRssKiB: number;
  /** The command's exit status (GNU time passes it through). */
  exitCode: number;
}

/**
 * Runs `command args…` under `/usr/bin/time -f '%e %M' -o <timeFile>`, its stdout and stderr both
 * going to `outputFile` (overwritten): the console output never goes through this process's
 * memory, which matters for a pass that logs 100k lines.
 */
export function timed(command: string, args: string[], outputFile: string, timeFile: string): Measure {
  const out = fs.openSync(outputFile, 'w');
  let r;
  try {
    fs.rmSync(timeFile, { force: true });
    r = spawnSync(GNU_TIME, ['-f', '%e %M', '-o', timeFile, '--', command, ...args], { stdio: ['ignore', out, out] });
  } finally {
    fs.closeSync(out);
  }
  if (r.error) throw new Error(`${GNU_TIME}: ${r.error.message}`);
  // With a failing command GNU time writes "Command exited with non-zero status N" first; the
  // measurements are always the last line.
  const lines = fs.existsSync(timeFile) ? fs.readFileSync(timeFile, 'utf8').trim().split('\n') : [];
  const match = /^([\d.]+) (\d+)$/.exec(lines.at(-1) ?? '');
  if (!match) throw new Error(`${GNU_TIME} gave no measurements for ${command} (status ${r.status ?? r.signal}): ${lines.join(' | ')}`);
  return { seconds: Number(match[1]), maxRssKiB: Number(match[2]), exitCode: r.status ?? 128 };
}

/** The last `bytes` of a file as text (a pass's summary line is at the end of its output). */
export function tail(file: string, bytes = 256 * 1024): string {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    fs.readSync(fd, buffer, 0, length, size - length);
    return buffer.toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** Sleeps synchronously (the benchmark is sequential by design). */
export function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
