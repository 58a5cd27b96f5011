/**
 * The replica as a folder on another machine, over SFTP (OpenSSH's `sftp-server` or `internal-sftp`),
 * one connection per pass, opened by the pass's first look at the replica (`statRoot`).
 *
 * A copy lands as on a local replica: uploaded to a temporary name beside its target (created
 * 0600), hashed as it is read, given its mode and times, flushed on the server
 * (`fsync@openssh.com`, where offered), then renamed over the target (`posix-rename@openssh.com`,
 * atomic). A server without posix-rename gets the protocol's rename, which refuses an existing
 * target: the old file is removed first, and for that moment the name is missing (never half
 * written). A kill leaves only temporary files, swept by the next pass.
 *
 * SFTP reports size, mode, owner and whole-second times: no ctime, inode or link count (`features`).
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { ChangedInReplica, ChangedWhileReading, Interrupted, RenameFailed, StepError, UsageError, errorCode, show } from '../../errors.js';
import type { HashResult } from '../../hash/hasher.js';
import { sameFingerprint } from '../../compare/fingerprint.js';
import type { Reason } from '../../compare/types.js';
import type { Entry } from '../../tree/entry.js';
import type { Lister, ListerSpec } from '../../tree/lister.js';
import { buildExclude } from '../../tree/filter.js';
import { hasEscapes } from '../../tree/names.js';
import { toEntry } from '../../tree/scan.js';
import type { Io } from '../local/io.js';
import { tempName, split } from '../local/context.js';
import type { CopyJob, InstalledCopy, MetaFix, MetaFixed, PendingCopy, Replica, ReplicaFeatures, Written } from '../replica.js';
import type { RemoteAddress } from './address.js';
import { Sftp, sftpEntry } from './client.js';
import { connect, resolveEndpoint, type Endpoint, type Session, type SshOptions } from './connect.js';
import { SftpLister } from './lister.js';
import { FindLister } from './find-lister.js';
import { RemoteHashing } from './hashing.js';
import { Flusher } from './flush.js';
import { inBatches, Slots } from './util.js';

export interface SftpReplicaOptions {
  address: RemoteAddress;
  ssh: SshOptions;
  /** The local source's absolute root (copies read from it). */
  source: string;
  io: Io;
  fsync: boolean;
  dryRun: boolean;
  /** `--backup-dir` for this pass, a folder on the server. */
  backupRoot?: string;
  tick(): Promise<boolean>;
  log: { debug(message: string): void; warn(message: string): void };
  /** The connection was lost: the pass ends (one error line). */
  lost(why: string): void;
}

/** Files uploaded at once; and writes in flight per file (each up to the server's largest write). */
const FILES_AT_ONCE = 32;
const WRITES_AHEAD = 16;
/** Requests in flight for runs of small calls (temporary files swept, metadata fixes). */
const CALLS_AT_ONCE = 64;

export interface SftpPendingCopy extends PendingCopy {
  readonly handle: Buffer;
  readonly temp: string;
  readonly replacing: boolean;
}

export class SftpReplica implements Replica {
  readonly root: string;
  readonly features: ReplicaFeatures = { kind: 'folder over SFTP', ctime: false, inode: false, mtimeStepNs: 1e9 };
  private readonly endpoint: Endpoint;
  private session: Session | undefined;
  private client: Sftp | undefined;
  /** The replica's absolute path on the server, once connected. */
  private rootPath = '';
  /** `--backup-dir`'s folder for this pass, absolute on the server, once connected. */
  private backupRoot: string | undefined;
  private readonly slots = new Slots(FILES_AT_ONCE);
  private hashing: RemoteHashing | undefined;
  private flusher: Flusher | undefined;
  /** Backup folders known to exist on the server (`makeFolders`). */
  private readonly made = new Set<string>();

  constructor(private readonly o: SftpReplicaOptions) {
    this.root = o.address.given;
    this.endpoint = resolveEndpoint(o.address, o.ssh);
  }

  private get sftp(): Sftp {
    if (this.client === undefined) throw new Error('internal: the SFTP replica is not connected');
    return this.client;
  }

