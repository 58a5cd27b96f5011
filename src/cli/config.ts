/**
 * From command-line values to a checked configuration. Everything here that can fail is bad usage
 * (exit 2), and it is all checked before anything is created: a bad invocation touches nothing.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UsageError, describe, isVanished } from '../errors.js';
import { IGNORE_FILE, buildExclude, readPatternFile, type ExcludeMatcher, type OwnPath } from '../tree/filter.js';
import { parseRemote, type RemoteAddress } from '../replica/sftp/address.js';
import type { SshOptions } from '../replica/sftp/connect.js';
import { DEFAULT_LOG_FILES, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../log/log.js';

export interface RawOptions {
  once?: boolean;
  manifest?: string;
  exclude?: string[];
  dryRun?: boolean;
  checksum?: boolean;
  maxDelete?: string;
  maxDeleteBytes?: string;
  allowMassDelete?: boolean;
  allowEmptyReplica?: boolean;
  backupDir?: string;
  fsync?: boolean;
  excludeFrom?: string[];
  quiet?: boolean;
  progress?: boolean;
  logFormat?: string;
  logLevel?: string;
  logMaxSize?: string;
  logMaxFiles?: string;
  watch?: boolean;
  watchDelay?: string;
  hashThreads?: string;
  copyThreads?: string;
  hardLinks?: boolean;
  sshIdentity?: string;
  sshKnownHosts?: string;
  sshConfig?: string;
}

export interface Config {
  /** Real, absolute path of the source folder. */
  source: string;
  /** Absolute path of the replica folder (symlinks in existing parents resolved); for a remote one, as given. */
  replica: string;
  /** A replica on another machine (`host:path`, `sftp://…`), and how to reach it. */
  remote: Remote | undefined;
  intervalMinutes: number;
  logFile: string;
  manifestPath: string;
  once: boolean;
  dryRun: boolean;
  checksum: boolean;
  /** `--max-delete n` or `--max-delete n%` (of the replica's entries). */
  maxDelete: DeleteLimit | undefined;
  maxDeleteBytes: number | undefined;
  allowMassDelete: boolean;
  /** `--allow-empty-replica`: copy into a replica found empty although the manifest lists files there (first pass only). */
  allowEmptyReplica: boolean;
  /** Absolute; files a pass would delete or overwrite are moved under `<backupDir>/<time>/`. */
  backupDir: string | undefined;
  fsync: boolean;
  /** `--exclude-from` files' patterns, then `--exclude`'s (the source's ignore file goes first, per pass). */
  excludes: string[];
  exclude: ExcludeMatcher;
  quiet: boolean;
  /** A progress line when stderr is a terminal (`--no-progress`: never). */
  progress: boolean;
  logFormat: LogFormat;
  logLevel: LogLevel;
  logMaxSize: number | undefined;
  logMaxFiles: number | undefined;
  /** `--watch`: a pass soon after the source changes, besides the interval's. */
  watch: boolean;
  /** Quiet time after the last change before a watch pass starts, in ms. */
  watchDelayMs: number;
  /** Threads that hash when a pass must read many files. */
  hashThreads: number | undefined;
  /** Threads that write small copies when a pass has many (0: the main thread writes them). */
  copyThreads: number | undefined;
  /** `--hard-links`: files hard-linked together in the source are so in the replica. */
  hardLinks: boolean;
  /**
   * Our own files (log, manifest, backup dir) that live inside the source or
   * replica, relative to the root holding them: never synced (what the exclude matcher tests).
   */
  ownRelPaths: OwnPath[];
}

export function parseInterval(text: string): number {
  const value = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(value) || value <= 0) {
    throw new UsageError(`interval must be a positive number of minutes (like 5 or 0.5), got '${text}'`);
  }
  return value;
}

export type DeleteLimit = { count: number } | { percent: number };

export function parseMaxDelete(text: string | undefined): DeleteLimit | undefined {
  if (text === undefined) return undefined;
  const percent = /^\s*(\d+(\.\d+)?)\s*%\s*$/.exec(text);
  if (percent) {
    const value = Number(percent[1]);
    if (value > 100) throw new UsageError(`--max-delete percentage must be between 0% and 100%, got '${text}'`);
    return { percent: value };
  }
  if (!/^\s*\d+\s*$/.test(text)) throw new UsageError(`--max-delete must be a whole number ≥ 0 or a percentage like 10%, got '${text}'`);
  return { count: Number(text) };
}

