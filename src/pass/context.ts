/** What every stage of a pass shares: its options, counters, manifest, progress line, and when to stop. */
import { keptOwners, type Owners } from '../compare/owners.js';
import { noProgress, type Progress } from '../log/progress.js';
import type { Manifest } from '../manifest/manifest.js';
import { emptyStats, type PassOptions, type PassStats } from './options.js';

export class PassContext {
  readonly stats: PassStats = emptyStats();
  readonly started = Date.now();
  readonly progress: Progress;
  /** The owners and groups kept, chosen once. */
  readonly owners: Owners;
  /** Set once the pass was asked to stop (`tick`). */
  interrupted = false;
  /** Replica folders this pass created (their bits are set silently at the end). */
  readonly created = new Set<string>();
  /** Why the replica is out of reach, once it is (`lose`). */
  private lost: string | undefined;
  private lastYield = Date.now();
  private loaded: Manifest | undefined;

  constructor(public o: PassOptions) {
    this.progress = o.progress ?? noProgress;
    // A replica over SFTP keeps no owners (its login user's), and mtimes to the second.
    this.owners = o.owners ?? keptOwners(o.remote !== undefined);
  }

  /** The manifest, once loaded (`loadManifest`). */
  get manifest(): Manifest {
    if (this.loaded === undefined) throw new Error('internal: the manifest is not loaded yet');
    return this.loaded;
  }

  async loadManifest(): Promise<Manifest> {
    this.loaded ??= await this.o.manifest;
    return this.loaded;
  }

  /** Yields to the event loop every ~50 ms (so signals are seen); true when the pass must stop. */
  async tick(): Promise<boolean> {
    const now = Date.now();
    if (now - this.lastYield >= 50) {
      this.lastYield = now;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (!this.interrupted && this.o.shouldStop()) this.interrupted = true;
    return this.interrupted;
  }

  /**
   * The replica is out of reach (its connection lost): the pass stops, with this one error. What
   * fails after, for the same reason, is counted and logged at debug only.
   */
  lose(why: string): void {
    if (this.lost !== undefined) return;
    this.error(`${why}; the pass stops (the next one goes on)`);
    this.lost = why;
    this.interrupted = true;
  }

  warn(message: string): void {
    this.stats.warnings++;
    if (this.lost === undefined) this.o.log.warn(message);
    else this.o.log.debug(message);
  }

  error(message: string): void {
    this.stats.errors++;
    if (this.lost === undefined) this.o.log.error(message);
    else this.o.log.debug(message);
  }

  debug(message: string): void {
    this.o.log.debug(message);
  }
}
