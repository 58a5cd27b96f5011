/**
 * A replica on another machine, over SFTP, against a real OpenSSH server on 127.0.0.1 (see
 * `helpers/sshd.ts`): the command line run as a user would, the replica's bytes, modes, mtimes and
 * the manifest checked on the server's disk (this machine's).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { cliEnv, exited, runCli, startCli, summaryCounts, waitFor } from './helpers/cli.js';
import { serverDir, sshdUnavailable, startSshd, type Server } from './helpers/sshd.js';
import { readTree, tempDir, tempFiles, tryMount, writeTree } from './helpers/tree.js';

/** The mirror's differences, mtimes compared by their seconds (what SFTP sets): empty when exact. */
function mirrorDiff(source: string, replica: string): string[] {
  const a = readTree(source);
  const b = readTree(replica);
  const problems: string[] = [];
  for (const rel of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const [x, y] = [a[rel], b[rel]];
    if (!x) problems.push(`extra in replica: ${rel}`);
    else if (!y) problems.push(`missing in replica: ${rel}`);
    else {
      const seconds = (seen: typeof x) => ({ ...seen, mtimeUs: seen.mtimeUs === undefined ? undefined : Math.floor(seen.mtimeUs / 1e6) });
      if (JSON.stringify(seconds(x)) !== JSON.stringify(seconds(y))) problems.push(`differs: ${rel}: ${JSON.stringify(x)} vs ${JSON.stringify(y)}`);
    }
  }
  return problems;
}

// (CI sets FOLDER_SYNC_REQUIRE_SSHD: there they fail instead of skipping.)
const skip = process.env.FOLDER_SYNC_REQUIRE_SSHD ? false : sshdUnavailable;

