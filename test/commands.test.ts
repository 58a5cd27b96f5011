/**
 * The subcommands (`verify`, `status`) and the exclude files (`.folder-syncignore`,
 * `--exclude-from`) through the real command line, on real folders.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { cliEnv, exited, runCli, startCli, waitFor, type CliResult } from './helpers/cli.js';
import { md5, readTree, settle, tempDir, writeTree } from './helpers/tree.js';

const OLD = 1_600_000_000; // 2020-09-13T12:26:40Z

interface World {
  base: string;
  source: string;
  replica: string;
  log: string;
  manifest: string;
  /** XDG_STATE_HOME of the children. */
  state: string;
  env: NodeJS.ProcessEnv;
}

function world(): World {
  const base = tempDir('fs-commands-');
  const state = path.join(base, 'xdg');
  return {
    base,
    source: path.join(base, 'source'),
    replica: path.join(base, 'replica'),
    log: path.join(base, 'logs', 'sync.log'),
    manifest: path.join(base, 'state', 'm.json'),
    state,
    env: cliEnv(state),
  };
}

/** One `--once` pass with the world's manifest. */
function sync(w: World, extra: string[] = []): CliResult {
  return runCli([w.source, w.replica, '1', w.log, '--once', '--manifest', w.manifest, ...extra], w.env);
}

function lines(text: string): string[] {
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

/** Everything a write of any kind would change in a tree: names, bytes, modes, times, inodes, link targets. */
function snapshot(root: string): string {
  const seen: unknown[] = [];
  const walk = (abs: string, rel: string): void => {
    const st = fs.lstatSync(abs, { bigint: true });
    const common = { rel, mode: Number(st.mode), ino: String(st.ino), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs), size: String(st.size) };
    if (st.isDirectory()) {
      const names = fs.readdirSync(abs).sort();
      seen.push({ ...common, names });
      for (const name of names) walk(path.join(abs, name), `${rel}/${name}`);
    } else if (st.isSymbolicLink()) {
      seen.push({ ...common, target: fs.readlinkSync(abs) });
    } else {
      seen.push({ ...common, bytes: fs.readFileSync(abs).toString('base64') });
    }
  };
  walk(root, '');
  return JSON.stringify(seen, null, 1);
}

