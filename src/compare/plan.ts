/**
 * Pure: turns the settled changes of a pass into the ordered operations the executor runs.
 *
 * Order (rclone's): creations and updates first, then deletes (children before parents), then
 * what had to wait for a delete (a folder replaced by a file, or a file by a folder), then hard
 * links to the files now in place (`--hard-links`), and last the
 * metadata of folders (owner, permission bits, mtime), deepest first, so a read-only source folder
 * is filled before it is made read-only in the replica, and its mtime set once nothing changes in it.
 */
import type { Change, Op } from './types.js';

export interface Plan {
  /** Creations, updates, metadata fixes: run whatever the delete guards say. */
  upserts: Op[];
  /** Removals from the replica, children first. */
  deletes: Op[];
  /** Creations that need a delete first (type changes); dropped with the deletes if refused. */
  afterDeletes: Op[];
  /** Hard links to files the steps before put in place (`--hard-links`); those `afterDelete` dropped with the deletes if refused. */
  links: Op[];
  /** Folder metadata (owner, bits, mtime), deepest first. */
  dirMetas: Op[];
  /** Entries the deletes would remove (files, links and folders, each counted). */
  deleteCount: number;
  /** Bytes of regular files the deletes would remove. */
  deleteBytes: number;
  /** Paths whose type change needs a delete first (they wait in `afterDeletes`). */
  replacements: string[];
}

/** `changes` must come in walk order: parents before children for new entries, children first for extras. */
export function planOps(changes: readonly Change[]): Plan {
  const plan: Plan = { upserts: [], deletes: [], afterDeletes: [], links: [], dirMetas: [], deleteCount: 0, deleteBytes: 0, replacements: [] };
  // Folders of the source that can only be created once a replica entry in their way is deleted:
  // everything beneath them waits too.
  const waiting: string[] = [];
  const waits = (relPath: string) => waiting.some((dir) => relPath.startsWith(dir + '/'));

  const addDelete = (op: Extract<Op, { op: 'delete' }>) => {
    plan.deletes.push(op);
    plan.deleteCount++;
    if (op.replica.kind === 'file') plan.deleteBytes += op.replica.size;
  };

  for (const change of changes) {
    switch (change.type) {
      case 'new': {
        const target = waits(change.relPath) ? plan.afterDeletes : plan.upserts;
        const { relPath, source } = change;
        if (source.kind === 'dir') {
          target.push({ op: 'mkdir', relPath, source });
          plan.dirMetas.push({ op: 'dirmeta', relPath, source });
        } else if (source.kind === 'file') {
          target.push({ op: 'copy', relPath, source, reason: 'new', replacing: undefined });
        } else if (source.kind === 'symlink') {
          target.push({ op: 'link', relPath, source, reason: 'new', replacing: undefined });
        }
        break;
      }
      case 'extra':
        addDelete({ op: 'delete', relPath: change.relPath, replica: change.replica, reason: 'not in source' });
        break;
      case 'update':
        plan.upserts.push({ op: 'copy', relPath: change.relPath, source: change.source, reason: change.reason, replacing: change.replica });
        break;
      case 'meta':
        plan.upserts.push({ op: 'meta', relPath: change.relPath, source: change.source, replica: change.replica, md5: change.md5, readAtMs: change.readAtMs, ...(change.asLeft ? { asLeft: true } : {}) });
        break;
      case 'link':
        plan.upserts.push({ op: 'link', relPath: change.relPath, source: change.source, reason: change.reason, replacing: change.replica });
        break;
      case 'dirmeta':
        plan.dirMetas.push({ op: 'dirmeta', relPath: change.relPath, source: change.source, replica: change.replica });
        break;
      case 'kind': {
        const { relPath, source, replica } = change;
        if (replica.kind !== 'dir' && source.kind !== 'dir') {
          // A rename replaces a file, link or special file in one step: no delete needed.
          const op = source.kind === 'file' ? 'copy' : 'link';
          plan.upserts.push({ op, relPath, source, reason: 'type changed', replacing: replica });
          break;
        }
        // A folder cannot be renamed over, nor renamed onto a non-empty folder: delete, then create.
        // The walk has already emitted the replica folder's children as extras.
        addDelete({ op: 'delete', relPath, replica, reason: 'type changed' });
        plan.replacements.push(relPath);
        if (source.kind === 'dir') {
          plan.afterDeletes.push({ op: 'mkdir', relPath, source });
          plan.dirMetas.push({ op: 'dirmeta', relPath, source });
          waiting.push(relPath);
        } else {
          const op = source.kind === 'file' ? 'copy' : 'link';
          plan.afterDeletes.push({ op, relPath, source, reason: 'type changed', replacing: undefined });
        }
        break;
      }
      case 'move': {
        const target = waits(change.relPath) ? plan.afterDeletes : plan.upserts;
        target.push({ op: 'move', relPath: change.relPath, from: change.from, source: change.source, replica: change.replica, md5: change.md5 });
        break;
      }
      case 'hardlink': {
        const { relPath, leader, source, replica } = change;
        if (replica?.kind === 'dir') {
          // A folder in the way: deleted first (the walk emitted its content as extras).
          addDelete({ op: 'delete', relPath, replica, reason: 'type changed' });
          plan.replacements.push(relPath);
          plan.links.push({ op: 'hardlink', relPath, leader, source, replacing: undefined, afterDelete: true });
        } else {
          plan.links.push({ op: 'hardlink', relPath, leader, source, replacing: replica, ...(waits(relPath) ? { afterDelete: true as const } : {}) });
        }
        break;
      }
      case 'file':
        throw new Error(`internal: unsettled change for ${change.relPath}`);
    }
  }
  // Deepest first: a child's mode is set before its parent may become read-only.
  plan.dirMetas.sort((a, b) => depth(b.relPath) - depth(a.relPath));
  return plan;
}

function depth(relPath: string): number {
  let n = 0;
  for (let i = 0; i < relPath.length; i++) if (relPath.charCodeAt(i) === 47) n++;
  return n;
}
