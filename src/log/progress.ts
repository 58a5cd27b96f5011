/**
 * Progress on a terminal: one live line at the bottom of stderr, redrawn five times a second,
 * with the phase, what is done of the total, the rate and the time left.
 *
 *   hashing  [#######.............]  1,234/5,000 files  1.2 GiB/4.0 GiB  310.2 MiB/s  ETA 0:09
 *
 * Pull, not push: a phase hands in a function that reads its counters, and a timer draws. The
 * pass costs nothing more per entry, and the line moves while the main thread waits on the
 * hashing threads. The timer is unref'd: it never keeps the process alive.
 *
 * Never in the log file, never when stderr is not a terminal (`noProgress` then), and off with
 * `--quiet` or `--no-progress`.
 */
import type { StatusLine } from './log.js';
import { formatBytes, formatCount, formatDuration } from './units.js';

export interface Counters {
  files: number;
  bytes: number;
  /** Known totals (hashing, copying); scanning has none. */
  totalFiles?: number;
  totalBytes?: number;
}

export interface Progress {
  /** Starts a phase (`scanning`, `hashing`, `copying`); `read` is called at each redraw. */
  begin(phase: string, read: () => Counters): void;
  /** Ends the phase: the line is wiped. */
  end(): void;
}

export const noProgress: Progress = { begin() {}, end() {} };

interface Tty {
  write(text: string): boolean;
  columns?: number;
}

const REDRAW_MS = 200;
const BAR_WIDTH = 20;

export class TerminalProgress implements Progress, StatusLine {
  private phase: string | undefined;
  private read: (() => Counters) | undefined;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private shown = false;

  constructor(
    private readonly tty: Tty,
    private readonly now: () => number = Date.now,
  ) {}

  begin(phase: string, read: () => Counters): void {
    this.phase = phase;
    this.read = read;
    this.startedAt = this.now();
    this.timer ??= setInterval(() => this.redraw(), REDRAW_MS).unref();
    this.redraw();
  }

  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
    this.phase = undefined;
    this.read = undefined;
  }

  clear(): void {
    if (!this.shown) return;
    this.tty.write('\r\x1b[K');
    this.shown = false;
  }

  redraw(): void {
    if (this.phase === undefined || this.read === undefined) return;
    const line = this.line(this.read(), (this.now() - this.startedAt) / 1000);
    const width = Math.max(20, (this.tty.columns || 80) - 1);
    this.tty.write('\r' + (line.length > width ? line.slice(0, width) : line) + '\x1b[K');
    this.shown = true;
  }

  /** The text of the line. */
  line(c: Counters, elapsedS: number): string {
    const parts = [this.phase!.padEnd(8)];
    const byBytes = c.totalBytes !== undefined && c.totalBytes > 0;
    const fraction = byBytes ? c.bytes / c.totalBytes! : c.totalFiles ? c.files / c.totalFiles : undefined;
    if (fraction !== undefined) {
      const filled = Math.min(BAR_WIDTH, Math.floor(fraction * BAR_WIDTH));
      parts.push(`[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`);
    }
    parts.push(c.totalFiles !== undefined ? `${formatCount(c.files)}/${formatCount(c.totalFiles)} files` : `${formatCount(c.files)} entries`);
    if (c.totalBytes !== undefined) parts.push(`${formatBytes(c.bytes)}/${formatBytes(c.totalBytes)}`);
    if (elapsedS >= 0.5) {
      parts.push(byBytes ? `${formatBytes(c.bytes / elapsedS)}/s` : `${formatCount(c.files / elapsedS)}/s`);
      if (fraction !== undefined && fraction > 0 && fraction < 1) parts.push(`ETA ${formatDuration((elapsedS * (1 - fraction)) / fraction)}`);
    }
    return parts.join('  ');
  }
}
