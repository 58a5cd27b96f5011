/**
 * Logging through winston: one line per action, the same words on the console and in the log
 * file (the file adds a timestamp and the level). Warnings and errors go to stderr, the rest to
 * stdout.
 */
import winston from 'winston';

/** What the pass needs of a logger. */
export interface Reporter {
  /** Something done (or that would be done, in a dry run) to the replica. */
  action(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface LogOptions {
  /** Absolute path of the log file (its folder exists and is writable: checked by config). */
  logFile: string;
  /** Console output: `normal`, or `quiet` (warnings and errors only), or `silent`. */
  console?: 'normal' | 'quiet' | 'silent';
}

export interface Logger extends Reporter {
  /** Ends the logger and waits until the log file has every line. */
  close(): Promise<void>;
}

const consoleLine = winston.format.printf(({ level, message }) => {
  if (level === 'warn') return `warning: ${String(message)}`;
  if (level === 'error') return `error: ${String(message)}`;
  return String(message);
});

const fileLine = winston.format.printf(({ level, message, timestamp }) => `${String(timestamp)} ${level.toUpperCase().padEnd(5)} ${String(message)}`);

export function createLogger(options: LogOptions): Logger {
  const file = new winston.transports.File({
    filename: options.logFile,
    format: winston.format.combine(winston.format.timestamp(), fileLine),
  });
  const transports: winston.transport[] = [file];
  const mode = options.console ?? 'normal';
  if (mode !== 'silent') {
    transports.push(
      new winston.transports.Console({
        level: mode === 'quiet' ? 'warn' : 'info',
        stderrLevels: ['error', 'warn'],
        format: consoleLine,
      }),
    );
  }
  const logger = winston.createLogger({ level: 'info', transports, exitOnError: false });
  // A logging failure (a full disk under the log file) must not end a sync: say it once, go on.
  let complained = false;
  const onError = (error: Error) => {
    if (complained) return;
    complained = true;
    process.stderr.write(`folder-sync: writing the log failed: ${error.message}\n`);
  };
  logger.on('error', onError);
  file.on('error', onError);

  return {
    action: (message) => logger.info(message),
    info: (message) => logger.info(message),
    warn: (message) => logger.warn(message),
    error: (message) => logger.error(message),
    close: async () => {
      // winston buffers lines when the file is slower than the pass (100k actions in seconds).
      // Ending it with lines still buffered loses them or writes after the end, so first wait
      // until every line has gone through, then end it and wait for the file to be flushed.
      const drained = () => logger.writableLength === 0 && logger.readableLength === 0 && file.writableLength === 0;
      for (const deadline = Date.now() + 120_000; !drained() && Date.now() < deadline; ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 10_000);
        file.once('finish', () => {
          clearTimeout(timer);
          resolve();
        });
        logger.end();
      });
    },
  };
}

/** `show()` escapes control characters in a path so every action stays on one line. */
export { show } from './errors.js';

/** `12 B`, `12.0 KiB`, `3.4 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
