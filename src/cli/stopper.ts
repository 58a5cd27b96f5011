/** Signals: the first SIGINT or SIGTERM stops starting work; a second SIGINT exits at once. */
import { flushConsole, type Logger, type StatusLine } from '../log/log.js';

/** A second SIGINT: the console's held lines, the message, and the process ends at once. */
export function exitAtOnce(statusLine: StatusLine | undefined): never {
  flushConsole(false);
  statusLine?.clear();
  process.stderr.write('folder-sync: second SIGINT, exiting now\n');
  process.exit(130);
}

/** SIGINT/SIGTERM: stop starting work; a second SIGINT exits at once (nothing half-written: copies land by rename). */
export class Stopper {
  stopping = false;
  signal: string | undefined;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    if (this.stopping && signal === 'SIGINT') exitAtOnce(this.statusLine);
    this.stopping = true;
    this.signal = signal;
    this.log?.info(`${signal} received: finishing the current operation, then stopping`);
    this.wake?.();
  };

  constructor(
    private readonly log: Logger | undefined,
    private readonly statusLine?: StatusLine,
  ) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  /** Ends a `sleep` early (the watcher has a pass due sooner). */
  wakeUp(): void {
    this.wake?.();
  }

  /** Sleeps `ms` (longer than setTimeout's 24.8-day limit too), or until a signal or `wakeUp`. */
  sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const until = Date.now() + ms;
      const arm = () => {
        const left = until - Date.now();
        if (left <= 0) return finish();
        this.timer = setTimeout(arm, Math.min(left, 2 ** 31 - 1));
      };
      const finish = () => {
        if (this.timer) clearTimeout(this.timer);
        this.wake = undefined;
        resolve();
      };
      this.wake = finish;
      arm();
    });
  }

  dispose(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}
