/**
 * One SSH connection to a replica's server and its SFTP session (`ssh2`): where to connect (the
 * address, then the OpenSSH client config), the server's key checked against known_hosts before
 * anything else, and a login with the SSH agent or key files, never a prompt.
 *
 * What a user can fix is a `UsageError` (exit 2: an unknown or changed host key, no key to log in
 * with, a refused login); a server that cannot be reached or drops the connection is a
 * `Unreachable` (an error of that pass, exit 1; the next pass tries again).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { AuthMethod, Client, ConnectConfig, ServerHostKeyAlgorithm, SFTPWrapper } from 'ssh2';
import { UsageError, describe } from '../../errors.js';
import type { RemoteAddress } from './address.js';
import { checkHostKey, fingerprint, keyType, knownHostsName, knownKeyTypes, type HostKeyVerdict } from './known-hosts.js';
import { readHostConfig } from './ssh-config.js';

/** `--ssh-identity`, `--ssh-known-hosts`, `--ssh-config`. */
export interface SshOptions {
  identity?: string;
  knownHosts?: string;
  config?: string;
}

/** Where and how to connect, once the address and the client config are read. */
export interface Endpoint {
  /** The host as the user named it (an alias, maybe), for messages. */
  readonly name: string;
  /** What is connected to (the config's `HostName`, or the name). */
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Key files to try, in order (after the agent). */
  readonly identities: string[];
  /** Only those (`--ssh-identity`, or `IdentitiesOnly yes`): the agent's keys are not offered, as ssh does not. */
  readonly identitiesOnly: boolean;
  readonly knownHosts: string[];
  /** The folder on the server, as given (absolute, or relative to the login folder). */
  readonly path: string;
}

/** The server could not be reached, or the connection was lost. */
export class Unreachable extends Error {}

export function resolveEndpoint(address: RemoteAddress, options: SshOptions): Endpoint {
  const home = homedir();
  const config = readHostConfig(options.config ?? join(home, '.ssh', 'config'), address.host);
  const defaults = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((name) => join(home, '.ssh', name));
  return {
    name: address.host,
    host: config.hostName ?? address.host,
    port: address.port ?? config.port ?? 22,
    user: address.user ?? config.user ?? userInfo().username,
    // (As ssh: key files of the config that do not exist are skipped.)
    identities: options.identity !== undefined ? [options.identity] : (config.identityFiles.length > 0 ? config.identityFiles : defaults).filter((file) => existsSync(file)),
    identitiesOnly: options.identity !== undefined || config.identitiesOnly === true,
    knownHosts: [
      ...(options.knownHosts !== undefined ? [options.knownHosts] : (config.knownHostsFiles ?? [join(home, '.ssh', 'known_hosts'), join(home, '.ssh', 'known_hosts2')])),
      // The system's, as ssh reads them (GlobalKnownHostsFile), unless a file was named.
      ...(options.knownHosts !== undefined ? [] : ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']),
    ],
    path: address.path,
  };
}

/** An open connection: its SFTP session, and commands run over it (`exec`). */
export class Session {
  /** Set once the connection is gone (the server closed it, or the network dropped it). */
  lost: string | undefined;
  private readonly onLost: ((why: string) => void)[] = [];
  private commands: Promise<boolean> | undefined;

  constructor(
    readonly endpoint: Endpoint,
    private readonly client: Client,
    readonly sftp: SFTPWrapper,
  ) {
    const lose = (why: string) => {
      if (this.lost !== undefined) return;
      this.lost = why;
      for (const listener of this.onLost) listener(why);
    };
    client.on('error', (error) => lose(`connection to ${endpoint.name} lost (${describe(error)})`));
    client.on('close', () => lose(`connection to ${endpoint.name} lost`));
  }

  /** Told once, when the connection is lost (not when `close` ends it). */
  whenLost(listener: (why: string) => void): void {
    this.onLost.push(listener);
  }

  /** Runs `command` on the server: its exit code and output (stdout as bytes, stderr as text). */
  exec(command: string): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error, channel) => {
        if (error) return reject(error);
        channel.end(); // (no input: a command that reads some, a forced internal-sftp, sees its end)
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let code: number | null = null;
        channel.on('data', (chunk: Buffer) => out.push(chunk));
        channel.stderr.on('data', (chunk: Buffer) => err.push(chunk));
        channel.on('exit', (exitCode: number | null) => (code = exitCode));
        channel.on('close', () => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }));
      });
    });
  }

  /**
   * Whether the account runs commands: `echo` answers (an SFTP-only account, `ForceCommand
   * internal-sftp`, answers nothing), asked once a connection.
   */
  runsCommands(): Promise<boolean> {
    this.commands ??= this.exec('echo folder-sync').then(
      ({ code, stdout }) => code === 0 && stdout.toString() === 'folder-sync\n',
      () => false,
    );
    return this.commands;
  }

  close(): void {
    this.lost ??= 'closed';
    this.client.end();
  }
}