  /** The server path of `relPath`. Names that are not UTF-8 cannot be named over SFTP (it sends UTF-8). */
  private abs(relPath: string): string {
    if (hasEscapes(relPath)) throw Object.assign(new Error(`EILSEQ: ${show(relPath)} is not UTF-8, which SFTP cannot name`), { code: 'EILSEQ' });
    return relPath === '' ? this.rootPath : `${this.rootPath}/${relPath}`;
  }

  private tempFor(relPath: string): string {
    const [dir, name] = split(relPath);
    return this.abs(dir) + '/' + tempName(name);
  }

  /** Connects (first call of a pass); `UsageError` for what the user must fix, `Unreachable` otherwise. */
  private async open(): Promise<void> {
    if (this.session !== undefined) return;
    const startedAt = Date.now();
    const session = await connect(this.endpoint, this.o.log);
    this.session = session;
    this.client = new Sftp(session.sftp);
    session.whenLost((why) => {
      this.client?.fail(why);
      this.o.lost(why);
    });
    // A relative path is relative to the login folder (as scp and rsync read `host:path`).
    const home = this.endpoint.path.startsWith('/') && (this.o.backupRoot === undefined || this.o.backupRoot.startsWith('/')) ? '/' : await this.sftp.realpath('.');
    this.rootPath = posix.resolve(home, this.endpoint.path);
    if (this.o.backupRoot !== undefined) {
      this.backupRoot = posix.resolve(home, this.o.backupRoot);
      const backupDir = posix.dirname(this.backupRoot);
      if (backupDir === this.rootPath || backupDir.startsWith(this.rootPath === '/' ? '/' : this.rootPath + '/') || this.rootPath.startsWith(backupDir + '/')) {
        throw new UsageError(`backup dir ${backupDir} and replica ${this.rootPath} overlap on ${this.endpoint.name}: give a backup dir beside the replica`);
      }
    }
    const offered = ['posix-rename', 'fsync', 'lsetstat', 'hardlink'].filter((name) => this.sftp.offers(name));
    this.o.log.debug(`connected to ${this.endpoint.user}@${this.endpoint.host}:${this.endpoint.port} in ${Date.now() - startedAt} ms; replica ${this.rootPath}; extensions: ${offered.join(', ') || 'none'}; writes of ${this.sftp.maxWrite} bytes`);
    if (!this.sftp.offers('posix-rename')) this.o.log.warn(`${this.endpoint.name} offers no posix-rename: a file replaced is removed just before its new content is renamed in`);
  }

