/**
 * The benchmark scenarios. Each one says which trees it needs, how to prepare folder-sync's
 * timed pass (untimed work: reverting, syncing, mutating), and which peers it is compared with.
 *
 * folder-sync and the peers never share state: each has its own replica folder (and folder-sync
 * its own manifest), so a run of one cannot warm up or disturb the other's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FsTarget, Harness } from './harness.js';
import { applyChange, type ChangePlan, planChange, revertChange, setMtimes } from './mutate.js';
import { removeTree, run, sleep } from './proc.js';
import { type FileEntry, readList, readMarker, type TreeName, treePaths, BIG_FILE } from './trees.js';

/** A peer: the tool folder-sync is compared with in a scenario. */
export interface Peer {
  /** Shown in the table, e.g. `rsync -a --delete`. */
  label: string;
  /** The executable that must be installed for this peer to run. */
  requires: string;
  /** Untimed work before each timed run. */
  prepare?: (run: number) => void;
  /** The timed command. */
  command: () => [string, string[]];
}

export interface Scenario {
  name: string;
  /** One line for the report. */
  description: string;
  trees: TreeName[];
  /** Drop the page cache before each timed run (when the machine allows it). */
  coldCache?: boolean;
  /** Once before the runs. */
  setup?: () => void;
  /** Untimed preparation of folder-sync's timed pass; returns what to time. */
  prepareFs: (run: number) => FsTarget;
  peers: Peer[];
  /** Once after the runs, even when they failed: leave the source pristine, free disk space. */
  teardown?: () => void;
}

/** Pause after changing a tree and before a pass, so no changed file is still in its racy granule. */
const SETTLE_MS = 250;
/** The two mtimes of the touch-all scenario (2025-06-15 and a day later). */
const TOUCH_A = 1_750_000_000;
const TOUCH_B = TOUCH_A + 86_400;

const rsyncPeer = (source: string, replica: string, prepare?: (run: number) => void): Peer => ({
  label: 'rsync -a --delete',
  requires: 'rsync',
  prepare,
  command: () => ['rsync', ['-a', '--delete', source + '/', replica + '/']],
});

/**
 * rsync, then `sync`: the time until the copies are on the disk, as folder-sync's are when it
 * ends (it flushes every file before renaming it; rsync leaves its writes in the page cache).
 * Shown beside plain rsync, which stays the peer of the target.
 */
const durableRsyncPeer = (source: string, replica: string, prepare?: (run: number) => void): Peer => ({
  label: 'rsync -a --delete, then sync',
  requires: 'rsync',
  prepare,
  command: () => ['sh', ['-c', 'rsync -a --delete "$1/" "$2/" && sync', 'sh', source, replica]],
});