/** How long connecting may take (TCP, key exchange, login), and how often a quiet connection is checked alive. */
const READY_TIMEOUT_MS = 20_000;
const KEEPALIVE_MS = 10_000;
const KEEPALIVE_MISSES = 3;

/** Connects, checks the host key, logs in and opens SFTP. */
export async function connect(endpoint: Endpoint, log: { debug(message: string): void }): Promise<Session> {
  // (Loaded here: a run with a local replica never loads it.)
  const ssh2 = (await import('ssh2')).default; // (a CommonJS module: its exports are its default)
  const auth = authMethods(endpoint, ssh2.utils.parseKey, log);
  let verdict: { key: Buffer; verdict: HostKeyVerdict } | undefined;
  const client = new ssh2.Client();
  const config: ConnectConfig = {
    host: endpoint.host,
    port: endpoint.port,
    username: endpoint.user,
    readyTimeout: READY_TIMEOUT_MS,
    keepaliveInterval: KEEPALIVE_MS,
    keepaliveCountMax: KEEPALIVE_MISSES,
    // Safety: nothing is sent (no login) unless the server's key is the one known for it.
    hostVerifier: (key: Buffer) => {
      verdict = { key, verdict: checkHostKey(endpoint.knownHosts, endpoint.host, endpoint.port, key) };
      return verdict.verdict.kind === 'known';
    },
    authHandler: auth,
    // As ssh: the key types known_hosts has for the host are asked for first (a host known by its
    // ECDSA key is not refused for offering its Ed25519 one first).
    algorithms: { serverHostKey: hostKeyAlgorithms(knownKeyTypes(endpoint.knownHosts, endpoint.host, endpoint.port)) },
  };
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => {
      // Perf: requests are small packets sent while others wait for their answers; with Nagle's
      // algorithm on (ssh2's default) each waits for the last one's ACK, which the server delays.
      // A first sync of 10k files over the loopback: 44 s with it, ~5 s without.
      client.setNoDelay(true);
      resolve();
    });
    client.once('error', (error: Error & { level?: string }) => {
      client.end();
      if (verdict !== undefined && verdict.verdict.kind !== 'known') return reject(hostKeyError(endpoint, verdict.key, verdict.verdict));
      if (error.level === 'client-authentication') return reject(loginError(endpoint));
      reject(new Unreachable(`cannot reach ${endpoint.name}${endpoint.host === endpoint.name ? '' : ` (${endpoint.host})`} at port ${endpoint.port}: ${describe(error)}`));
    });
    client.connect(config);
  });
  const sftp = await new Promise<SFTPWrapper>((resolve, reject) =>
    client.sftp((error, session) => (error ? reject(new Unreachable(`${endpoint.name} offers no SFTP (${describe(error)})`)) : resolve(session))),
  ).catch((error: unknown) => {
    client.end();
    throw error;
  });
  return new Session(endpoint, client, sftp);
}

