/** `folder-sync verify` and `folder-sync status`: their options checked, the work done (`src/commands/`), the lines printed. */
import { dirname, resolve } from 'node:path';
import { formatStatus, listManifests, readStatus } from '../commands/status.js';
import { DIFFERENCE_KINDS, formatDifference, verify } from '../commands/verify.js';
import { UsageError, describe } from '../errors.js';
import { TerminalProgress } from '../log/progress.js';
import { formatBytes, formatCount } from '../log/units.js';
import { buildExclude } from '../tree/filter.js';
import { checkPair, defaultManifestPath, parseHashThreads, passPatterns, readExcludes } from './config.js';
import type { Invocation } from './program.js';
import { Stopper } from './stopper.js';

export async function runVerify(invocation: Extract<Invocation, { command: 'verify' }>): Promise<number> {
  const { source, replica, remote } = checkPair(invocation.source, invocation.replica, false, invocation.options);
  if (remote && invocation.options.hardLinks) throw new UsageError('--hard-links needs a local replica (SFTP reports no inode numbers)');
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
      hardLinks: invocation.options.hardLinks === true,
      remote,
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

export async function runStatus(invocation: Extract<Invocation, { command: 'status' }>): Promise<number> {
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
