/**
 * The command line: parse (commander), check (config), then run a pass now and one every
 * `interval` minutes until SIGINT/SIGTERM, or one pass with `--once`. The exit status is decided
 * once, at the end, and the process ends by itself once the log is flushed.
 */
import { createHash } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { buildExclude } from '../tree/filter.js';
import { buildConfig, checkPair, defaultManifestPath, parseHashThreads, passExclude, passPatterns, prepareLocations, readExcludes, type Config, type RawOptions } from './config.js';
import { VERSION } from '../package.js';
import { EXIT_USAGE, UsageError, describe, show } from '../errors.js';
import { nodeIo, type Io } from '../replica/local/io.js';
import { acquireLock, type Lock } from './lock.js';
import { DEFAULT_LOG_FILES, createLogger, flushConsole, type Logger, type StatusLine } from '../log/log.js';
import { Manifest } from '../manifest/manifest.js';
import { closeListers, type Listers } from '../tree/lister.js';
import { chooseListers, listerName } from '../tree/choose.js';
import { runPass } from '../pass/index.js';
import { TerminalProgress } from '../log/progress.js';
import { formatStatus, listManifests, readStatus } from '../commands/status.js';
import { formatBytes, formatCount } from '../log/units.js';
import { DIFFERENCE_KINDS, formatDifference, verify } from '../commands/verify.js';
import { SourceWatcher } from './watch.js';


function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

const EXAMPLES = `
Examples:
  folder-sync ~/Photos /mnt/backup/Photos 10 ~/folder-sync.log
  folder-sync ~/src /mnt/nas/src 5 ~/sync.log --exclude node_modules --exclude '*.tmp'
  folder-sync ~/docs /mnt/usb/docs 1 ~/sync.log --once --dry-run --max-delete 100
  folder-sync ~/work /mnt/nas/work 30 ~/sync.log --watch --quiet --log-max-size 10M
  folder-sync verify ~/Photos /mnt/backup/Photos
  folder-sync status

Exit status: 0 synced (verify: the two match), 1 some entries failed, deletes were refused
(verify: differences found), 2 bad usage.`;

/** What the command line asks for, once parsed. */
type Invocation =
  | { command: 'sync'; args: { source: string; replica: string; interval: string; logFile: string }; options: RawOptions }
  | { command: 'verify'; source: string; replica: string; options: { exclude?: string[]; excludeFrom?: string[]; progress?: boolean; hashThreads?: string } }
  | { command: 'status'; source?: string; replica?: string; options: { manifest?: string; json?: boolean } };

