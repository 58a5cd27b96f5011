/**
 * The benchmark's output: the machine it ran on and one Markdown table of medians and ratios.
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import type { Sample } from './harness.js';

/** The results of one scenario against one peer: one table row. */
export interface Row {
  scenario: string;
  fs: Sample[];
  peer: string;
  /** Undefined when the peer did not run (the note says why). */
  peerSamples?: Sample[];
  note?: string;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** First line of a command's output, or undefined when it does not run. */
function firstLine(command: string, args: string[], env?: NodeJS.ProcessEnv): string | undefined {
  const r = spawnSync(command, args, { encoding: 'utf8', env: env ?? process.env });
  return r.status === 0 ? r.stdout.split('\n')[0].trim().replace(/\s+/g, ' ') : undefined;
}

/** Lines describing the machine and the software under test. */
export function machineLines(root: string): string[] {
  const nproc = firstLine('nproc', []) ?? String(os.availableParallelism());
  const memLine = (spawnSync('free', ['-g'], { encoding: 'utf8' }).stdout ?? '').split('\n').find((l) => l.startsWith('Mem:'));
  const memGiB = memLine?.split(/\s+/)[1] ?? String(Math.round(os.totalmem() / 2 ** 30));
  // Read-only git queries; GIT_OPTIONAL_LOCKS=0 keeps `status` from refreshing the index.
  const gitEnv = { ...process.env, GIT_OPTIONAL_LOCKS: '0' };
  const commit = firstLine('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], gitEnv);
  const dirty = spawnSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no', '--', 'src'], { encoding: 'utf8', env: gitEnv }).stdout?.trim();
  return [
    `machine: ${nproc} CPUs (nproc), ${memGiB} GiB RAM (free -g total), ${os.cpus()[0]?.model ?? 'unknown CPU'}, Linux ${os.release()}`,
    `software: node ${process.version}, ${firstLine('rsync', ['--version']) ?? 'rsync not installed'}, ` +
      `folder-sync ${commit ?? 'unknown commit'}${dirty ? ' + uncommitted changes in src/' : ''}`,
  ];
}

const fmt = (x: number): string => x.toFixed(2);

/** The Markdown table. */
export function table(rows: Row[]): string {
  const lines = [
    '| scenario | folder-sync median (s) | peer | peer median (s) | ratio (fs/peer) | folder-sync peak RSS (MB) | manifest written (KB) |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    const fsOk = row.fs.length > 0;
    const fsMedian = fsOk ? median(row.fs.map((s) => s.seconds)) : NaN;
    const failed = row.fs.filter((s) => s.exitCode !== 0).map((s) => s.exitCode);
    const fsCell = fsOk ? fmt(fsMedian) + (failed.length > 0 ? ` (exit ${[...new Set(failed)].join(',')})` : '') : '—';
    const peerOk = row.peerSamples !== undefined && row.peerSamples.length > 0;
    const peerMedian = peerOk ? median(row.peerSamples!.map((s) => s.seconds)) : NaN;
    // No ratio for a folder-sync that failed: a pass that stopped early is not a fast one.
    const ratio = fsOk && failed.length === 0 && peerOk && peerMedian > 0 ? fmt(fsMedian / peerMedian) : '—';
    const rss = fsOk ? (Math.max(...row.fs.map((s) => s.maxRssKiB)) / 1024).toFixed(0) : '—';
    const manifest = fsOk ? (median(row.fs.map((s) => s.manifestBytes ?? 0)) / 1024).toFixed(1) : '—';
    const peer = row.note ? `${row.peer} (${row.note})` : row.peer;
    lines.push(`| ${row.scenario} | ${fsCell} | ${peer} | ${peerOk ? fmt(peerMedian) : '—'} | ${ratio} | ${rss} | ${manifest} |`);
  }
  return lines.join('\n');
}
