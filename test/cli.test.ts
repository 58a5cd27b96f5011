/** The command line as a user meets it: arguments, exit statuses, summary, interval mode. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { cliEnv, exited, hasRsync, rsyncCheck, runCli, startCli, summaryCounts, waitFor } from './helpers/cli.js';
import { settle, tempDir, writeTree } from './helpers/tree.js';

function world() {
  const base = tempDir('fs-cli-');
  const source = path.join(base, 'source');
  const replica = path.join(base, 'replica');
  const log = path.join(base, 'logs', 'sync.log');
  const state = path.join(base, 'state');
  writeTree(source, { 'a.txt': 'alpha', 'dir/b.txt': 'bravo', 'dir/empty': { dir: true }, 'link': { link: 'a.txt' } });
  return { base, source, replica, log, state, env: cliEnv(state) };
}

describe('bad usage: one line on stderr, exit 2, nothing touched', () => {
  const w = world();
  fs.writeFileSync(path.join(w.base, 'plain-file'), 'x');
  const cases: [string, string[], RegExp][] = [
    ['unknown option', [w.source, w.replica, '1', w.log, '--bogus'], /unknown option '--bogus'/],
    ['missing argument', [w.source, w.replica, '1'], /missing required argument 'log-file'/],
    ['no arguments', [], /missing required argument 'source'/],
    ['interval zero', [w.source, w.replica, '0', w.log], /interval must be a positive number/],
    ['interval negative (read as an option)', [w.source, w.replica, '-1', w.log], /unknown option '-1'/],
    ['interval negative', [w.source, w.replica, '--', '-1', w.log], /interval must be a positive number of minutes \(like 5 or 0\.5\), got '-1'/],
    ['interval not a number', [w.source, w.replica, 'soon', w.log], /interval must be a positive number/],
    ['source missing', [path.join(w.base, 'nope'), w.replica, '1', w.log], /source .* does not exist/],
    ['source is a file', [path.join(w.base, 'plain-file'), w.replica, '1', w.log], /source .* is not a folder/],
    ['same folder', [w.source, w.source + '/', '1', w.log], /same folder/],
    ['replica inside source', [w.source, path.join(w.source, 'dir', 'mirror'), '1', w.log], /replica .* is inside source/],
    ['source inside replica', [w.source, w.base, '1', w.log], /source .* is inside replica/],
    ['replica is a file', [w.source, path.join(w.base, 'plain-file'), '1', w.log], /replica .* is not a folder/],
    ['log file under a file', [w.source, w.replica, '1', path.join(w.base, 'plain-file', 'x.log')], /log file .* cannot be created/],
    ['log file is a folder', [w.source, w.replica, '1', w.base], /log file .* is a folder/],
    ['manifest under a file', [w.source, w.replica, '1', w.log, '--manifest', path.join(w.base, 'plain-file', 'm.json')], /manifest location .* cannot be created/],
    ['max-delete not a number', [w.source, w.replica, '1', w.log, '--max-delete', 'many'], /--max-delete must be a whole number/],
    ['max-delete negative', [w.source, w.replica, '1', w.log, '--max-delete', '-3'], /--max-delete must be a whole number/],
  ];
  for (const [name, args, message] of cases) {
    test(name, () => {
      const r = runCli(args, w.env);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.equal(fs.existsSync(w.replica), false);
      assert.equal(fs.existsSync(w.log), false);
      assert.equal(fs.existsSync(w.state), false);
    });
  }
});

describe('the command line', () => {
  test('--help lists every option, --version prints the version', () => {
    const help = runCli(['--help']);
    assert.equal(help.status, 0);
    const shown = [...new Set(help.stdout.match(/--[a-z][a-z-]*/g))].sort();
    assert.deepEqual(shown, [
      '--allow-empty-replica', '--allow-mass-delete', '--backup-dir', '--checksum', '--copy-threads', '--dry-run', '--exclude', '--exclude-from', '--hard-links', '--hash-threads', '--help',
      '--log-format', '--log-level', '--log-max-files', '--log-max-size', '--manifest', '--max-delete', '--max-delete-bytes',
      '--no-fsync', '--no-progress', '--once', '--quiet', '--ssh-config', '--ssh-identity', '--ssh-known-hosts', '--version', '--watch', '--watch-delay',
    ]);
    const version = runCli(['--version']);
    assert.equal(version.status, 0);
    assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+$/);
  });

  test('--once: a pass, the summary on the console and in the log, then a quiet second pass', async () => {
    const w = world();
    await settle();
    const first = runCli([w.source, w.replica, '1', w.log, '--once'], w.env);
    assert.equal(first.status, 0, first.stderr);
    assert.deepEqual(summaryCounts(first.stdout), { copied: 3, updated: 0, deleted: 0, hashed: 2, errors: 0 });
    const logText = fs.readFileSync(w.log, 'utf8');
    assert.match(logText, /^\d{4}-\d\d-\d\dT[\d:.]+Z INFO {2}copied a\.txt \(new\)$/m);
    assert.deepEqual(summaryCounts(logText), summaryCounts(first.stdout));
    assert.match(logText, new RegExp(`manifest ${w.state}/folder-sync/replica-[0-9a-f]{12}\\.json`));
    if (hasRsync()) assert.equal(rsyncCheck(w.source, w.replica), '');

    const second = runCli([w.source, w.replica, '1', w.log, '--once'], w.env);
    assert.equal(second.status, 0);
    assert.deepEqual(summaryCounts(second.stdout), { copied: 0, updated: 0, deleted: 0, hashed: 0, errors: 0 });
  });

  test('a corrupt manifest is a warning: kept aside, rebuilt by a full pass, exit 0', async () => {
    const w = world();
    const manifest = path.join(w.base, 'm.json');
    await settle();
    assert.equal(runCli([w.source, w.replica, '1', w.log, '--once', '--manifest', manifest], w.env).status, 0);
    fs.writeFileSync(manifest, '\x00\x01garbage{{{');
    const r = runCli([w.source, w.replica, '1', w.log, '--once', '--manifest', manifest], w.env);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warning: cannot read manifest .*m\.json.*kept as .*m\.json\.corrupt-/);
    assert.deepEqual(summaryCounts(r.stdout), { copied: 0, updated: 0, deleted: 0, hashed: 4, errors: 0 });
    assert.ok(fs.readdirSync(w.base).some((n) => n.startsWith('m.json.corrupt-')));
    assert.equal(JSON.parse(fs.readFileSync(manifest, 'utf8')).format, 'folder-sync manifest');
  });

  test('--max-delete over the limit: exit 1, nothing deleted, the rest synced', async () => {
    const w = world();
    assert.equal(runCli([w.source, w.replica, '1', w.log, '--once'], w.env).status, 0);
    fs.rmSync(path.join(w.source, 'dir'), { recursive: true });
    fs.writeFileSync(path.join(w.source, 'c.txt'), 'charlie');
    const r = runCli([w.source, w.replica, '1', w.log, '--once', '--max-delete', '2'], w.env);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /refusing to delete 3 entries: more than --max-delete 2/);
    assert.ok(fs.existsSync(path.join(w.replica, 'dir', 'b.txt')));
    assert.equal(fs.readFileSync(path.join(w.replica, 'c.txt'), 'utf8'), 'charlie');
    assert.equal(summaryCounts(r.stdout).copied, 1);
  });

  test('--dry-run into a missing replica creates nothing', () => {
    const w = world();
    const r = runCli([w.source, w.replica, '1', w.log, '--once', '--dry-run'], w.env);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /would copy a\.txt/);
    assert.equal(fs.existsSync(w.replica), false);
    assert.equal(fs.existsSync(w.state), false);
  });

  test('--exclude from the command line', () => {
    const w = world();
    const r = runCli([w.source, w.replica, '1', w.log, '--once', '--exclude', 'dir', '--exclude', '*.nothing'], w.env);
    assert.equal(r.status, 0);
    assert.deepEqual(fs.readdirSync(w.replica).sort(), ['a.txt', 'link']);
  });
});