/** The root command (the contract's four-argument sync); `addSubcommands` adds `verify` and `status`. */
export function buildProgram(chosen: (invocation: Invocation) => void = () => {}): Command {
  const program = new Command();
  program
    .name('folder-sync')
    .usage('<source> <replica> <interval> <log-file> [options]\n       folder-sync verify <source> <replica> [options]\n       folder-sync status [<source> <replica>] [--manifest <file>]')
    .description('Keep <replica> an exact one-way mirror of <source>: a pass now, then one every <interval> minutes.')
    .argument('<source>', 'folder to mirror from')
    .argument('<replica>', 'folder to mirror into (created if missing)')
    .argument('<interval>', 'minutes between passes (fractions allowed: 0.5 = 30 s)')
    .argument('<log-file>', 'file every action is appended to (the console gets the same lines)')
    // Options of the root command stay before a subcommand's name (verify has its own --exclude).
    .enablePositionalOptions()
    .optionsGroup('Passes:')
    .option('--once', 'run one pass, then exit')
    .option('--watch', 'also pass soon after the source changes (file-system events), not only every <interval>')
    .option('--watch-delay <seconds>', 'with --watch: quiet time after the last change before the pass (default 2)')
    .option('--dry-run', 'log what a pass would do, change nothing')
    .option('--checksum', 'ignore cached fingerprints: hash every file on both sides this pass')
    .option('--manifest <file>', 'where the manifest lives (default: under $XDG_STATE_HOME/folder-sync/)')
    .addOption(new Option('--no-fsync', 'do not flush copied files before renaming them (faster, less safe on power loss)'))
    .option('--hash-threads <n>', 'threads that hash when a pass must read many files (default 2)')
    .option('--copy-threads <n>', 'threads that write small copies when a pass has many (1,024) and the native addon cannot write them on libuv\'s thread pool (default 2; 0: those copies on the main thread)')
    .optionsGroup('Choosing files:')
    .option('--exclude <glob>', 'skip paths matching this micromatch glob (repeatable; !glob re-includes)', collect)
    .option('--exclude-from <file>', 'read exclude globs from a file, one a line (repeatable); a .folder-syncignore in the source is read too', collect)
    .optionsGroup('Protecting the replica:')
    .option('--max-delete <n>', 'delete nothing when a pass would delete more than n entries (or n% of the replica)')
    .option('--max-delete-bytes <size>', 'delete nothing when a pass would delete more than this many bytes (500M, 2G)')
    .option('--allow-mass-delete', 'delete even if the source looks vanished or replaced (this pass only)')
    .option('--allow-empty-replica', 'copy into a replica found empty although the manifest lists files there, e.g. a new disk (this pass only)')
    .option('--backup-dir <dir>', 'move files a pass would delete or overwrite to <dir>/<time>/<path> instead')
    .optionsGroup('Output and log:')
    .option('-q, --quiet', 'console: warnings and errors only (the log file still gets every line)')
    .addOption(new Option('--no-progress', 'no progress line (it shows only when stderr is a terminal)'))
    .option('--log-format <format>', 'text or json (JSON lines, for log shippers)', 'text')
    .option('--log-level <level>', 'error, warn, info or debug', 'info')
    .option('--log-max-size <size>', 'rotate the log file at this size (10M): name.log becomes name1.log, and so on')
    .option('--log-max-files <n>', `log files kept in all, with --log-max-size (default ${DEFAULT_LOG_FILES})`)
    .optionsGroup('Other:')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .addHelpText('after', EXAMPLES)
    .action((source: string, replica: string, interval: string, logFile: string, options: RawOptions) =>
      chosen({ command: 'sync', args: { source, replica, interval, logFile }, options }),
    )
    .exitOverride()
    .configureOutput({
      // One line for a usage error; commander already words it ("error: missing required argument…").
      outputError: (text, write) => write(`folder-sync: ${text.replace(/^error: /, '')}`),
    });
  return program;
}

export function addSubcommands(program: Command, chosen: (invocation: Invocation) => void): void {
  program.commandsGroup('Commands:');
  program
    .command('verify')
    .description('read-only audit: hash both sides fully and list every difference (missing, extra, type, content, mode, mtime, link target); exit 0 when they match, 1 when not')
    .argument('<source>', 'folder mirrored from')
    .argument('<replica>', 'its mirror')
    .option('--exclude <glob>', 'leave paths matching this glob out of the audit (repeatable)', collect)
    .option('--exclude-from <file>', 'read exclude globs from a file (repeatable); a .folder-syncignore in the source is read too', collect)
    .addOption(new Option('--no-progress', 'no progress line'))
    .option('--hash-threads <n>', 'threads that hash (default 2)')
    .helpOption('-h, --help', 'print this help')
    .action((source: string, replica: string, options: { exclude?: string[]; excludeFrom?: string[]; progress?: boolean; hashThreads?: string }) =>
      chosen({ command: 'verify', source, replica, options }),
    );
  program
    .command('status')
    .description('what a manifest knows: the pair, files and bytes recorded, the last pass (when, how long, result); without arguments, every manifest in the default folder')
    .argument('[source]', 'with <replica>: the pair whose default manifest to read')
    .argument('[replica]')
    .option('--manifest <file>', 'the manifest to read')
    .option('--json', 'print JSON')
    .helpOption('-h, --help', 'print this help')
    .action((source: string | undefined, replica: string | undefined, options: { manifest?: string; json?: boolean }) =>
      chosen({ command: 'status', source, replica, options }),
    );
  for (const command of program.commands) {
    command.exitOverride().configureOutput({ outputError: (text, write) => write(`folder-sync ${command.name()}: ${text.replace(/^error: /, '')}`) });
  }
}

