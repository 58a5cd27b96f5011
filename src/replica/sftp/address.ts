/**
 * A replica argument that names a folder on another machine (`../../../../shared/CONTRACT.md`,
 * "A replica on another machine"): `sftp://[user@]host[:port]/path`, or `[user@]host:path` as rsync
 * and scp read it (a colon before any `/`). Anything else is a local path (`./a:b` for one whose
 * name has a colon).
 */
import { UsageError } from '../../errors.js';

export interface RemoteAddress {
  /** As the user gave it (messages, the manifest's default name, the replica lock). */
  readonly given: string;
  readonly user: string | undefined;
  /** The host as given: a name (maybe a `Host` alias of the ssh config) or an address. */
  readonly host: string;
  readonly port: number | undefined;
  /** The folder on the server: absolute, or relative to the login folder (`host:photos`). */
  readonly path: string;
}

/** The remote address `given` names, or undefined when it is a local path. Throws a `UsageError` for a malformed one. */
export function parseRemote(given: string): RemoteAddress | undefined {
  if (given.startsWith('sftp://')) return parseUrl(given);
  const colon = given.indexOf(':');
  const slash = given.indexOf('/');
  if (colon <= 0 || (slash !== -1 && slash < colon)) return undefined;
  let host = given.slice(0, colon);
  let path = given.slice(colon + 1);
  // `[::1]:path`: an IPv6 address in brackets.
  if (host.startsWith('[') || host.includes('@[')) {
    const close = given.indexOf(']');
    if (close === -1 || given[close + 1] !== ':') throw new UsageError(`replica '${given}': an address in brackets must be followed by ':' and a path`);
    host = given.slice(0, close + 1);
    path = given.slice(close + 2);
  }
  const { user, name } = splitUser(given, host);
  return { given, user, host: name, port: undefined, path: path === '' ? '.' : path };
}

function parseUrl(given: string): RemoteAddress {
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    throw new UsageError(`replica '${given}' is not a valid sftp:// address (sftp://[user@]host[:port]/path)`);
  }
  if (url.hostname === '') throw new UsageError(`replica '${given}' names no host (sftp://[user@]host[:port]/path)`);
  if (url.password !== '') throw new UsageError(`replica '${given}': passwords are not accepted in the address (log in with a key or the SSH agent)`);
  const path = decodeURIComponent(url.pathname);
  if (path === '' || path === '/') throw new UsageError(`replica '${given}' names no folder (sftp://[user@]host[:port]/path)`);
  return {
    given,
    user: url.username === '' ? undefined : decodeURIComponent(url.username),
    host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
    port: url.port === '' ? undefined : Number(url.port),
    path,
  };
}

function splitUser(given: string, host: string): { user: string | undefined; name: string } {
  const at = host.lastIndexOf('@');
  const user = at === -1 ? undefined : host.slice(0, at);
  let name = at === -1 ? host : host.slice(at + 1);
  if (name.startsWith('[') && name.endsWith(']')) name = name.slice(1, -1);
  if (name === '' || user === '') throw new UsageError(`replica '${given}' names no ${name === '' ? 'host' : 'user'} before '${name === '' ? ':' : '@'}'`);
  return { user, name };
}
