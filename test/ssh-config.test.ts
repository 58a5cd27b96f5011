/** The remote replica's address forms, the OpenSSH client config and known-hosts files, read as ssh reads them. */
import assert from 'node:assert/strict';
import { createHash, createHmac, generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { UsageError } from '../src/errors.js';
import { parseRemote } from '../src/replica/sftp/address.js';
import { checkHostKey, fingerprint } from '../src/replica/sftp/known-hosts.js';
import { hostConfig } from '../src/replica/sftp/ssh-config.js';
import { parse as parseFind } from '../src/replica/sftp/find-lister.js';
import { tempDir } from './helpers/tree.js';

describe('replica addresses', () => {
  test('sftp:// and host:path are remote; a path with a slash before any colon, or ./a:b, is local', () => {
    assert.deepEqual(parseRemote('sftp://backup@nas.local:2222/srv/mirror'), { given: 'sftp://backup@nas.local:2222/srv/mirror', user: 'backup', host: 'nas.local', port: 2222, path: '/srv/mirror' });
    assert.deepEqual(parseRemote('sftp://nas/srv/a%20b'), { given: 'sftp://nas/srv/a%20b', user: undefined, host: 'nas', port: undefined, path: '/srv/a b' });
    assert.deepEqual(parseRemote('nas:/srv/mirror'), { given: 'nas:/srv/mirror', user: undefined, host: 'nas', port: undefined, path: '/srv/mirror' });
    assert.deepEqual(parseRemote('me@nas:photos'), { given: 'me@nas:photos', user: 'me', host: 'nas', port: undefined, path: 'photos' });
    assert.equal(parseRemote('nas:')?.path, '.');
    assert.equal(parseRemote('[::1]:/srv')?.host, '::1');
    for (const local of ['./a:b', '/mnt/a:b', 'photos', 'dir/x:y', ':x']) assert.equal(parseRemote(local), undefined, local);
    assert.throws(() => parseRemote('sftp://nas'), UsageError);
    assert.throws(() => parseRemote('sftp://me:secret@nas/x'), /passwords are not accepted/);
    assert.throws(() => parseRemote('@nas:x'), UsageError);
  });
});

describe('the ssh client config', () => {
  const text = [
    'User everyone',
    'Host *.lan !secret.lan',
    '  Port 2200',
    'Host nas nas2',
    '  HostName %h.example.org',
    '  Port 2222',
    '  IdentityFile ~/.ssh/nas_key',
    '  IdentityFile id_other',
    '  UserKnownHostsFile "/etc/a b" /etc/c',
    'Match host nas',
    '  Port 1',
    'Host *',
    '  User fallback',
    '  Port 22',
  ].join('\n');

  test('the first value of each keyword wins, among the blocks whose patterns match', () => {
    const nas = hostConfig(text, 'nas');
    assert.equal(nas.hostName, 'nas.example.org');
    assert.equal(nas.port, 2222);
    assert.equal(nas.user, 'everyone');
    assert.equal(nas.identityFiles.length, 2);
    assert.match(nas.identityFiles[0], /\/\.ssh\/nas_key$/);
    assert.match(nas.identityFiles[1], /\/\.ssh\/id_other$/);
    assert.deepEqual(nas.knownHostsFiles, ['/etc/a b', '/etc/c']);
    assert.equal(hostConfig(text, 'box.lan').port, 2200);
    assert.equal(hostConfig(text, 'secret.lan').port, 22, 'negated');
    assert.equal(hostConfig(text, 'other').hostName, undefined);
    assert.equal(hostConfig('Host x\n  Port ssh\nHost *\n  Port 2022', 'x').port, 22);
    assert.equal(hostConfig('Host x\n  Port nonsense\nHost *\n  Port 2022', 'x').port, 2022);
  });
});

describe('known hosts', () => {
  const { publicKey } = generateKeyPairSync('ed25519');
  const blob = sshBlob(publicKey.export({ format: 'jwk' }).x!);
  const other = sshBlob(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!);
  const line = (hosts: string, key = blob) => `${hosts} ssh-ed25519 ${key.toString('base64')}`;

  test('plain and wildcard names, ports in brackets, hashed names, revoked and changed keys', () => {
    const dir = tempDir();
    const file = path.join(dir, 'known_hosts');
    const check = (lines: string[], host: string, port = 22) => {
      fs.writeFileSync(file, lines.join('\n') + '\n');
      return checkHostKey([path.join(dir, 'missing'), file], host, port, blob).kind;
    };
    assert.equal(check([line('nas,10.0.0.2')], 'nas'), 'known');
    assert.equal(check([line('nas')], 'nas', 2222), 'unknown', 'another port is written [nas]:2222');
    assert.equal(check([line('[nas]:2222')], 'nas', 2222), 'known');
    assert.equal(check([line('*.lan,!evil.lan')], 'box.lan'), 'known');
    assert.equal(check([line('*.lan,!evil.lan')], 'evil.lan'), 'unknown');
    const salt = Buffer.from('0123456789abcdefghij');
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[nas]:2222').digest('base64')}`;
    assert.equal(check([line(hashed)], 'nas', 2222), 'known');
    assert.equal(check([line(hashed)], 'nas'), 'unknown');
    assert.equal(check([line('nas', other)], 'nas'), 'changed');
    assert.equal(check([line('nas', other), line('nas')], 'nas'), 'known', 'one of its keys');
    assert.equal(check(['@revoked ' + line('*'), line('nas')], 'nas'), 'revoked');
    assert.equal(check([line('nas'), '@revoked ' + line('*')], 'nas'), 'revoked', 'revoked below, in any order');
    assert.equal(check([line('nas')], 'NAS'), 'known', 'names are lowercased');
    assert.equal(check(['# a comment', '', '@cert-authority ' + line('nas')], 'nas'), 'unknown');
  });

  test('the fingerprint is ssh-keygen -l: SHA256 and unpadded base64', () => {
    assert.equal(fingerprint(blob), 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, ''));
    assert.doesNotMatch(fingerprint(blob), /=/);
  });
});