const SIZE_UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50 };
const DECIMAL_UNITS: Record<string, number> = { K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15 };

/** `500M`, `2G`, `1.5T`, `4096` (rsync's convention: K/M/G = 1024-based, KB/MB/GB = 1000-based, KiB… = 1024). */
export function parseSize(text: string, option: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?B)?\s*$/i.exec(text);
  if (!m || (m[2] === '' && m[3] !== undefined && m[3].toUpperCase() !== 'B')) {
    throw new UsageError(`${option} must be a size like 500M, 2G or 1048576, got '${text}'`);
  }
  const unit = m[2].toUpperCase();
  const decimal = m[3] !== undefined && m[3].toUpperCase() === 'B' && unit !== '';
  return Math.floor(Number(m[1]) * (decimal ? DECIMAL_UNITS[unit] : SIZE_UNITS[unit]));
}

/** The manifest's default home: one file per source/replica pair under the XDG state folder. */
export function defaultManifestPath(source: string, replica: string, env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_STATE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(env.HOME || os.homedir(), '.local', 'state');
  const id = createHash('sha256').update(`${source}\0${replica}`).digest('hex').slice(0, 12);
  const name = (path.basename(replica) || 'root').replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 40);
  return path.join(base, 'folder-sync', `${name}-${id}.json`);
}

export function buildConfig(
  args: { source: string; replica: string; interval: string; logFile: string },
  raw: RawOptions,
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const intervalMinutes = parseInterval(args.interval);
  const maxDelete = parseMaxDelete(raw.maxDelete);
  const maxDeleteBytes = raw.maxDeleteBytes === undefined ? undefined : parseSize(raw.maxDeleteBytes, '--max-delete-bytes');
  const excludes = readExcludes(raw.excludeFrom ?? [], raw.exclude ?? []);
  const logFormat = oneOf(raw.logFormat ?? 'text', LOG_FORMATS, '--log-format');
  const logLevel = oneOf(raw.logLevel ?? 'info', LOG_LEVELS, '--log-level');
  const logMaxSize = raw.logMaxSize === undefined ? undefined : parseSize(raw.logMaxSize, '--log-max-size');
  if (logMaxSize !== undefined && logMaxSize < 1024) throw new UsageError(`--log-max-size must be at least 1K, got '${raw.logMaxSize}'`);
  if (raw.logMaxFiles !== undefined && logMaxSize === undefined) throw new UsageError('--log-max-files needs --log-max-size (rotation is by size)');
  // Resolved here once: set exactly when rotation is on.
  const logMaxFiles = logMaxSize === undefined ? undefined : raw.logMaxFiles === undefined ? DEFAULT_LOG_FILES : parseCount(raw.logMaxFiles, '--log-max-files', 2);
  const watchDelayMs = raw.watchDelay === undefined ? 2000 : Math.round(parseSeconds(raw.watchDelay, '--watch-delay') * 1000);

  const source = checkSource(args.source);
  const remote = remoteReplica(args.replica, raw);
  const replica = remote ? args.replica : resolveReplica(args.replica);
  if (!remote) checkOverlap(source, replica);
  if (remote && raw.hardLinks) throw new UsageError('--hard-links needs a local replica (SFTP reports no inode numbers to tell which replica files are linked)');

  const logFile = path.resolve(args.logFile);
  checkWritableFile(logFile, 'log file');
  const manifestPath = raw.manifest !== undefined ? path.resolve(raw.manifest) : defaultManifestPath(source, replica, env);
  if (!raw.dryRun) checkWritableFile(manifestPath, 'manifest location');

  if (logFile === manifestPath || logFile.startsWith(manifestPath + '.')) {
    throw new UsageError(`log file '${logFile}' would overwrite the manifest or its files: choose another log file or --manifest`);
  }
  // (A remote replica's backup dir is a folder on its server, as given: absolute, or relative to the login folder.)
  const backupDir = raw.backupDir === undefined ? undefined : remote ? raw.backupDir.replace(/\/+$/, '') : checkBackupDir(raw.backupDir, source, replica);
  // With rotation, the log's rotated files (`sync1.log`…) are ours too.
  const rotated = logMaxFiles === undefined ? 0 : logMaxFiles - 1;
  const own: OwnPath[] = [
    ...relInside(logFile, remote ? [source] : [source, replica]).map((rel): OwnPath => ({ kind: 'log', path: rel, rotated })),
    ...relInside(manifestPath, remote ? [source] : [source, replica]).map((rel): OwnPath => ({ kind: 'manifest', path: rel })),
  ];
  // The backup dir is one exact path (and what is under it), reserved in the replica only.
  if (remote && backupDir !== undefined && (backupDir + '/').startsWith(remote.address.path.replace(/\/+$/, '') + '/')) {
    throw new UsageError(`backup dir '${backupDir}' is inside the replica '${args.replica}': give a folder beside it on the server`);
  }
  if (!remote && backupDir !== undefined && inside(replica, backupDir)) own.push({ kind: 'backup', path: relInside(backupDir, [replica])[0] });
  const exclude = buildExclude(excludes, own);

  return {
    source,
    replica,
    remote,
    intervalMinutes,
    logFile,
    manifestPath,
    once: raw.once === true,
    dryRun: raw.dryRun === true,
    checksum: raw.checksum === true,
    maxDelete,
    maxDeleteBytes,
    allowMassDelete: raw.allowMassDelete === true,
    allowEmptyReplica: raw.allowEmptyReplica === true,
    backupDir,
    fsync: raw.fsync !== false,
    excludes,
    exclude,
    quiet: raw.quiet === true,
    progress: raw.progress !== false,
    logFormat,
    logLevel,
    logMaxSize,
    logMaxFiles,
    watch: raw.watch === true,
    watchDelayMs,
    hashThreads: parseHashThreads(raw.hashThreads),
    copyThreads: parseCopyThreads(raw.copyThreads),
    hardLinks: raw.hardLinks === true,
    ownRelPaths: own,
  };
}

