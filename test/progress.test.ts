/**
 * The progress line: drawn on a terminal (a pseudo-terminal from `script`), never when stderr is
 * not one, never in the log file, off with --quiet and --no-progress.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { TerminalProgress } from '../src/log/progress.js';
import { BIN, ROOT, cliEnv, runCli } from './helpers/cli.js';
import { tempDir, writeTree } from './helpers/tree.js';

function world(files = 300) {
  const base = tempDir('fs-progress-');
  const source = path.join(base, 'source');
  const spec: Record<string, string> = {};
  for (let i = 0; i < files; i++) spec[`d${i % 7}/f${i}.txt`] = `file ${i} `.repeat(200);
  writeTree(source, spec);
  return { base, source, replica: path.join(base, 'replica'), log: path.join(base, 'sync.log'), env: cliEnv(path.join(base, 'state')) };
}

const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
const quote = (arg: string): string => `'${arg.replace(/'/g, `'\\''`)}'`;

/** Runs the CLI with stdout and stderr on a pseudo-terminal; returns what the terminal got. */
function runOnTerminal(args: string[], env: NodeJS.ProcessEnv): { status: number | null; screen: string } {
  const command = [process.execPath, '--import', 'tsx', BIN, ...args].map(quote).join(' ');
  const result = spawnSync('script', ['-qfec', command, '/dev/null'], { cwd: ROOT, env: { ...env, COLUMNS: '120' }, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, screen: result.stdout };
}

describe('progress line', () => {
  test('the line: phase, bar, done of total, rate, ETA; cut to the terminal width', () => {
    let now = 1_000_000;
    const written: string[] = [];
    const progress = new TerminalProgress({ write: (text) => (written.push(text), true), columns: 200 }, () => now);
    progress.begin('copying', () => ({ files: 250, bytes: 25 << 20, totalFiles: 1000, totalBytes: 100 << 20 }));
    now += 5000;
    progress.redraw();
    assert.equal(written.at(-1), '\rcopying   [#####...............]  250/1,000 files  25.0 MiB/100.0 MiB  5.0 MiB/s  ETA 0:15\x1b[K');
    progress.end();
    assert.equal(written.at(-1), '\r\x1b[K');

    written.length = 0;
    const narrow = new TerminalProgress({ write: (text) => (written.push(text), true), columns: 30 }, () => now);
    narrow.begin('scanning', () => ({ files: 123_456, bytes: 0 }));
    assert.equal(written.at(-1), '\rscanning  123,456 entries\x1b[K');
    now += 2000;
    narrow.redraw();
    assert.equal(written.at(-1), '\r' + 'scanning  123,456 entries  61,728/s'.slice(0, 29) + '\x1b[K');
    narrow.end();
  });

  test('clear() before a console line only when a line is shown', () => {
    const written: string[] = [];
    const progress = new TerminalProgress({ write: (text) => (written.push(text), true), columns: 80 });
    progress.clear();
    assert.deepEqual(written, []);
    progress.begin('hashing', () => ({ files: 1, bytes: 10, totalFiles: 2, totalBytes: 20 }));
    progress.clear();
    assert.equal(written.at(-1), '\r\x1b[K');
    progress.end();
  });

  test('not a terminal: nothing of it on stderr, stdout or in the log', () => {
    const w = world();
    const result = runCli([w.source, w.replica, '1', w.log, '--once'], w.env);
    assert.equal(result.status, 0, result.stderr);
    for (const text of [result.stdout, result.stderr, fs.readFileSync(w.log, 'utf8')]) {
      assert.doesNotMatch(text, /scanning|copying|hashing|\r|\x1b\[/);
    }
    assert.match(result.stdout, /300 copied/);
  });

  test('on a terminal: scanning and copying are drawn, and the log file has none of it', { skip: !hasScript && 'no `script` (util-linux) here' }, () => {
    const w = world();
    const { status, screen } = runOnTerminal([w.source, w.replica, '1', w.log, '--once'], w.env);
    assert.equal(status, 0, screen);
    assert.match(screen, /\rscanning {2}\d[\d,]* entries/);
    assert.match(screen, /\rcopying {3}\[[#.]{20}\] {2}\d[\d,]*\/300 files/);
    assert.match(screen, /300 copied/);
    const log = fs.readFileSync(w.log, 'utf8');
    assert.doesNotMatch(log, /scanning|copying|\r|\x1b\[/);
    assert.match(log, /copied d0\/f0\.txt \(new\)/);
  });

  test('on a terminal, --quiet and --no-progress draw nothing', { skip: !hasScript && 'no `script` (util-linux) here' }, () => {
    for (const flag of ['--quiet', '--no-progress']) {
      const w = world(20);
      const { status, screen } = runOnTerminal([w.source, w.replica, '1', w.log, '--once', flag], w.env);
      assert.equal(status, 0, screen);
      assert.doesNotMatch(screen, /scanning|copying/, flag);
      if (flag === '--quiet') assert.doesNotMatch(screen, /copied|pass finished/);
      else assert.match(screen, /pass finished/);
    }
  });
});
