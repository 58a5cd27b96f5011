/**
 * `npm run bench`: folder-sync against its peers (rsync, md5sum) on generated trees.
 *
 *   BENCH_DIR=<folder>      cache for trees, replicas, manifests, logs (default: <repo>/.bench-cache)
 *   BENCH_RUNS=<n>          timed runs per tool and scenario (default 3); the table shows medians
 *   BENCH_ONLY=<a,b>        run only these scenarios (names below)
 *   BENCH_FS_ARGS="<args>"  extra arguments for every timed folder-sync pass (e.g. --no-fsync)
 *
 * Scenarios: nochange-100k, change1pct-100k, touchall-100k, firstsync-100k, nochange-1m, big-4g
 * (see scenarios.ts), sftp-firstsync-10k, sftp-nochange-10k, sftp-firstsync-100k,
 * sftp-nochange-100k (a replica over SFTP against rsync over ssh: see sftp.ts), and watch-1m (`--watch` on the 1M tree: see watch.ts). The trees are generated once, deterministically, and reused (trees.ts).
 *
 * Every timed run is wrapped in GNU time (wall seconds, peak RSS). folder-sync and each peer
 * alternate run by run, each with its own replica, so drift in the machine's state hits both.
 * The table (Markdown) goes to stdout; progress and each pass's summary line go to stderr.
 * Exit status: 0, or 1 when a folder-sync run exited non-zero or a scenario failed, 2 when a
 * prerequisite is missing.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BIN, Harness, readConfig, ROOT, type Sample } from './harness.js';
import { dropCaches, GNU_TIME, hasCommand, run, syncDisks } from './proc.js';
import { machineLines, type Row, table } from './report.js';
import { makeScenarios, type Scenario } from './scenarios.js';
import { ensureTree, type TreeName } from './trees.js';
import { runWatchScenario } from './watch.js';
import { makeSftpScenarios, SFTP_SCENARIOS } from './sftp.js';
import { sshdUnavailable, startSshd, type Server } from '../test/helpers/sshd.js';

/** The watcher's scenario (`watch.ts`). */
const WATCH = 'watch-1m';

const log = (line: string): void => void process.stderr.write(line + '\n');

