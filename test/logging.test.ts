/**
 * The log as a user reads it, through the real command line on real folders: every action's
 * words and reason, the same on the console and in the file; `--log-format json`, `--log-level`,
 * `--quiet`, and rotation (`--log-max-size`, `--log-max-files`).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { BIN, ROOT, cliEnv, runCli, type CliResult } from './helpers/cli.js';
import { nativeCopy } from '../src/native.js';
const poolCopies = (): boolean => nativeCopy() !== undefined;
import { mirrorDiff, readTree, settle, tempDir, writeTree } from './helpers/tree.js';

const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** A log file line: ISO timestamp, the level padded to 5, the message. */
const FILE_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (ERROR|WARN |INFO |DEBUG) (.*)$/;

interface LogLine {
  level: string;
  message: string;
}

/** Every line of a text log file, each checked to be `timestamp LEVEL message`. */
function readLog(file: string): LogLine[] {
  const text = fs.readFileSync(file, 'utf8');
  if (text === '') return []; // a log just rotated
  assert.ok(text.endsWith('\n'), `${file} does not end with a newline`);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => {
      const m = FILE_LINE.exec(line);
      assert.ok(m, `not a log line: ${JSON.stringify(line)}`);
      assert.equal(new Date(m[1]).toISOString(), m[1]);
      return { level: m[2].trim(), message: m[3] };
    });
}

/** Lines of a console stream (no trailing empty line). */
function lines(text: string): string[] {
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The summary line of a pass, durations left open. */
function summaryRe(c: { copied: number; moved: number; updated: number; deleted: number; hashed: number; errors: number }, transferred: string, dry = false): RegExp {
  return new RegExp(
    `^${dry ? 'dry run ' : ''}pass finished: ${c.copied} copied, ${c.moved} moved, ${c.updated} updated, ${c.deleted} deleted, ` +
      `${c.hashed} hashed, ${c.errors} errors; ${escape(transferred)} transferred in \\d+\\.\\d\\d s$`,
  );
}

interface World {
  base: string;
  source: string;
  replica: string;
  manifest: string;
  state: string;
  logs: string;
  env: NodeJS.ProcessEnv;
}

function world(): World {
  const base = tempDir('fs-logging-');
  const state = path.join(base, 'xdg');
  return {
    base,
    source: path.join(base, 'source'),
    replica: path.join(base, 'replica'),
    manifest: path.join(base, 'state', 'm.json'),
    state,
    logs: path.join(base, 'logs'),
    env: cliEnv(state),
  };
}

/** One `--once` pass into its own log file (so the file holds exactly this run's lines). */
function pass(w: World, logName: string, extra: string[] = []): CliResult & { log: string } {
  const log = path.join(w.logs, logName);
  return { ...runCli([w.source, w.replica, '1', log, '--once', '--manifest', w.manifest, ...extra], w.env), log };
}

function startLine(w: World, dry = false): string {
  return `folder-sync ${VERSION}: ${fs.realpathSync(w.source)} -> ${w.replica}, one pass${dry ? ' (dry run)' : ''}; manifest ${w.manifest}`;
}

function mkfifo(absPath: string): void {
  execFileSync('mkfifo', [absPath]);
}

/**
 * Checks a run that logged only info lines: stdout is exactly the start line, `actions`, then a
 * summary matching `summary`; the log file holds the same messages, each at INFO; stderr is empty.
 */
function assertInfoRun(r: CliResult & { log: string }, start: string, actions: string[], summary: RegExp): void {
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const out = lines(r.stdout);
  assert.equal(out[0], start);
  assert.deepEqual(out.slice(1, -1), actions);
  assert.match(out.at(-1)!, summary);
  const logged = readLog(r.log);
  assert.deepEqual(
    logged.map((l) => l.message),
    out,
    'the log file says what the console says',
  );
  assert.deepEqual(
    logged.map((l) => l.level),
    out.map(() => 'INFO'),
  );
}

/** 4 KiB that no other file of the scenario has the size of (a move is paired by size and MD5). */
const BIG = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7 + 3) & 255));

/** The first tree: something of every kind, each to be changed in its own way afterwards. */
function firstTree(source: string): void {
  writeTree(source, {
    'b.txt': 'bravo',
    'c.txt': { content: 'charlie', mode: 0o644 },
    'e.txt': 'echo',
    k: 'k is a file first',
    l: { link: 'target' },
    'm/inner.txt': 'inside m',
    'old.bin': BIG,
    't.txt': { content: 'tango', mtime: 1_600_000_000 },
    'x.txt': 'x-ray, to be deleted',
  });
}