/** Every scenario, in the order they run. */
export function makeScenarios(h: Harness): Scenario[] {
  const tree = (name: TreeName): string => treePaths(h.cfg.cacheDir, name).dir;
  const work = new WorkCopy(h);

  const untimedRsync = (source: string, replica: string): void => {
    fs.mkdirSync(replica, { recursive: true });
    run('rsync', ['-a', '--delete', source + '/', replica + '/']);
  };

  /** A pass that finds nothing to do, after an untimed pass that makes sure of it. */
  const noChange = (name: string, treeName: TreeName, files: string): Scenario => {
    const source = tree(treeName);
    const target: FsTarget = { source, replica: h.replica(`${name}-fs`), manifest: h.manifest(`${name}-fs`) };
    const rsyncReplica = h.replica(`${name}-rsync`);
    return {
      name,
      description: `${files} files, replica already a mirror, \`--once\` with the manifest loaded from disk`,
      trees: [treeName],
      // The untimed pass before each run makes the replica a mirror (a full first sync the
      // first time) and settles racy records, so the timed pass is the steady state.
      prepareFs: () => {
        h.prepare(name, target);
        return target;
      },
      peers: [rsyncPeer(source, rsyncReplica, () => untimedRsync(source, rsyncReplica))],
    };
  };

  // Shared by the two scenarios that mutate the working copy (their source is the same folder).
  const workTarget = (): FsTarget => ({ source: work.dir, replica: h.replica('work100k-fs'), manifest: h.manifest('work100k-fs') });

  const change1pct: Scenario = (() => {
    const name = 'change1pct-100k';
    const rsyncReplica = h.replica(`${name}-rsync`);
    return {
      name,
      description: '1% of 100k files changed: 60% edited, 20% added, 20% deleted',
      trees: ['t100k'],
      setup: () => work.ensure(),
      // (a) revert to pristine, (b) sync untimed, (c) apply the 1% change; (d) is the timed pass.
      prepareFs: () => {
        work.revertChange();
        h.prepare(name, workTarget());
        work.applyChange();
        return workTarget();
      },
      peers: [
        rsyncPeer(work.dir, rsyncReplica, () => {
          work.revertChange();
          untimedRsync(work.dir, rsyncReplica);
          work.applyChange();
        }),
      ],
      teardown: () => work.restore(),
    };
  })();

  const touchAll: Scenario = {
    name: 'touchall-100k',
    description: 'every mtime of 100k files moved, contents unchanged',
    trees: ['t100k'],
    setup: () => work.ensure(),
    // All mtimes to A and an untimed pass (which rehashes), then all mtimes to B: timed.
    prepareFs: () => {
      work.setMtimes(TOUCH_A);
      h.prepare('touchall-100k', workTarget());
      work.setMtimes(TOUCH_B);
      sleep(SETTLE_MS);
      return workTarget();
    },
    peers: [
      {
        label: 'md5sum of the source files',
        requires: 'md5sum',
        command: () => ['sh', ['-c', 'find "$1" -type f -print0 | xargs -0 md5sum > /dev/null', 'sh', work.dir]],
      },
    ],
    teardown: () => work.restore(),
  };

  /**
   * A sync into an empty replica with a fresh manifest, for folder-sync and rsync alike; both
   * replicas are removed after the scenario (Perf, of the benchmark: they are not worth keeping).
   */
  const intoEmpty = (name: string, treeName: TreeName, description: string, extraPeers: Peer[] = [], coldCache = false, durable = false): Scenario => {
    const source = tree(treeName);
    const target: FsTarget = { source, replica: h.replica(`${name}-fs`), manifest: h.manifest(`${name}-fs`) };
    const rsyncReplica = h.replica(`${name}-rsync`);
    const durableReplica = h.replica(`${name}-rsync-sync`);
    const durablePeers = durable ? [durableRsyncPeer(source, durableReplica, () => removeTree(durableReplica))] : [];
    return {
      name,
      description,
      trees: [treeName],
      coldCache,
      prepareFs: () => {
        removeTree(target.replica);
        h.removeManifest(target.manifest);
        return target;
      },
      peers: [...extraPeers, rsyncPeer(source, rsyncReplica, () => removeTree(rsyncReplica)), ...durablePeers],
      teardown: () => {
        removeTree(target.replica);
        removeTree(rsyncReplica);
        removeTree(durableReplica);
        h.removeManifest(target.manifest);
      },
    };
  };

  const firstSync = intoEmpty('firstsync-100k', 't100k', '100k files into an empty replica, no manifest', [], false, true);
  const bigFile = path.join(tree('big'), BIG_FILE);
  const big = intoEmpty(
    'big-4g',
    'big',
    'one new 4 GiB file into an empty replica, fresh manifest',
    [{ label: 'md5sum of the file', requires: 'md5sum', command: () => ['md5sum', [bigFile]] }],
    true,
  );

  return [
    noChange('nochange-100k', 't100k', '100k'),
    change1pct,
    touchAll,
    firstSync,
    noChange('nochange-1m', 't1m', '1M'),
    big,
  ];
}