/** Parses argv and runs; resolves to the exit status. */
export async function main(argv: string[], io: Io = nodeIo): Promise<number> {
  let invocation: Invocation | undefined;
  const chosen = (choice: Invocation) => (invocation = choice);
  const program = buildProgram(chosen);
  if (!isSyncOfSourceNamedLikeCommand(argv.slice(2), program)) addSubcommands(program, chosen);
  try {
    program.parse(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    throw error;
  }
  try {
    switch (invocation?.command) {
      case 'verify':
        return await runVerify(invocation);
      case 'status':
        return await runStatus(invocation);
      case 'sync': {
        const config = buildConfig(invocation.args, invocation.options);
        prepareLocations(config);
        return await run(config, io);
      }
      default:
        return EXIT_USAGE;
    }
  } catch (error) {
    flushConsole(false);
    process.stderr.write(`folder-sync: ${error instanceof UsageError ? error.message : describe(error)}\n`);
    return EXIT_USAGE;
  }
}

/** A second SIGINT: the console's held lines, the message, and the process ends at once. */
export function exitAtOnce(statusLine: StatusLine | undefined): never {
  flushConsole(false);
  statusLine?.clear();
  process.stderr.write('folder-sync: second SIGINT, exiting now\n');
  process.exit(130);
}

export { flushConsole };

/**
 * The contract's form, `<source> <replica> <interval> <log-file>`, whatever the source is called:
 * `folder-sync status rep 5 sync.log` is a sync of the folder `status` (four operands), not the
 * `status` command (two at most).
 */
function isSyncOfSourceNamedLikeCommand(args: string[], root: Command): boolean {
  if (args[0] !== 'verify' && args[0] !== 'status') return false;
  const takesValue = new Set(root.options.filter((o) => o.required || o.optional).flatMap((o) => [o.long, o.short]));
  let operands = 0;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') return operands + args.length - i - 1 >= 4;
    if (arg.startsWith('-') && arg.length > 1) {
      if (!arg.includes('=') && takesValue.has(arg)) i++;
      continue;
    }
    operands++;
  }
  return operands >= 4;
}

async function runVerify(invocation: Extract<Invocation, { command: 'verify' }>): Promise<number> {
  const { source, replica } = checkPair(invocation.source, invocation.replica);
  const excludes = readExcludes(invocation.options.excludeFrom ?? [], invocation.options.exclude ?? []);
  const hashThreads = parseHashThreads(invocation.options.hashThreads);
  const { patterns, problem } = passPatterns({ source, excludes });
  if (problem !== undefined) throw new UsageError(`${problem} (verify needs the source's ignore list)`);
  const progress = invocation.options.progress !== false && process.stderr.isTTY ? new TerminalProgress(process.stderr) : undefined;
  const stopper = new Stopper(undefined, progress);
  try {
    const result = await verify({
      source,
      replica,
      exclude: buildExclude(patterns, []),
      lists: { excludes: patterns, own: [] },
      onDifference: (d) => {
        progress?.clear();
        process.stdout.write(formatDifference(d) + '\n');
        progress?.redraw();
      },
      shouldStop: () => stopper.stopping,
      progress,
      hashThreads,
    });
    const counts = new Map<string, number>();
    for (const d of result.differences) counts.set(d.kind, (counts.get(d.kind) ?? 0) + 1);
    const hashed = `${formatCount(result.filesHashed)} files hashed (${formatBytes(result.bytesHashed)})`;
    if (stopper.stopping) {
      process.stdout.write(`verify stopped on ${stopper.signal}: ${result.differences.length} differences so far; ${hashed}\n`);
      return 1;
    }
    if (result.differences.length === 0) {
      process.stdout.write(`verify: source and replica match: ${formatCount(result.entries)} entries, ${hashed}\n`);
      return 0;
    }
    const kinds = DIFFERENCE_KINDS.filter((kind) => counts.has(kind)).map((kind) => `${counts.get(kind)} ${kind}`).join(', ');
    process.stdout.write(`verify: ${result.differences.length} differences (${kinds}) in ${formatCount(result.entries)} entries; ${hashed}\n`);
    return 1;
  } finally {
    stopper.dispose();
  }
}