describe('folder-sync verify', () => {
  const w = world();
  const verify = (...extra: string[]) => runCli(['verify', w.source, w.replica, ...extra], w.env);
  const snapshots = () => [snapshot(w.source), snapshot(w.replica)];

  test('after a sync: exit 0, one line saying they match, with the counts', async () => {
    writeTree(w.source, {
      'a.txt': { content: 'alpha', mtime: OLD },
      'gone.txt': { content: 'gone soon', mtime: OLD },
      kind: { content: 'a file', mtime: OLD },
      l: { link: 'a.txt' },
      'mode.txt': { content: 'mode', mode: 0o644, mtime: OLD },
      'same.txt': { content: 'same size', mtime: OLD },
      'sub/deep.txt': { content: 'deep', mtime: OLD },
      'time.txt': { content: 'time', mtime: OLD },
    });
    await settle();
    assert.equal(sync(w).status, 0);
    const before = snapshots();
    const r = verify();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    // 9 paths; 7 files read on both sides: 2 × (5 + 9 + 6 + 4 + 9 + 4 + 4) bytes
    assert.deepEqual(lines(r.stdout), ['verify: source and replica match: 9 entries, 14 files hashed (82 B)']);
    assert.deepEqual(snapshots(), before);
  });

  test('every kind of difference: exit 1, one line each (walk order, then content), a summary with counts; nothing changed', () => {
    const rep = (rel: string) => path.join(w.replica, rel);
    fs.rmSync(rep('gone.txt')); // missing
    fs.writeFileSync(rep('extra.txt'), 'extra'); // extra
    fs.rmSync(rep('kind'));
    fs.mkdirSync(rep('kind')); // type
    fs.rmSync(rep('l'));
    fs.symlinkSync('elsewhere', rep('l')); // link target
    fs.chmodSync(rep('mode.txt'), 0o600); // mode
    fs.writeFileSync(rep('same.txt'), 'SAME SIZE'); // content, same size…
    fs.utimesSync(rep('same.txt'), OLD, OLD); // …and the same mtime: only reading finds it
    fs.utimesSync(rep('time.txt'), OLD + 3600, OLD + 3600); // mtime
    const root = fs.statSync(w.source);
    fs.utimesSync(w.replica, root.atime, root.mtime); // (the changes above moved the root folder's own mtime: put back)
    const [s, r] = [md5('same size'), md5('SAME SIZE')];
    assert.notEqual(s.slice(0, 4), r.slice(0, 4)); // so the detail shows 4 hex digits of each
    const before = snapshots();
    const result = verify();
    assert.equal(result.status, 1, result.stderr);
    assert.equal(result.stderr, '');
    assert.deepEqual(lines(result.stdout), [
      'extra    extra.txt (file, 5 bytes)',
      'missing  gone.txt (file, 9 bytes)',
      'type     kind (file vs folder)',
      "link target l ('a.txt' vs 'elsewhere')",
      'mode     mode.txt (644 vs 600)',
      'mtime    time.txt (2020-09-13T12:26:40Z vs 2020-09-13T13:26:40Z)',
      // printed as found: what the walk sees first, then what reading the files finds
      `content  same.txt (md5 ${s.slice(0, 4)}… vs ${r.slice(0, 4)}…)`,
      // 10 paths in either tree; 5 files on both sides: 2 × (5 + 4 + 9 + 4 + 4) bytes
      'verify: 7 differences (1 missing, 1 extra, 1 type, 1 content, 1 mode, 1 mtime, 1 link target) in 10 entries; 10 files hashed (52 B)',
    ]);
    assert.deepEqual(snapshots(), before, 'verify wrote nothing');
  });

  test('--exclude leaves excluded differences out (and their paths uncounted)', () => {
    const r = verify('--exclude', 'same.txt', '--exclude', 'kind', '--exclude', '/l');
    assert.equal(r.status, 1, r.stderr);
    assert.deepEqual(lines(r.stdout), [
      'extra    extra.txt (file, 5 bytes)',
      'missing  gone.txt (file, 9 bytes)',
      'mode     mode.txt (644 vs 600)',
      'mtime    time.txt (2020-09-13T12:26:40Z vs 2020-09-13T13:26:40Z)',
      'verify: 4 differences (1 missing, 1 extra, 1 mode, 1 mtime) in 7 entries; 8 files hashed (34 B)',
    ]);
  });

  test('.folder-syncignore in the source and --exclude-from are read too; with everything excluded they match', () => {
    const ignore = 'extra.txt\ngone.txt\n# a comment\n\nmode.txt\n';
    for (const root of [w.source, w.replica]) writeTree(root, { '.folder-syncignore': { content: ignore, mtime: OLD } });
    const before = snapshots();
    const partly = verify();
    assert.equal(partly.status, 1, partly.stderr);
    assert.deepEqual(lines(partly.stdout), [
      'type     kind (file vs folder)',
      "link target l ('a.txt' vs 'elsewhere')",
      'mtime    time.txt (2020-09-13T12:26:40Z vs 2020-09-13T13:26:40Z)',
      `content  same.txt (md5 ${md5('same size').slice(0, 4)}… vs ${md5('SAME SIZE').slice(0, 4)}…)`,
      // .folder-syncignore, a.txt, kind, l, same.txt, sub, sub/deep.txt, time.txt; 2 × (41 + 5 + 9 + 4 + 4) bytes
      'verify: 4 differences (1 type, 1 content, 1 mtime, 1 link target) in 8 entries; 10 files hashed (126 B)',
    ]);
    const more = path.join(w.base, 'more-excludes');
    fs.writeFileSync(more, 'kind\nsame.txt\n');
    const none = verify('--exclude-from', more, '--exclude', 'l', '--exclude', 'time.txt');
    assert.equal(none.status, 0, none.stdout);
    assert.deepEqual(lines(none.stdout), ['verify: source and replica match: 4 entries, 6 files hashed (100 B)']);
    assert.deepEqual(snapshots(), before, 'verify wrote nothing');
  });

  test('a missing source or replica: exit 2, one line, no stack trace', () => {
    const nowhere = path.join(w.base, 'nowhere');
    for (const [args, message] of [
      [['verify', nowhere, w.replica], `folder-sync: source '${nowhere}' does not exist`],
      [['verify', w.source, nowhere], `folder-sync: replica '${nowhere}' does not exist`],
    ] as const) {
      const r = runCli([...args], w.env);
      assert.equal(r.status, 2);
      assert.equal(r.stdout, '');
      assert.deepEqual(lines(r.stderr), [message]);
    }
    assert.equal(fs.existsSync(nowhere), false);
  });
});