const FIRST_ACTIONS = [
  'copied b.txt (new)',
  'copied c.txt (new)',
  'copied e.txt (new)',
  'copied k (new)',
  'copied l -> target (new)',
  'created m/ (new folder)',
  'copied m/inner.txt (new)',
  'copied old.bin (new)',
  'copied t.txt (new)',
  'copied x.txt (new)',
];
// 5 + 7 + 4 + 17 + 8 + 4096 + 5 + 20 bytes = 4162 B
const FIRST_SUMMARY = summaryRe({ copied: 9, moved: 0, updated: 0, deleted: 0, hashed: 8, errors: 0 }, '4.1 KiB');

/** Every kind of change between two passes, on both sides. */
function secondChanges(w: World): void {
  const s = (rel: string) => path.join(w.source, rel);
  const r = (rel: string) => path.join(w.replica, rel);
  fs.writeFileSync(s('a.txt'), 'alpha'); // new
  fs.writeFileSync(s('b.txt'), 'bravo, changed'); // content
  fs.chmodSync(s('c.txt'), 0o600); // permissions only
  fs.utimesSync(s('t.txt'), 1_600_000_100, 1_600_000_100); // mtime only
  writeTree(w.replica, { 'd/f.txt': 'stray' }); // a folder only in the replica
  fs.rmSync(s('x.txt')); // gone from the source
  fs.writeFileSync(r('e.txt'), 'ECHO, edited in the replica'); // the replica's copy edited
  fs.mkdirSync(s('n')); // a new (empty) folder
  fs.rmSync(s('l'));
  fs.symlinkSync('other', s('l')); // link target changed
  fs.rmSync(s('k'));
  writeTree(w.source, { 'k/inner.txt': 'k is a folder now' }); // file became folder
  fs.rmSync(s('m'), { recursive: true });
  fs.writeFileSync(s('m'), 'm is a file now'); // folder became file
  fs.renameSync(s('old.bin'), s('new.bin')); // moved
}

/** What the second pass does, in order: upserts (copies batched until a non-copy), deletes, then what waited for a delete. */
const SECOND_ACTIONS = [
  'copied a.txt (new)',
  'updated b.txt (content changed)',
  'updated c.txt (permissions)',
  'restored e.txt (changed in replica)',
  'updated l -> other (link target changed)',
  'created n/ (new folder)',
  'moved old.bin -> new.bin (moved in source)',
  'updated t.txt (mtime)',
  'deleted k (type changed)',
  'deleted m/inner.txt (not in source)',
  'deleted m/ (type changed)',
  'deleted d/f.txt (not in source)',
  'deleted d/ (not in source)',
  'deleted x.txt (not in source)',
  'created k/ (new folder)',
  'copied k/inner.txt (new)',
  'copied m (type changed)',
];
// hashed: 4 copies (a, b, e, k/inner, m = 5), c and t read on both sides (4), new.bin read to prove the move (1)
// transferred: 5 + 14 + 4 + 17 + 15 = 55 B
const SECOND_SUMMARY = summaryRe({ copied: 3, moved: 1, updated: 5, deleted: 6, hashed: 8, errors: 0 }, '55 B');