describe('interval mode', () => {
  test('passes repeat every interval; SIGTERM stops cleanly with exit 0', async () => {
    const w = world();
    const child = startCli([w.source, w.replica, '0.01', w.log], w.env); // 0.6 s
    await waitFor(child.output, (t) => (t.match(/pass finished/g) ?? []).length >= 1);
    fs.writeFileSync(path.join(w.source, 'later.txt'), 'arrived later');
    await waitFor(child.output, () => fs.existsSync(path.join(w.replica, 'later.txt')));
    await waitFor(child.output, (t) => (t.match(/pass finished/g) ?? []).length >= 3);
    child.kill('SIGTERM');
    assert.equal(await exited(child), 0);
    assert.match(child.output(), /stopped on SIGTERM/);
    assert.match(fs.readFileSync(w.log, 'utf8'), /stopped on SIGTERM/);
    assert.equal(fs.readFileSync(path.join(w.replica, 'later.txt'), 'utf8'), 'arrived later');
  });

  test('a second folder-sync on the same manifest gets exit 2 naming the holder', async () => {
    const w = world();
    const child = startCli([w.source, w.replica, '5', w.log], w.env);
    await waitFor(child.output, (t) => /pass finished/.test(t));
    const second = runCli([w.source, w.replica, '1', w.log, '--once'], w.env);
    assert.equal(second.status, 2);
    assert.match(second.stderr, new RegExp(`another folder-sync \\(pid ${child.pid}\\)`));
    child.kill('SIGINT');
    assert.equal(await exited(child), 0);
    // the lock is released: the next one runs
    assert.equal(runCli([w.source, w.replica, '1', w.log, '--once'], w.env).status, 0);
  });
});

