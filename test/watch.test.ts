/** `--watch`: a change in the source brings a pass within seconds, long before the interval's. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ROOT, cliEnv, exited, runCli, startCli, waitFor } from './helpers/cli.js';
import { tempDir, writeTree } from './helpers/tree.js';

function world() {
  const base = tempDir('fs-watch-');
  const source = path.join(base, 'source');
  const replica = path.join(base, 'replica');
  writeTree(source, { 'a.txt': 'alpha', 'deep/er/b.txt': 'beta' });
  return { base, source, replica, log: path.join(base, 'sync.log'), env: cliEnv(path.join(base, 'state')) };
}

const DIST_BIN = path.join(ROOT, 'dist', 'bin.js');

const passes = (text: string): number => (text.match(/pass finished/g) ?? []).length;

describe('--watch', () => {
  test('a new file, a new folder and an edit deep in the tree are mirrored within seconds (the interval is 10 min)', async () => {
    const w = world();
    const child = startCli([w.source, w.replica, '10', w.log, '--watch', '--watch-delay', '0.3'], w.env);
    await waitFor(child.output, (t) => passes(t) >= 1);

    const startedAt = Date.now();
    fs.writeFileSync(path.join(w.source, 'deep/er/b.txt'), 'beta, edited');
    await waitFor(child.output, () => fs.readFileSync(path.join(w.replica, 'deep/er/b.txt'), 'utf8') === 'beta, edited', 10_000);
    assert.ok(Date.now() - startedAt < 5_000, `${Date.now() - startedAt} ms`); // delay 0.3 s; the interval is 10 min

    // A folder made after the start is watched as soon as it appears: a file written into it
    // right after is not missed.
    fs.mkdirSync(path.join(w.source, 'later/sub'), { recursive: true });
    fs.writeFileSync(path.join(w.source, 'later/sub/c.txt'), 'gamma');
    await waitFor(child.output, () => fs.existsSync(path.join(w.replica, 'later/sub/c.txt')), 10_000);
    const before = passes(child.output());
    fs.writeFileSync(path.join(w.source, 'later/sub/d.txt'), 'delta');
    await waitFor(child.output, () => fs.existsSync(path.join(w.replica, 'later/sub/d.txt')), 10_000);
    assert.equal(fs.readFileSync(path.join(w.replica, 'later/sub/d.txt'), 'utf8'), 'delta');
    // A pass of its own (its summary comes a moment after the file is in place).
    await waitFor(child.output, (t) => passes(t) > before, 10_000);
    assert.match(child.output(), /change in the source \(later(\/sub)?(\/[cd]\.txt)?\): passing now/);

    child.kill('SIGTERM');
    assert.equal(await exited(child), 0);
  });

  test('a folder removed and made again at the same path is watched anew: a second file written into it later is mirrored within seconds too', async () => {
    const w = world();
    const child = startCli([w.source, w.replica, '10', w.log, '--watch', '--watch-delay', '0.3'], w.env);
    await waitFor(child.output, (t) => passes(t) >= 1);
    const before = passes(child.output());
    fs.rmSync(path.join(w.source, 'deep'), { recursive: true });
    fs.mkdirSync(path.join(w.source, 'deep/er'), { recursive: true });
    fs.writeFileSync(path.join(w.source, 'deep/er/first.txt'), 'first');
    // The pass that copies it over and done: the next file can only come by the new folder's watch.
    await waitFor(child.output, (t) => fs.existsSync(path.join(w.replica, 'deep/er/first.txt')) && passes(t) > before, 10_000);
    const startedAt = Date.now();
    fs.writeFileSync(path.join(w.source, 'deep/er/second.txt'), 'second');
    await waitFor(child.output, () => fs.existsSync(path.join(w.replica, 'deep/er/second.txt')), 10_000);
    assert.ok(Date.now() - startedAt < 5_000, `${Date.now() - startedAt} ms`); // the interval is 10 min
    child.kill('SIGTERM');
    assert.equal(await exited(child), 0);
  });

  // The built program: under tsx the listing threads boot too slowly for the race to show.
  test('a file written as the watcher starts is in the first pass: its trees are listed only once the watcher is in place', { skip: !fs.existsSync(DIST_BIN) && 'needs `npm run build`' }, async () => {
    const w = world();
    fs.mkdirSync(w.replica); // (a replica to come would not be listed early anyway)
    // Writes source/late.txt just before the first folder is watched: an event nobody can see.
    const preload = path.join(w.base, 'late-write.mjs');
    fs.writeFileSync(
      preload,
      `import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
const watch = fs.watch;
let written = false;
fs.watch = function (...args) {
  if (!written) {
    written = true;
    fs.writeFileSync(${JSON.stringify(path.join(w.source, 'late.txt'))}, 'late');
  }
  return watch.apply(this, args);
};
syncBuiltinESMExports();
`,
    );
    // (fs.watch's way: the preload hooks it; the addon's inotify starts the same way, before the listing.)
    const child = startCli([w.source, w.replica, '10', w.log, '--watch', '--watch-delay', '0.3'], { ...w.env, FOLDER_SYNC_WATCH: 'fs.watch' }, ['--import', pathToFileURL(preload).href, DIST_BIN]);
    try {
      await waitFor(child.output, (t) => passes(t) >= 1);
      assert.ok(fs.existsSync(path.join(w.source, 'late.txt')), 'the preload wrote its file');
      assert.match(child.output(), /copied late\.txt \(new\)/);
      assert.match(child.output(), /pass finished: 3 copied/);
      assert.equal(fs.readFileSync(path.join(w.replica, 'late.txt'), 'utf8'), 'late');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited(child), 0);
  });

  test('changes are debounced: a burst of writes is one pass, and excluded paths and our own log in the source start none', async () => {
    const w = world();
    // The log lives in the source (excluded as our own file): its lines must not set off passes.
    const log = path.join(w.source, 'sync.log');
    const child = startCli([w.source, w.replica, '10', log, '--watch', '--watch-delay', '0.5', '--exclude', '*.tmp'], w.env);
    await waitFor(child.output, (t) => passes(t) >= 1);
    // Quiet: neither the log's own lines nor time start a pass.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(passes(child.output()), 1, child.output());

    fs.writeFileSync(path.join(w.source, 'scratch.tmp'), 'excluded');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(passes(child.output()), 1, 'an excluded file started a pass');

    for (let i = 0; i < 10; i++) {
      fs.writeFileSync(path.join(w.source, `burst-${i}.txt`), String(i));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await waitFor(child.output, (t) => passes(t) >= 2, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(passes(child.output()), 2, child.output());
    assert.match(child.output(), /10 copied/);
    assert.equal(fs.existsSync(path.join(w.replica, 'scratch.tmp')), false);
    assert.equal(fs.existsSync(path.join(w.replica, 'sync.log')), false);

    child.kill('SIGTERM');
    assert.equal(await exited(child), 0);
  });

  test('--watch-delay must be a number of seconds', () => {
    const w = world();
    const result = runCli([w.source, w.replica, '1', w.log, '--watch', '--watch-delay', 'soon'], w.env);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--watch-delay must be a number of seconds/);
    assert.equal(fs.existsSync(w.replica), false);
  });
});