describe('every action with its reason, the same words on the console and in the file', () => {
  const w = world();

  test('first pass: copied files and a link (with its target), created a folder', async () => {
    firstTree(w.source);
    await settle();
    const r = pass(w, 'pass1.log');
    assertInfoRun(r, startLine(w), FIRST_ACTIONS, FIRST_SUMMARY);
  });

  test('dry run of every kind of change: `would …` lines, nothing changed', async () => {
    secondChanges(w);
    await settle();
    const replicaBefore = readTree(w.replica);
    const manifestBefore = fs.readFileSync(w.manifest);
    const r = pass(w, 'dry.log', ['--dry-run']);
    assertInfoRun(
      r,
      startLine(w, true),
      [
        'would copy a.txt (new)',
        'would update b.txt (content changed)',
        'would update c.txt (permissions)',
        'would restore e.txt (changed in replica)',
        'would update l -> other (link target changed)',
        'would create n/ (new folder)',
        'would move old.bin -> new.bin (moved in source)',
        'would update t.txt (mtime)',
        'would delete k (type changed)',
        'would delete m/inner.txt (not in source)',
        'would delete m/ (type changed)',
        'would delete d/f.txt (not in source)',
        'would delete d/ (not in source)',
        'would delete x.txt (not in source)',
        'would create k/ (new folder)',
        'would copy k/inner.txt (new)',
        'would copy m (type changed)',
      ],
      // c and t read on both sides, new.bin read to prove the move
      summaryRe({ copied: 3, moved: 1, updated: 5, deleted: 6, hashed: 3, errors: 0 }, '0 B', true),
    );
    assert.deepEqual(readTree(w.replica), replicaBefore);
    assert.deepEqual(fs.readFileSync(w.manifest), manifestBefore);
  });

  test('second pass: new, content changed, permissions, mtime, changed in replica, link target, type changes, move, deletes', () => {
    const r = pass(w, 'pass2.log');
    assertInfoRun(r, startLine(w), SECOND_ACTIONS, SECOND_SUMMARY);
    assert.deepEqual(mirrorDiff(w.source, w.replica), []);
    assert.equal(fs.readFileSync(path.join(w.replica, 'e.txt'), 'utf8'), 'echo');
    assert.equal(fs.readlinkSync(path.join(w.replica, 'l')), 'other');
    assert.equal(fs.statSync(path.join(w.replica, 'c.txt')).mode & 0o777, 0o600);
  });

  test('a dry run names a link\'s target like the real run does (`would copy l -> target (new)`)', () => {
    const v = world();
    writeTree(v.source, { l: { link: 'target' } });
    const r = pass(v, 'dry.log', ['--dry-run']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(lines(r.stdout).filter((l) => l.startsWith('would ')), ['would copy l -> target (new)']);
  });
});

describe('--log-format json', () => {
  /** Two passes of the same scenario (with a FIFO, for a warning) in `format`; returns each run. */
  async function scenario(w: World, format: 'text' | 'json'): Promise<(CliResult & { log: string })[]> {
    for (const dir of [w.source, w.replica, path.dirname(w.manifest)]) fs.rmSync(dir, { recursive: true, force: true });
    firstTree(w.source);
    mkfifo(path.join(w.source, 'pipe'));
    await settle();
    const first = pass(w, `${format}-1.log`, ['--log-format', format]);
    secondChanges(w);
    await settle();
    const second = pass(w, `${format}-2.log`, ['--log-format', format]);
    return [first, second];
  }

  interface JsonLine {
    timestamp: string;
    level: string;
    message: string;
    [field: string]: unknown;
  }

  function parseJsonLines(text: string): JsonLine[] {
    return lines(text).map((line) => {
      const parsed = JSON.parse(line) as JsonLine;
      assert.equal(typeof parsed.timestamp, 'string', line);
      assert.equal(new Date(parsed.timestamp).toISOString(), parsed.timestamp, line);
      assert.ok(['error', 'warn', 'info', 'debug'].includes(parsed.level), line);
      assert.equal(typeof parsed.message, 'string', line);
      return parsed;
    });
  }

  const w = world();
  let text: (CliResult & { log: string })[] = [];
  let json: (CliResult & { log: string })[] = [];

  test('the same scenario in text, then in json (same paths)', async () => {
    text = await scenario(w, 'text');
    json = await scenario(w, 'json');
    for (const r of [...text, ...json]) assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(mirrorDiff(w.source, w.replica), []);
  });

  test('every line of the file is JSON with timestamp, level and message; the messages are the text log\'s, line for line', () => {
    const durations = (m: string) => m.replace(/ in \d+\.\d\d s$/, ' in <t> s');
    for (const i of [0, 1]) {
      const fromText = readLog(text[i].log).map((l) => ({ level: l.level.toLowerCase(), message: durations(l.message) }));
      const fromJson = parseJsonLines(fs.readFileSync(json[i].log, 'utf8')).map((l) => ({ level: l.level, message: durations(l.message) }));
      assert.deepEqual(fromJson, fromText);
    }
    // the second pass's lines, as a reminder of what was compared
    const messages = parseJsonLines(fs.readFileSync(json[1].log, 'utf8')).map((l) => l.message);
    assert.deepEqual(messages.slice(1, -1), ['skipped pipe (special file)', ...SECOND_ACTIONS]);
    assert.match(messages.at(-1)!, SECOND_SUMMARY);
  });

  test('action lines carry action, path, reason (and bytes for a file copy, target for a link, from for a move)', () => {
    const records = [...parseJsonLines(fs.readFileSync(json[0].log, 'utf8')), ...parseJsonLines(fs.readFileSync(json[1].log, 'utf8'))];
    const actions = records.filter((l) => /^(copied|updated|restored|deleted|created|moved) /.test(l.message));
    assert.equal(actions.length, FIRST_ACTIONS.length + SECOND_ACTIONS.length);
    for (const a of actions) {
      assert.equal(typeof a.action, 'string', a.message);
      assert.equal(typeof a.path, 'string', a.message);
      assert.equal(typeof a.reason, 'string', a.message);
      // the message is made of the fields, nothing else
      const what = a.from !== undefined ? `${String(a.from)} -> ${String(a.path)}` : a.target !== undefined ? `${String(a.path)} -> ${String(a.target)}` : String(a.path);
      assert.equal(`${String(a.action)} ${what} (${String(a.reason)})`, a.message);
    }
    const find = (message: string) => {
      const found = actions.find((a) => a.message === message);
      assert.ok(found, message);
      const { timestamp, level, ...fields } = found;
      assert.equal(level, 'info');
      return fields;
    };
    assert.deepEqual(find('copied a.txt (new)'), { message: 'copied a.txt (new)', action: 'copied', path: 'a.txt', reason: 'new', bytes: 5 });
    assert.deepEqual(find('copied old.bin (new)'), { message: 'copied old.bin (new)', action: 'copied', path: 'old.bin', reason: 'new', bytes: 4096 });
    assert.deepEqual(find('updated b.txt (content changed)'), { message: 'updated b.txt (content changed)', action: 'updated', path: 'b.txt', reason: 'content changed', bytes: 14 });
    assert.deepEqual(find('restored e.txt (changed in replica)'), { message: 'restored e.txt (changed in replica)', action: 'restored', path: 'e.txt', reason: 'changed in replica', bytes: 4 });
    assert.deepEqual(find('copied m (type changed)'), { message: 'copied m (type changed)', action: 'copied', path: 'm', reason: 'type changed', bytes: 15 });
    assert.deepEqual(find('updated c.txt (permissions)'), { message: 'updated c.txt (permissions)', action: 'updated', path: 'c.txt', reason: 'permissions' });
    assert.deepEqual(find('updated t.txt (mtime)'), { message: 'updated t.txt (mtime)', action: 'updated', path: 't.txt', reason: 'mtime' });
    assert.deepEqual(find('copied l -> target (new)'), { message: 'copied l -> target (new)', action: 'copied', path: 'l', target: 'target', reason: 'new' });
    assert.deepEqual(find('updated l -> other (link target changed)'), { message: 'updated l -> other (link target changed)', action: 'updated', path: 'l', target: 'other', reason: 'link target changed' });
    assert.deepEqual(find('moved old.bin -> new.bin (moved in source)'), { message: 'moved old.bin -> new.bin (moved in source)', action: 'moved', path: 'new.bin', from: 'old.bin', reason: 'moved in source' });
    assert.deepEqual(find('deleted d/ (not in source)'), { message: 'deleted d/ (not in source)', action: 'deleted', path: 'd/', reason: 'not in source' });
    assert.deepEqual(find('created n/ (new folder)'), { message: 'created n/ (new folder)', action: 'created', path: 'n/', reason: 'new folder' });
  });

  test('the summary line carries its counters as numbers, equal to the words', () => {
    assert.ok(json.length > 0, 'the JSON runs of the first test of this group are there (run the group, not this test alone)');
    for (const r of json) {
      const summary = parseJsonLines(fs.readFileSync(r.log, 'utf8')).at(-1)!;
      const m = /^pass finished: (\d+) copied, (\d+) moved, (\d+) updated, (\d+) deleted, (\d+) hashed, (\d+) errors;/.exec(summary.message);
      assert.ok(m, summary.message);
      const [copied, moved, updated, deleted, hashed, errors] = m.slice(1).map(Number);
      assert.deepEqual(
        { copied: summary.copied, moved: summary.moved, updated: summary.updated, deleted: summary.deleted, hashed: summary.hashed, errors: summary.errors },
        { copied, moved, updated, deleted, hashed, errors },
      );
      assert.equal(summary.warnings, 1);
      assert.equal(typeof summary.durationMs, 'number');
    }
    const second = parseJsonLines(fs.readFileSync(json[1].log, 'utf8')).at(-1)!;
    assert.deepEqual([second.copied, second.moved, second.updated, second.deleted, second.hashed, second.errors], [3, 1, 5, 6, 8, 0]);
  });

  test('the console gets JSON lines too: stdout the info lines, stderr the warning, the same records as the file', () => {
    assert.ok(json.length > 0, 'the JSON runs of the first test of this group are there (run the group, not this test alone)');
    for (const r of json) {
      const fileRecords = parseJsonLines(fs.readFileSync(r.log, 'utf8'));
      const strip = ({ timestamp, ...rest }: JsonLine) => rest;
      const out = parseJsonLines(r.stdout).map(strip);
      const err = parseJsonLines(r.stderr).map(strip);
      assert.deepEqual(out, fileRecords.filter((l) => l.level === 'info').map(strip));
      assert.deepEqual(err, [{ level: 'warn', message: 'skipped pipe (special file)' }]);
    }
  });
});

describe('--log-level', () => {
  /** A source with a FIFO (a warning) and a replica with a stray file that --max-delete 0 refuses to delete (an error). */
  function troubled(): World {
    const w = world();
    writeTree(w.source, { 'a.txt': 'alpha', 'sub/b.txt': 'bravo' });
    mkfifo(path.join(w.source, 'pipe'));
    writeTree(w.replica, { 'stray.txt': 'stray' });
    return w;
  }
  const WARNING = 'skipped pipe (special file)';
  const REFUSAL = 'refusing to delete 1 entries: more than --max-delete 0; nothing was deleted (run with a higher --max-delete if this is intended)';

  test('warn: no info lines anywhere, the warning and the error in the file and on stderr', () => {
    const w = troubled();
    const r = pass(w, 'warn.log', ['--log-level', 'warn', '--max-delete', '0']);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.deepEqual(lines(r.stderr), [`warning: ${WARNING}`, `error: ${REFUSAL}`]);
    assert.deepEqual(readLog(r.log), [
      { level: 'WARN', message: WARNING },
      { level: 'ERROR', message: REFUSAL },
    ]);
    // the pass itself ran as usual
    assert.equal(fs.readFileSync(path.join(w.replica, 'a.txt'), 'utf8'), 'alpha');
    assert.equal(fs.readFileSync(path.join(w.replica, 'stray.txt'), 'utf8'), 'stray');
  });

  test('error: only the error', () => {
    const w = troubled();
    const r = pass(w, 'error.log', ['--log-level', 'error', '--max-delete', '0']);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.deepEqual(lines(r.stderr), [`error: ${REFUSAL}`]);
    assert.deepEqual(readLog(r.log), [{ level: 'ERROR', message: REFUSAL }]);
  });

  test('debug: the lister, walk and plan lines are added (file and stdout), before the actions, the execution line after; info and warn lines stay', () => {
    const w = troubled();
    const r = pass(w, 'debug.log', ['--log-level', 'debug']);
    assert.equal(r.status, 0, r.stderr);
    // listed: the source root (a.txt, pipe, sub), the replica root (stray.txt), sub (b.txt)
    // to look at: new a.txt, new sub, new sub/b.txt, extra stray.txt, and the replica root's mtime
    const walkLine = /^walk: 5 entries listed in \d+ ms, 5 to look at$/;
    const logged = readLog(r.log);
    // With the addon, which writes small copies on the thread pool, a line says so before them.
    const copiesLine = [
      ...(!poolCopies() ? [] : ['copies written on the thread pool: 2 of 2 (those under 16.0 MiB)']),
      `copiers, in the order tried: ${poolCopies() ? 'addon pool, ' : ''}kernel, main thread`,
    ];
    const debug = logged.filter((l) => l.level === 'DEBUG').filter((l) => !l.message.startsWith('replica: '));
    assert.ok(logged.some((l) => l.level === 'DEBUG' && /^replica: local folder/.test(l.message)), JSON.stringify(logged));
    assert.equal(debug.length, 4 + copiesLine.length, JSON.stringify(logged));
    assert.match(debug[0].message, /^lister: (native, .+|JavaScript \(.+\))$/);
    assert.match(debug[1].message, walkLine);
    assert.match(debug[2].message, /^plan: 4 operations at \d+ ms \(0 files read\)$/);
    assert.deepEqual(debug.slice(3, -1).map((l) => l.message), copiesLine);
    assert.match(debug.at(-1)!.message, /^executed at \d+ ms$/);
    const out = lines(r.stdout);
    assert.equal(out[1], debug[0].message);
    assert.match(out[2], /^replica: local folder/);
    const at = out.findIndex((l) => walkLine.test(l));
    assert.ok(at > 0, r.stdout);
    assert.equal(out[at + 1], debug[2].message);
    assert.equal(out.at(-2), debug.at(-1)!.message);
    assert.deepEqual(out.slice(at + 2, -2), [...copiesLine, 'copied a.txt (new)', 'created sub/ (new folder)', 'copied sub/b.txt (new)', 'deleted stray.txt (not in source)']);
    assert.deepEqual(lines(r.stderr), [`warning: ${WARNING}`]);
    assert.deepEqual(
      logged.map((l) => l.message),
      [out[0], out[1], out[2], WARNING, ...out.slice(at)],
    );
  });

  test('stdout and stderr into one file (2>&1): the lines in the log file\'s order, though stdout\'s are written together', () => {
    const w = troubled();
    const log = path.join(w.logs, 'both.log');
    const both = path.join(w.base, 'both.txt');
    const fd = fs.openSync(both, 'w');
    try {
      const r = spawnSync(process.execPath, ['--import', 'tsx', BIN, w.source, w.replica, '1', log, '--once', '--manifest', w.manifest, '--log-level', 'debug', '--max-delete', '0'], { cwd: ROOT, env: w.env, stdio: ['ignore', fd, fd] });
      assert.equal(r.status, 1);
    } finally {
      fs.closeSync(fd);
    }
    const messages = readLog(log).map((l) => (l.level === 'WARN' ? `warning: ${l.message}` : l.level === 'ERROR' ? `error: ${l.message}` : l.message));
    // start, lister, replica, WARNING (stderr), walk, plan, REFUSAL (stderr), the copies, executed, summary
    assert.ok(messages.indexOf(`warning: ${WARNING}`) === 3 && messages.indexOf(`error: ${REFUSAL}`) > 4, messages.join('\n'));
    assert.deepEqual(lines(fs.readFileSync(both, 'utf8')), messages);
  });

  test('info (the default) writes no debug line', () => {
    const w = troubled();
    const r = pass(w, 'info.log');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual([...new Set(readLog(r.log).map((l) => l.level))].sort(), ['INFO', 'WARN']);
    assert.doesNotMatch(r.stdout, /walk:/);
  });

  for (const [option, value, message] of [
    ['--log-level', 'loud', "folder-sync: --log-level must be one of error, warn, info, debug, got 'loud'"],
    ['--log-format', 'xml', "folder-sync: --log-format must be one of text, json, got 'xml'"],
  ] as const) {
    test(`${option} ${value}: exit 2, one line naming the option, nothing created`, () => {
      const w = world();
      writeTree(w.source, { 'a.txt': 'alpha' });
      const r = pass(w, 'bad.log', [option, value]);
      assert.equal(r.status, 2);
      assert.equal(r.stdout, '');
      assert.deepEqual(lines(r.stderr), [message]);
      assert.equal(fs.existsSync(w.replica), false);
      assert.equal(fs.existsSync(w.logs), false);
      assert.equal(fs.existsSync(path.dirname(w.manifest)), false);
      assert.equal(fs.existsSync(w.state), false);
    });
  }
});

describe('the console', () => {
  test('10,000 action lines reach stdout (a file) in a few dozen writes, not one each: every one, in order', () => {
    const base = tempDir('fs-logging-');
    const out = path.join(base, 'out.txt');
    const script = `
      import { createLogger } from ${JSON.stringify(path.join(ROOT, 'src', 'log', 'log.ts'))};
      let writes = 0;
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = (...args) => (writes++, write(...args));
      const logger = await createLogger({ logFile: process.argv[1] });
      for (let i = 0; i < 10000; i++) logger.action({ verb: 'copied', path: 'f' + i, reason: 'new' });
      await logger.close();
      process.stderr.write(String(writes));
    `;
    const fd = fs.openSync(out, 'w');
    let r;
    try {
      r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, path.join(base, 'sync.log')], { cwd: ROOT, stdio: ['ignore', fd, 'pipe'], encoding: 'utf8' });
    } finally {
      fs.closeSync(fd);
    }
    assert.equal(r.status, 0, r.stderr);
    const expected = Array.from({ length: 10000 }, (_, i) => `copied f${i} (new)`);
    assert.deepEqual(lines(fs.readFileSync(out, 'utf8')), expected);
    assert.deepEqual(readLog(path.join(base, 'sync.log')).map((l) => l.message), expected);
    assert.ok(Number(r.stderr) <= 100, `${r.stderr} writes`);
  });

  test('a second Ctrl+C (exit at once) writes the lines held first, then its message, and no progress line after', () => {
    const base = tempDir('fs-logging-');
    const out = path.join(base, 'out.txt');
    // A progress line that shows where it is drawn; the exit as the second SIGINT makes it.
    const script = `
      import { createLogger } from ${JSON.stringify(path.join(ROOT, 'src', 'log', 'log.ts'))};
      import { exitAtOnce } from ${JSON.stringify(path.join(ROOT, 'src', 'cli', 'main.ts'))};
      const statusLine = { clear() {}, redraw() { process.stderr.write('[progress]'); } };
      const logger = await createLogger({ logFile: process.argv[1], statusLine });
      logger.action({ verb: 'copied', path: 'a', reason: 'new' });
      exitAtOnce(statusLine);
    `;
    const fd = fs.openSync(out, 'w');
    let r;
    try {
      r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, path.join(base, 'sync.log')], { cwd: ROOT, stdio: ['ignore', fd, fd] });
    } finally {
      fs.closeSync(fd);
    }
    assert.equal(r.status, 130);
    assert.equal(fs.readFileSync(out, 'utf8'), 'copied a (new)\nfolder-sync: second SIGINT, exiting now\n');
  });
});

