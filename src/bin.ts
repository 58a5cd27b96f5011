#!/usr/bin/env node
/** The `folder-sync` command: runs the CLI and lets the process end by itself with its status. */
import { main } from './cli.js';

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
