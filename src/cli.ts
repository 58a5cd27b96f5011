/**
 * The command line: parse (commander), check (config), then run a pass now and one every
 * `interval` minutes until SIGINT/SIGTERM, or one pass with `--once`. The exit status is decided
 * once, at the end, and the process ends by itself once the log is flushed.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { buildConfig, prepareLocations, type Config, type RawOptions } from './config.js';
import { EXIT_USAGE, UsageError, describe } from './errors.js';
import { nodeIo, type Io } from './io.js';
import { acquireLock, type Lock } from './lock.js';
import { createLogger, type Logger } from './log.js';
import { Manifest } from './manifest.js';
import { runPass } from './pass.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('folder-sync')
    .description('Keep <replica> an exact one-way mirror of <source>: a pass now, then one every <interval> minutes.')
    .argument('<source>', 'folder to mirror from')
    .argument('<replica>', 'folder to mirror into (created if missing)')
    .argument('<interval>', 'minutes between passes (fractions allowed: 0.5 = 30 s)')
    .argument('<log-file>', 'file every action is appended to (the console gets the same lines)')
    .option('--once', 'run one pass, then exit')
    .option('--manifest <file>', 'where the manifest lives (default: under $XDG_STATE_HOME/folder-sync/)')
    .option('--exclude <glob>', 'skip paths matching this micromatch glob (repeatable)', collect, [])
    .option('--dry-run', 'log what a pass would do, change nothing')
    .option('--checksum', 'ignore cached fingerprints: hash every file on both sides this pass')
    .option('--max-delete <n>', 'delete nothing when a pass would delete more than n entries (or n% of the replica)')
    .option('--max-delete-bytes <size>', 'delete nothing when a pass would delete more than this many bytes (500M, 2G)')
    .option('--allow-mass-delete', 'delete even if the source looks vanished or replaced (this pass only)')
    .option('--backup-dir <dir>', 'move files a pass would delete or overwrite to <dir>/<time>/<path> instead')
    .addOption(new Option('--no-fsync', 'do not flush copied files before renaming them (faster, less safe on power loss)'))
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .addHelpText(
      'after',
      `
Examples:
  folder-sync ~/Photos /mnt/backup/Photos 10 ~/folder-sync.log
  folder-sync src/ /mnt/nas/src 5 sync.log --exclude node_modules --exclude '*.tmp'
  folder-sync ~/docs /mnt/usb/docs 1 sync.log --once --dry-run

Exit status: 0 synced, 1 some entries failed or deletes were refused, 2 bad usage.`,
    )
    .exitOverride()
    .configureOutput({
      // One line for a usage error; commander already words it ("error: missing required argument…").
      outputError: (text, write) => write(`folder-sync: ${text.replace(/^error: /, '')}`),
    });
  return program;
}

/** Parses argv and runs; resolves to the exit status. */
export async function main(argv: string[], io: Io = nodeIo): Promise<number> {
  const program = buildProgram();
  let config: Config;
  try {
    program.parse(argv);
    const [source, replica, interval, logFile] = program.args as [string, string, string, string];
    config = buildConfig({ source, replica, interval, logFile }, program.opts<RawOptions>());
    prepareLocations(config);
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    process.stderr.write(`folder-sync: ${error instanceof UsageError ? error.message : describe(error)}\n`);
    return EXIT_USAGE;
  }
  return run(config, io);
}

async function run(config: Config, io: Io): Promise<number> {
  const log = createLogger({ logFile: config.logFile });
  let lock: Lock | undefined;
  let status = 0;
  let replicaLock: Lock | undefined;
  try {
    if (!config.dryRun) {
      lock = acquireLock(config.manifestPath);
      // Two folder-syncs with different manifests must not write into the same replica either.
      const id = createHash('sha256').update(config.replica).digest('hex').slice(0, 16);
      replicaLock = acquireLock(config.manifestPath, { lockPath: join(tmpdir(), `folder-sync-replica-${id}.lock`), what: `replica ${config.replica}` });
    }
  } catch (error) {
    lock?.release();
    process.stderr.write(`folder-sync: ${describe(error)}\n`);
    await log.close();
    return EXIT_USAGE;
  }

  const stopper = new Stopper(log);
  try {
    // Perf: not awaited here; the first pass starts its listing threads while this loads.
    const manifest = Manifest.open(config.manifestPath, {
      source: config.source,
      replica: config.replica,
      readOnly: config.dryRun,
      warn: (message) => log.warn(message),
    });
    log.info(
      `folder-sync ${VERSION}: ${config.source} -> ${config.replica}, ` +
        (config.once ? 'one pass' : `every ${config.intervalMinutes} min`) +
        `${config.dryRun ? ' (dry run)' : ''}; manifest ${config.manifestPath}`,
    );
    let passes = 0;
    for (;;) {
      const startedAt = Date.now();
      const result = await runPass({
        source: config.source,
        replica: config.replica,
        exclude: config.exclude,
        dryRun: config.dryRun,
        checksum: config.checksum,
        maxDelete: config.maxDelete,
        maxDeleteBytes: config.maxDeleteBytes,
        // The override is for one pass: the first one of this run.
        allowMassDelete: config.allowMassDelete && passes === 0,
        backupDir: config.backupDir,
        fsync: config.fsync,
        io,
        log,
        manifest,
        shouldStop: () => stopper.stopping,
        threads: io === nodeIo ? { excludes: config.excludes, own: config.ownRelPaths } : undefined,
      });
      status = Math.max(status, result.exitStatus);
      passes++;
      if (config.once || stopper.stopping) break;
      // A pass that overran the interval is followed at once by the next, never run twice at once.
      await stopper.sleep(startedAt + config.intervalMinutes * 60_000 - Date.now());
      if (stopper.stopping) break;
    }
    if (stopper.signal) log.info(`stopped on ${stopper.signal}`);
  } catch (error) {
    log.error(`unexpected failure: ${describe(error)}`);
    status = Math.max(status, 1);
  } finally {
    stopper.dispose();
    replicaLock?.release();
    lock?.release();
    await log.close();
  }
  return status;
}

/** SIGINT/SIGTERM: stop starting work; a second SIGINT exits at once (nothing half-written: copies land by rename). */
class Stopper {
  stopping = false;
  signal: string | undefined;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    if (this.stopping && signal === 'SIGINT') {
      process.stderr.write('folder-sync: second SIGINT, exiting now\n');
      process.exit(130);
    }
    this.stopping = true;
    this.signal = signal;
    this.log.info(`${signal} received: finishing the current operation, then stopping`);
    this.wake?.();
  };

  constructor(private readonly log: Logger) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  /** Sleeps `ms` (longer than setTimeout's 24.8-day limit too), or until a signal. */
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
