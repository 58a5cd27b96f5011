/** The command line's words: the commander program, its options in help groups, and the `verify` and `status` subcommands. */
import { Command, Option } from 'commander';
import { DEFAULT_LOG_FILES } from '../log/log.js';
import { VERSION } from '../package.js';
import type { RawOptions } from './config.js';

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
export type Invocation =
  | { command: 'sync'; args: { source: string; replica: string; interval: string; logFile: string }; options: RawOptions }
  | { command: 'verify'; source: string; replica: string; options: VerifyFlags }
  | { command: 'status'; source?: string; replica?: string; options: { manifest?: string; json?: boolean } };

/** `verify`'s options. */
export interface VerifyFlags {
  exclude?: string[];
  excludeFrom?: string[];
  progress?: boolean;
  hashThreads?: string;
  hardLinks?: boolean;
  sshIdentity?: string;
  sshKnownHosts?: string;
  sshConfig?: string;
}

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
    .option('--hard-links', 'files hard-linked together in the source are hard-linked together in the replica (one copy, the rest linked), like rsync -H')
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
    .option('--ssh-identity <file>', 'a replica over SFTP: the private key to log in with (default: the SSH agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa)')
    .option('--ssh-known-hosts <file>', "a replica over SFTP: the known-hosts file the server's key is checked against (default ~/.ssh/known_hosts)")
    .option('--ssh-config <file>', 'a replica over SFTP: the OpenSSH client config read for host aliases (default ~/.ssh/config)')
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
    .option('--hard-links', 'also report names hard-linked together on one side and not on the other')
    .option('--ssh-identity <file>', 'a replica over SFTP: the private key to log in with')
    .option('--ssh-known-hosts <file>', "a replica over SFTP: the known-hosts file the server's key is checked against")
    .option('--ssh-config <file>', 'a replica over SFTP: the OpenSSH client config read for host aliases')
    .helpOption('-h, --help', 'print this help')
    .action((source: string, replica: string, options: VerifyFlags) =>
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

/**
 * The contract's form, `<source> <replica> <interval> <log-file>`, whatever the source is called:
 * `folder-sync status rep 5 sync.log` is a sync of the folder `status` (four operands), not the
 * `status` command (two at most).
 */
export function isSyncOfSourceNamedLikeCommand(args: string[], root: Command): boolean {
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
