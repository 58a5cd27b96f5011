/**
 * The server's key checked against an OpenSSH known-hosts file, as `ssh` checks it
 * (`StrictHostKeyChecking yes`): lines `[marker] patterns keytype base64-key`, patterns plain
 * (`nas`, `[nas]:2222` for another port than 22), with wildcards and negations, or hashed
 * (`|1|salt|hmac`, what `ssh-keygen -H` and `HashKnownHosts` write). A key marked `@revoked` is
 * refused; `@cert-authority` lines are not used (certificates are not checked).
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostMatches } from './ssh-config.js';

export type HostKeyVerdict =
  | { kind: 'known' }
  /** No line names this host with a key of this type. */
  | { kind: 'unknown' }
  /** Lines name this host, with other keys of this type: the key changed, or someone is in the middle. */
  | { kind: 'changed'; file: string; line: number }
  | { kind: 'revoked'; file: string; line: number };

/** The name a host is written under: `host`, or `[host]:port` for another port than 22. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The key's fingerprint as `ssh-keygen -l` prints it: `SHA256:` and the base64 of its SHA-256, unpadded. */
export function fingerprint(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}

/** The key type named in an SSH public key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, …). */
export function keyType(key: Buffer): string {
  const length = key.readUInt32BE(0);
  return key.subarray(4, 4 + length).toString('latin1');
}

/** Checks `key` (the server's, as a public key blob) for `host` at `port` against the `files` (missing ones are empty). */
export function checkHostKey(files: readonly string[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const type = keyType(key);
  let known = false;
  let changed: HostKeyVerdict | undefined;
  // (Every line of every file: a key revoked anywhere is refused, wherever it is also listed.)
  for (const line of knownLines(files, host, port)) {
    const same = line.type === type && Buffer.from(line.base64, 'base64').equals(key);
    if (line.marker === '@revoked') {
      if (same) return { kind: 'revoked', file: line.file, line: line.line };
    } else if (same) known = true;
    else if (line.type === type) changed ??= { kind: 'changed', file: line.file, line: line.line };
  }
  return known ? { kind: 'known' } : (changed ?? { kind: 'unknown' });
}

/** The key types the files know for `host` at `port` (ssh prefers them when it negotiates). */
export function knownKeyTypes(files: readonly string[], host: string, port: number): string[] {
  return [...new Set(knownLines(files, host, port).filter((line) => line.marker === undefined).map((line) => line.type))];
}

interface KnownLine {
  file: string;
  line: number;
  marker: string | undefined;
  type: string;
  base64: string;
}

/** The lines of `files` (missing ones are empty) that name `host` at `port` (its name lowercased, as ssh does); `@cert-authority` lines left out. */
function knownLines(files: readonly string[], host: string, port: number): KnownLine[] {
  const name = knownHostsName(host.toLowerCase(), port);
  const found: KnownLine[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const fields = lines[i].trim().split(/\s+/);
      if (fields[0] === '' || fields[0].startsWith('#')) continue;
      const marker = fields[0].startsWith('@') ? fields.shift() : undefined;
      if (fields.length < 3 || marker === '@cert-authority') continue;
      const [patterns, type, base64] = fields;
      if (namesHost(patterns, name)) found.push({ file, line: i + 1, marker, type, base64 });
    }
  }
  return found;
}

/** Whether a line's host field names `name`: a hashed entry, or comma-separated patterns. */
function namesHost(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (salt === undefined || hash === undefined) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  return hostMatches(field.split(','), name);
}