/** ssh2's host key algorithms, in its order of preference (its default list). */
const HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/** The host key algorithms to offer: those of the key types known for the host first, then the rest. */
function hostKeyAlgorithms(types: readonly string[]): ServerHostKeyAlgorithm[] {
  const known = HOST_KEY_ALGORITHMS.filter((algorithm) => types.includes(algorithm.startsWith('rsa-sha2-') ? 'ssh-rsa' : algorithm));
  return [...known, ...HOST_KEY_ALGORITHMS.filter((algorithm) => !known.includes(algorithm))];
}

function hostKeyError(endpoint: Endpoint, key: Buffer, verdict: HostKeyVerdict): UsageError {
  const name = knownHostsName(endpoint.host, endpoint.port);
  const print = `${keyType(key)} ${fingerprint(key)}`;
  const files = endpoint.knownHosts.join(', ');
  if (verdict.kind === 'revoked') return new UsageError(`the host key of ${name} (${print}) is marked revoked in ${verdict.file}:${verdict.line}; nothing done`);
  if (verdict.kind === 'changed') {
    return new UsageError(
      `the host key of ${name} has CHANGED (${print} is not the key in ${verdict.file}:${verdict.line}): someone may be in the middle, or the server was reinstalled; ` +
        `nothing done. If you trust the new key, remove the old one (ssh-keygen -R '${name}' -f ${verdict.file}) and add the new one`,
    );
  }
  const keyscan = `ssh-keyscan ${endpoint.port === 22 ? '' : `-p ${endpoint.port} `}-t ${keyType(key).replace(/^ssh-/, '')} ${endpoint.host} >> ${endpoint.knownHosts[0]}`;
  return new UsageError(
    `the host key of ${name} is not known (not in ${files}): ${print}; nothing done. ` +
      `If that is the server's fingerprint, add its key (${keyscan}), or log in once with ssh and accept it`,
  );
}

function loginError(endpoint: Endpoint): UsageError {
  const tried = [process.env.SSH_AUTH_SOCK ? 'the SSH agent' : undefined, ...endpoint.identities].filter(Boolean).join(', ');
  return new UsageError(`${endpoint.user}@${endpoint.name} refused the login (tried ${tried || 'no key: no SSH agent runs and no key file was found'}); nothing done`);
}

/**
 * The ways to log in, in order: the agent (SSH_AUTH_SOCK), then each key file. Safety: never a
 * prompt. A key that needs a passphrase is left to the agent; without one, it is an error.
 */
function authMethods(endpoint: Endpoint, parseKey: typeof import('ssh2').utils.parseKey, log: { debug(message: string): void }): AuthMethod[] {
  const methods: AuthMethod[] = [];
  const agent = process.env.SSH_AUTH_SOCK || undefined;
  // (With IdentitiesOnly the agent still unlocks a key file that needs a passphrase, below.)
  if (agent && !endpoint.identitiesOnly) methods.push({ type: 'agent', username: endpoint.user, agent } as AuthMethod);
  const locked: string[] = [];
  for (const file of endpoint.identities) {
    let text: Buffer;
    try {
      text = readFileSync(file);
    } catch (error) {
      throw new UsageError(`cannot read the SSH key ${file} (${describe(error)})`);
    }
    const parsed = parseKey(text);
    if (parsed instanceof Error) {
      if (/passphrase/i.test(parsed.message)) {
        locked.push(file);
        continue;
      }
      throw new UsageError(`${file} is not an SSH private key ssh2 can use (${parsed.message})`);
    }
    methods.push({ type: 'publickey', username: endpoint.user, key: text } as AuthMethod);
  }
  if (locked.length > 0) {
    if (!agent) throw new UsageError(`the SSH key ${locked.join(', ')} needs a passphrase, and no SSH agent runs to unlock it: add it to an agent (ssh-add), or give a key without one (--ssh-identity)`);
    if (endpoint.identitiesOnly) methods.push({ type: 'agent', username: endpoint.user, agent } as AuthMethod);
    log.debug(`SSH key ${locked.join(', ')} needs a passphrase: left to the agent`);
  }
  return methods;
}
