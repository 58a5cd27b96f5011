/**
 * Logging through winston: one line per action, the same words on the console and in the log
 * file. Text lines in the file add a timestamp and the level; `--log-format json` writes JSON
 * lines instead (timestamp, level, message, and for an action its parts as fields), on both.
 * Warnings and errors go to stderr, the rest to stdout; a live progress line on the terminal is
 * cleared before console lines and drawn again after them (stdout's lines are written together).
 */
import type Winston from 'winston';
import type WinstonTransport from 'winston-transport';

/** One thing done (or that a dry run would do) to the replica: `copied a.txt (new)`. */
export interface Action {
  /** `copied`, `updated`, `restored`, `deleted`, `created`, `moved`; `would copy`… in a dry run. */
  verb: string;
  /** The path relative to the roots, as shown (`show()`), with `/` after a folder's. */
  path: string;
  /** Why, in a few words: `new`, `content changed`, `not in source`… */
  reason?: string;
  /** A symlink's target text (`path -> target`). */
  target?: string;
  /** Where a moved entry was (`from -> path`). */
  from?: string;
  /** Bytes of a file copied (JSON field only). */
  bytes?: number;
}

/** `copied a.txt (new)`, `moved a -> b (moved in source)`, `copied l -> t (new)`. */
export function actionText(a: Action): string {
  const what = a.from !== undefined ? `${a.from} -> ${a.path}` : a.target !== undefined ? `${a.path} -> ${a.target}` : a.path;
  return `${a.verb} ${what}${a.reason ? ` (${a.reason})` : ''}`;
}

/** Extra fields for a JSON line (a pass summary's counters, say); text lines show only the message. */
export type Fields = Record<string, string | number | boolean | undefined>;

/** What the pass needs of a logger. */
export interface Reporter {
  action(action: Action): void;
  info(message: string, fields?: Fields): void;
  warn(message: string): void;
  error(message: string): void;
  /** Detail for `--log-level debug` (timings, counts). */
  debug(message: string, fields?: Fields): void;
}

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** A line kept at the bottom of the terminal (progress): cleared before a console line, redrawn after. */
export interface StatusLine {
  clear(): void;
  redraw(): void;
}

export interface LogOptions {
  /** Absolute path of the log file (its folder exists and is writable: checked by config). */
  logFile: string;
  /** Console output: `normal`, or `quiet` (warnings and errors only). */
  console?: 'normal' | 'quiet';
  format?: LogFormat;
  /** The least severe level written (file and console); default `info`. */
  level?: LogLevel;
  /**
   * Rotation: once the log file reaches `maxSize` bytes it becomes `name1.ext`, the one before
   * `name2.ext`…, and only `maxFiles` files are kept in all (winston's tailable rotation).
   */
  rotate?: { maxSize: number; maxFiles: number };
  statusLine?: StatusLine;
}

export interface Logger extends Reporter {
  /** Ends the logger and waits until the log file has every line. */
  close(): Promise<void>;
}

/** Rotated log files kept when `--log-max-size` is given without `--log-max-files`. */
export const DEFAULT_LOG_FILES = 5;

const MESSAGE = Symbol.for('message');

/** Console lines written at once (see `ConsoleLines`). */
const CONSOLE_CHUNK = 64 << 10;
/** Console transports whose logger is not closed yet: their held lines are written on exit. */
const unflushed = new Set<{ flush(redraw?: boolean): void }>();
let exitHookSet = false;

/**
 * Writes the stdout lines every logger holds (see `ConsoleLines`): before anything is written
 * straight to stderr, so that the two keep their order when they go to one place. `redraw`: the
 * progress line after them (not when the process is about to exit).
 */
export function flushConsole(redraw = true): void {
  for (const transport of unflushed) transport.flush(redraw);
}

/**
 * winston and the parts built on it, loaded by the first `createLogger`.
 *
 * Perf: winston takes ~40 ms to load, a fifth of an empty pass. Loaded with the rest of the
 * program, it held back the start of the listing threads, which a sync starts before it creates
 * its logger (`cli/loop.ts`).
 */
interface LogParts {
  winston: typeof Winston;
  consoleText: ReturnType<typeof Winston.format.printf>;
  fileText: ReturnType<typeof Winston.format.printf>;
  ConsoleLines: new (level: LogLevel, statusLine: StatusLine | undefined) => WinstonTransport & { flush(redraw?: boolean): void };
}
let parts: LogParts | undefined;

