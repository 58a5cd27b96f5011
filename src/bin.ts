#!/usr/bin/env node
/** The `folder-sync` command: runs the CLI and lets the process end by itself with its status. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IGNORE_FILE, plainNames, readPatternFile } from './tree/filter.js';
import { prestartListers } from './tree/thread-lister.js';
import { loadNative } from './native.js';

// Perf: a sync's two listing threads boot while the rest of the program loads (see
// `prestartListers`). Only for what looks like a sync (`verify`, `status` and help need none), and
// not when it looks like the native walker will list (see `nativeWalker`): no pattern but plain
// names in sight (options, the ignore file), no `--exclude-from` or backup dir. A pass that needs
// threads after all starts its own.
const args = process.argv.slice(2);
const looksLikeSync = args.length >= 4 && args[0] !== 'verify' && args[0] !== 'status' && !args.some((a) => /^(-h|--help|-V|--version)$/.test(a));
if (looksLikeSync && !mayWalkNatively()) prestartListers(2);

function mayWalkNatively(): boolean {
  if (args.some((a) => a.startsWith('--exclude-from') || a.startsWith('--backup-dir'))) return false;
  const patterns: string[] = [];
  args.forEach((a, i) => {
    if (a === '--exclude' && i + 1 < args.length) patterns.push(args[i + 1]);
    else if (a.startsWith('--exclude=')) patterns.push(a.slice('--exclude='.length));
  });
  try {
    patterns.push(...readPatternFile(readFileSync(join(args[0], IGNORE_FILE), 'utf8'))); // (the source, usually)
  } catch {
    // none (or unreadable: the pass says so)
  }
  return plainNames(patterns) !== undefined && loadNative() !== undefined;
}

const { main, flushConsole } = await import('./cli/main.js');

// A closed pipe (`folder-sync … | head -1`) must not end a sync with a stack trace: the console's
// lines are dropped from then on, the log file keeps them all.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}

main(process.argv).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    flushConsole(false);
    process.stderr.write(`folder-sync: unexpected failure: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
