/**
 * The SFTP calls a replica makes, as promises, with the server's status codes turned into the
 * errno codes the rest of the pass reads (`ENOENT`, `EACCES`…). Every call is one request: calls
 * made without awaiting each other are in flight at once on the one connection (pipelined).
 */
import type { Attributes, FileEntryWithStats, InputAttributes, SFTPWrapper, Stats } from 'ssh2';
import { AT, DIR, FILE, NUMS, SPECIAL, SYMLINK, type Entry, type FolderListing } from '../../tree/entry.js';
import { byName, isTempName } from '../../tree/scan.js';

/** SFTP status codes (draft-ietf-secsh-filexfer-02) as errno codes. */
const CODES: Record<number, string> = { 2: 'ENOENT', 3: 'EACCES', 4: 'EIO', 5: 'EPROTO', 6: 'ECONNRESET', 7: 'ECONNRESET', 8: 'ENOSYS' };
const MESSAGES: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EIO: 'the server reported a failure (a full disk, a folder not empty, a name in the way…)',
  ECONNRESET: 'the connection was lost',
  ENOSYS: 'the server does not support this',
};

/** A failed SFTP request as an errno-style error: `code`, and `syscall` the request. */
export function sftpError(error: unknown, syscall: string, path: string): NodeJS.ErrnoException {
  const status = (error as { code?: unknown }).code;
  const code = typeof status === 'number' ? (CODES[status] ?? 'EIO') : typeof status === 'string' ? status : 'ECONNRESET';
  const detail = (error as Error).message;
  const message = `${code}: ${MESSAGES[code] ?? detail}${detail && MESSAGES[code] && !/^(No such file|Permission denied|Failure)$/i.test(detail) ? ` (${detail})` : ''}, ${syscall} '${path}'`;
  return Object.assign(new Error(message), { code, syscall, path });
}

type Callback<T> = (error: Error | null | undefined, value: T) => void;

/** Promisified SFTP session. */
export class Sftp {
  /** The largest data the server takes in one write (OpenSSH's limits@openssh.com; 32 KiB otherwise). */
  readonly maxWrite: number;
  readonly maxRead: number;

  constructor(readonly raw: SFTPWrapper) {
    const limits = raw as unknown as { _maxWriteLen?: number; _maxReadLen?: number };
    this.maxWrite = limits._maxWriteLen ?? 32 * 1024;
    this.maxRead = limits._maxReadLen ?? 32 * 1024;
  }

  /** Whether the server offers an `@openssh.com` extension (`posix-rename`, `fsync`, `lsetstat`, `hardlink`). */
  offers(extension: string): boolean {
    const offered = (this.raw as unknown as { _extensions?: Record<string, string> })._extensions ?? {};
    return `${extension}@openssh.com` in offered;
  }

  /** Requests under way: each rejected if the connection is lost (ssh2 would leave them waiting). */
  private readonly pending = new Set<(error: Error) => void>();
  private gone: string | undefined;

  /** The connection is lost: every request under way, and every one after, fails with ECONNRESET. */
  fail(why: string): void {
    this.gone ??= why;
    for (const reject of this.pending) reject(new Error(why));
    this.pending.clear();
  }

  private call<T>(syscall: string, path: string, start: (done: Callback<T>) => void): Promise<T> {
    return new Promise((resolve, reject) => {
      if (this.gone !== undefined) return reject(sftpError(new Error(this.gone), syscall, path));
      const lost = (error: Error) => reject(sftpError(error, syscall, path));
      this.pending.add(lost);
      try {
        start((error, value) => {
          this.pending.delete(lost);
          if (error) reject(sftpError(error, syscall, path));
          else resolve(value);
        });
      } catch (error) {
        this.pending.delete(lost);
        reject(sftpError(error, syscall, path));
      }
    });
  }

