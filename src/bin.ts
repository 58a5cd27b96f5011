#!/usr/bin/env node
/** The `folder-sync` command: runs the CLI and lets the process end by itself with its status. */
import { main } from './cli.js';

main(process.argv).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    process.stderr.write(`folder-sync: unexpected failure: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