async function main(): Promise<number> {
  const startedAt = new Date();
  let cfg;
  try {
    cfg = readConfig(process.env);
  } catch (error) {
    throw new Prerequisite(error instanceof Error ? error.message : String(error));
  }
  const h = new Harness(cfg, log);
  let server: Server | undefined;
  const all = [
    ...makeScenarios(h),
    ...makeSftpScenarios(h, () => {
      if (server === undefined) throw new Error('internal: the SFTP server is not started');
      return server;
    }),
  ];
  const unknown = (cfg.only ?? []).filter((name) => name !== WATCH && !all.some((s) => s.name === name));
  if (unknown.length > 0) throw new Prerequisite(`unknown scenario(s) in BENCH_ONLY: ${unknown.join(', ')}; known: ${[...all.map((s) => s.name), WATCH].join(', ')}`);
  const watching = !cfg.only || cfg.only.includes(WATCH);
  const scenarios = all.filter((s) => !cfg.only || cfg.only.includes(s.name));

  checkPrerequisites(h);
  const coldOk = scenarios.some((s) => s.coldCache) ? dropCaches() : undefined;

  // 1. Trees: built once, reused while their marker is current.
  const generation: string[] = [];
  const needed = (['t100k', 't1m', 'big'] as TreeName[]).filter((t) => scenarios.some((s) => s.trees.includes(t)) || (t === 't1m' && watching));
  for (const name of needed) {
    const { info, built } = ensureTree(cfg.cacheDir, name, log);
    generation.push(`${name} ${built ? `built in ${info.seconds} s` : `reused (built in ${info.seconds} s)`}`);
  }

  // The SFTP scenarios' server (sshd on 127.0.0.1), when one of them runs.
  if (scenarios.some((s) => SFTP_SCENARIOS.includes(s.name))) {
    if (sshdUnavailable) throw new Prerequisite(`the SFTP scenarios need an OpenSSH server: ${sshdUnavailable} (or leave them out with BENCH_ONLY)`);
    server = await startSshd(['MaxStartups 100']);
  }

  // 2. Scenarios.
  const rows: Row[] = [];
  const wallTimes: string[] = [];
  const errors: string[] = [];
  for (const scenario of scenarios) {
    const started = performance.now();
    log(`== ${scenario.name}: ${scenario.description}`);
    try {
      rows.push(...runScenario(h, scenario, coldOk === true));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      errors.push(`${scenario.name}: ${message}`);
      log(`  !! ${scenario.name} failed: ${message}`);
      rows.push({ scenario: scenario.name, fs: [], peer: '—', note: 'scenario failed, see stderr' });
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    wallTimes.push(`${scenario.name} ${seconds} s`);
    log(`== ${scenario.name}: ${seconds} s in all (with untimed preparation)`);
  }

  // The watcher's scenario (a long-running process, not a timed pass).
  if (watching) {
    const started = performance.now();
    log(`== ${WATCH}: --watch on the 1M-file tree: 10 changes, a burst of 10,000, memory`);
    try {
      rows.push(...(await runWatchScenario(h, log)));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      errors.push(`${WATCH}: ${message}`);
      log(`  !! ${WATCH} failed: ${message}`);
    }
    wallTimes.push(`${WATCH} ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }

  // 3. Report.
  const fsArgs = ['<source>', '<replica>', '1', '<log>', '--once', '--manifest', '<file>', ...cfg.fsExtraArgs].join(' ');
  const out = [
    `## folder-sync benchmark`,
    '',
    `- date: ${startedAt.toISOString()}`,
    `- command: \`${commandLine()}\``,
    ...machineLines(ROOT).map((l) => `- ${l}`),
    `- ${cfg.runs} timed run(s) per tool and scenario, folder-sync and peer alternating; medians shown`,
    `- timed folder-sync: \`node dist/bin.js ${fsArgs}\`; untimed preparation passes add ` +
      `\`${h.prepArgs.join(' ') || '(nothing)'}\``,
    `- page cache: warm` + (scenarios.some((s) => s.coldCache)
      ? coldOk
        ? '; dropped (`echo 3 > /proc/sys/vm/drop_caches`) before each timed run of big-4g, both tools'
        : '; could not be dropped for big-4g (not root, or /proc/sys read-only): warm too'
      : ''),
    '',
    table(rows),
    '',
    'Peak RSS: largest of the runs (GNU time `%M`, in MiB). Manifest written: median over the runs of the bytes ' +
      'of manifest files (`<manifest>` and `<manifest>.d/`) created or replaced by the timed pass, in KiB.',
    '',
    `- scenario wall time, including untimed preparation: ${wallTimes.join(', ')}`,
    `- trees: ${generation.join(', ') || 'none needed'}`,
  ];
  for (const f of h.failures) out.push(`- FAILED: ${f.what} exited ${f.exitCode}`);
  for (const e of errors) out.push(`- ERROR: ${e}`);
  process.stdout.write(out.join('\n') + '\n');
  await server?.stop();
  return h.failures.length > 0 || errors.length > 0 ? 1 : 0;
}

/** Runs one scenario: folder-sync and each peer alternating, `runs` times; one row per peer. */
function runScenario(h: Harness, scenario: Scenario, cold: boolean): Row[] {
  const peers = scenario.peers.map((peer) => ({ peer, available: hasCommand(peer.requires), samples: [] as Sample[] }));
  for (const p of peers) if (!p.available) log(`  ${p.peer.requires} is not installed: peer "${p.peer.label}" skipped`);
  const fsSamples: Sample[] = [];
  // Before each timed run: flush writeback left by the preparation (so the run does not pay
  // for it), and, for cold-cache scenarios, drop the page cache.
  const settle = (): void => void (cold && scenario.coldCache ? dropCaches() : syncDisks());

  scenario.setup?.();
  try {
    for (let run = 1; run <= h.cfg.runs; run++) {
      log(`  -- ${scenario.name} run ${run}/${h.cfg.runs}`);
      const target = scenario.prepareFs(run);
      settle();
      fsSamples.push(h.timedFs(scenario.name, run, target));
      for (const p of peers) {
        if (!p.available) continue;
        p.peer.prepare?.(run);
        settle();
        const [command, args] = p.peer.command();
        p.samples.push(h.timedPeer(scenario.name, run, p.peer.label, command, args));
      }
    }
  } finally {
    scenario.teardown?.();
  }
  return peers.map((p) => ({
    scenario: scenario.name,
    fs: fsSamples,
    peer: p.peer.label,
    peerSamples: p.available ? p.samples : undefined,
    note: p.available ? undefined : `${p.peer.requires} not installed: skipped`,
  }));
}

/** A missing prerequisite: reported in one line, exit status 2. */
class Prerequisite extends Error {}

/** Checks the tools the benchmark needs and makes sure folder-sync is built and runs. */
function checkPrerequisites(h: Harness): void {
  const time = spawnSync(GNU_TIME, ['-f', '%e %M', 'true'], { encoding: 'utf8' });
  if (time.error || time.status !== 0 || !/^[\d.]+ \d+\s*$/.test(time.stderr)) {
    throw new Prerequisite(`GNU time is needed at ${GNU_TIME} (Debian: apt-get install time)`);
  }
  for (const tool of ['cp', 'rm', 'sync', 'find', 'xargs', 'sh']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) throw new Prerequisite(`${tool} is needed`);
  }

  if (!fs.existsSync(BIN)) {
    log(`${path.relative(ROOT, BIN)} is missing: building (npm run build)`);
    try {
      run('npm', ['run', '--prefix', ROOT, 'build']);
    } catch (error) {
      throw new Prerequisite(`building folder-sync failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  warnIfStale();
  const help = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
  if (help.status !== 0) {
    throw new Prerequisite(`\`node ${BIN} --help\` exited ${help.status}: ${(help.stderr || help.stdout).trim().slice(0, 1000)} ` +
      `(a half-built dist/? rebuild with: npm run build)`);
  }
  // Preparation passes only need the end state: skip the per-file flush when the CLI allows it.
  h.prepArgs = help.stdout.includes('--no-fsync') ? ['--no-fsync'] : [];
}

/** Warns when a source file is newer than the build (the benchmark times dist/, bundled from src/). */
function warnIfStale(): void {
  const src = path.join(ROOT, 'src');
  const built = fs.statSync(BIN).mtimeMs;
  const stale = (fs.readdirSync(src, { recursive: true }) as string[]).filter((name) => name.endsWith('.ts') && fs.statSync(path.join(src, name)).mtimeMs > built);
  if (stale.length > 0) log(`warning: dist/ is older than src/ (${stale.join(', ')}): timing the old build; run \`npm run build\` first`);
}

/** The command line as typed (BENCH_* variables, then npm or node). */
function commandLine(): string {
  const quote = (s: string): string => (/^[\w.,/=:@%+-]*$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  const env = Object.keys(process.env)
    .filter((k) => k.startsWith('BENCH_'))
    .sort()
    .map((k) => `${k}=${quote(process.env[k] ?? '')}`);
  const cmd = process.env.npm_lifecycle_event === 'bench'
    ? ['npm', 'run', 'bench']
    : ['node', ...process.execArgv, path.relative(process.cwd(), process.argv[1] ?? 'bench/bench.ts'), ...process.argv.slice(2)];
  return [...env, ...cmd.map(quote)].join(' ');
}

try {
  process.exitCode = await main();
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  log(`bench: ${error instanceof Prerequisite ? '' : 'error: '}${message}`);
  process.exitCode = error instanceof Prerequisite ? 2 : 1;
}