describe('--quiet', () => {
  test('stdout silent (no actions, no summary), stderr the warning and the error, the file everything', () => {
    const w = world();
    writeTree(w.source, { 'a.txt': 'alpha', 'sub/b.txt': 'bravo' });
    mkfifo(path.join(w.source, 'pipe'));
    writeTree(w.replica, { 'stray.txt': 'stray' });
    const r = pass(w, 'quiet.log', ['--quiet', '--max-delete', '0']);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, '');
    const refusal = 'refusing to delete 1 entries: more than --max-delete 0; nothing was deleted (run with a higher --max-delete if this is intended)';
    assert.deepEqual(lines(r.stderr), ['warning: skipped pipe (special file)', `error: ${refusal}`]);
    const logged = readLog(r.log);
    assert.deepEqual(logged.slice(0, -1), [
      { level: 'INFO', message: startLine(w) },
      { level: 'WARN', message: 'skipped pipe (special file)' },
      { level: 'ERROR', message: refusal },
      { level: 'INFO', message: 'copied a.txt (new)' },
      { level: 'INFO', message: 'created sub/ (new folder)' },
      { level: 'INFO', message: 'copied sub/b.txt (new)' },
    ]);
    assert.equal(logged.at(-1)!.level, 'INFO');
    assert.match(logged.at(-1)!.message, summaryRe({ copied: 2, moved: 0, updated: 0, deleted: 0, hashed: 2, errors: 1 }, '10 B'));
  });

  test('a clean pass under --quiet prints nothing at all', () => {
    const w = world();
    writeTree(w.source, { 'a.txt': 'alpha' });
    const r = pass(w, 'quiet.log', ['--quiet']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, '');
    assert.deepEqual(
      readLog(r.log).map((l) => l.message.replace(/ in \d+\.\d\d s$/, '')),
      [startLine(w), 'copied a.txt (new)', 'pass finished: 1 copied, 0 moved, 0 updated, 0 deleted, 1 hashed, 0 errors; 5 B transferred'],
    );
  });
});

