/**
 * `folder-sync status`: what a manifest knows, read-only. The pair, the files and bytes recorded,
 * the last pass (when, how long, its result and summary), and whether a folder-sync holds the
 * manifest's lock now. Without a manifest named, every manifest in the default folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError, describe, errorCode } from '../errors.js';
import { lockHolder } from '../cli/lock.js';
import { Manifest, type LastPass } from '../manifest/manifest.js';
import { formatBytes, formatCount, formatDuration } from '../log/units.js';

export interface ManifestStatus {
  manifest: string;
  source: string;
  replica: string;
  entries: number;
  bytes: number;
  lastPass: LastPass | undefined;
  /** The pid of a folder-sync holding the lock, if one is running. */
  runningPid: number | undefined;
  /** What reading it had to say (an old schema read, a damaged shard). */
  notes: string[];
}

/** Reads one manifest. Throws a UsageError naming the problem when it is missing or unusable. */
export async function readStatus(manifestPath: string): Promise<ManifestStatus> {
  // Read-only: an old schema is migrated in memory only; a damaged shard is noted, not set aside.
  const notes: string[] = [];
  let manifest: Manifest | undefined;
  try {
    manifest = await Manifest.inspect(manifestPath, (message) => notes.push(message));
  } catch (error) {
    const problem = error instanceof SyntaxError || errorCode(error) !== undefined ? `is not a readable manifest: ${describe(error)}` : describe(error);
    throw new UsageError(`${manifestPath} ${problem}`);
  }
  if (manifest === undefined) throw new UsageError(`no manifest at ${manifestPath} (no pass has run for this pair yet, or --manifest names another file)`);
  const { source, replica } = manifest.pair;
  const { entries, bytes } = manifest.totals();
  return { manifest: manifestPath, source, replica, entries, bytes, lastPass: manifest.lastPass, runningPid: lockHolder(manifestPath + '.lock'), notes };
}

/** The main files of the manifests in a folder (not their `.d` shards, locks or set-aside copies). */
export function listManifests(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => name.endsWith('.json') && !name.startsWith('.'))
    .sort()
    .map((name) => path.join(dir, name));
}

export function formatStatus(s: ManifestStatus, now = Date.now()): string {
  const lines = [
    `manifest   ${s.manifest}`,
    `pair       ${s.source} -> ${s.replica}`,
    `entries    ${formatCount(s.entries)} ${s.entries === 1 ? 'file' : 'files'}, ${formatBytes(s.bytes)}`,
  ];
  const last = s.lastPass;
  if (last === undefined) {
    lines.push('last pass  none recorded');
  } else {
    const ago = formatDuration((now - Date.parse(last.startedAt)) / 1000);
    const result = last.result ?? (last.exitStatus === 0 ? 'ok' : 'errors');
    lines.push(`last pass  ${last.startedAt} (${ago} ago), took ${(last.durationMs / 1000).toFixed(2)} s, ${result} (exit ${last.exitStatus})`);
    lines.push(`           ${last.summary}`);
  }
  lines.push(`running    ${s.runningPid === undefined ? 'no' : `yes (pid ${s.runningPid})`}`);
  for (const note of s.notes) lines.push(`note       ${note}`);
  return lines.join('\n');
}