function oneOf<T extends string>(value: string, allowed: readonly T[], option: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${option} must be one of ${allowed.join(', ')}, got '${value}'`);
  return value as T;
}

/** A whole number ≥ `min`. */
function parseCount(text: string, option: string, min: number): number {
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < min) throw new UsageError(`${option} must be a whole number ≥ ${min}, got '${text}'`);
  return Number(text);
}

/** `--hash-threads`: 1 to 64. */
export function parseHashThreads(text: string | undefined): number | undefined {
  return parseThreads(text, '--hash-threads', 1);
}

/** `--copy-threads`: 0 to 64. */
export function parseCopyThreads(text: string | undefined): number | undefined {
  return parseThreads(text, '--copy-threads', 0);
}

function parseThreads(text: string | undefined, option: string, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = parseCount(text, option, min);
  if (n > 64) throw new UsageError(`${option} must be between ${min} and 64, got '${text}'`);
  return n;
}

function parseSeconds(text: string, option: string): number {
  const value = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(value) || value < 0) throw new UsageError(`${option} must be a number of seconds ≥ 0, got '${text}'`);
  return value;
}

/** `--exclude-from` files' patterns, in order, then `--exclude`'s: later ones win (`!`). */
export function readExcludes(excludeFrom: readonly string[], exclude: readonly string[]): string[] {
  return [...excludeFrom.flatMap((file) => readExcludeFrom(file)), ...exclude];
}

/** A source and replica for `verify` or `status`: both resolved; the source must be a folder (the replica too, unless `replicaMayBeMissing`). */
export function checkPair(
  sourceGiven: string,
  replicaGiven: string,
  replicaMayBeMissing = false,
  ssh: Pick<RawOptions, 'sshIdentity' | 'sshKnownHosts' | 'sshConfig'> = {},
): { source: string; replica: string; remote?: Remote } {
  const source = checkSource(sourceGiven);
  // (A remote replica is looked at when it is opened: `verify` connects.)
  const remote = remoteReplica(replicaGiven, ssh);
  if (remote) return { source, replica: replicaGiven, remote };
  const replica = resolveReplica(replicaGiven);
  if (!replicaMayBeMissing && !fs.existsSync(replica)) throw new UsageError(`replica '${replicaGiven}' does not exist`);
  checkOverlap(source, replica);
  return { source, replica };
}

function readExcludeFrom(file: string): string[] {
  try {
    return readPatternFile(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UsageError(`--exclude-from '${file}': ${describe(error)}`);
  }
}

/**
 * The patterns of one pass: the source's `.folder-syncignore` when it has one (read again every
 * pass: it may be edited while we run), then the configuration's.
 *
 * Safety: an ignore file that exists but cannot be read leaves `problem` set: without its
 * patterns, paths it keeps out of the sync would look deleted from the source, so the caller
 * must hold this pass's deletes.
 */
export function passPatterns(config: Pick<Config, 'source' | 'excludes'>): { patterns: string[]; problem?: string } {
  const file = ignoreFile(config.source);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (isVanished(error)) return { patterns: config.excludes };
    return { patterns: config.excludes, problem: `reading ${file}: ${describe(error)}` };
  }
  return { patterns: [...readPatternFile(text), ...config.excludes] };
}

function ignoreFile(source: string): string {
  return path.join(source, IGNORE_FILE);
}

/** `passPatterns` with the pass's matcher built from them (the configuration's own when no ignore file). */
export function passExclude(config: Config): { patterns: string[]; problem?: string; exclude: ExcludeMatcher } {
  const { patterns, problem } = passPatterns(config);
  if (patterns === config.excludes) return { patterns, problem, exclude: config.exclude };
  try {
    return { patterns, problem, exclude: buildExclude(patterns, config.ownRelPaths) };
  } catch (error) {
    // A pattern micromatch refuses (one over 64 KiB) is the ignore file's: treated like an
    // unreadable one (the pass runs without it and deletes nothing), never the end of the run.
    return { patterns: config.excludes, problem: `reading ${ignoreFile(config.source)}: ${describe(error)}`, exclude: config.exclude };
  }
}

function checkSource(given: string): string {
  let real: string;
  try {
    real = fs.realpathSync(given);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `source '${given}' does not exist` : `source '${given}': ${describe(error)}`);
  }
  if (!fs.statSync(real).isDirectory()) throw new UsageError(`source '${given}' is not a folder`);
  return real;
}

/** A replica on another machine and how to reach it. */
export interface Remote {
  address: RemoteAddress;
  ssh: SshOptions;
}

/** The replica argument's remote address, if it names one (`host:path`, `sftp://…`); `--ssh-*` options need one. */
function remoteReplica(given: string, raw: Pick<RawOptions, 'sshIdentity' | 'sshKnownHosts' | 'sshConfig'>): Remote | undefined {
  const address = parseRemote(given);
  const ssh: SshOptions = {
    identity: raw.sshIdentity === undefined ? undefined : readableFile(raw.sshIdentity, '--ssh-identity'),
    knownHosts: raw.sshKnownHosts === undefined ? undefined : path.resolve(raw.sshKnownHosts),
    config: raw.sshConfig === undefined ? undefined : readableFile(raw.sshConfig, '--ssh-config'),
  };
  if (address === undefined) {
    const options = ['--ssh-identity', '--ssh-known-hosts', '--ssh-config'].filter((_, i) => [raw.sshIdentity, raw.sshKnownHosts, raw.sshConfig][i] !== undefined);
    if (options.length > 0) throw new UsageError(`${options.join(', ')}: the replica '${given}' is a local folder (a replica over SFTP is written host:path or sftp://host/path)`);
    return undefined;
  }
  return { address, ssh };
}

function readableFile(given: string, option: string): string {
  const file = path.resolve(given);
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (error) {
    throw new UsageError(`${option} '${given}': ${describe(error)}`);
  }
  return file;
}

/** The replica's absolute path with symlinks in its existing part resolved (it may not exist yet). */
function resolveReplica(given: string, what = 'replica'): string {
  const absolute = path.resolve(given);
  const missing: string[] = [];
  let existing = absolute;
  for (;;) {
    try {
      const real = fs.realpathSync(existing);
      const stats = fs.statSync(real);
      if (!stats.isDirectory()) {
        throw new UsageError(
          missing.length === 0 ? `${what} '${given}' exists and is not a folder` : `${what} '${given}': '${existing}' is not a folder`,
        );
      }
      return path.join(real, ...missing.reverse());
    } catch (error) {
      if (error instanceof UsageError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || path.dirname(existing) === existing) throw new UsageError(`${what} '${given}': ${describe(error)}`);
      missing.push(path.basename(existing));
      existing = path.dirname(existing);
    }
  }
}

function inside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..' + path.sep) && rel !== '..' && !path.isAbsolute(rel);
}

