/**
 * The command line: parse (commander, `program.ts`), check (`config.ts`), then run: a sync
 * (`loop.ts`), `verify` or `status` (`commands.ts`). The exit status is decided once, here, and
 * the process ends by itself once the log is flushed.
 */
import { CommanderError } from 'commander';
import { EXIT_USAGE, UsageError, describe } from '../errors.js';
import { flushConsole } from '../log/log.js';
import { nodeIo, type Io } from '../replica/local/io.js';
import { runStatus, runVerify } from './commands.js';
import { buildConfig, prepareLocations } from './config.js';
import { runSync } from './loop.js';
import { addSubcommands, buildProgram, isSyncOfSourceNamedLikeCommand, type Invocation } from './program.js';

export { exitAtOnce } from './stopper.js';
export { flushConsole };

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
        return await runSync(config, io);
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
