#!/usr/bin/env node
/** The `folder-sync` command: runs the CLI and lets the process end by itself with its status. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { IGNORE_FILE } from './filter.js';
import { nativeWalker, prestartListers } from './lister.js';

// Perf: a sync's two listing threads boot while the rest of the program loads (see
// `prestartListers`). Only for what looks like a sync (`verify`, `status` and help need none), and
// not when it looks like the native walker will list (see `nativeWalker`): no exclude pattern,
// ignore file or backup dir in sight. A pass that needs threads after all starts its own.
const args = process.argv.slice(2);
const looksLikeSync = args.length >= 4 && args[0] !== 'verify' && args[0] !== 'status' && !args.some((a) => /^(-h|--help|-V|--version)$/.test(a));
const mayWalkNatively = () =>
  !args.some((a) => a.startsWith('--exclude') || a.startsWith('--backup-dir')) && !existsSync(join(args[0], IGNORE_FILE)) && nativeWalker({ excludes: [], own: [] }) !== undefined;
if (looksLikeSync && !mayWalkNatively()) prestartListers(2);

const { main } = await import('./cli.js');

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
    process.stderr.write(`folder-sync: unexpected failure: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