function checkOverlap(source: string, replica: string): void {
  if (source === replica) throw new UsageError(`source and replica are the same folder (${source})`);
  if (inside(source, replica)) throw new UsageError(`replica ${replica} is inside source ${source}`);
  if (inside(replica, source)) throw new UsageError(`source ${source} is inside replica ${replica}`);
}

/**
 * `--backup-dir`: never inside the source (it would be mirrored, and mirrored again); inside the
 * replica it is left out of the sync like our other files; on the replica's filesystem, since
 * backing up is a rename.
 */
function checkBackupDir(given: string, source: string, replica: string): string {
  const dir = resolveReplica(given, 'backup dir').replace(/\/$/, '');
  if (dir === source || inside(source, dir)) throw new UsageError(`backup dir ${dir} is inside source ${source}`);
  if (dir === replica) throw new UsageError(`backup dir ${dir} is the replica itself`);
  if (inside(dir, replica)) throw new UsageError(`replica ${replica} is inside backup dir ${dir}`);
  if (deviceOf(dir) !== deviceOf(replica)) {
    throw new UsageError(`backup dir ${dir} is not on the replica's filesystem (backups are made by rename)`);
  }
  return dir;
}

/** The device of a path, or of its nearest existing parent. */
function deviceOf(absPath: string): number {
  for (let dir = absPath; ; dir = path.dirname(dir)) {
    try {
      return fs.statSync(dir).dev;
    } catch {
      if (path.dirname(dir) === dir) return -1;
    }
  }
}