async function runStatus(invocation: Extract<Invocation, { command: 'status' }>): Promise<number> {
  const { source, replica, options } = invocation;
  if (source !== undefined && replica === undefined) throw new UsageError('status takes both <source> and <replica>, or neither');
  let paths: string[];
  if (options.manifest !== undefined) paths = [resolve(options.manifest)];
  else if (source !== undefined && replica !== undefined) {
    const pair = checkPair(source, replica, true);
    paths = [defaultManifestPath(pair.source, pair.replica)];
  } else {
    const dir = dirname(defaultManifestPath('/', '/'));
    paths = listManifests(dir);
    if (paths.length === 0) {
      process.stdout.write(options.json ? '[]\n' : `no manifests in ${dir} (name one with --manifest)\n`);
      return 0;
    }
  }
  // One manifest named (by --manifest or its pair): one object, and a bad one is bad usage. The
  // default folder's: a list, where a bad manifest is reported and the others still shown.
  const listing = options.manifest === undefined && source === undefined;
  const statuses = [];
  let status = 0;
  for (const path of paths) {
    try {
      statuses.push(await readStatus(path));
    } catch (error) {
      if (!listing) throw error;
      process.stderr.write(`folder-sync: ${error instanceof UsageError ? error.message : describe(error)}\n`);
      status = 1;
    }
  }
  if (options.json) process.stdout.write(JSON.stringify(listing ? statuses : statuses[0], null, 2) + '\n');
  else if (statuses.length > 0) process.stdout.write(statuses.map((s) => formatStatus(s)).join('\n\n') + '\n');
  return status;
}

