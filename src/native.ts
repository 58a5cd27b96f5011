/**
 * The native lister (`native/fswalk.c`, built by `npm install` into `build/`): lists one folder
 * straight into a listing thread's batch buffers. Optional: without a C compiler the build is
 * skipped, and the listing threads list in JavaScript (`listFolder` in `lister-worker.ts`).
 */
import { createRequire } from 'node:module';

/**
 * What `list` answers: where the folder's names end in `text` and its numbers in `nums`, and the
 * names of its subfolders, its temporary files and its names that are not UTF-8 (each undefined
 * when there are none); or `[-1, bytes, numbers]` when `text` or `nums` lacks room for the folder,
 * which needs that many from the offsets given (nothing was written).
 */
export type NativeAnswer =
  | [textEnd: number, numsEnd: number, subdirs: string[] | undefined, temps: string[] | undefined, undecodable: string[] | undefined]
  | [-1, textNeeded: number, numsNeeded: number];

export interface NativeLister {
  /** `NATIVE_VERSION` of the source it was built from. */
  version: number;
  /**
   * Lists folder `path`: its names in `byName` order, joined by NUL, into `text` from `textAt`;
   * `NUMS` numbers per name into `nums` from `numsAt`. Leaves out our temporary files, names that
   * are not UTF-8 and entries gone since the folder was read. Throws as `fs` does (with `code`)
   * if the folder cannot be read, or an lstat fails for another reason than the entry being gone.
   */
  list(path: string, text: Uint8Array, textAt: number, nums: Float64Array, numsAt: number): NativeAnswer;
}

/** Where `npm install` builds it, from `src/` and from `dist/` alike. */
export const NATIVE_PATH = '../build/Release/fswalk.node';

/**
 * The version of `list` this code speaks (`FSWALK_VERSION` in `native/fswalk.c`). A build left
 * from older sources (a `git pull` without `npm install`) answers another and is not used.
 */
export const NATIVE_VERSION = 1;

/**
 * The native lister, unless it was not built, fails to load, was built from other sources than
 * this code's, or `FOLDER_SYNC_NATIVE=0`.
 */
export function loadNative(): NativeLister | undefined {
  const found = probeNative();
  return typeof found === 'string' ? undefined : found;
}

/** For the log: which lister the listing threads will use. */
export function listerName(): string {
  const found = probeNative();
  return typeof found === 'string' ? `JavaScript (${found})` : 'native';
}

/** The native lister, or why it is not used. */
function probeNative(): NativeLister | string {
  if (process.env.FOLDER_SYNC_NATIVE === '0') return 'FOLDER_SYNC_NATIVE=0';
  const notBuilt = 'the native lister is not built, or not for this version: run npm install';
  try {
    const native = createRequire(import.meta.url)(NATIVE_PATH) as NativeLister;
    return native.version === NATIVE_VERSION ? native : notBuilt;
  } catch {
    return notBuilt;
  }
}
