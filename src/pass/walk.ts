/**
 * List and compare: both trees walked in lockstep (`Walker`), each folder listed on both sides and
 * compared against the manifest, keeping only what is not already in sync.
 */
import { distrustCache, trustCache } from '../compare/fingerprint.js';
import { LinkIndex } from '../compare/links.js';
import type { Change } from '../compare/types.js';
import { unreadableMessage, Walker, type WalkResult } from '../compare/walk.js';
import { describe, show } from '../errors.js';
import type { Entry } from '../tree/entry.js';
import type { Manifest } from '../manifest/manifest.js';
import { toEntry } from '../tree/scan.js';
import type { PassScope } from './options.js';
import type { Recorder } from './recorder.js';
import type { Replica } from '../replica/replica.js';
import { chooseFolderLister, chooseLister } from '../tree/choose.js';
import { closeListers, type Listers } from '../tree/lister.js';
import type { PassContext } from './context.js';
import type { Roots } from './roots.js';

export interface Walked {
  result: WalkResult;
  /** What is not in sync, in walk order (parents before children for new entries, children first for extras). */
  changes: Change[];
  /** Our temporary files found in the replica (relative paths). */
  temps: string[];
  /** Files the manifest listed when the pass began. */
  known: number;
  /** With `--hard-links`: the files with more than one name the walk saw. */
  links: LinkIndex | undefined;
  /** In a scoped pass, the folders listed (on either side). */
  listedDirs: ReadonlySet<string>;
  manifest: Manifest;
}

export async function walkTrees(pass: PassContext, replica: Replica, roots: Roots): Promise<Walked> {
  const { o } = pass;
  const changes: Change[] = [];
  const temps: string[] = [];
  const links = o.hardLinks ? new LinkIndex() : undefined;
  let known = 0;
  let walker: Walker | undefined;
  let result: WalkResult;
  const listers = o.scope ? scopedListers(pass, replica) : (o.listers ?? openListers(pass, replica));
  if (o.scope && o.listers) await closeListers(o.listers);
  try {
    const manifest = await pass.loadManifest();
    known = manifest.size;
    manifest.beginPass();
    walker = new Walker({
      sourceLister: listers.source,
      replicaLister: listers.replica,
      readlink: (side, relPath) => (side === 'source' ? o.io.readlink(o.source + '/' + relPath) : replica.readlink(relPath)),
      exclude: o.exclude,
      seen: (relPath) => manifest.markSeen(relPath),
      records: (relDir) => manifest.getIn(relDir),
      lookup: o.checksum ? distrustCache : trustCache,
      owners: pass.owners,
      onChange: (change) => changes.push(change),
      onTemp: (relPath) => temps.push(relPath),
      onSpecial: (relPath) => pass.warn(`skipped ${show(relPath)} (special file)`),
      onUnreadable: (unreadable) => {
        const { level, message } = unreadableMessage(unreadable);
        if (level === 'warn') pass.warn(message);
        else pass.error(message);
      },
      error: (message) => pass.error(message),
      tick: () => pass.tick(),
      onSourceDir: o.onSourceDir,
      openReplicaFolder: { open: (relPath) => replica.openFolder(relPath), lister: replica.inlineLister() },
      links,
    });
    const counting = walker;
    pass.progress.begin('scanning', () => ({ files: counting.listed, bytes: 0 }));
    result = o.scope ? await walker.runScoped(o.scope, (side, relPath) => stat(pass, replica, side, relPath)) : await walker.run(roots.source, roots.replica);
  } finally {
    pass.progress.end();
    await closeListers(listers); // whatever happened, even the manifest failing to load
  }
  pass.debug(`walk: ${walker.listed} entries listed in ${Date.now() - pass.started} ms, ${changes.length} to look at`);
  return { result, changes, temps, known, links, listedDirs: walker.listedDirs, manifest: pass.manifest };
}

/** A scoped pass lists a few folders: on the main thread (no thread to start). */
function scopedListers(pass: PassContext, replica: Replica): Listers {
  return { source: chooseFolderLister(pass.o.source, pass.o.io), replica: replica.inlineLister() };
}

/** One side's entry at `relPath`, or undefined if there is none. */
async function stat(pass: PassContext, replica: Replica, side: 'source' | 'replica', relPath: string): Promise<Entry | undefined> {
  const name = relPath.slice(relPath.lastIndexOf('/') + 1);
  try {
    if (side === 'replica') return await replica.statEntry(relPath);
    return toEntry(name, pass.o.io.lstat(relPath === '' ? pass.o.source : pass.o.source + '/' + relPath));
  } catch {
    return undefined;
  }
}

/**
 * A scoped pass's folder renames (`--watch` saw them): each made in the replica too, by one
 * rename, and its records moved, when the replica has the folder at the old path and nothing at
 * the new one, and the source the reverse; those not made are listed whole instead (`subtrees`).
 */
export async function moveFolders(pass: PassContext, replica: Replica, recorder: Recorder, scope: PassScope): Promise<PassScope> {
  const subtrees = new Set(scope.subtrees);
  const manifest = await pass.loadManifest();
  for (const { from, to } of scope.renames) {
    const ok =
      (await stat(pass, replica, 'source', from)) === undefined &&
      (await stat(pass, replica, 'source', to))?.kind === 'dir' &&
      (await replica.statEntry(from))?.kind === 'dir' &&
      (await replica.statEntry(to)) === undefined;
    if (!ok) {
      subtrees.add(to);
      continue;
    }
    try {
      if (!pass.o.dryRun) {
        await replica.renameFolder(from, to);
        manifest.moveFolder(from, to);
      }
      recorder.folderMoved(from, to);
    } catch (error) {
      pass.warn(`${describe(error)}; its content is copied instead`);
      subtrees.add(to);
    }
  }
  return { ...scope, subtrees };
}

/** The pass's own listers: the source's chosen here, the replica's by the replica. */
function openListers(pass: PassContext, replica: Replica): Listers {
  const { o } = pass;
  const lists = o.threads ?? { excludes: [], own: [] };
  const source = chooseLister({ root: o.source, ...lists }, o.threads ? { threads: true } : { threads: false, io: o.io });
  try {
    return { source, replica: replica.lister(lists) };
  } catch (error) {
    void source.close();
    throw error;
  }
}
