/**
 * Errors: bad usage (exit 2), a failed step on one entry, and the outcomes that say "the tree moved
 * under us" (a warning: the next pass looks again), which every replica reports alike.
 */

/** Bad usage or configuration: reported in one line, exit 2, nothing touched. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Another folder-sync holds the lock on this manifest. Exit 2. */
export class LockedError extends UsageError {
  override name = 'LockedError';
}

/** A step on one entry failed; the message names the step and the path, `cause` keeps the original. */
export class StepError extends Error {
  override name = 'StepError';
  readonly code: string | undefined;
  constructor(
    readonly step: string,
    relPath: string,
    cause: unknown,
  ) {
    super(`${step} ${show(relPath)}: ${describe(cause)}`, { cause });
    this.code = errorCode(cause);
  }
}

/** The pass was asked to stop in the middle of an operation; what it had begun is undone. */
export class Interrupted extends Error {
  override name = 'Interrupted';
}

/** The source changed while we read it: not an error, the next pass copies the settled file. */
export class ChangedWhileReading extends Error {
  override name = 'ChangedWhileReading';
  constructor(readonly relPath: string) {
    super(`${relPath} changed while it was being read; it will be copied next pass`);
  }
}

/**
 * A replica file that changed since the walk saw it, found just before its metadata was fixed (or
 * it was moved): left as it is (the record made after the fix would vouch for content nobody read).
 */
export class ChangedInReplica extends Error {
  override name = 'ChangedInReplica';
  constructor(readonly relPath: string) {
    super(`${relPath} changed in the replica during the pass`);
  }
}

/** A move whose rename failed: the file is still where it was. */
export class RenameFailed extends StepError {
  override name = 'RenameFailed';
}

/** The short `CODE: message` text of an error, without a stack. */
export function describe(error: unknown): string {
  if (error instanceof StepError) return error.message;
  if (error instanceof Error) {
    const code = errorCode(error);
    // Node's fs messages already start with the code ("ENOENT: no such file…").
    return code && !error.message.startsWith(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

export function errorCode(error: unknown): string | undefined {
  if (error instanceof StepError) return error.code;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** "The tree moved under us": the entry vanished or a parent stopped being a folder. */
export function isVanished(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * "The entry changed type under us", a race like a file vanishing: a path opened without following
 * links is now a link (ELOOP), a file read is now a folder (EISDIR), a link read is no longer a link
 * (EINVAL from readlink).
 */
export function isTypeChanged(error: unknown): boolean {
  const code = errorCode(error);
  if (code === 'ELOOP' || code === 'EISDIR') return true;
  return code === 'EINVAL' && ((error as { syscall?: string }).syscall === 'readlink' || (error instanceof StepError && error.step === 'reading link'));
}

export const EXIT_USAGE = 2;

/**
 * A path as it appears in a log line: control characters (a newline in a file name) escaped, so
 * every action stays on one line, and each byte of a name that is not UTF-8 (held as a lone
 * surrogate, see `tree/names.ts`) shown as `\xe9`. A backslash is shown doubled, so both read back.
 */
export function show(relPath: string): string {
  // eslint-disable-next-line no-control-regex
  return relPath === '' ? '.' : relPath.replace(/[\x00-\x1f\x7f\\]|(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g, escapeChar);
}

function escapeChar(char: string): string {
  switch (char) {
    case '\n':
      return '\\n';
    case '\t':
      return '\\t';
    case '\r':
      return '\\r';
    case '\\':
      return '\\\\';
    default: {
      const code = char.charCodeAt(0);
      return '\\x' + (code >= 0xdc80 ? code - 0xdc00 : code).toString(16).padStart(2, '0');
    }
  }
}

