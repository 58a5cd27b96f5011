/**
 * Replica files' MD5s, for `--checksum`, a fingerprint that moved, and `verify`: by `md5sum` on
 * the server where the account runs commands, else read back over SFTP and hashed here.
 */
import { createHash } from 'node:crypto';
import { sameFingerprint } from '../../compare/fingerprint.js';
import { ChangedInReplica, describe } from '../../errors.js';
import type { HashResult } from '../../hash/hasher.js';
import { sftpEntry, type Sftp } from './client.js';
import type { Session } from './connect.js';
import { shellQuote, Slots } from './util.js';

/** Replica files read back at once, and reads in flight per file. */
const READS_AT_ONCE = 8;
const READS_AHEAD = 16;
/** Bytes of paths on one md5sum command line. */
const MD5SUM_ARGS_BYTES = 64 << 10;

export class RemoteHashing {
  /** Why files are no longer hashed by md5sum on the server, once they are not. */
  private off: string | undefined;

  constructor(
    private readonly sftp: Sftp,
    private readonly session: Session,
    /** A replica path's path on the server. */
    private readonly abs: (relPath: string) => string,
    private readonly log: { debug(message: string): void },
  ) {}

  /**
   * Replica files hashed on the server by `md5sum` over the connection (as rclone does), where the
   * account may run it: their bytes never cross the network. Elsewhere (an SFTP-only account, no
   * md5sum), and for a file it could not read, they are read back over SFTP and hashed here.
   */
  async hashFiles(jobs: readonly { relPath: string; size: number }[]): Promise<(HashResult | undefined)[]> {
    const results: (HashResult | undefined)[] = jobs.map(() => undefined);
    let start = 0;
    while (this.off === undefined && start < jobs.length) {
      // (Command lines of up to ~64 KiB of paths.)
      let end = start;
      for (let bytes = 0; end < jobs.length && (end === start || bytes < MD5SUM_ARGS_BYTES); end++) bytes += this.abs(jobs[end].relPath).length + 3;
      try {
        const hashed = await this.md5sum(jobs.slice(start, end).map((job) => job.relPath));
        hashed.forEach((result, i) => (results[start + i] = result));
      } catch (error) {
        this.off = describe(error);
        this.log.debug(`replica files read back to be hashed from now on (${this.off})`);
      }
      start = end;
    }
    const slots = new Slots(READS_AT_ONCE);
    return Promise.all(
      jobs.map(async ({ relPath }, i): Promise<HashResult> => {
        const done = results[i];
        if (done !== undefined) return done;
        await slots.acquire();
        try {
          return await this.hashRemote(relPath);
        } catch (error) {
          return { kind: 'failed', error: error as Error };
        } finally {
          slots.release();
        }
      }),
    );
  }

  /**
   * `md5sum -z` of these files on the server: a result for each it hashed, undefined for each it
   * could not (read back instead). Throws when md5sum cannot run there (then never tried again).
   */
  private async md5sum(relPaths: readonly string[]): Promise<(HashResult | undefined)[]> {
    if (!(await this.session.runsCommands())) throw new Error('the account runs no commands');
    const paths = relPaths.map((relPath) => this.abs(relPath));
    const before = await Promise.all(paths.map((path) => this.sftp.lstat(path).then((attrs) => sftpEntry('', attrs), () => undefined)));
    const { code, stdout } = await this.session.exec(`md5sum -z -- ${paths.map(shellQuote).join(' ')}`);
    const sums = new Map<string, string>();
    // With -z: `<md5>  <path>` ending in NUL, the path as given, nothing escaped.
    for (const line of stdout.toString('utf8').split('\0')) {
      if (line === '') continue;
      const match = /^([0-9a-f]{32}) [ *](.*)$/s.exec(line);
      if (match === null) throw new Error(`md5sum answered something else (${JSON.stringify(line.slice(0, 60))})`);
      sums.set(match[2], match[1]);
    }
    if (sums.size === 0 && code !== 0) throw new Error(`md5sum -z exited ${code}`);
    const after = await Promise.all(paths.map((path) => this.sftp.lstat(path).then((attrs) => sftpEntry('', attrs), () => undefined)));
    return paths.map((path, i): HashResult | undefined => {
      const md5 = sums.get(path);
      const [was, now] = [before[i], after[i]];
      if (md5 === undefined || was === undefined || now === undefined) return undefined;
      if (!sameFingerprint(was, now)) return { kind: 'failed', error: new ChangedInReplica(relPaths[i]) };
      return { kind: 'hashed', md5, fp: [now.size, now.mtimeS, now.mtimeN, now.ctimeS, now.ctimeN, now.ino] };
    });
  }

  private async hashRemote(relPath: string): Promise<HashResult> {
    const path = this.abs(relPath);
    const before = sftpEntry('', await this.sftp.lstat(path));
    const handle = await this.sftp.openRead(path);
    const hash = createHash('md5');
    try {
      const chunk = this.sftp.maxRead;
      let position = 0;
      for (;;) {
        const reads: Promise<Buffer>[] = [];
        for (let i = 0; i < READS_AHEAD; i++) reads.push(this.sftp.read(handle, chunk, position + i * chunk, path));
        const buffers = await Promise.all(reads);
        let short = false;
        for (const buffer of buffers) {
          if (short) break;
          hash.update(buffer);
          position += buffer.length;
          if (buffer.length < chunk) short = true;
        }
        if (short) break;
      }
    } finally {
      await this.sftp.close(handle, path).catch(() => {});
    }
    const after = sftpEntry('', await this.sftp.lstat(path));
    if (!sameFingerprint(before, after)) throw new ChangedInReplica(relPath);
    return { kind: 'hashed', md5: hash.digest('hex'), fp: [after.size, after.mtimeS, after.mtimeN, after.ctimeS, after.ctimeN, after.ino] };
  }
}
