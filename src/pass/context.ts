/** What every stage of a pass shares: its options, counters, manifest, progress line, and when to stop. */
import { processOwners, type Owners } from '../compare/owners.js';
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
  private lastYield = Date.now();
  private loaded: Manifest | undefined;

  constructor(public o: PassOptions) {
    this.progress = o.progress ?? noProgress;
    this.owners = o.owners ?? processOwners();
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

  warn(message: string): void {
    this.stats.warnings++;
    this.o.log.warn(message);
  }

  error(message: string): void {
    this.stats.errors++;
    this.o.log.error(message);
  }

  debug(message: string): void {
    this.o.log.debug(message);
  }
}