describe('log rotation', () => {
  const LIMIT = 2048;
  const ROTATE = ['--log-max-size', '2K', '--log-max-files', '3'];
  const files200 = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`file-${String(i + 1).padStart(3, '0')}.txt`, `file ${i + 1}\n`]));

  /** The kept log files, oldest first, as one list of lines (each checked). */
  function keptLines(dir: string): LogLine[] {
    return ['sync2.log', 'sync1.log', 'sync.log'].flatMap((name) => readLog(path.join(dir, name)));
  }

  test('one pass of 200 copies: exactly sync.log, sync1.log, sync2.log; the newest is sync.log; nothing lost within them; none more than a batch of lines past the limit', () => {
    const w = world();
    writeTree(w.source, files200);
    const r = pass(w, 'sync.log', ROTATE);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(w.logs).sort(), ['sync.log', 'sync1.log', 'sync2.log']);
    // oldest file first, the lines run on without a gap: file-N, file-N+1, … file-200, summary
    // (so sync.log holds the newest lines, sync2.log the oldest)
    const kept = keptLines(w.logs);
    assert.match(kept.at(-1)!.message, summaryRe({ copied: 200, moved: 0, updated: 0, deleted: 0, hashed: 200, errors: 0 }, '1.7 KiB'));
    // (how many of the first lines were rotated away depends on winston's overshoot, bounded below)
    const startKept = kept[0].message === startLine(w);
    const copied = kept.slice(startKept ? 1 : 0, -1).map((l) => /^copied file-(\d{3})\.txt \(new\)$/.exec(l.message)?.[1]);
    assert.ok(copied.every((n) => n !== undefined), JSON.stringify(kept.slice(0, 3)));
    const numbers = copied.map(Number);
    assert.equal(numbers.at(-1), 200);
    assert.deepEqual(numbers, numbers.map((_, i) => numbers[0] + i));
    if (startKept) assert.equal(numbers[0], 1);
    // and the timestamps never go backwards from sync2.log to sync1.log to sync.log
    const stamps = ['sync2.log', 'sync1.log', 'sync.log'].flatMap((name) =>
      lines(fs.readFileSync(path.join(w.logs, name), 'utf8')).map((l) => l.slice(0, 24)),
    );
    assert.equal(stamps.length, kept.length);
    assert.deepEqual(stamps, [...stamps].sort());
    // every rotated file reached the limit before it was rotated
    for (const name of ['sync1.log', 'sync2.log']) assert.ok(fs.statSync(path.join(w.logs, name)).size >= LIMIT, name);
    // winston checks the size as lines reach the file, so the lines logged while a rotation is under
    // way (a batch of copies logged in one go) still land in the old file: measured up to 3.8x a 2K
    // limit, a few KB. The README says so; the bound here catches rotation not keeping up at all.
    const longest = Math.max(...fs.readdirSync(w.logs).flatMap((name) => fs.readFileSync(path.join(w.logs, name), 'utf8').split('\n').map((l) => Buffer.byteLength(l) + 1)));
    for (const name of fs.readdirSync(w.logs)) {
      const size = fs.statSync(path.join(w.logs, name)).size;
      assert.ok(size < LIMIT + 100 * longest, `${name} is ${size} B; the limit is ${LIMIT} B and the longest line ${longest} B`);
    }
  });

  test('pass after pass (a few lines each): three files at most, the oldest dropped, none more than one run\'s lines past the limit, newest last', () => {
    const w = world();
    writeTree(w.source, Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`f${i + 1}.txt`, `file ${i + 1}`])));
    // Dry runs log the same ten lines each time (start, eight `would copy`, summary): about 750 B,
    // so ten runs are more than three files can hold.
    const runs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = pass(w, 'sync.log', [...ROTATE, '--dry-run']);
      assert.equal(r.status, 0, r.stderr);
      // one run's bytes in the file: each console line plus timestamp, level (31 B) and newline
      runs.push(lines(r.stdout).reduce((sum, l) => sum + Buffer.byteLength(l) + 32, 0));
      assert.ok(fs.readdirSync(w.logs).length <= 3, fs.readdirSync(w.logs).join(' '));
    }
    assert.deepEqual(fs.readdirSync(w.logs).sort(), ['sync.log', 'sync1.log', 'sync2.log']);
    const oneRun = Math.max(...runs);
    for (const name of ['sync.log', 'sync1.log', 'sync2.log']) {
      const size = fs.statSync(path.join(w.logs, name)).size;
      assert.ok(size < LIMIT + oneRun, `${name} is ${size} B (limit ${LIMIT}, one run ${oneRun} B)`);
      if (name !== 'sync.log') assert.ok(size >= LIMIT, `${name} was rotated at ${size} B, under the limit`);
    }
    // in order, oldest to newest, and the very last line is the last summary
    const kept = keptLines(w.logs);
    assert.match(kept.at(-1)!.message, summaryRe({ copied: 8, moved: 0, updated: 0, deleted: 0, hashed: 0, errors: 0 }, '0 B', true));
    // runs back to back (start, eight copies, summary, start, …; the oldest file may begin mid-run), the first runs gone
    const shape = kept.map((l) => (l.message.startsWith('folder-sync ') ? 'S' : l.message.startsWith('would copy ') ? 'c' : l.message.startsWith('dry run pass finished') ? 'E' : '?'));
    assert.match(shape.join(''), /^c*E?(Sc{8}E)+$/);
    const runsKept = shape.filter((c) => c === 'S').length;
    assert.ok(runsKept >= 5 && runsKept < 10, `${runsKept} of 10 runs kept`);
  });

  test('a rotated log inside the source: neither it nor its rotated files are mirrored, a look-alike is', () => {
    const w = world();
    writeTree(w.source, { ...files200, 'logs/syncing.log': 'not ours' });
    const log = path.join(w.source, 'logs', 'sync.log');
    const args = [w.source, w.replica, '1', log, '--once', '--manifest', w.manifest, ...ROTATE];
    const first = runCli(args, w.env);
    assert.equal(first.status, 0, first.stderr);
    assert.deepEqual(fs.readdirSync(path.join(w.source, 'logs')).sort(), ['sync.log', 'sync1.log', 'sync2.log', 'syncing.log']);
    const second = runCli(args, w.env);
    assert.equal(second.status, 0, second.stderr);
    assert.match(lines(second.stdout).at(-1)!, summaryRe({ copied: 0, moved: 0, updated: 0, deleted: 0, hashed: 0, errors: 0 }, '0 B'));
    assert.deepEqual(fs.readdirSync(path.join(w.replica, 'logs')), ['syncing.log']);
    assert.equal(Object.keys(readTree(w.replica)).length, 202); // 200 files, logs/, logs/syncing.log
  });

  for (const [name, extra, message] of [
    ['--log-max-files without --log-max-size', ['--log-max-files', '3'], 'folder-sync: --log-max-files needs --log-max-size (rotation is by size)'],
    ['--log-max-size under 1K', ['--log-max-size', '10'], "folder-sync: --log-max-size must be at least 1K, got '10'"],
    ['--log-max-files under 2', ['--log-max-size', '2K', '--log-max-files', '1'], "folder-sync: --log-max-files must be a whole number ≥ 2, got '1'"],
  ] as const) {
    test(`${name}: exit 2, one line, nothing created`, () => {
      const w = world();
      writeTree(w.source, { 'a.txt': 'alpha' });
      const r = pass(w, 'sync.log', [...extra]);
      assert.equal(r.status, 2);
      assert.deepEqual(lines(r.stderr), [message]);
      assert.equal(fs.existsSync(w.replica), false);
      assert.equal(fs.existsSync(w.logs), false);
      assert.equal(fs.existsSync(path.dirname(w.manifest)), false);
    });
  }
});