/**
 * The working copy of t100k (`<cache>/work/t100k`): a `cp -a` of the pristine tree, made once and
 * reused. A `.dirty` marker is present while it may differ from pristine, so a run interrupted
 * mid-scenario is repaired (by the same deterministic revert) at the next start.
 */
class WorkCopy {
  readonly dir: string;
  private readonly marker: string;
  private readonly dirtyMarker: string;
  private files: FileEntry[] | undefined;
  private changePlan: ChangePlan | undefined;

  constructor(private readonly h: Harness) {
    this.dir = h.dir('work', 't100k');
    this.marker = this.dir + '.done';
    this.dirtyMarker = this.dir + '.dirty';
  }

  /** Makes the copy if missing or made from an older tree; repairs it if left dirty. */
  ensure(): void {
    const pristine = treePaths(this.h.cfg.cacheDir, 't100k');
    const treeInfo = readMarker(pristine.marker);
    if (!treeInfo) throw new Error('tree t100k is not built');
    const stamp = JSON.stringify(treeInfo);
    const current = fs.existsSync(this.marker) ? fs.readFileSync(this.marker, 'utf8') : '';
    if (current !== stamp || !fs.existsSync(this.dir)) {
      this.h.log('work copy of t100k: copying the pristine tree (cp -a)');
      fs.rmSync(this.marker, { force: true });
      fs.rmSync(this.dirtyMarker, { force: true });
      removeTree(this.dir);
      fs.mkdirSync(path.dirname(this.dir), { recursive: true });
      const started = performance.now();
      run('cp', ['-a', '--', pristine.dir, this.dir]);
      fs.writeFileSync(this.marker, stamp);
      this.h.log(`work copy of t100k: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    } else if (fs.existsSync(this.dirtyMarker)) {
      this.h.log('work copy of t100k: left dirty by an earlier run, restoring it');
      this.restore();
    }
  }

  list(): FileEntry[] {
    this.files ??= readList(treePaths(this.h.cfg.cacheDir, 't100k').list);
    return this.files;
  }

  plan(): ChangePlan {
    this.changePlan ??= planChange(this.list());
    return this.changePlan;
  }

  /** Applies the 1% change, then lets it settle. */
  applyChange(): void {
    this.markDirty('change');
    applyChange(this.dir, this.plan());
    sleep(SETTLE_MS);
  }

  /** Undoes the 1% change (harmless when it is not applied). */
  revertChange(): void {
    const mtimes = new Map(this.list().map((f) => [f.rel, f.mtime]));
    revertChange(this.dir, treePaths(this.h.cfg.cacheDir, 't100k').dir, this.plan(), mtimes);
    sleep(SETTLE_MS);
  }

  setMtimes(seconds: number): void {
    this.markDirty('mtimes');
    setMtimes(this.dir, this.list(), seconds);
  }

  /**
   * Back to pristine: the 1% change undone and, if they were moved, every mtime the generated
   * one. Only what was changed is restored: resetting 100k mtimes moves 100k ctimes, which
   * would make the next preparation pass rehash the whole tree.
   */
  restore(): void {
    const dirty = this.dirtyKinds();
    if (dirty.has('change')) this.revertChange();
    if (dirty.has('mtimes')) setMtimes(this.dir, this.list(), 'pristine');
    fs.rmSync(this.dirtyMarker, { force: true });
  }

  /** What the `.dirty` marker says was changed (one kind a line). */
  private dirtyKinds(): Set<string> {
    if (!fs.existsSync(this.dirtyMarker)) return new Set();
    return new Set(fs.readFileSync(this.dirtyMarker, 'utf8').split('\n').filter((l) => l !== ''));
  }

  /** Records, before doing it, that the copy is about to differ from pristine in this way. */
  private markDirty(kind: 'change' | 'mtimes'): void {
    if (!this.dirtyKinds().has(kind)) fs.appendFileSync(this.dirtyMarker, kind + '\n');
  }
}