async function logParts(): Promise<LogParts> {
  if (parts) return parts;
  // Imported here, not above: see `LogParts`. (A dynamic import is also what lets the build put
  // winston in a chunk of its own, loaded only then.)
  const winston = (await import('winston')).default;
  const Transport = (await import('winston-transport')).default;

  const consoleText = winston.format.printf(({ level, message }) => {
    if (level === 'warn') return `warning: ${String(message)}`;
    if (level === 'error') return `error: ${String(message)}`;
    return String(message);
  });

  const fileText = winston.format.printf(({ level, message, timestamp }) => `${String(timestamp)} ${level.toUpperCase().padEnd(5)} ${String(message)}`);

  /**
   * The console: stdout for info and debug, stderr for warnings and errors, around the status line.
   * (winston's own Console transport writes straight through, over a progress line.)
   *
   * Perf: stdout's lines are written together, once per turn of the event loop or 64 Ki
   * characters. Node writes to a file synchronously, and tries a pipe's write at once, a write call
   * a line: 100k lines (every mtime touched) cost ~0.55 s of the main thread's time. A warning or
   * an error first writes the lines held before it (`flushConsole`), so the two streams keep their
   * order when they go to one place; so does the process's exit.
   */
  class ConsoleLines extends Transport {
    private pending = '';
    private scheduled = false;

    constructor(
      level: LogLevel,
      private readonly statusLine: StatusLine | undefined,
    ) {
      super({ level });
      unflushed.add(this);
    }

    override log(info: Record<string | symbol, unknown>, next: () => void): void {
      const line = String(info[MESSAGE]) + '\n';
      if (info.level === 'error' || info.level === 'warn') {
        flushConsole();
        this.statusLine?.clear();
        process.stderr.write(line);
        this.statusLine?.redraw();
      } else {
        this.pending += line;
        if (this.pending.length >= CONSOLE_CHUNK) this.flush();
        else if (!this.scheduled) {
          this.scheduled = true;
          setImmediate(() => {
            this.scheduled = false;
            this.flush();
          });
        }
      }
      next();
    }

    /** Writes the lines held for stdout (then draws the progress line again, if `redraw`). */
    flush(redraw = true): void {
      if (this.pending === '') return;
      const text = this.pending;
      this.pending = '';
      this.statusLine?.clear();
      process.stdout.write(text);
      if (redraw) this.statusLine?.redraw();
    }
  }

  parts = { winston, consoleText, fileText, ConsoleLines };
  return parts;
}

export async function createLogger(options: LogOptions): Promise<Logger> {
  const { winston, consoleText, fileText, ConsoleLines } = await logParts();
  const json = options.format === 'json';
  const level = options.level ?? 'info';
  const file = new winston.transports.File({
    filename: options.logFile,
    format: json ? winston.format.combine(winston.format.timestamp(), winston.format.json()) : winston.format.combine(winston.format.timestamp(), fileText),
    // Rotation: tailable keeps the live log at the path the user gave; winston needs maxFiles for it.
    ...(options.rotate ? { maxsize: options.rotate.maxSize, maxFiles: options.rotate.maxFiles, tailable: true } : {}),
  });
  const transports: Winston.transport[] = [file];
  const quiet = options.console === 'quiet' && LOG_LEVELS.indexOf(level) > LOG_LEVELS.indexOf('warn');
  const consoleFormat = json ? winston.format.combine(winston.format.timestamp(), winston.format.json()) : consoleText;
  const consoleLines = Object.assign(new ConsoleLines(quiet ? 'warn' : level, options.statusLine), { format: consoleFormat });
  transports.push(consoleLines);
  if (!exitHookSet) {
    exitHookSet = true;
    // (A second Ctrl+C exits at once: what is held is still written, with no progress line after.)
    process.on('exit', () => flushConsole(false));
  }
  const logger = winston.createLogger({ level, levels: winston.config.npm.levels, transports, exitOnError: false });
  // A logging failure (a full disk under the log file) must not end a sync: say it once, go on.
  let complained = false;
  const onError = (error: Error) => {
    if (complained) return;
    complained = true;
    flushConsole(false);
    options.statusLine?.clear();
    process.stderr.write(`folder-sync: writing the log failed: ${error.message}\n`);
    options.statusLine?.redraw();
  };
  logger.on('error', onError);
  file.on('error', onError);
  // winston opens the file in the background, and sizes lines logged before it is open by guesswork:
  // a pass quick enough to log its copies first left an empty rotated file and all the copies in
  // the next. So the pass begins once the file is open (or could not be: then `onError` says so),
  // ~1 ms while the listing threads already list. (A failure winston drops, to open the stream
  // after its stat, ends the wait after a second.)
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 1000);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    file.once('open', done);
    file.once('error', done);
  });

  return {
    action: (a) => logger.info(actionText(a), { action: a.verb, path: a.path, reason: a.reason, target: a.target, from: a.from, bytes: a.bytes }),
    info: (message, fields) => logger.info(message, fields),
    warn: (message) => logger.warn(message),
    error: (message) => logger.error(message),
    debug: (message, fields) => logger.debug(message, fields),
    close: async () => {
      // winston buffers lines when the file is slower than the pass (100k actions in seconds).
      // Ending it with lines still buffered loses them or writes after the end, so first wait
      // until every line has gone through, then end it and wait for the file to be flushed.
      const drained = () => logger.writableLength === 0 && logger.readableLength === 0 && file.writableLength === 0;
      for (const deadline = Date.now() + 120_000; !drained() && Date.now() < deadline; ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      consoleLines.flush();
      unflushed.delete(consoleLines);
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