describe('a replica over SFTP', { skip }, () => {
  let server: Server;
  before(async () => {
    server = await startSshd();
  });
  after(() => server?.stop());

  function pair(spec: Parameters<typeof writeTree>[1]) {
    const source = tempDir('fs-src-');
    writeTree(source, spec);
    const remoteRoot = serverDir();
    const replica = path.join(remoteRoot, 'mirror');
    const state = tempDir('fs-state-');
    const log = path.join(state, 'sync.log');
    const env = cliEnv(state);
    const sync = (...extra: string[]) => runCli([source, server.url(replica), '1', log, '--once', ...server.sshArgs, ...extra], env);
    return { source, replica, remoteRoot, state, log, env, sync };
  }

  test('a first pass mirrors the tree (files, folders, links, modes, mtimes to the second); a second reads nothing; changes and deletes follow', async () => {
    const p = pair({
      'a.txt': 'alpha',
      'sub/b.bin': Buffer.alloc(3 << 20, 7),
      'sub/deep/c.txt': { content: 'c', mode: 0o640, mtime: 1_600_000_000 },
      'link': { link: 'a.txt' },
      'empty': { dir: true },
    });
    const first = p.sync();
    assert.equal(first.status, 0, first.stdout + first.stderr);
    assert.deepEqual(summaryCounts(first.stdout), { copied: 4, updated: 0, deleted: 0, hashed: 3, errors: 0 });
    assert.deepEqual(mirrorDiff(p.source, p.replica), []);
    assert.equal(fs.statSync(path.join(p.replica, 'sub/deep/c.txt')).mode & 0o777, 0o640);
    assert.equal(fs.statSync(path.join(p.replica, 'sub/deep/c.txt')).mtimeMs, 1_600_000_000_000);
    assert.equal(fs.readlinkSync(path.join(p.replica, 'link')), 'a.txt');
    assert.equal(fs.statSync(path.join(p.replica, 'a.txt')).uid, fs.statSync(p.remoteRoot).uid, 'files belong to the login user');
    assert.deepEqual(tempFiles(p.replica), []);

    const second = p.sync();
    assert.equal(second.status, 0, second.stdout + second.stderr);
    assert.deepEqual(summaryCounts(second.stdout), { copied: 0, updated: 0, deleted: 0, hashed: 0, errors: 0 });

    fs.writeFileSync(path.join(p.source, 'a.txt'), 'alpha, longer');
    fs.rmSync(path.join(p.source, 'sub/deep'), { recursive: true });
    fs.writeFileSync(path.join(p.source, 'new.txt'), 'new');
    const third = p.sync();
    assert.equal(third.status, 0, third.stdout + third.stderr);
    assert.deepEqual(summaryCounts(third.stdout), { copied: 1, updated: 1, deleted: 2, hashed: 2, errors: 0 });
    assert.deepEqual(mirrorDiff(p.source, p.replica), []);
  });

  test('an unknown host key is refused before anything is written: exit 2, its SHA256 fingerprint and how to add it; a changed one too', () => {
    const p = pair({ 'a.txt': 'a' });
    const empty = path.join(p.state, 'known_hosts');
    fs.writeFileSync(empty, '');
    const args = [p.source, server.url(p.replica), '1', p.log, '--once', '--ssh-identity', server.identity, '--ssh-known-hosts', empty, '--ssh-config', path.join(server.dir, 'ssh_config')];
    const unknown = runCli(args, p.env);
    assert.equal(unknown.status, 2, unknown.stdout + unknown.stderr);
    const blob = Buffer.from(server.hostKey.split(' ')[1], 'base64');
    const print = 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
    assert.match(unknown.stdout + unknown.stderr, new RegExp(`host key of \\[127\\.0\\.0\\.1\\]:${server.port} is not known.*ssh-ed25519 ${print.replace(/[+/]/g, '\\$&')}.*ssh-keyscan -p ${server.port} -t ed25519 127\\.0\\.0\\.1 >> ${empty}`));
    assert.ok(!fs.existsSync(p.replica), 'nothing was written');
    assert.doesNotMatch(unknown.stderr, /\n\s+at /, 'no stack trace');

    // Another key for this host: refused, as ssh refuses it.
    const other = path.join(p.state, 'other');
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    fs.writeFileSync(empty, `[127.0.0.1]:${server.port} ${fs.readFileSync(other + '.pub', 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
    const changed = runCli(args, p.env);
    assert.equal(changed.status, 2, changed.stdout + changed.stderr);
    assert.match(changed.stdout + changed.stderr, /host key of \[127\.0\.0\.1\]:\d+ has CHANGED/);
    assert.ok(!fs.existsSync(p.replica));

    // Hashed, as HashKnownHosts writes it: accepted.
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update(`[127.0.0.1]:${server.port}`).digest('base64');
    fs.writeFileSync(empty, `|1|${salt.toString('base64')}|${hash} ${server.hostKey}\n`);
    const hashed = runCli(args, p.env);
    assert.equal(hashed.status, 0, hashed.stdout + hashed.stderr);
    assert.equal(fs.readFileSync(path.join(p.replica, 'a.txt'), 'utf8'), 'a');

    // Known by its other key only (ECDSA): that one is asked for, as ssh does.
    fs.writeFileSync(empty, `[127.0.0.1]:${server.port} ${server.ecdsaHostKey}\n`);
    const ecdsa = runCli(args, p.env);
    assert.equal(ecdsa.status, 0, ecdsa.stdout + ecdsa.stderr);

    // Revoked further down: refused, wherever it is also listed as known.
    fs.writeFileSync(empty, `[127.0.0.1]:${server.port} ${server.hostKey}\n@revoked * ${server.hostKey}\n`);
    const revoked = runCli(args, p.env);
    assert.equal(revoked.status, 2, revoked.stdout + revoked.stderr);
    assert.match(revoked.stderr, /is marked revoked in .*known_hosts:2/);
  });

  test('a Host alias of the ssh config (HostName, Port, User, IdentityFile, UserKnownHostsFile), and the host:path form', () => {
    const p = pair({ 'a.txt': 'a', 'd/b.txt': 'b' });
    const config = path.join(p.state, 'config');
    fs.writeFileSync(config, `Host other\n  Port 1\nHost backup-box\n  HostName 127.0.0.1\n  Port ${server.port}\n  User ${server.user}\n  IdentityFile ${server.identity}\n  UserKnownHostsFile ${server.knownHosts}\n`);
    const result = runCli([p.source, `backup-box:${p.replica}`, '1', p.log, '--once', '--ssh-config', config], p.env);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.deepEqual(mirrorDiff(p.source, p.replica), []);
    // A relative path is relative to the login folder.
    const rel = `fs-rel-${process.pid}`;
    const relative = runCli([p.source, `backup-box:${rel}/m`, '1', path.join(p.state, 'rel.log'), '--once', '--ssh-config', config], p.env);
    assert.equal(relative.status, 0, relative.stdout + relative.stderr);
    assert.deepEqual(mirrorDiff(p.source, path.join(server.home, rel, 'm')), []);
    fs.rmSync(path.join(server.home, rel), { recursive: true });
    // A name that starts with a dot is a name, not `./`.
    const dot = `.fs-dot-${process.pid}`;
    const dotted = runCli([p.source, `backup-box:${dot}`, '1', path.join(p.state, 'dot.log'), '--once', '--ssh-config', config], p.env);
    assert.equal(dotted.status, 0, dotted.stdout + dotted.stderr);
    assert.deepEqual(mirrorDiff(p.source, path.join(server.home, dot)), []);
    assert.ok(!fs.existsSync(path.join(server.home, dot.slice(1))));
    fs.rmSync(path.join(server.home, dot), { recursive: true });
    // A backup dir inside the replica, once both are resolved on the server: refused, nothing done.
    const inside = runCli([p.source, `backup-box:${rel}`, '1', path.join(p.state, 'in.log'), '--once', '--ssh-config', config, '--backup-dir', `${server.home}/${rel}/old`], p.env);
    assert.equal(inside.status, 2, inside.stdout + inside.stderr);
    assert.match(inside.stdout + inside.stderr, /backup dir .* and replica .* overlap/);
    assert.ok(!fs.existsSync(path.join(server.home, rel)));
  });

  test('a key that needs a passphrase, with no agent: exit 2, one clear line, no prompt', () => {
    const p = pair({ 'a.txt': 'a' });
    const locked = path.join(p.state, 'locked');
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret words', '-f', locked]);
    const env = { ...p.env, SSH_AUTH_SOCK: '' };
    const result = runCli([p.source, server.url(p.replica), '1', p.log, '--once', '--ssh-identity', locked, '--ssh-known-hosts', server.knownHosts], env);
    assert.equal(result.status, 2, result.stdout + result.stderr);
    assert.match(result.stderr, /the SSH key .*locked needs a passphrase, and no SSH agent runs/);
    assert.ok(!fs.existsSync(p.replica));
  });

  test('a server that cannot be reached: exit 1, one line naming the host, no stack trace', async () => {
    const p = pair({ 'a.txt': 'a' });
    const port = await (await import('./helpers/sshd.js')).freePort();
    const result = runCli([p.source, `sftp://${server.user}@127.0.0.1:${port}${p.replica}`, '1', p.log, '--once', ...server.sshArgs], p.env);
    assert.equal(result.status, 1, result.stdout + result.stderr);
    const errors = (result.stdout + result.stderr).split('\n').filter((line) => /error/i.test(line) && !/pass (finished|stopped)/.test(line));
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0], new RegExp(`cannot reach 127\\.0\\.0\\.1 at port ${port}: .*ECONNREFUSED.*nothing done`));
  });

  test('--dry-run writes nothing on the server; --backup-dir keeps what a pass deletes or overwrites, on the server', () => {
    const p = pair({ 'a.txt': 'a', 'gone.txt': 'gone' });
    assert.equal(p.sync().status, 0);
    fs.writeFileSync(path.join(p.source, 'a.txt'), 'a, again');
    fs.rmSync(path.join(p.source, 'gone.txt'));
    fs.writeFileSync(path.join(p.source, 'new.txt'), 'new');
    const before = JSON.stringify(readTree(p.replica));
    const dry = p.sync('--dry-run');
    assert.equal(dry.status, 0, dry.stdout + dry.stderr);
    assert.match(dry.stdout, /would copy new\.txt/);
    assert.equal(JSON.stringify(readTree(p.replica)), before);
    assert.deepEqual(tempFiles(p.replica), []);

    const backups = path.join(p.remoteRoot, 'backups');
    const real = p.sync('--backup-dir', backups);
    assert.equal(real.status, 0, real.stdout + real.stderr);
    assert.deepEqual(mirrorDiff(p.source, p.replica), [], real.stdout + real.stderr);
    const [stamp] = fs.readdirSync(backups);
    assert.equal(fs.readFileSync(path.join(backups, stamp, 'gone.txt'), 'utf8'), 'gone');
    // A file that became a link: the file kept in the backup too.
    fs.rmSync(path.join(p.source, 'new.txt'));
    fs.symlinkSync('a.txt', path.join(p.source, 'new.txt'));
    const linked = p.sync('--backup-dir', backups);
    assert.equal(linked.status, 0, linked.stdout + linked.stderr);
    assert.equal(fs.readlinkSync(path.join(p.replica, 'new.txt')), 'a.txt');
    const stamps = fs.readdirSync(backups).sort();
    assert.equal(stamps.length, 2);
    assert.equal(fs.readFileSync(path.join(backups, stamps[1], 'new.txt'), 'utf8'), 'new');
    assert.equal(fs.readFileSync(path.join(backups, stamp, 'a.txt'), 'utf8'), 'a', 'the file overwritten');
  });

  /** Many files of 256 KiB: a first pass long enough to be cut in the middle. */
  function bigTree(files: number): Record<string, Buffer> {
    const tree = Object.fromEntries(Array.from({ length: files }, (_, i) => [`d${i % 4}/f${String(i).padStart(4, '0')}.bin`, Buffer.alloc(256 << 10, i % 251)]));
    // (And files of more writes than are in flight at once: a failed write among them is waited for.)
    for (let i = 0; i < 4; i++) tree[`d${i}/huge.bin`] = Buffer.alloc(12 << 20, i);
    return tree;
  }

  /** The next pass exits 0 and leaves an exact mirror, with no temporary file. */
  function nextPassMends(p: ReturnType<typeof pair>): void {
    const next = p.sync();
    assert.equal(next.status, 0, next.stdout + next.stderr);
    assert.deepEqual(mirrorDiff(p.source, p.replica), []);
    assert.deepEqual(tempFiles(p.replica), []);
  }

  /** Every file under a real name in the replica is whole: the source's bytes. */
  function noHalfFiles(source: string, replica: string): void {
    const seen = readTree(replica);
    const want = readTree(source);
    for (const [rel, entry] of Object.entries(seen)) {
      if (entry.kind !== 'file' || /(^|\/)\.folder-sync-[0-9a-f]{16}\.tmp$/.test(rel)) continue; // (temporary files: swept next pass)
      assert.equal(entry.md5, want[rel]?.md5, `${rel} is whole`);
    }
  }

  test('the server gone in the middle of a pass: exit 1, one line naming the host, nothing half-written; the next pass finishes', async () => {
    const p = pair(bigTree(400));
    const child = startCli([p.source, server.url(p.replica), '1', p.log, '--once', ...server.sshArgs], p.env);
    await waitFor(child.output, (out) => /copied d\d\/f\d+\.bin/.test(out));
    await server.stop();
    const status = await exited(child);
    await server.restart();
    const out = child.output();
    assert.equal(status, 1, out);
    const errors = out.split('\n').filter((line) => /error/i.test(line) && !/pass (finished|stopped)/.test(line));
    assert.equal(errors.length, 1, out);
    assert.match(errors[0], /connection to 127\.0\.0\.1 lost.*the pass stops/);
    assert.match(out, /pass stopped: \d+ copied/);
    noHalfFiles(p.source, p.replica);
    nextPassMends(p);
  });

  test('folder-sync killed (SIGKILL) in the middle of uploads: the next pass leaves an exact mirror and no debris', async () => {
    const p = pair(bigTree(200));
    const child = startCli([p.source, server.url(p.replica), '1', p.log, '--once', ...server.sshArgs], p.env);
    await waitFor(child.output, (out) => /copied d\d\/f\d+\.bin/.test(out));
    child.kill('SIGKILL');
    await exited(child);
    noHalfFiles(p.source, p.replica);
    nextPassMends(p);
  });

  test('in interval mode, a pass that cannot reach the server is an error; the next one reconnects and finishes', async () => {
    const p = pair({ 'a.txt': 'a', 'd/b.txt': 'b' });
    await server.stop();
    const child = startCli([p.source, server.url(p.replica), '0.02', p.log, ...server.sshArgs], p.env);
    try {
      await waitFor(child.output, (out) => /cannot reach 127\.0\.0\.1/.test(out));
      await server.restart();
      await waitFor(child.output, (out) => /pass finished: 2 copied/.test(out), 30_000);
    } finally {
      await server.restart(); // (if a wait above failed before it was)
      child.kill('SIGTERM');
    }
    assert.equal(await exited(child), 1, child.output());
    assert.deepEqual(mirrorDiff(p.source, p.replica), []);
  });

  test("the server's disk full: an error for the file that does not fit, no file under its name, no temporary file left", (t) => {
    const p = pair({ 'small.txt': 'small', 'big.bin': Buffer.alloc(8 << 20, 1), 'z.txt': 'z' });
    fs.mkdirSync(p.replica);
    if (!tryMount('-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', p.replica)) return t.skip('cannot mount a tmpfs here');
    try {
      spawnSync('chown', [`${server.user}:`, p.replica]);
      const result = p.sync();
      assert.equal(result.status, 1, result.stdout + result.stderr);
      assert.match(result.stdout + result.stderr, /copying big\.bin: .*failure/i, result.stdout + result.stderr);
      assert.ok(!fs.existsSync(path.join(p.replica, 'big.bin')));
      // (Small copies under way beside it may have failed too: the disk was full for them as well.)
      noHalfFiles(p.source, p.replica);
      assert.deepEqual(tempFiles(p.replica), []);
      // Room made (the big file left out): the next pass copies the rest.
      fs.rmSync(path.join(p.source, 'big.bin'));
      const next = p.sync();
      assert.equal(next.status, 0, next.stdout + next.stderr);
      assert.deepEqual(mirrorDiff(p.source, p.replica), []);
    } finally {
      spawnSync('umount', [p.replica]);
    }
  });

  test('replica drift a size and mtime cannot show: missed by a pass, found by verify (md5sum on the server), mended by --checksum; status reads the pair', () => {
    const p = pair({ 'a.txt': 'same size', 'l': { link: 'a.txt' }, 'd/b.txt': 'b' });
    assert.equal(p.sync().status, 0);
    const target = path.join(p.replica, 'a.txt');
    const { mtime } = fs.statSync(target);
    fs.writeFileSync(target, 'SAME SIZE');
    fs.utimesSync(target, mtime, mtime);
    const pass = p.sync();
    assert.deepEqual(summaryCounts(pass.stdout), { copied: 0, updated: 0, deleted: 0, hashed: 0, errors: 0 }, 'SFTP reports no ctime: the pass trusts it');

    const verify = runCli(['verify', p.source, server.url(p.replica), ...server.sshArgs], p.env);
    assert.equal(verify.status, 1, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /^content  a\.txt \(md5 /m);
    assert.match(verify.stdout, /verify: 1 differences \(1 content\) in 4 entries; 4 files hashed/);

    const checksum = p.sync('--checksum', '--log-level', 'debug');
    assert.equal(checksum.status, 0, checksum.stdout + checksum.stderr);
    assert.match(checksum.stdout, /^updated a\.txt \(content changed\)$/m);
    assert.doesNotMatch(checksum.stdout, /read back/, 'hashed by md5sum on the server');
    assert.match(checksum.stdout, /replica listed by find on the server in \d+ ms \(2 folders\)/);
    assert.equal(fs.readFileSync(target, 'utf8'), 'same size');
    const clean = runCli(['verify', p.source, server.url(p.replica), ...server.sshArgs], p.env);
    assert.equal(clean.status, 0, clean.stdout + clean.stderr);
    assert.match(clean.stdout, /verify: source and replica match: 4 entries, 4 files hashed/);

    const status = runCli(['status', p.source, server.url(p.replica)], p.env);
    assert.equal(status.status, 0, status.stdout + status.stderr);
    assert.match(status.stdout, new RegExp(`pair +${p.source} -> sftp://`));
    assert.match(status.stdout, /^entries +2 files, 10 B$/m);
  });

  test('an SFTP-only account (ForceCommand internal-sftp): copies flushed file by file, replica files read back to be hashed', async () => {
    const only = await startSshd(['ForceCommand internal-sftp']);
    try {
      const spec = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}.txt`, `file ${i}`]));
      const p = pair(spec);
      const url = only.url(p.replica);
      const first = runCli([p.source, url, '1', p.log, '--once', '--log-level', 'debug', ...only.sshArgs], p.env);
      assert.equal(first.status, 0, first.stdout + first.stderr);
      assert.match(first.stdout, /copies flushed file by file on 127\.0\.0\.1 from now on \(the account runs no commands\)/);
      assert.deepEqual(mirrorDiff(p.source, p.replica), []);
      const target = path.join(p.replica, 'f3.txt');
      const { mtime } = fs.statSync(target);
      fs.writeFileSync(target, 'FILE 3');
      fs.utimesSync(target, mtime, mtime);
      const verify = runCli(['verify', p.source, url, ...only.sshArgs], p.env);
      assert.equal(verify.status, 1, verify.stdout + verify.stderr);
      assert.match(verify.stdout, /^content  f3\.txt \(md5 /m);
      const checksum = runCli([p.source, url, '1', p.log, '--once', '--checksum', '--log-level', 'debug', ...only.sshArgs], p.env);
      assert.equal(checksum.status, 0, checksum.stdout + checksum.stderr);
      assert.match(checksum.stdout, /replica files read back to be hashed from now on \(the account runs no commands\)/);
      assert.match(checksum.stdout, /replica listed folder by folder over SFTP \(the account runs no commands\)/);
      assert.match(checksum.stdout, /^updated f3\.txt \(content changed\)$/m);
      assert.deepEqual(mirrorDiff(p.source, p.replica), []);
    } finally {
      await only.stop();
    }
  });

  test('--watch with a replica over SFTP: an edit and a new folder brought by a scoped pass', async () => {
    const p = pair({ 'a/x.txt': 'x', 'b/y.txt': 'y' });
    const child = startCli([p.source, server.url(p.replica), '60', p.log, '--watch', '--watch-delay', '0.2', ...server.sshArgs], p.env);
    try {
      await waitFor(child.output, (out) => /pass finished: 2 copied/.test(out));
      await new Promise((resolve) => setTimeout(resolve, 300));
      fs.writeFileSync(path.join(p.source, 'a/x.txt'), 'x, edited');
      fs.mkdirSync(path.join(p.source, 'c'));
      fs.writeFileSync(path.join(p.source, 'c/z.txt'), 'z');
      await waitFor(child.output, (out) => /pass finished: 1 copied, 0 moved, 1 updated.*\(scoped: /.test(out));
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited(child), 0, child.output());
    assert.deepEqual(mirrorDiff(p.source, p.replica), []);
  });
});