  async statRoot(): Promise<Entry | undefined> {
    await this.open();
    try {
      return sftpEntry('', await this.sftp.lstat(this.rootPath));
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  async createRoot(): Promise<Entry> {
    const parts = this.rootPath.split('/');
    for (let i = 2; i <= parts.length; i++) {
      const path = parts.slice(0, i).join('/');
      try {
        await this.sftp.lstat(path);
      } catch (error) {
        if (errorCode(error) !== 'ENOENT') throw error;
        await this.sftp.mkdir(path, i === parts.length ? 0o700 : 0o755);
      }
    }
    return sftpEntry('', await this.sftp.lstat(this.rootPath));
  }

  /** The whole tree by one `find` on the server (`find-lister.ts`), else folder by folder over SFTP. */
  lister(spec: Omit<ListerSpec, 'root'>): Lister {
    // (The walk enters no excluded folder: none is fetched ahead.)
    const sftp = new SftpLister(this.sftp, this.rootPath, { skip: buildExclude(spec.excludes, spec.own) });
    return new FindLister(this.session!, this.rootPath, sftp, this.o.log);
  }

  inlineLister(): Lister {
    return new SftpLister(this.sftp, this.rootPath, undefined);
  }

  openFolder(): boolean {
    return false; // (SFTP lists as the login user; a folder shut to it stays unreadable)
  }

  readlink(relPath: string): Promise<string> {
    return this.sftp.readlink(this.abs(relPath));
  }

  /** Whether there is an entry at `relPath`: false only when the server says there is none (ENOENT). */
  private async exists(relPath: string): Promise<boolean> {
    try {
      await this.sftp.lstat(this.abs(relPath));
      return true;
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return false;
      throw error;
    }
  }

  async statEntry(relPath: string): Promise<Entry | undefined> {
    try {
      return sftpEntry(relPath.slice(relPath.lastIndexOf('/') + 1), await this.sftp.lstat(this.abs(relPath)));
    } catch {
      return undefined;
    }
  }
  /** By md5sum on the server, or read back (`hashing.ts`). */
  hashFiles(jobs: readonly { relPath: string; size: number }[]): Promise<(HashResult | undefined)[]> {
    this.hashing ??= new RemoteHashing(this.sftp, this.session!, (relPath) => this.abs(relPath), this.o.log);
    return this.hashing.hashFiles(jobs);
  }


  /** Our temporary files the walk found are swept (an upload is not resumed: it starts again). */
  async prepare(temps: readonly string[]): Promise<void> {
    if (this.o.dryRun) return;
    await inBatches(temps, CALLS_AT_ONCE, (temp) => this.sftp.unlink(this.abs(temp)).catch(() => {}));
  }

  async writeCopy(job: CopyJob): Promise<Written> {
    await this.slots.acquire();
    try {
      return { kind: 'written', pending: await this.upload(job) };
    } catch (error) {
      return { kind: 'failed', error: error instanceof ChangedWhileReading || error instanceof Interrupted ? error : new StepError('copying', job.relPath, error) };
    } finally {
      this.slots.release();
    }
  }

  /** The source file sent to a temporary file beside its target, hashed as read, its mode and times set. */
  private async upload(job: CopyJob): Promise<SftpPendingCopy> {
    const { io } = this.o;
    const source = job.source;
    const temp = this.tempFor(job.relPath);
    const fd = io.openRead(`${this.o.source}/${job.relPath}`);
    let handle: Buffer | undefined;
    try {
      const before = toEntry(source.name, io.fstat(fd));
      if (!sameFingerprint(before, source)) throw new ChangedWhileReading(job.relPath);
      handle = await this.createTemp(temp);
      const hash = createHash('md5');
      const writes: Promise<void>[] = [];
      /** The first write that failed: the others in flight are waited for (never left unhandled), then it is thrown. */
      let failed: unknown;
      const track = (write: Promise<void>) => write.catch((error: unknown) => void (failed ??= error));
      let position = 0;
      // The size the walk saw is read (a file grown since is found by its fstat after).
      while (position < source.size) {
        // (A buffer per write: each stays with its request until the server answers.)
        const buffer = Buffer.allocUnsafe(Math.min(this.sftp.maxWrite, source.size - position));
        const bytes = io.read(fd, buffer, position);
        if (bytes === 0) break;
        const data = buffer.subarray(0, bytes);
        hash.update(data);
        writes.push(track(this.sftp.write(handle, data, position, temp)));
        position += bytes;
        if (writes.length >= WRITES_AHEAD) {
          await writes.shift();
          if (failed !== undefined) break;
          if (await this.o.tick()) {
            await Promise.all(writes);
            throw new Interrupted();
          }
        }
      }
      await Promise.all(writes);
      if (failed !== undefined) throw failed;
      const after = toEntry(source.name, io.fstat(fd));
      if (position !== source.size || !sameFingerprint(after, source)) throw new ChangedWhileReading(job.relPath);
      await this.sftp.fsetstat(handle, { mode: source.mode, atime: source.atimeS, mtime: source.mtimeS }, temp);
      return { relPath: job.relPath, source, md5: hash.digest('hex'), resumedBytes: 0, handle, temp, replacing: job.replacing };
    } catch (error) {
      if (handle !== undefined) await this.discard(handle, temp);
      throw error;
    } finally {
      io.close(fd);
    }
  }

  /**
   * Safety: the temporary file is created, never opened where something is (O_EXCL: a link put
   * there is not followed); what is there (a left-over the sweep did not see) is removed first.
   */
  private async createTemp(temp: string): Promise<Buffer> {
    try {
      return await this.sftp.create(temp);
    } catch (error) {
      if (errorCode(error) !== 'EIO') throw error; // (OpenSSH answers "Failure" for EEXIST)
      await this.sftp.unlink(temp).catch(() => {});
      return this.sftp.create(temp);
    }
  }

  private async discard(handle: Buffer, temp: string): Promise<void> {
    await this.sftp.close(handle, temp).catch(() => {});
    await this.sftp.unlink(temp).catch(() => {});
  }

  /** Each temporary file flushed on the server's disk (`flush.ts`). */
  flushCopies(pending: readonly PendingCopy[]): Promise<(unknown | undefined)[]> {
    if (!this.o.fsync) return Promise.resolve(pending.map(() => undefined));
    this.flusher ??= new Flusher(this.sftp, this.session!, this.endpoint.name, this.o.log);
    return this.flusher.flush(pending as readonly SftpPendingCopy[]);
  }

  async installCopy(pending: PendingCopy): Promise<InstalledCopy> {
    const copy = pending as SftpPendingCopy;
    const target = this.abs(copy.relPath);
    try {
      await this.sftp.close(copy.handle, copy.temp);
      // (With --backup-dir, what it replaces is kept there: moved just before.)
      if (copy.replacing && this.backupRoot !== undefined && (await this.exists(copy.relPath))) await this.backup(copy.relPath);
      await this.renameOver(copy.temp, target);
    } catch (error) {
      await this.sftp.unlink(copy.temp).catch(() => {});
      throw new StepError('copying (renaming into place)', copy.relPath, error);
    }
    const replica = sftpEntry(copy.source.name, await this.sftp.lstat(target));
    return { md5: copy.md5, source: copy.source, replica, resumedBytes: 0 };
  }

  /** `from` renamed over `to`: atomic with posix-rename; else `to` removed first. */
  private async renameOver(from: string, to: string): Promise<void> {
    if (this.sftp.offers('posix-rename')) return this.sftp.rename(from, to);
    await this.sftp.unlink(to).catch(() => {});
    return this.sftp.plainRename(from, to);
  }

  async abandonCopy(pending: PendingCopy): Promise<void> {
    const copy = pending as SftpPendingCopy;
    await this.discard(copy.handle, copy.temp);
  }

  async symlink(relPath: string, target: string, source: Entry, replacing: boolean): Promise<Entry> {
    const abs = this.abs(relPath);
    try {
      if (replacing) {
        const temp = this.tempFor(relPath);
        await this.sftp.unlink(temp).catch(() => {});
        await this.sftp.symlink(target, temp);
        await this.setLinkTimes(temp, source);
        // (With --backup-dir, what it replaces is kept there, as a copy's.)
        if (this.backupRoot !== undefined && (await this.exists(relPath))) await this.backup(relPath);
        await this.renameOver(temp, abs);
      } else {
        await this.sftp.symlink(target, abs);
        await this.setLinkTimes(abs, source);
      }
      return sftpEntry(source.name, await this.sftp.lstat(abs));
    } catch (error) {
      throw new StepError('linking', relPath, error);
    }
  }

  /** A link's own times, where the server can set them (`lsetstat@openssh.com`). */
  private async setLinkTimes(path: string, source: Entry): Promise<void> {
    if (this.sftp.offers('lsetstat')) await this.sftp.lsetstat(path, { atime: source.atimeS, mtime: source.mtimeS });
  }

  hardlink(relPath: string): never {
    throw new StepError('hard-linking', relPath, new UsageError('--hard-links needs a local replica'));
  }

  async setLinkMeta(relPath: string, source: Entry): Promise<void> {
    try {
      await this.setLinkTimes(this.abs(relPath), source);
    } catch (error) {
      throw new StepError('setting times of link', relPath, error);
    }
  }

  async fixMetas(fixes: readonly MetaFix[]): Promise<MetaFixed[]> {
    return inBatches(fixes, CALLS_AT_ONCE, async (fix): Promise<MetaFixed> => {
      try {
        const path = this.abs(fix.relPath);
        const now = sftpEntry(fix.seen.name, await this.sftp.lstat(path));
        if (!sameFingerprint(now, fix.seen)) return { kind: 'failed', error: new ChangedInReplica(fix.relPath) };
        await this.sftp.setstat(path, { ...(fix.mode === undefined ? {} : { mode: fix.mode }), atime: fix.atimeS, mtime: fix.mtimeS });
        return { kind: 'fixed', replica: sftpEntry(fix.seen.name, await this.sftp.lstat(path)) };
      } catch (error) {
        return { kind: 'failed', error: new StepError('setting metadata of', fix.relPath, error) };
      }
    });
  }

  async mkdir(relPath: string): Promise<void> {
    try {
      await this.sftp.mkdir(this.abs(relPath), 0o700);
    } catch (error) {
      throw new StepError('creating folder', relPath, error);
    }
  }

  async setDirMeta(relPath: string, source: Entry): Promise<Reason | undefined> {
    const path = this.abs(relPath);
    try {
      const now = sftpEntry(source.name, await this.sftp.lstat(path));
      if (now.mode === source.mode && now.mtimeS === source.mtimeS) return undefined;
      await this.sftp.setstat(path, { mode: source.mode, atime: source.atimeS, mtime: source.mtimeS });
      return now.mode === source.mode ? undefined : 'permissions';
    } catch (error) {
      throw new StepError('setting metadata of folder', relPath, error);
    }
  }

  async remove(relPath: string, entry: Entry): Promise<boolean> {
    if (entry.kind !== 'dir' && this.backupRoot !== undefined) {
      try {
        if (!(await this.exists(relPath))) return false; // already gone
      } catch (error) {
        throw new StepError('deleting', relPath, error);
      }
      try {
        await this.backup(relPath);
        return true;
      } catch (error) {
        throw new StepError('moving to the backup dir', relPath, error);
      }
    }
    try {
      if (entry.kind === 'dir') await this.sftp.rmdir(this.abs(relPath));
      else await this.sftp.unlink(this.abs(relPath));
      return true;
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return false;
      throw new StepError('deleting', relPath, error);
    }
  }

  /** Moves a replica entry to `<backupRoot>/<relPath>` on the server, its folders made as needed. */
  private async backup(relPath: string): Promise<void> {
    const root = this.backupRoot!;
    const dir = split(relPath)[0];
    await this.makeFolders(dir === '' ? root : `${root}/${dir}`);
    await this.sftp.rename(this.abs(relPath), `${root}/${relPath}`);
  }

  /** `path` and its missing parents made on the server (mkdir -p), the folders already made this pass remembered. */
  private async makeFolders(path: string): Promise<void> {
    if (this.made.has(path)) return;
    const parts = path.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (dir === '' || this.made.has(dir)) continue;
      try {
        await this.sftp.lstat(dir);
      } catch (error) {
        if (errorCode(error) !== 'ENOENT') throw error;
        await this.sftp.mkdir(dir, 0o700);
      }
      this.made.add(dir);
    }
  }

  async renameFolder(from: string, to: string): Promise<void> {
    try {
      await this.sftp.rename(this.abs(from), this.abs(to));
    } catch (error) {
      throw new RenameFailed(`moving ${show(from)}/ ->`, to + '/', error);
    }
  }

  async move(from: string, to: string, source: Entry, replica: Entry): Promise<Entry> {
    const now = await this.statEntry(from);
    if (now === undefined || !sameFingerprint(now, replica)) throw new ChangedInReplica(from);
    try {
      await this.sftp.rename(this.abs(from), this.abs(to));
    } catch (error) {
      throw new RenameFailed(`moving ${show(from)} ->`, to, error);
    }
    const path = this.abs(to);
    await this.sftp.setstat(path, { mode: source.mode, atime: source.atimeS, mtime: source.mtimeS });
    return sftpEntry(source.name, await this.sftp.lstat(path));
  }

  /** SFTP has no way to flush a folder: the server's filesystem makes its renames durable in its time. */
  async flushFolders(): Promise<{ relDir: string; error: unknown }[]> {
    return [];
  }

  async close(): Promise<void> {
    this.session?.close();
  }
}
