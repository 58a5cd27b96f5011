/**
 * One folder-sync at a time per manifest: a lock file `P.lock` beside the manifest holding the
 * holder's pid. A lock whose pid is no longer running (kill -9, power cut) is stale and taken over.
 */
import * as fs from 'node:fs';
import { LockedError, describe } from '../errors.js';

export interface Lock {
  readonly path: string;
  release(): void;
  /**
   * Before each pass of a long run: the lock file's times set to now (so a cleaner of old files in
   * /tmp, systemd-tmpfiles' 10 days, never takes it), and the file made again if it was removed.
   * Returns a warning when another process holds it now.
   */
  refresh(): string | undefined;
}

/**
 * Takes `<manifestPath>.lock`, or `lockPath` when given; `what` names the thing locked in messages
 * (`manifest /x/m.json`, `replica /mnt/r`).
 */
export function acquireLock(manifestPath: string, options: { lockPath?: string; what?: string } = {}): Lock {
  const lockPath = options.lockPath ?? manifestPath + '.lock';
  const what = options.what ?? `manifest ${manifestPath}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeLock(lockPath);
      return {
        path: lockPath,
        refresh() {
          const holder = readPid(lockPath);
          try {
            if (holder === process.pid) {
              const now = new Date();
              fs.utimesSync(lockPath, now, now);
            } else if (holder === undefined || !isRunning(holder)) {
              if (holder !== undefined) fs.unlinkSync(lockPath);
              writeLock(lockPath);
            } else {
              return `another folder-sync (pid ${holder}) took the lock ${lockPath} (its file was removed meanwhile): ${what} may be written by both`;
            }
          } catch (error) {
            return `cannot keep the lock ${lockPath}: ${describe(error)}`;
          }
          return undefined;
        },
        release() {
          try {
            // Safety: only remove the lock if it is still ours.
            if (readPid(lockPath) === process.pid) fs.unlinkSync(lockPath);
          } catch {
            // already gone
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new LockedError(`cannot create lock file ${lockPath}: ${describe(error)}`);
      }
    }
    const holder = readPid(lockPath);
    if (holder !== undefined && holder !== process.pid && isRunning(holder)) {
      throw new LockedError(`another folder-sync (pid ${holder}) is using ${what} (lock file ${lockPath})`);
    }
    if (holder === undefined && isFresh(lockPath)) {
      // Another process has just created it and not yet written its pid.
      throw new LockedError(`another folder-sync is starting on ${what} (lock file ${lockPath})`);
    }
    // Stale (dead holder): take it over.
    try {
      fs.unlinkSync(lockPath);
    } catch {
      // someone else removed it first; try again
    }
  }
  throw new LockedError(`cannot take the lock ${lockPath}: another folder-sync keeps taking it`);
}

/** Creates `lockPath` (failing if it exists) holding this process's pid. */
function writeLock(lockPath: string): void {
  const fd = fs.openSync(lockPath, 'wx', 0o644);
  try {
    fs.writeSync(fd, `${process.pid}\n`);
  } finally {
    fs.closeSync(fd);
  }
}

/** The pid in a lock file, when that process is running. */
export function lockHolder(lockPath: string): number | undefined {
  const pid = readPid(lockPath);
  return pid !== undefined && isRunning(pid) ? pid : undefined;
}

function readPid(lockPath: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(lockPath, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isFresh(lockPath: string): boolean {
  try {
    return Date.now() - fs.statSync(lockPath).mtimeMs < 5000;
  } catch {
    return false;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
