/**
 * A real OpenSSH server for the remote replica's tests: Debian's `sshd`, started on 127.0.0.1 at a
 * free port with its own configuration, host key and authorized keys (`sshd -D -e -f`), SFTP by
 * `internal-sftp`, and a test user whose password field is `*` (sshd refuses root's password-less
 * logins and locked accounts). Needs root (to start sshd and make the user); `.ci/run` installs
 * `openssh-server`. `sshdUnavailable` says why it cannot be started here, or false. Used by the
 * tests and by `npm run bench` (its SFTP scenarios).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { tempDir } from './tree.js';

export const SSHD = ['/usr/sbin/sshd', '/usr/bin/sshd'].find((file) => fs.existsSync(file));
export const TEST_USER = 'fsync-test';

export const sshdUnavailable: string | false =
  SSHD === undefined
    ? 'no OpenSSH server (sshd) is installed: apt-get install openssh-server (.ci/run does)'
    : process.getuid?.() !== 0
      ? 'starting sshd and making its test user needs root'
      : spawnSync('ssh-keygen', ['-?']).error !== undefined
        ? 'ssh-keygen is not installed'
        : false;

export interface Server {
  port: number;
  user: string;
  /** The test user's home (a relative replica path is relative to it). */
  home: string;
  /** The client's private key (ed25519, no passphrase). */
  identity: string;
  /** A known-hosts file with the server's key. */
  knownHosts: string;
  /** The server's public key line (`ssh-ed25519 AAAA…`), the one in `knownHosts`. */
  hostKey: string;
  /** Its other key (`ecdsa-sha2-nistp256 AAAA…`). */
  ecdsaHostKey: string;
  dir: string;
  /** The options that reach it: `--ssh-identity`, `--ssh-known-hosts`, and an empty `--ssh-config`. */
  sshArgs: string[];
  /** `sftp://user@127.0.0.1:port/<abs>`. */
  url(abs: string): string;
  process: ChildProcess;
  stop(): Promise<void>;
  /** Starts it again (after `stop`), at the same port. */
  restart(): Promise<void>;
}

const servers: Server[] = [];
// Whatever happens, no server outlives the process that started it (a test file, the benchmark).
process.on('exit', () => {
  for (const server of servers) if (server.process.exitCode === null && server.process.signalCode === null) server.process.kill('SIGKILL');
  if (servers.length > 0) spawnSync('pkill', ['-KILL', '-u', TEST_USER]);
});

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr || result.error}`);
}

/** The test user, made once: a home folder, password field `*` (not locked, no password). */
function ensureUser(): string {
  if (spawnSync('id', ['-u', TEST_USER]).status !== 0) run('useradd', ['--create-home', '--shell', '/bin/sh', TEST_USER]);
  run('usermod', ['-p', '*', TEST_USER]);
  const home = spawnSync('sh', ['-c', `getent passwd ${TEST_USER} | cut -d: -f6`], { encoding: 'utf8' }).stdout.trim();
  fs.mkdirSync(home, { recursive: true });
  run('chown', [`${TEST_USER}:`, home]);
  return home;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Starts a server; `config` lines are added to its sshd_config. */
export async function startSshd(config: string[] = []): Promise<Server> {
  const home = ensureUser();
  const dir = tempDir('fs-sshd-');
  fs.chmodSync(dir, 0o755);
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')]);
  run('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', path.join(dir, 'host_key_ecdsa')]);
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'client_key')]);
  fs.mkdirSync(path.join(dir, 'authorized'));
  fs.copyFileSync(path.join(dir, 'client_key.pub'), path.join(dir, 'authorized', TEST_USER));
  fs.chmodSync(path.join(dir, 'authorized', TEST_USER), 0o644);
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // (its privilege separation folder)
  const port = await freePort();
  fs.writeFileSync(
    path.join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${path.join(dir, 'host_key')}`,
      `HostKey ${path.join(dir, 'host_key_ecdsa')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized')}/%u`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin no',
      `AllowUsers ${TEST_USER}`,
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
      ...config,
    ].join('\n') + '\n',
  );
  const hostKey = fs.readFileSync(path.join(dir, 'host_key.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const ecdsaHostKey = fs.readFileSync(path.join(dir, 'host_key_ecdsa.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const knownHosts = path.join(dir, 'known_hosts');
  fs.writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`);
  fs.writeFileSync(path.join(dir, 'ssh_config'), '');
  const identity = path.join(dir, 'client_key');
  const server: Server = {
    port,
    user: TEST_USER,
    home,
    identity,
    knownHosts,
    hostKey,
    ecdsaHostKey,
    dir,
    sshArgs: ['--ssh-identity', identity, '--ssh-known-hosts', knownHosts, '--ssh-config', path.join(dir, 'ssh_config')],
    url: (abs) => `sftp://${TEST_USER}@127.0.0.1:${port}${abs}`,
    process: undefined as unknown as ChildProcess,
    stop: async () => {
      const child = server.process;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      // (Its sessions are processes of their own: they go with the connections they serve.)
      await gone;
      spawnSync('pkill', ['-KILL', '-u', TEST_USER]);
    },
    restart: async () => {
      if (server.process.exitCode === null && server.process.signalCode === null) return; // (running)
      server.process = await launch(dir, port);
    },
  };
  server.process = await launch(dir, port);
  servers.push(server);
  return server;
}

async function launch(dir: string, port: number): Promise<ChildProcess> {
  const child = spawn(SSHD!, ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const until = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited (${child.exitCode}): ${err}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => (socket.end(), resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (open) return child;
    if (Date.now() > until) throw new Error(`sshd did not listen on ${port}: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A folder on the "server" (this machine) the test user owns. */
export function serverDir(prefix = 'fs-remote-'): string {
  const dir = tempDir(prefix);
  run('chown', [`${TEST_USER}:`, dir]);
  fs.chmodSync(dir, 0o755);
  return dir;
}
