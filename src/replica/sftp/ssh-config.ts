/**
 * What the OpenSSH client configuration (`~/.ssh/config`, or `--ssh-config`) says of one host, as
 * `ssh` reads it: the `Host` blocks whose patterns match the name given (`*` and `?` wildcards,
 * `!` negations), the first value of each keyword winning. Only the keywords a replica needs are
 * read: `HostName`, `Port`, `User`, `IdentityFile`, `UserKnownHostsFile`, `IdentitiesOnly`.
 * `Match` blocks are skipped (as never matching), `Include` is not followed.
 */
import { readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';

export interface HostConfig {
  hostName?: string;
  port?: number;
  user?: string;
  identityFiles: string[];
  knownHostsFiles?: string[];
  identitiesOnly?: boolean;
}

/** The configuration for `host` in the file's `text` (the file at `file`, if any). */
export function hostConfig(text: string, host: string): HostConfig {
  const config: HostConfig = { identityFiles: [] };
  let applies = true; // (lines before any Host block apply to every host)
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(line);
    if (match === null) continue;
    const keyword = match[1].toLowerCase();
    const args = words(match[2]);
    if (keyword === 'host') {
      applies = hostMatches(args, host);
      continue;
    }
    if (keyword === 'match') {
      applies = false;
      continue;
    }
    if (!applies || args.length === 0) continue;
    switch (keyword) {
      case 'hostname':
        config.hostName ??= args[0].replace(/%h/g, host).replace(/%%/g, '%');
        break;
      case 'port': {
        const port = args[0] === 'ssh' ? 22 : Number(args[0]);
        if (Number.isInteger(port) && port > 0 && port < 65536) config.port ??= port;
        break;
      }
      case 'user':
        config.user ??= args[0];
        break;
      case 'identityfile':
        config.identityFiles.push(expandPath(args[0], host));
        break;
      case 'userknownhostsfile':
        config.knownHostsFiles ??= args.map((file) => expandPath(file, host));
        break;
      case 'identitiesonly':
        config.identitiesOnly ??= args[0].toLowerCase() === 'yes';
        break;
    }
  }
  return config;
}

/** The configuration for `host` in the file `file` (none if it does not exist). */
export function readHostConfig(file: string, host: string): HostConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { identityFiles: [] };
    throw error;
  }
  return hostConfig(text, host);
}

/** A `Host` line's patterns against a name: one positive match and no negated one. */
export function hostMatches(patterns: readonly string[], host: string): boolean {
  let matched = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    if (!wildcard(negated ? pattern.slice(1) : pattern, host)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

/** `*` and `?` wildcards, case-insensitive (as ssh matches host names). */
export function wildcard(pattern: string, name: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 'i').test(name);
}

/** Words of a line: blanks separate, double quotes group. */
function words(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/"([^"]*)"|(\S+)/g)) {
    const word = match[1] ?? match[2];
    if (word.startsWith('#')) break;
    found.push(word);
  }
  return found;
}

/** `~` and the tokens ssh expands in file names: `%d` (home), `%u` (local user), `%h` (host), `%%`. */
export function expandPath(file: string, host: string): string {
  const home = homedir();
  let path = file.replace(/%(.)/g, (all, token: string) => {
    switch (token) {
      case 'd':
        return home;
      case 'u':
        return userInfo().username;
      case 'h':
        return host;
      case '%':
        return '%';
      default:
        return all;
    }
  });
  if (path === '~' || path.startsWith('~/')) path = join(home, path.slice(1));
  return isAbsolute(path) ? path : join(home, '.ssh', path);
}