/** An ssh-ed25519 public key blob from the key's raw bytes (JWK `x`, base64url). */
function sshBlob(x: string): Buffer {
  const string = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return Buffer.concat([string(Buffer.from('ssh-ed25519')), string(Buffer.from(x, 'base64url'))]);
}

describe("find's listing of a remote replica", () => {
  test('records by folder: type, size, bits, whole-second times, owners; a name with a tab; anything else is refused', () => {
    const text = ['d\t4096\t755\t1700000000.5\t1700000001.0\t1000\t1000\t', 'f\t5\t644\t1600000000.9999\t1600000000.0\t1000\t100\ta.txt', 'd\t4096\t700\t1\t1\t0\t0\tsub', 'l\t5\t777\t2\t2\t0\t0\tsub/link', 'f\t1\t600\t3\t3\t0\t0\tsub/tab\there', 'p\t0\t644\t4\t4\t0\t0\tsub/fifo'].join('\0') + '\0';
    const tree = parseFind(text);
    assert.deepEqual([...tree.keys()], ['', 'sub']);
    assert.deepEqual(tree.get('')!.map((e) => [e.filename, e.attrs.mode.toString(8), e.attrs.size, e.attrs.mtime, e.attrs.uid, e.attrs.gid]), [
      ['a.txt', '100644', 5, 1600000000, 1000, 100],
      ['sub', '40700', 4096, 1, 0, 0],
    ]);
    assert.deepEqual(tree.get('sub')!.map((e) => [e.filename, e.attrs.mode.toString(8)]), [['link', '120777'], ['tab\there', '100600'], ['fifo', '10644']]);
    assert.throws(() => parseFind(''), /answered nothing/);
    assert.throws(() => parseFind('hello\n'), /something else/);
    assert.throws(() => parseFind('f\t1\t644\t1\t1\t0\t0\ta\0'), /not the root folder first/);
  });
});
