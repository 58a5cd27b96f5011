/**
 * Which lister lists a pass's trees: chosen once, here, from the machine (is the addon built?) and
 * the options (which exclude patterns, a backup dir in a tree). The CLI logs the choice at debug
 * (`listerName`).
 */
import { loadNative, probeNative, type NativeWalk } from '../native.js';
import { nodeIo, type Io } from '../replica/local/io.js';
import { compileExcludes, plainNames, type OwnPath } from './filter.js';
import { InlineLister } from './inline.js';
import { NativeFolderLister } from './native-folder.js';
import type { Lister, Listers, ListerSpec } from './lister.js';
import { NativeWalkLister } from './native-walker.js';
import { ThreadLister } from './thread-lister.js';

/** How a pass lists: on threads (the real disk), or inline through an `Io` (tests that count and fail calls). */
export type ListingMode = { threads: true } | { threads: false; io: Io };

/**
 * A lister on each tree: native walkers when `nativeWalker` gives one, else listing threads
 * compiling the same exclude lists; inline through `io` when threads are not wanted.
 */
export function chooseListers(source: string, replica: string, lists: { excludes: string[]; own: OwnPath[] }, mode: ListingMode): Listers {
  const sourceLister = chooseLister({ root: source, ...lists }, mode);
  try {
    return { source: sourceLister, replica: chooseLister({ root: replica, ...lists }, mode) };
  } catch (error) {
    void sourceLister.close();
    throw error;
  }
}

/** One tree's lister (see `chooseListers`). */
export function chooseLister(spec: ListerSpec, mode: ListingMode): Lister {
  if (!mode.threads) return new InlineLister(mode.io, spec.root);
  const native = nativeWalker(spec);
  return native !== undefined ? new NativeWalkLister(spec, native) : new ThreadLister(spec);
}

/**
 * A lister of a few folders on the calling thread (a scoped pass's): the addon's `list` when it is
 * built and the disk is the real one, else through `io`.
 */
export function chooseFolderLister(root: string, io: Io): Lister {
  const native = io === nodeIo ? loadNative() : undefined;
  return native !== undefined ? new NativeFolderLister(native, root) : new InlineLister(io, root);
}

/**
 * The native walker, if the addon is built (`loadNative`) and may walk these trees. It matches no
 * pattern: it lists every folder but those named by plain-name patterns (`plainNames`), so not
 * when another pattern may leave folders out, or a backup dir lies in a tree (it only grows, and
 * no pass needs its listing); our manifest's own folder it lists, and the walk skips.
 *
 * Safety: the walk applies the full matcher to what it takes; a folder the walker skipped but the
 * walk asked for would look vanished (nothing deleted beneath it), never be mirrored wrongly. The
 * plain names are checked against the compiled matcher too, at three depths.
 */
export function nativeWalker(lists: { excludes: readonly string[]; own: readonly OwnPath[] }): NativeWalk | undefined {
  const names = plainNames(lists.excludes);
  if (names === undefined || lists.own.some((own) => own.kind === 'backup')) return undefined;
  if (names.length > 0) {
    const exclude = compileExcludes(lists.excludes);
    if (!names.every((name) => exclude(name, true) && exclude(`a/${name}`, true) && exclude(`a/b/${name}`, true))) return undefined;
  }
  return loadNative();
}

/** For the log: which lister lists a pass with these exclude lists, and why. */
export function listerName(lists: { excludes: readonly string[]; own: readonly OwnPath[] }): string {
  const found = probeNative();
  if (typeof found === 'string') return `JavaScript listing threads (${found})`;
  return nativeWalker(lists) !== undefined
    ? 'native, walking in threads of its own'
    : 'native, in listing threads (a pattern other than a plain name, or a backup dir: the walker matches no pattern)';
}