  lstat(path: string): Promise<Stats> {
    return this.call('lstat', path, (done) => this.raw.lstat(path, done));
  }
  readdir(path: string): Promise<FileEntryWithStats[]> {
    return this.call('readdir', path, (done) => this.raw.readdir(path, done));
  }
  readlink(path: string): Promise<string> {
    return this.call('readlink', path, (done) => this.raw.readlink(path, done));
  }
  realpath(path: string): Promise<string> {
    return this.call('realpath', path, (done) => this.raw.realpath(path, done));
  }
  /** A symbolic link at `path` pointing to `target`. */
  symlink(target: string, path: string): Promise<void> {
    return this.call('symlink', path, (done) => this.raw.symlink(target, path, done as Callback<void>));
  }
  mkdir(path: string, mode: number): Promise<void> {
    return this.call('mkdir', path, (done) => this.raw.mkdir(path, { mode }, done as Callback<void>));
  }
  rmdir(path: string): Promise<void> {
    return this.call('rmdir', path, (done) => this.raw.rmdir(path, done as Callback<void>));
  }
  unlink(path: string): Promise<void> {
    return this.call('unlink', path, (done) => this.raw.unlink(path, done as Callback<void>));
  }
  setstat(path: string, attrs: InputAttributes): Promise<void> {
    return this.call('setstat', path, (done) => this.raw.setstat(path, attrs, done as Callback<void>));
  }
  /** A link's own times (`lsetstat@openssh.com`). */
  lsetstat(path: string, attrs: InputAttributes): Promise<void> {
    return this.call('lsetstat', path, (done) => this.raw.ext_openssh_lsetstat(path, attrs, done as Callback<void>));
  }
  /** `posix-rename@openssh.com`: replaces `to` atomically, as rename(2). */
  rename(from: string, to: string): Promise<void> {
    return this.call('rename', from, (done) => this.raw.ext_openssh_rename(from, to, done as Callback<void>));
  }
  /** The protocol's own rename, which fails if `to` exists. */
  plainRename(from: string, to: string): Promise<void> {
    return this.call('rename', from, (done) => this.raw.rename(from, to, done as Callback<void>));
  }
  /** Opens for writing: created private (0600), truncated. */
  create(path: string): Promise<Buffer> {
    return this.call('open', path, (done) => this.raw.open(path, 'w', { mode: 0o600 }, done));
  }
  openRead(path: string): Promise<Buffer> {
    return this.call('open', path, (done) => this.raw.open(path, 'r', done));
  }
  write(handle: Buffer, data: Buffer, position: number, path: string): Promise<void> {
    return this.call('write', path, (done) => this.raw.write(handle, data, 0, data.length, position, done as Callback<void>));
  }
  /** Up to `length` bytes at `position`: fewer at the end of the file, none past it. */
  read(handle: Buffer, length: number, position: number, path: string): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    return this.call<number>('read', path, (done) =>
      this.raw.read(handle, buffer, 0, length, position, (error, bytes) => {
        if (error && (error as { code?: unknown }).code === 1) return done(undefined, 0); // EOF
        done(error, bytes);
      }),
    ).then((bytes) => buffer.subarray(0, bytes));
  }
  fsetstat(handle: Buffer, attrs: InputAttributes, path: string): Promise<void> {
    return this.call('fsetstat', path, (done) => this.raw.fsetstat(handle, attrs, done as Callback<void>));
  }
  fsync(handle: Buffer, path: string): Promise<void> {
    return this.call('fsync', path, (done) => this.raw.ext_openssh_fsync(handle, done as Callback<void>));
  }
  close(handle: Buffer, path: string): Promise<void> {
    return this.call('close', path, (done) => this.raw.close(handle, done as Callback<void>));
  }
}

const S_IFMT = 0o170000;

/** An entry from what SFTP reports: size, mode, owner, whole-second times; no ctime, inode, link count or device (zeros). */
export function sftpEntry(name: string, attrs: Attributes): Entry {
  const type = attrs.mode & S_IFMT;
  return {
    name,
    kind: type === 0o100000 ? 'file' : type === 0o040000 ? 'dir' : type === 0o120000 ? 'symlink' : 'special',
    size: attrs.size,
    mode: attrs.mode & 0o7777,
    mtimeS: attrs.mtime,
    mtimeN: 0,
    ctimeS: 0,
    ctimeN: 0,
    atimeS: attrs.atime,
    atimeN: 0,
    ino: 0,
    uid: attrs.uid,
    gid: attrs.gid,
    nlink: 1,
    dev: 0,
  };
}

/** A folder's SFTP listing in the packed form the walk reads (names in `byName` order, our temporary files apart). */
export function packSftpListing(list: readonly FileEntryWithStats[]): FolderListing {
  const kept = list.filter((entry) => entry.filename !== '.' && entry.filename !== '..');
  const temps = kept.filter((entry) => isTempName(entry.filename)).map((entry) => entry.filename);
  const entries = kept.filter((entry) => !isTempName(entry.filename)).sort((a, b) => byName(a.filename, b.filename));
  const nums = new Float64Array(entries.length * NUMS);
  for (let i = 0; i < entries.length; i++) {
    const a = entries[i].attrs;
    const o = i * NUMS;
    const type = a.mode & S_IFMT;
    nums[o + AT.kind] = type === 0o100000 ? FILE : type === 0o040000 ? DIR : type === 0o120000 ? SYMLINK : SPECIAL;
    nums[o + AT.size] = a.size;
    nums[o + AT.mode] = a.mode & 0o7777;
    nums[o + AT.mtimeS] = a.mtime;
    nums[o + AT.atimeS] = a.atime;
    nums[o + AT.uid] = a.uid;
    nums[o + AT.gid] = a.gid;
    nums[o + AT.nlink] = 1;
  }
  return { names: entries.map((entry) => entry.filename), nums, temps };
}
