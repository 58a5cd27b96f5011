/**
 * A sync: the locks, the logger, the manifest, then a pass now and one every `interval` minutes
 * (woken early by the watcher under `--watch`) until SIGINT/SIGTERM, or one pass with `--once`.
 */
import { createHash } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, EXIT_USAGE, show, UsageError } from '../errors.js';
import { createLogger, type Logger } from '../log/log.js';
import { TerminalProgress } from '../log/progress.js';
import { Manifest } from '../manifest/manifest.js';
import { VERSION } from '../package.js';
import { runPass } from '../pass/index.js';
import { replicaName } from '../replica/choose.js';
import { nodeIo, type Io } from '../replica/local/io.js';
import { chooseListers, listerName } from '../tree/choose.js';
import { closeListers, type Listers } from '../tree/lister.js';
import { passExclude, type Config } from './config.js';
import { acquireLock, type Lock } from './lock.js';
import { Stopper } from './stopper.js';
import { SourceWatcher } from '../watch/watcher.js';
import { Memory, memoryLine } from './memory.js';
import { PassKinds } from './passes.js';

export async function runSync(config: Config, io: Io): Promise<number> {
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
    if (config.logLevel === 'debug') {
      log.debug(`lister: ${listerName({ excludes: selection.patterns, own: config.ownRelPaths })}`);
      log.debug(`replica: ${replicaName(config.remote)}`);
    }
    if (config.watch && !config.once) {
      watcher = new SourceWatcher({
        root: config.source,
        exclude: selection.exclude,
        delayMs: config.watchDelayMs,
        onDue: () => stopper.wakeUp(),
        warn: (message) => log.warn(message),
        debug: (message) => log.debug(message),
        fsWatch: process.env.FOLDER_SYNC_WATCH === 'fs.watch',
      });
      watcher.start();
      log.debug(`--watch: watching ${watcher.watching} source folders (${watcher.name})`);
    }
    const memory = new Memory();
    const kinds = new PassKinds(config.intervalMinutes * 60_000, config.source, config.replica, watcher);
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
      const kind = kinds.next(startedAt, patterns, exclude);
      if (watcher && 'full' in kind) log.info(`full pass: ${kind.full}`);
      const result = await runPass({
        source: config.source,
        replica: config.replica,
        remote: config.remote,
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
        hardLinks: config.hardLinks,
        onSourceDir: dirs ? (relPath) => dirs.add(relPath) : undefined,
        scope: 'scope' in kind ? kind.scope : undefined,
        replicaEntriesHint: kinds.replicaEntries,
      });
      listers = undefined; // the pass closed them
      kinds.done(kind, startedAt, result.replicaEntries);
      if (dirs && (result.walkComplete || 'scope' in kind)) watcher?.reconcile(dirs, 'full' in kind);
      status = Math.max(status, result.exitStatus);
      passes++;
      if (config.once || stopper.stopping) break;
      // (A pass that read or changed much leaves its garbage for the next to collect: long.)
      const collected = memory.afterPass();
      if (config.logLevel === 'debug') log.debug(`memory between passes: ${memoryLine()}${collected ? ` (collected in ${collected} ms)` : ''}`);
      // A pass that overran the interval is followed at once by the next, never run twice at once.
      for (;;) {
        const due = Math.min(kinds.nextFullAt, watcher?.due ?? Infinity);
        if (Date.now() >= due || stopper.stopping) break;
        await stopper.sleep(due - Date.now());
      }
      if (stopper.stopping) break;
      if (watcher?.trigger !== undefined && (watcher.due ?? Infinity) <= Date.now()) log.info(`change in the source (${show(watcher.trigger)}): passing now`);
    }
    if (stopper.signal) log.info(`stopped on ${stopper.signal}`);
  } catch (error) {
    // What the user must fix (a remote replica's unknown host key, a refused login): exit 2.
    if (error instanceof UsageError) {
      log.error(error.message);
      status = EXIT_USAGE;
    } else {
      log.error(`unexpected failure: ${describe(error)}`);
      status = Math.max(status, 1);
    }
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
 * early detach in `batches.ts`, the no-change pass at 100k took 0.79 s against 0.84 s (medians of 11).
 */
function startListing(config: Config, patterns: string[]): Listers | undefined {
  const isFolder = (path: string) => {
    try {
      return lstatSync(path).isDirectory();
    } catch {
      return false; // the pass says why
    }
  };
  if (config.remote || !isFolder(config.source) || !isFolder(config.replica)) return undefined;
  return chooseListers(config.source, config.replica, { excludes: patterns, own: config.ownRelPaths }, { threads: true });
}
