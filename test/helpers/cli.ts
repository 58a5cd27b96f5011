/** Runs the real command line as a child process (from source, through tsx). */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The command line's entry point, run through tsx. */
export const BIN = path.join(ROOT, 'src', 'bin.ts');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function cliEnv(stateHome: string): NodeJS.ProcessEnv {
  return { ...process.env, XDG_STATE_HOME: stateHome, NODE_ENV: 'test' };
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): CliResult {
  const result = spawnSync(process.execPath, ['--import', 'tsx', BIN, ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const started: ChildProcess[] = [];
// A test that fails before it stops its interval-mode child must not leave it running (it would
// keep the test file, and CI, from ever finishing).
after(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** The CLI started in the background; `program` is node's arguments before the CLI's (the sources through tsx by default). */
export function startCli(args: string[], env: NodeJS.ProcessEnv = process.env, program: string[] = ['--import', 'tsx', BIN]): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [...program, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return Object.assign(child, { output: () => out });
}

/** Resolves when `predicate(output)` holds, or rejects after `ms`. */
export async function waitFor(read: () => string, predicate: (text: string) => boolean, ms = 20_000, pollMs = 50): Promise<void> {
  const until = Date.now() + ms;
  while (!predicate(read())) {
    if (Date.now() > until) throw new Error(`timed out waiting; output so far:\n${read()}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.on('exit', (code) => resolve(code));
  });
}

/** The contract's summary tokens from a summary line. */
export function summaryCounts(text: string): Record<string, number> {
  const line = text.split('\n').filter((l) => /pass (finished|stopped)/.test(l)).at(-1) ?? '';
  const counts: Record<string, number> = {};
  for (const token of ['copied', 'updated', 'deleted', 'hashed', 'errors']) {
    const match = new RegExp(`(\\d+) ${token}\\b`).exec(line);
    if (match) counts[token] = Number(match[1]);
  }
  return counts;
}

export function hasRsync(): boolean {
  return spawnSync('rsync', ['--version']).status === 0;
}

/** rsync's own verdict on the mirror: the itemized differences (empty = exact mirror). */
export function rsyncCheck(source: string, replica: string, extra: string[] = []): string {
  const r = spawnSync('rsync', ['-rlptDn', '-c', '--delete', '-i', '-O', ...extra, source + '/', replica + '/'], { encoding: 'utf8' });
  return r.stdout + r.stderr;
}