describe('folder-sync status', () => {
  /** `last pass` line: its variable parts captured. */
  const LAST_PASS = /^last pass {2}(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) \((\d+:\d\d) ago\), took (\d+\.\d\d) s, (.+)$/;

  function checkStatus(text: string, expected: { manifest: string; source: string; replica: string; entries: string; result: string; summary: string; running: string }): void {
    const out = lines(text);
    assert.equal(out.length, 6, text);
    assert.equal(out[0], `manifest   ${expected.manifest}`);
    assert.equal(out[1], `pair       ${expected.source} -> ${expected.replica}`);
    assert.equal(out[2], `entries    ${expected.entries}`);
    const last = LAST_PASS.exec(out[3]);
    assert.ok(last, out[3]);
    const ageMs = Date.now() - Date.parse(last[1]);
    assert.ok(ageMs >= 0 && ageMs < 120_000, `last pass started ${ageMs} ms ago`);
    assert.equal(last[4], expected.result);
    // took: the duration the summary names
    assert.equal(`in ${last[3]} s`, / in (\d+\.\d\d) s$/.exec(expected.summary)?.[0].trim());
    assert.equal(out[4], `           ${expected.summary}`);
    assert.equal(out[5], `running    ${expected.running}`);
  }

  test('after a pass: the pair, entries and bytes, the last pass (ok, exit 0) and its summary', async () => {
    const w = world();
    writeTree(w.source, { 'a.txt': 'alpha', 'sub/b.txt': 'bravo!' });
    await settle();
    const pass = sync(w);
    assert.equal(pass.status, 0, pass.stderr);
    const summary = lines(pass.stdout).at(-1)!;
    assert.match(summary, /^pass finished: 2 copied, 0 moved, 0 updated, 0 deleted, 2 hashed, 0 errors; 11 B transferred in/);
    const r = runCli(['status', '--manifest', w.manifest], w.env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    checkStatus(r.stdout, { manifest: w.manifest, source: fs.realpathSync(w.source), replica: w.replica, entries: '2 files, 11 B', result: 'ok (exit 0)', summary, running: 'no' });
  });

  test('after a pass with an error: `errors (exit 1)`; --json has the same facts', () => {
    const w = world();
    writeTree(w.source, { 'a.txt': 'alpha', 'sub/b.txt': 'bravo!' });
    writeTree(w.replica, { 'stray.txt': 'to delete' });
    const pass = sync(w, ['--max-delete', '0']);
    assert.equal(pass.status, 1, pass.stderr);
    const summary = lines(pass.stdout).at(-1)!;
    assert.match(summary, /^pass finished: 2 copied, 0 moved, 0 updated, 0 deleted, 2 hashed, 1 errors;/);
    const r = runCli(['status', '--manifest', w.manifest], w.env);
    assert.equal(r.status, 0, r.stderr);
    checkStatus(r.stdout, { manifest: w.manifest, source: fs.realpathSync(w.source), replica: w.replica, entries: '2 files, 11 B', result: 'errors (exit 1)', summary, running: 'no' });

    const json = runCli(['status', '--manifest', w.manifest, '--json'], w.env);
    assert.equal(json.status, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { manifest: string; source: string; replica: string; entries: number; bytes: number; lastPass: { exitStatus: number; result: string; summary: string; startedAt: string; durationMs: number }; runningPid?: number };
    assert.equal(parsed.manifest, w.manifest);
    assert.equal(parsed.source, fs.realpathSync(w.source));
    assert.equal(parsed.replica, w.replica);
    assert.equal(parsed.entries, 2);
    assert.equal(parsed.bytes, 11);
    assert.equal(parsed.lastPass.exitStatus, 1);
    assert.equal(parsed.lastPass.result, 'errors');
    assert.equal(parsed.lastPass.summary, summary);
    assert.equal(new Date(parsed.lastPass.startedAt).toISOString(), parsed.lastPass.startedAt);
    assert.equal(typeof parsed.lastPass.durationMs, 'number');
    assert.equal(parsed.runningPid, undefined);
  });

  test('entries count what the line says: files (a symlink has no record)', () => {
    const w = world();
    writeTree(w.source, { 'a.txt': 'alpha', 'sub/b.txt': 'bravo!', l: { link: 'a.txt' } });
    assert.equal(sync(w).status, 0);
    const r = runCli(['status', '--manifest', w.manifest], w.env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(lines(r.stdout)[2], 'entries    2 files, 11 B');
  });

  test('status <source> <replica> finds the default manifest under $XDG_STATE_HOME; without arguments every manifest is listed', () => {
    const w = world();
    writeTree(w.source, { 'a.txt': 'alpha', 'sub/b.txt': 'bravo!' });
    const other = path.join(w.base, 'other-replica');
    const empty = runCli(['status'], w.env);
    assert.equal(empty.status, 0, empty.stderr);
    assert.deepEqual(lines(empty.stdout), [`no manifests in ${path.join(w.state, 'folder-sync')} (name one with --manifest)`]);

    const first = runCli([w.source, w.replica, '1', w.log, '--once'], w.env);
    assert.equal(first.status, 0, first.stderr);
    fs.rmSync(path.join(w.source, 'sub'), { recursive: true });
    const second = runCli([w.source, other, '1', w.log, '--once'], w.env);
    assert.equal(second.status, 0, second.stderr);
    const dir = path.join(w.state, 'folder-sync');
    const manifests = fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
    assert.equal(manifests.length, 2, manifests.join(' '));
    const mine = manifests.find((n) => /^replica-[0-9a-f]{12}\.json$/.test(n));
    const theirs = manifests.find((n) => /^other-replica-[0-9a-f]{12}\.json$/.test(n));
    assert.ok(mine && theirs, manifests.join(' '));
    const source = fs.realpathSync(w.source);

    const one = runCli(['status', w.source, w.replica], w.env);
    assert.equal(one.status, 0, one.stderr);
    checkStatus(one.stdout, {
      manifest: path.join(dir, mine),
      source,
      replica: w.replica,
      entries: '2 files, 11 B',
      result: 'ok (exit 0)',
      summary: lines(first.stdout).at(-1)!,
      running: 'no',
    });

    const all = runCli(['status'], w.env);
    assert.equal(all.status, 0, all.stderr);
    const blocks = all.stdout.replace(/\n$/, '').split('\n\n');
    assert.equal(blocks.length, 2, all.stdout);
    // sorted by file name: other-replica-… before replica-…
    checkStatus(blocks[0], { manifest: path.join(dir, theirs), source, replica: other, entries: '1 file, 5 B', result: 'ok (exit 0)', summary: lines(second.stdout).at(-1)!, running: 'no' });
    checkStatus(blocks[1], { manifest: path.join(dir, mine), source, replica: w.replica, entries: '2 files, 11 B', result: 'ok (exit 0)', summary: lines(first.stdout).at(-1)!, running: 'no' });

    const json = runCli(['status', '--json'], w.env);
    assert.equal(json.status, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { replica: string; entries: number; bytes: number; lastPass: { exitStatus: number } }[];
    assert.deepEqual(
      parsed.map((s) => [s.replica, s.entries, s.bytes, s.lastPass.exitStatus]),
      [
        [other, 1, 5, 0],
        [w.replica, 2, 11, 0],
      ],
    );
  });

  test('bad usage: a missing --manifest file, or a source without a replica: exit 2, one line', () => {
    const w = world();
    writeTree(w.source, { 'a.txt': 'alpha' });
    fs.mkdirSync(w.replica);
    const missing = path.join(w.base, 'no-such.json');
    for (const [args, message] of [
      [['status', '--manifest', missing], `folder-sync: no manifest at ${missing} (no pass has run for this pair yet, or --manifest names another file)`],
      [['status', w.source], 'folder-sync: status takes both <source> and <replica>, or neither'],
      [['status', w.source, w.replica], `folder-sync: no manifest at ${path.join(w.state, 'folder-sync')}/`],
    ] as const) {
      const r = runCli([...args], w.env);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}`);
      assert.equal(r.stdout, '');
      assert.equal(lines(r.stderr).length, 1, r.stderr);
      assert.ok(r.stderr.startsWith(message), r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
    assert.equal(fs.existsSync(w.state), false);
    assert.equal(fs.existsSync(missing), false);
  });

  test('while an interval-mode run holds the lock: `running    yes (pid N)`; after it stops: `no`', async () => {
    const w = world();
    writeTree(w.source, { 'a.txt': 'alpha' });
    const child = startCli([w.source, w.replica, '5', w.log, '--manifest', w.manifest], w.env);
    try {
      await waitFor(child.output, (t) => /pass finished/.test(t));
      const r = runCli(['status', '--manifest', w.manifest], w.env);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(lines(r.stdout).at(-1), `running    yes (pid ${child.pid})`);
      const json = JSON.parse(runCli(['status', '--manifest', w.manifest, '--json'], w.env).stdout) as { runningPid?: number };
      assert.equal(json.runningPid, child.pid);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    }
    assert.equal(await exited(child), 0);
    const after = runCli(['status', '--manifest', w.manifest], w.env);
    assert.equal(lines(after.stdout).at(-1), 'running    no');
  });
});

describe('.folder-syncignore and --exclude-from', () => {
  const IGNORE = '# build output and logs\n\n*.log\n!keep.log\ncache/\n/build\n';

  test('one glob a line; comments and blank lines skipped; ! re-includes; cache/ only folders; /build only at the root; the ignore file is mirrored', async () => {
    const w = world();
    writeTree(w.source, {
      '.folder-syncignore': IGNORE,
      '# build output and logs': 'a file named like the comment: a comment is not a pattern',
      'a.txt': 'alpha',
      'keep.log': 'kept', // *.log, then !keep.log
      'other.log': 'excluded',
      'sub/deep.log': 'excluded at any depth',
      'sub/keep.log': 're-included at any depth',
      'cache/x.txt': 'in an excluded folder',
      'sub/cache': 'a file named cache',
      'build/out.o': 'top-level build: excluded',
      'sub/build/out.o': 'nested build: kept',
    });
    const r = sync(w);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(Object.keys(readTree(w.replica)).sort(), [
      '# build output and logs',
      '.folder-syncignore',
      'a.txt',
      'keep.log',
      'sub',
      'sub/build',
      'sub/build/out.o',
      'sub/cache',
      'sub/keep.log',
    ]);
    assert.equal(fs.readFileSync(path.join(w.replica, '.folder-syncignore'), 'utf8'), IGNORE);
    assert.equal(readTree(w.replica)['sub/cache'].kind, 'file');
    // and verify agrees, reading the same file
    const v = runCli(['verify', w.source, w.replica], w.env);
    assert.equal(v.status, 0, v.stdout);
  });

  test('an edit of .folder-syncignore takes effect at the next pass of a running interval-mode folder-sync (no restart)', async () => {
    const w = world();
    writeTree(w.source, { '.folder-syncignore': IGNORE, 'a.txt': 'alpha', 'keep.log': 'kept', 'other.log': 'excluded at first', 'sub/deep.log': 'excluded at first' });
    const child = startCli([w.source, w.replica, '0.01', w.log, '--manifest', w.manifest], w.env); // a pass every 0.6 s
    const passes = () => (child.output().match(/pass finished/g) ?? []).length;
    try {
      await waitFor(child.output, () => passes() >= 1);
      assert.deepEqual(Object.keys(readTree(w.replica)).sort(), ['.folder-syncignore', 'a.txt', 'keep.log', 'sub']);
      // The new list: logs are no longer excluded, *.tmp and a.txt are. Written beside the source
      // and renamed in, so no pass reads half of it.
      const edited = '*.tmp\na.txt\n';
      const temp = path.join(w.base, 'ignore.new');
      fs.writeFileSync(temp, edited);
      const atRename = passes();
      fs.renameSync(temp, path.join(w.source, '.folder-syncignore'));
      // A pass reads the list when it starts: one already running when the list changed goes on
      // with the old list (and would copy a file created meanwhile). Once it has finished, every
      // pass still to come reads the new list.
      await waitFor(child.output, () => passes() >= atRename + 1);
      fs.writeFileSync(path.join(w.source, 'fresh.tmp'), 'new, excluded by the new list');
      fs.writeFileSync(path.join(w.source, 'a.txt'), 'alpha, changed after it was excluded');
      // the pass running now may have listed the source before these writes; the next one has not
      const atWrite = passes();
      await waitFor(child.output, () => passes() >= atWrite + 2);
      assert.deepEqual(Object.keys(readTree(w.replica)).sort(), ['.folder-syncignore', 'a.txt', 'keep.log', 'other.log', 'sub', 'sub/deep.log']);
      assert.equal(fs.readFileSync(path.join(w.replica, '.folder-syncignore'), 'utf8'), edited);
      // an excluded path in the replica is left alone: neither deleted nor updated
      assert.equal(fs.readFileSync(path.join(w.replica, 'a.txt'), 'utf8'), 'alpha');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    }
    assert.equal(await exited(child), 0);
    assert.doesNotMatch(child.output(), /error:/);
  });

  test('an ignore file micromatch cannot compile (a pattern over 64 KiB) is an error like an unreadable one: the rest is synced, nothing deleted', () => {
    const w = world();
    writeTree(w.source, { 'a.txt': 'alpha', '.folder-syncignore': `*.log\n${'x'.repeat(70_000)}\n` });
    writeTree(w.replica, { 'stale.txt': 'not in the source' });
    const r = sync(w);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /error: reading .*\.folder-syncignore: .*; nothing is deleted this pass/);
    assert.doesNotMatch(r.stderr, /unexpected failure/);
    assert.equal(fs.readFileSync(path.join(w.replica, 'a.txt'), 'utf8'), 'alpha');
    assert.equal(fs.readFileSync(path.join(w.replica, 'stale.txt'), 'utf8'), 'not in the source');
    assert.match(fs.readFileSync(w.log, 'utf8'), /\.folder-syncignore/);
  });

  test('the order of precedence: .folder-syncignore, then --exclude-from, then --exclude; the last match wins', () => {
    const w = world();
    writeTree(w.source, {
      '.folder-syncignore': '*.tmp\n!drop.bak\n',
      'a.tmp': 'excluded by the ignore file',
      'keep.tmp': 're-included by --exclude-from, which comes after the ignore file',
      'drop.bak': 're-included by the ignore file, excluded again by --exclude-from',
      'keep.bak': 'excluded by --exclude-from, re-included by --exclude, which comes last',
      'plain.txt': 'matched by nothing',
    });
    const dropBytes = fs.statSync(path.join(w.source, 'drop.bak')).size;
    const from = path.join(w.base, 'excludes.txt');
    fs.writeFileSync(from, '# from a file\n!keep.tmp\n*.bak\n');
    const r = sync(w, ['--exclude-from', from, '--exclude', '!keep.bak']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(Object.keys(readTree(w.replica)).sort(), ['.folder-syncignore', 'keep.bak', 'keep.tmp', 'plain.txt']);
    // verify, given the same options, sees no difference
    const v = runCli(['verify', w.source, w.replica, '--exclude-from', from, '--exclude', '!keep.bak'], w.env);
    assert.equal(v.status, 0, v.stdout);
    // and without them it does: what was excluded is missing
    const bare = runCli(['verify', w.source, w.replica], w.env);
    assert.equal(bare.status, 1);
    assert.deepEqual(lines(bare.stdout).slice(0, -1), [`missing  drop.bak (file, ${dropBytes} bytes)`]);
  });

  test('--exclude-from a missing file: exit 2, one line naming it, nothing created', () => {
    const w = world();
    writeTree(w.source, { 'a.txt': 'alpha' });
    const missing = path.join(w.base, 'nope.txt');
    const r = sync(w, ['--exclude-from', missing]);
    assert.equal(r.status, 2);
    assert.equal(r.stdout, '');
    assert.deepEqual(lines(r.stderr), [`folder-sync: --exclude-from '${missing}': ENOENT: no such file or directory, open '${missing}'`]);
    assert.equal(fs.existsSync(w.replica), false);
    assert.equal(fs.existsSync(path.dirname(w.log)), false);
    assert.equal(fs.existsSync(path.dirname(w.manifest)), false);
  });
});