describe('review regressions (command line)', () => {
  test('a replica with missing parents is created', () => {
    const w = world();
    const deep = path.join(w.base, 'deep', 'er', 'mirror');
    const r = runCli([w.source, deep, '1', w.log, '--once'], w.env);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(fs.existsSync(path.join(deep, 'a.txt')));
  });

  test('log file and manifest at the same path is bad usage', () => {
    const w = world();
    const m = path.join(w.base, 'same.json');
    const r = runCli([w.source, w.replica, '1', m, '--once', '--manifest', m], w.env);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /would overwrite the manifest/);
  });

  test('a second folder-sync into the same replica with another manifest gets exit 2', async () => {
    const w = world();
    const child = startCli([w.source, w.replica, '5', w.log, '--manifest', path.join(w.base, 'one.json')], w.env);
    await waitFor(child.output, (t) => /pass finished/.test(t));
    const second = runCli([w.source, w.replica, '1', w.log, '--once', '--manifest', path.join(w.base, 'two.json')], w.env);
    assert.equal(second.status, 2);
    assert.match(second.stderr, new RegExp(`another folder-sync \\(pid ${child.pid}\\) is using replica`));
    child.kill('SIGTERM');
    assert.equal(await exited(child), 0);
  });
});

describe('hashing threads', () => {
  test('--checksum over many files reads both sides on the hashing threads, copies nothing', async () => {
    const w = world();
    // 520 files (and the 2 of every world): 1,044 to read, past the 1,024 from which the threads start.
    writeTree(w.source, Object.fromEntries(Array.from({ length: 520 }, (_, i) => [`many/f${i}.txt`, `file ${i}`.repeat((i % 30) + 1)])));
    assert.equal(runCli([w.source, w.replica, '1', w.log, '--once'], w.env).status, 0);
    fs.writeFileSync(path.join(w.replica, 'many', 'f7.txt'), 'file 7'.repeat(8).toUpperCase()); // same size, other bytes
    const r = runCli([w.source, w.replica, '1', w.log, '--once', '--checksum', '--log-level', 'debug'], w.env);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /1044 files to read: on 2 hashing threads/);
    assert.deepEqual(summaryCounts(r.stdout), { copied: 0, updated: 1, deleted: 0, hashed: 1044 + 1, errors: 0 });
    assert.match(r.stdout, /updated many\/f7\.txt \(content changed/); // --checksum cannot tell which side moved
    if (hasRsync()) assert.equal(rsyncCheck(w.source, w.replica), '');
  });
});