async function run(config: Config, io: Io): Promise<number> {
  let lock: Lock | undefined;
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
    return EXIT_USAGE;
  }
  let early: ReturnType<typeof passExclude> | undefined;
  let listers: Listers | undefined;
  let progress: TerminalProgress | undefined;
  let log: Logger;
  try {
    // Perf: the first pass's trees are listed from here on, while the logger loads (`startListing`).
    // Not under --watch: a folder changed after its listing and before the watcher starts would
    // wait for the interval.
    if (io === nodeIo && !(config.watch && !config.once)) {
      early = passExclude(config);
      listers = startListing(config, early.patterns);
    }
    progress = config.progress && !config.quiet && process.stderr.isTTY ? new TerminalProgress(process.stderr) : undefined;
    log = await createLogger({
      logFile: config.logFile,
      console: config.quiet ? 'quiet' : 'normal',
      format: config.logFormat,
      level: config.logLevel,
      rotate: config.logMaxSize !== undefined && config.logMaxFiles !== undefined ? { maxSize: config.logMaxSize, maxFiles: config.logMaxFiles } : undefined,
      statusLine: progress,
    });
  } catch (error) {
    await closeListers(listers);
    replicaLock?.release();
    lock?.release();
    throw error;
  }
  let status = 0;

  const stopper = new Stopper(log, progress);
  let watcher: SourceWatcher | undefined;
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
        (config.watch && !config.once ? ' and on changes' : '') +
        `${config.dryRun ? ' (dry run)' : ''}; manifest ${config.manifestPath}`,
    );
    if (config.watch && config.once) log.warn('--watch has no effect with --once: one pass is run, then folder-sync exits');
    // The first pass's selection is also what the watcher starts with (the ignore file read once).
    let selection = early ?? passExclude(config);
    if (config.logLevel === 'debug') log.debug(`lister: ${listerName({ excludes: selection.patterns, own: config.ownRelPaths })}`);
    if (config.watch && !config.once) {
      watcher = new SourceWatcher({
        root: config.source,
        exclude: selection.exclude,
        delayMs: config.watchDelayMs,
        onDue: () => stopper.wakeUp(),
        warn: (message) => log.warn(message),
        debug: (message) => log.debug(message),
      });
      watcher.start();
      log.debug(`--watch: watching ${watcher.watching} source folders`);
    }
    let passes = 0;
    for (;;) {
      const startedAt = Date.now();
      if (passes > 0) {
        selection = passExclude(config);
        for (const held of [lock, replicaLock]) {
          const problem = held?.refresh();
          if (problem !== undefined) log.warn(problem);
        }
      }
      const { patterns, problem, exclude } = selection;
      const dirs = watcher ? new Set<string>() : undefined;
      watcher?.passStarted(exclude);
      const result = await runPass({
        source: config.source,
        replica: config.replica,
        exclude,
        dryRun: config.dryRun,
        checksum: config.checksum,
        maxDelete: config.maxDelete,
        maxDeleteBytes: config.maxDeleteBytes,
        // The override is for one pass: the first one of this run.
        allowMassDelete: config.allowMassDelete && passes === 0,
        allowEmptyReplica: config.allowEmptyReplica && passes === 0,
        backupDir: config.backupDir,
        fsync: config.fsync,
        io,
        log,
        manifest,
        shouldStop: () => stopper.stopping,
        threads: io === nodeIo ? { excludes: patterns, own: config.ownRelPaths } : undefined,
        listers,
        progress,
        holdDeletes: problem,
        hashThreads: config.hashThreads,
        copyThreads: config.copyThreads,
        onSourceDir: dirs ? (relPath) => dirs.add(relPath) : undefined,
      });
      listers = undefined; // the pass closed them
      if (dirs && result.walkComplete) watcher?.reconcile(dirs);
      status = Math.max(status, result.exitStatus);
      passes++;
      if (config.once || stopper.stopping) break;
      // A pass that overran the interval is followed at once by the next, never run twice at once.
      const next = startedAt + config.intervalMinutes * 60_000;
      for (;;) {
        const due = Math.min(next, watcher?.due ?? Infinity);
        if (Date.now() >= due || stopper.stopping) break;
        await stopper.sleep(due - Date.now());
      }
      if (stopper.stopping) break;
      if (watcher?.trigger !== undefined && (watcher.due ?? Infinity) <= Date.now()) log.info(`change in the source (${show(watcher.trigger)}): passing now`);
    }
    if (stopper.signal) log.info(`stopped on ${stopper.signal}`);
  } catch (error) {
    log.error(`unexpected failure: ${describe(error)}`);
    status = Math.max(status, 1);
  } finally {
    watcher?.close();
    progress?.end();
    stopper.dispose();
    await closeListers(listers);
    replicaLock?.release();
    lock?.release();
    await log.close();
  }
  return status;
}

/**
 * The first pass's listing threads, started on its two trees once the options are read and the
 * locks taken: before the logger is created (it loads winston) and the manifest is read. Only when
 * both roots are folders already; otherwise the pass reports (or creates) them as usual.
 *
 * Perf: with winston loaded only by `createLogger`, they begin listing ~125 ms after the process
 * began instead of ~155. The pass is CPU-bound on two cores, so the gain is smaller: with the
 * early detach in `lister.ts`, the no-change pass at 100k took 0.79 s against 0.84 s (medians of 11).
 */
function startListing(config: Config, patterns: string[]): Listers | undefined {
  const isFolder = (path: string) => {
    try {
      return lstatSync(path).isDirectory();
    } catch {
      return false; // the pass says why
    }
  };
  if (!isFolder(config.source) || !isFolder(config.replica)) return undefined;
  return chooseListers(config.source, config.replica, { excludes: patterns, own: config.ownRelPaths }, { threads: true });
}

/** SIGINT/SIGTERM: stop starting work; a second SIGINT exits at once (nothing half-written: copies land by rename). */
class Stopper {
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
