/**
 * A batch of uploads flushed on the server's disk before any is renamed into place: each file's
 * `fsync@openssh.com`, after one `sync -f` of the whole batch where the account runs commands.
 */
import { describe } from '../../errors.js';
import type { Sftp } from './client.js';
import type { Session } from './connect.js';
import type { SftpPendingCopy } from './index.js';
import { shellQuote } from './util.js';

/** A batch of this many copies is flushed with one `sync -f` on the server first (`syncFs`); a slower one turns that off. */
const SYNCFS_FROM = 16;
const SYNCFS_SLOW_MS = 1000;
/** A `sync -f` not answered in this long is given up (the batch's fsyncs still flush it). */
const SYNCFS_GIVE_UP_MS = 10_000;

export class Flusher {
  private saidNoFsync = false;
  /** Why batches are no longer flushed with a syncfs first, once they are not (`syncFs`). */
  private syncFsOff: string | undefined;

  constructor(
    private readonly sftp: Sftp,
    private readonly session: Session,
    private readonly host: string,
    private readonly log: { debug(message: string): void },
  ) {}

  /** Per copy, undefined or the error its flush met. Never rejects. */
  async flush(copies: readonly SftpPendingCopy[]): Promise<(unknown | undefined)[]> {
    if (!this.sftp.offers('fsync')) {
      if (!this.saidNoFsync) this.log.debug(`${this.host} offers no fsync@openssh.com: copies land without a flush on the server`);
      this.saidNoFsync = true;
      return copies.map(() => undefined);
    }
    if (copies.length >= SYNCFS_FROM && this.syncFsOff === undefined) await this.syncFs(copies[0].temp);
    return Promise.all(copies.map((copy) => this.sftp.fsync(copy.handle, copy.temp).then(() => undefined, (error: unknown) => error)));
  }

  /**
   * Perf: one `sync -f` (syncfs) of the server's filesystem holding `path`, run over the SSH
   * connection, before a batch's fsyncs, which then find nothing left to write (as a local
   * replica's batches: `LocalReplica.flushCopies`). sftp-server answers one request at a time, and
   * each fsync that writes costs a journal commit: a first sync of 10k files spent 4 s of its 12 s
   * in them. A server that runs no commands (an SFTP-only account), a `sync` that fails or that
   * takes longer than a second (a busy disk) turns it off for the pass: the fsyncs do it all.
   */
  private async syncFs(path: string): Promise<void> {
    const started = Date.now();
    let off: string | undefined;
    try {
      if (!(await this.session.runsCommands())) throw new Error('the account runs no commands');
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${SYNCFS_GIVE_UP_MS / 1000} s`)), SYNCFS_GIVE_UP_MS).unref());
      const { code, stderr } = await Promise.race([this.session.exec(`sync -f -- ${shellQuote(path)}`), timeout]);
      if (code !== 0) off = `sync -f exited ${code}${stderr.trim() ? `: ${stderr.trim().split('\n')[0]}` : ''}`;
      else if (Date.now() - started > SYNCFS_SLOW_MS) off = `a sync -f took ${Date.now() - started} ms`;
    } catch (error) {
      off = describe(error);
    }
    if (off === undefined) return;
    this.syncFsOff = off;
    this.log.debug(`copies flushed file by file on ${this.host} from now on (${off})`);
  }
}