/**
 * A file we will create or append to: it must not be a folder, and the nearest existing folder on
 * its way must be writable. Checked without creating anything.
 */
function checkWritableFile(file: string, what: string): void {
  try {
    const stats = fs.statSync(file);
    if (stats.isDirectory()) throw new UsageError(`${what} '${file}' is a folder`);
    fs.accessSync(file, fs.constants.W_OK);
    return;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new UsageError(`${what} '${file}' is not writable: ${describe(error)}`);
  }
  let dir = path.dirname(file);
  for (;;) {
    try {
      const stats = fs.statSync(dir);
      if (!stats.isDirectory()) throw new UsageError(`${what} '${file}' cannot be created: '${dir}' is not a folder`);
      fs.accessSync(dir, fs.constants.W_OK);
      return;
    } catch (error) {
      if (error instanceof UsageError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || path.dirname(dir) === dir) {
        throw new UsageError(`${what} '${file}' cannot be created: ${describe(error)}`);
      }
      dir = path.dirname(dir);
    }
  }
}

/** `file` relative to whichever of `roots` holds it (POSIX), for each root that does. */
function relInside(file: string, roots: string[]): string[] {
  return roots.filter((root) => inside(root, file)).map((root) => path.relative(root, file).split(path.sep).join('/'));
}

/** Creates what the configuration needs to exist (log and manifest folders): after all checks. */
export function prepareLocations(config: Config): void {
  try {
    fs.mkdirSync(path.dirname(config.logFile), { recursive: true });
    fs.closeSync(fs.openSync(config.logFile, 'a'));
  } catch (error) {
    throw new UsageError(`log file '${config.logFile}' is not writable: ${describe(error)}`);
  }
  if (config.dryRun) return;
  try {
    fs.mkdirSync(path.dirname(config.manifestPath), { recursive: true });
  } catch (error) {
    throw new UsageError(`manifest location '${config.manifestPath}' is not writable: ${describe(error)}`);
  }
}
