/**
 * The remote replica's scenarios: folder-sync to a replica over SFTP against `rsync -a --delete -e
 * ssh` to the same OpenSSH server (on 127.0.0.1, started by the benchmark: `test/helpers/sshd.ts`),
 * each into a folder of its own on it. The network is the loopback: what is measured is the
 * programs' own cost per file (requests, round trips, encryption), not a link's bandwidth.
 *
 * - `sftp-firstsync-10k`: 10k mixed files (1–64 KiB, the first folders of t100k, hard-linked into
 *   `trees/t10k`) into an empty replica, no manifest.
 * - `sftp-nochange-10k`: the same, the replica already a mirror.
 * - `sftp-firstsync-100k`, `sftp-nochange-100k`: the same on all of t100k.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Server } from '../test/helpers/sshd.js';
import type { FsTarget, Harness } from './harness.js';
import { removeTree, run } from './proc.js';
import type { Peer, Scenario } from './scenarios.js';
import { treePaths } from './trees.js';

export const SFTP_SCENARIOS = ['sftp-firstsync-10k', 'sftp-nochange-10k', 'sftp-firstsync-100k', 'sftp-nochange-100k'];

/** The scenarios; `server` is started before the first of them runs (`bench.ts`). */
export function makeSftpScenarios(h: Harness, server: () => Server): Scenario[] {
  const t100k = treePaths(h.cfg.cacheDir, 't100k').dir;
  const t10k = h.dir('trees', 't10k');
  /** A folder on the server the test user owns, made anew. */
  const remoteDir = (name: string): string => {
    const dir = h.dir('remote', name);
    removeTree(dir);
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.chmodSync(path.dirname(dir), 0o755);
    fs.mkdirSync(dir);
    run('chown', [`${server().user}:`, dir]);
    return dir;
  };
  const ssh = (): string => {
    const s = server();
    return `ssh -F /dev/null -p ${s.port} -i ${s.identity} -o UserKnownHostsFile=${s.knownHosts} -o StrictHostKeyChecking=yes -o BatchMode=yes`;
  };
  const rsyncPeer = (source: string, replica: () => string, prepare: () => void): Peer => ({
    label: 'rsync -a --delete -e ssh',
    requires: 'rsync',
    prepare,
    command: () => ['rsync', ['-a', '--delete', '-e', ssh(), source + '/', `${server().user}@127.0.0.1:${replica()}/`]],
  });

  const scenario = (name: string, source: () => string, files: string, firstSync: boolean): Scenario => {
    let fsRemote = '';
    let rsyncRemote = '';
    const target = (): FsTarget => ({ source: source(), replica: server().url(`${fsRemote}/mirror`), manifest: h.manifest(`${name}-fs`), args: server().sshArgs, remote: true });
    return {
      name,
      description: firstSync ? `${files} files into an empty replica over SFTP (127.0.0.1), no manifest` : `${files} files, the replica over SFTP (127.0.0.1) already a mirror`,
      trees: ['t100k'],
      setup: () => {
        if (name.endsWith('-10k')) ensureT10k(t100k, t10k);
        fsRemote = remoteDir(`${name}-fs`);
        rsyncRemote = remoteDir(`${name}-rsync`);
      },
      prepareFs: () => {
        if (firstSync) {
          removeTree(`${fsRemote}/mirror`);
          h.removeManifest(target().manifest);
        } else h.prepare(name, target());
        return target();
      },
      peers: [
        rsyncPeer(source(), () => `${rsyncRemote}/mirror`, () => {
          if (firstSync) removeTree(`${rsyncRemote}/mirror`);
          else run('rsync', ['-a', '--delete', '-e', ssh(), source() + '/', `${server().user}@127.0.0.1:${rsyncRemote}/mirror/`]);
        }),
      ],
      teardown: () => {
        removeTree(fsRemote);
        removeTree(rsyncRemote);
        h.removeManifest(target().manifest);
      },
    };
  };
  return [
    scenario('sftp-firstsync-10k', () => t10k, '10k', true),
    scenario('sftp-nochange-10k', () => t10k, '10k', false),
    scenario('sftp-firstsync-100k', () => t100k, '100k', true),
    scenario('sftp-nochange-100k', () => t100k, '100k', false),
  ];
}

/** `trees/t10k`: t100k's first folders (by name) until 10,000 files, hard-linked (made once). */
function ensureT10k(t100k: string, t10k: string): void {
  if (fs.existsSync(`${t10k}.done`)) return;
  removeTree(t10k);
  fs.mkdirSync(t10k, { recursive: true });
  let files = 0;
  for (const name of fs.readdirSync(t100k).sort()) {
    if (files >= 10_000) break;
    run('cp', ['-al', path.join(t100k, name), path.join(t10k, name)]);
    files += Number(run('sh', ['-c', `find "$1" -type f | wc -l`, 'sh', path.join(t10k, name)]).trim());
  }
  fs.writeFileSync(`${t10k}.done`, `${files} files\n`);
}


