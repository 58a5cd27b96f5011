/**
 * Test helpers: write a tree from an object, read one back in a comparable form, run passes.
 * A tree spec maps relative paths to file contents (string), `{ dir }`, `{ link }` or a full file spec.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileExcludes } from '../../src/tree/filter.js';
import { nodeIo, type Io, type MetaFix, type MetaFixed, type TempCopy, type Times } from '../../src/replica/local/io.js';
import { NUMS } from '../../src/tree/entry.js';
import { actionText, type Action, type Reporter } from '../../src/log/log.js';
import { Manifest } from '../../src/manifest/manifest.js';
import { loadNative } from '../../src/native.js';
import { runPass, type PassOptions, type PassResult } from '../../src/pass/index.js';

export type Spec =
  | string
  | Buffer
  | { content: string | Buffer; mode?: number; mtime?: number }
  | { dir: true; mode?: number }
  | { link: string };

const made: string[] = [];
// Every temporary tree goes when the test file's process ends (the crash tests make large ones).
process.on('exit', () => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix = 'fs-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Writes `spec` under `root` (parents first). mtime in seconds since the epoch. */
export function writeTree(root: string, spec: Record<string, Spec>): void {
  fs.mkdirSync(root, { recursive: true });
  const dirModes: [string, number][] = [];
  for (const [rel, value] of Object.entries(spec)) {
    const abs = path.join(root, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    if (typeof value === 'string' || Buffer.isBuffer(value)) {
      fs.writeFileSync(abs, value);
    } else if ('dir' in value) {
      fs.mkdirSync(abs, { recursive: true });
      if (value.mode !== undefined) dirModes.push([abs, value.mode]);
    } else if ('link' in value) {
      fs.symlinkSync(value.link, abs);
    } else {
      fs.writeFileSync(abs, value.content);
      if (value.mode !== undefined) fs.chmodSync(abs, value.mode);
      if (value.mtime !== undefined) fs.utimesSync(abs, value.mtime, value.mtime);
    }
  }
  for (const [abs, mode] of dirModes.reverse()) fs.chmodSync(abs, mode);
}

export interface Seen {
  kind: 'file' | 'dir' | 'symlink' | 'other';
  mode?: string;
  /** mtime in microseconds (what libuv can set). */
  mtimeUs?: number;
  size?: number;
  md5?: string;
  target?: string;
}

/** Reads a tree back: every entry below `root` (not the root), by relative path. */
export function readTree(root: string, options: { ignore?: (rel: string) => boolean } = {}): Record<string, Seen> {
  const out: Record<string, Seen> = {};
  const walk = (dir: string, prefix: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const rel = prefix ? `${prefix}/${name}` : name;
      if (options.ignore?.(rel)) continue;
      const abs = path.join(dir, name);
      const st = fs.lstatSync(abs, { bigint: true });
      const mode = (Number(st.mode) & 0o7777).toString(8);
      if (st.isDirectory()) {
        out[rel] = { kind: 'dir', mode };
        walk(abs, rel);
      } else if (st.isSymbolicLink()) {
        out[rel] = { kind: 'symlink', target: fs.readlinkSync(abs) };
      } else if (st.isFile()) {
        const md5 = createHash('md5').update(fs.readFileSync(abs)).digest('hex');
        out[rel] = { kind: 'file', mode, mtimeUs: Math.floor(Number(st.mtimeNs / 1000n) / 1) , size: Number(st.size), md5 };
      } else {
        out[rel] = { kind: 'other' };
      }
    }
  };
  walk(root, '');
  return out;
}

/** Compares mirrors: file mtimes may differ by the microsecond libuv rounds off. */
export function mirrorDiff(source: string, replica: string, ignore?: (rel: string) => boolean): string[] {
  const a = readTree(source, { ignore });
  const b = readTree(replica, { ignore });
  const problems: string[] = [];
  for (const rel of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[rel];
    const y = b[rel];
    if (x?.kind === 'other') continue; // specials are skipped by design
    if (!x) problems.push(`extra in replica: ${rel}`);
    else if (!y) problems.push(`missing in replica: ${rel}`);
    else {
      const { mtimeUs: mx, ...restX } = x;
      const { mtimeUs: my, ...restY } = y;
      if (JSON.stringify(restX) !== JSON.stringify(restY)) problems.push(`differs: ${rel}: ${JSON.stringify(x)} vs ${JSON.stringify(y)}`);
      else if (mx !== undefined && my !== undefined && Math.abs(mx - my) > 2) problems.push(`mtime differs: ${rel}: ${mx} vs ${my}`);
    }
  }
  return problems;
}

/** A reporter that keeps lines in memory. */
export class MemoryLog implements Reporter {
  lines: string[] = [];
  actions: string[] = [];
  warnings: string[] = [];
  errors: string[] = [];
  /** Actions as structured (the text lines are in `actions`). */
  actionRecords: Action[] = [];
  action(action: Action): void {
    const message = actionText(action);
    this.actionRecords.push(action);
    this.actions.push(message);
    this.lines.push(message);
  }
  /** Debug lines (not in `lines`). */
  debugs: string[] = [];
  debug(message: string): void {
    this.debugs.push(message);
  }
  info(message: string): void {
    this.lines.push(message);
  }
  warn(message: string): void {
    this.warnings.push(message);
    this.lines.push(`warning: ${message}`);
  }
  error(message: string): void {
    this.errors.push(message);
    this.lines.push(`error: ${message}`);
  }
}

/**
 * Why the native addon's calls (syncfs, batched metadata fixes) cannot be tested in this run, for
 * `{ skip }`: it was not built (npm install found no C compiler), or FOLDER_SYNC_NATIVE=0. Or false.
 */
export const withoutAddon: string | false = loadNative() ? false : 'the native addon is not in use (not built: npm install found no C compiler; or FOLDER_SYNC_NATIVE=0)';

/** An Io that counts calls and lets a test inject failures by path. */
export class SpyIo implements Io {
  opens: string[] = [];
  fail: ((call: string, absPath: string) => NodeJS.ErrnoException | undefined) | undefined;
  private paths = new Map<number, string>();

  private check(call: string, absPath: string): void {
    const error = this.fail?.(call, absPath);
    if (error) throw error;
  }
  readdir = (p: string) => (this.check('readdir', p), nodeIo.readdir(p));
  lstat = (p: string) => (this.check('lstat', p), nodeIo.lstat(p));
  fstat = (fd: number) => nodeIo.fstat(fd);
  readlink = (p: string) => (this.check('readlink', p), nodeIo.readlink(p));
  openRead = (p: string) => {
    this.check('openRead', p);
    this.opens.push(p);
    const fd = nodeIo.openRead(p);
    this.paths.set(fd, p);
    return fd;
  };
  openWrite = (p: string, flags: 'create' | 'resume') => {
    this.check('openWrite', p);
    const fd = nodeIo.openWrite(p, flags);
    this.paths.set(fd, p);
    return fd;
  };
  read = (fd: number, buffer: Buffer, position: number | null) => (this.check('read', this.paths.get(fd) ?? ''), nodeIo.read(fd, buffer, position));
  write = (fd: number, buffer: Buffer, length: number, position: number) => (this.check('write', this.paths.get(fd) ?? ''), nodeIo.write(fd, buffer, length, position));
  ftruncate = (fd: number, length: number) => nodeIo.ftruncate(fd, length);
  /** Temporary files written by `copyInKernel` (the pass's large copies with threads). */
  kernelCopies: string[] = [];
  copyInKernel = (input: number, output: number, signal: AbortSignal): Promise<void> => {
    const target = this.paths.get(output) ?? '';
    this.kernelCopies.push(target);
    const error = this.fail?.('copyInKernel', target);
    return error ? Promise.reject(error) : nodeIo.copyInKernel(input, output, signal);
  };
  fsync = (fd: number) => nodeIo.fsync(fd);
  fsyncAsync = (fd: number) => {
    const error = this.fail?.('fsyncAsync', this.paths.get(fd) ?? '');
    return error ? Promise.reject(error) : nodeIo.fsyncAsync(fd);
  };
  /** The files whose descriptor `syncFs` was given, in order ('' for one a copying thread opened). */
  syncedFs: string[] = [];
  syncFs = (fd: number) => {
    const p = this.paths.get(fd) ?? '';
    this.syncedFs.push(p);
    const error = this.fail?.('syncFs', p);
    return error ? Promise.reject(error) : nodeIo.syncFs(fd);
  };
  /** The size of each batch `fixMetas` was given. */
  metaBatches: number[] = [];
  /**
   * `nodeIo.fixMetas` (the addon's, on the thread pool) for the fixes `fail` lets through; one it
   * fails as 'chmod' (when it has a mode) or 'utimes' gets that error (its `syscall` chmod or utime,
   * as the addon's), and nothing is done to its file; one it fails as 'lchown' (when it has an
   * owner) is made without its owner, with that error (`syscall` chown), as the addon does when a
   * file system refuses owners. `fail('fixMetas', '')` rejects the batch.
   */
  fixMetas = async (fixes: readonly MetaFix[]): Promise<MetaFixed> => {
    this.metaBatches.push(fixes.length);
    const whole = this.fail?.('fixMetas', '');
    if (whole) throw whole;
    const refused = fixes.map((fix) => {
      const chmod = fix.mode !== undefined ? this.fail?.('chmod', fix.abs) : undefined;
      if (chmod) return Object.assign(chmod, { syscall: 'chmod' });
      const utimes = this.fail?.('utimes', fix.abs);
      return utimes && Object.assign(utimes, { syscall: 'utime' });
    });
    const owners = fixes.map((fix) => (fix.uid !== undefined || fix.gid !== undefined ? this.fail?.('lchown', fix.abs) : undefined));
    const asked = fixes.map((fix, i) => (owners[i] ? { ...fix, uid: undefined, gid: undefined } : fix));
    const done = await nodeIo.fixMetas(asked.filter((_, i) => !refused[i]));
    const nums = new Float64Array(fixes.length * NUMS);
    const errors: (Error | undefined)[] = [];
    let k = 0;
    fixes.forEach((_, i) => {
      if (refused[i]) return void (errors[i] = refused[i]);
      nums.set(done.nums.subarray(k * NUMS, (k + 1) * NUMS), i * NUMS);
      errors[i] = done.errors?.[k] ?? (owners[i] && Object.assign(owners[i], { syscall: 'chown' }));
      k++;
    });
    return { nums, errors: errors.some(Boolean) ? errors : undefined };
  };
  /** Sources the addon's copies (`copyToTemp`, on the thread pool) read, in order asked. */
  poolCopies: string[] = [];
  /**
   * `nodeIo.copyToTemp`; `fail('copyToTemp', source)` rejects it with that error as is (give it a
   * `step` to stand for the addon's own failure), before anything is done.
   */
  copyToTemp = async (sourceAbs: string, tempAbs: string, maxBytes: number): Promise<TempCopy> => {
    this.poolCopies.push(sourceAbs);
    const error = this.fail?.('copyToTemp', sourceAbs);
    if (error) throw error;
    const copied = await nodeIo.copyToTemp(sourceAbs, tempAbs, maxBytes);
    this.paths.set(copied.fd, tempAbs);
    return copied;
  };
  fchmod = (fd: number, mode: number) => nodeIo.fchmod(fd, mode);
  futimes = (fd: number, t: Times) => nodeIo.futimes(fd, t);
  fchown = (fd: number, uid: number, gid: number) => (this.check('fchown', this.paths.get(fd) ?? ''), nodeIo.fchown(fd, uid, gid));
  lchown = (p: string, uid: number, gid: number) => (this.check('lchown', p), nodeIo.lchown(p, uid, gid));
  close = (fd: number) => {
    this.paths.delete(fd);
    nodeIo.close(fd);
  };
  // (Both folders: the kernel wants write permission on the one an entry leaves too.)
  rename = (a: string, b: string) => (this.check('rename', b), this.check('rename', a), nodeIo.rename(a, b));
  renameAsync = (a: string, b: string): Promise<void> => {
    const error = this.fail?.('rename', b);
    return error ? Promise.reject(error) : nodeIo.renameAsync(a, b);
  };
  unlink = (p: string) => (this.check('unlink', p), nodeIo.unlink(p));
  /** Files unlinked on the thread pool (`unlinkAsync`), in order asked; `fail('unlink', p)` fails them too. */
  poolUnlinks: string[] = [];
  unlinkAsync = async (p: string): Promise<void> => {
    this.poolUnlinks.push(p);
    this.check('unlink', p);
    return nodeIo.unlinkAsync(p);
  };
  rmdir = (p: string) => (this.check('rmdir', p), nodeIo.rmdir(p));
  mkdir = (p: string, mode: number) => (this.check('mkdir', p), nodeIo.mkdir(p, mode));
  chmod = (p: string, mode: number) => (this.check('chmod', p), nodeIo.chmod(p, mode));
  utimes = (p: string, t: Times) => (this.check('utimes', p), nodeIo.utimes(p, t));
  lutimes = (p: string, t: Times) => (this.check('lutimes', p), nodeIo.lutimes(p, t));
  symlink = (t: string, p: string) => (this.check('symlink', p), nodeIo.symlink(t, p));
  link = (existing: string, p: string) => (this.check('link', p), nodeIo.link(existing, p));
  fsyncDir = async (p: string) => {
    this.check('fsyncDir', p);
    return nodeIo.fsyncDir(p);
  };
}

/** `dir/f000.txt`, `dir/f001.txt`… (`count` names, in the walk's order up to 1,000). */
/** Runs `mount` with `args`; false if it could not (not root, no such filesystem, a container). */
export function tryMount(...args: string[]): boolean {
  return spawnSync('mount', args, { stdio: 'ignore' }).status === 0;
}

/**
 * An ext4 filesystem in a 32 MiB image file under `base`, mounted at `base/mnt` (`mkfsArgs` added
 * to mkfs.ext4's); undefined if this machine cannot (not root, no mkfs.ext4, no loop device).
 */
export function mountExt4(base: string, mkfsArgs: string[] = []): { mnt: string; unmount: () => void; mount: () => boolean } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const image = path.join(base, 'ext4.img');
  const mnt = path.join(base, 'mnt');
  fs.mkdirSync(mnt, { recursive: true });
  fs.writeFileSync(image, '');
  fs.truncateSync(image, 32 << 20);
  if (spawnSync('mkfs.ext4', ['-q', '-F', ...mkfsArgs, image], { stdio: 'ignore' }).status !== 0) return undefined;
  const mount = () => tryMount('-o', 'loop', image, mnt);
  if (!mount()) return undefined;
  return { mnt, mount, unmount: () => void spawnSync('umount', [mnt]) };
}

export function numbered(dir: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${dir}/f${String(i).padStart(3, '0')}.txt`);
}

export function errno(code: string, message = code): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

/** Writes `files` (relative path: content) below `root`, with folder `root/ro` (0555) made writable meanwhile. */
export function writePastReadOnly(root: string, files: Record<string, string>): void {
  const ro = path.join(root, 'ro');
  fs.chmodSync(ro, 0o755);
  for (const [relPath, content] of Object.entries(files)) fs.writeFileSync(path.join(root, relPath), content);
  fs.chmodSync(ro, 0o555);
}

/**
 * A `SpyIo.fail` for folder `dir` as a user who is not root meets it (root never is refused):
 * EACCES creating, renaming or unlinking an entry in it while it lacks u+w.
 */
export function refusedWhileReadOnly(dir: string): (call: string, absPath: string) => NodeJS.ErrnoException | undefined {
  return (call, absPath) =>
    ['openWrite', 'rename', 'unlink'].includes(call) && path.dirname(absPath) === dir && (fs.statSync(dir).mode & 0o200) === 0
      ? errno('EACCES', 'permission denied')
      : undefined;
}

export interface SyncSetup {
  source: string;
  replica: string;
  manifestPath: string;
  log: MemoryLog;
  io: SpyIo;
}

/** A fresh source/replica/manifest trio in a temp folder. */
export function setup(spec: Record<string, Spec> = {}): SyncSetup {
  const base = tempDir();
  const source = path.join(base, 'source');
  const replica = path.join(base, 'replica');
  writeTree(source, spec);
  return { source, replica, manifestPath: path.join(base, 'state', 'manifest.json'), log: new MemoryLog(), io: new SpyIo() };
}

/** Runs one pass in-process, the way the CLI does (manifest opened, checkpointed). */
export async function sync(
  s: SyncSetup,
  options: Partial<PassOptions> & { excludes?: string[] } = {},
): Promise<PassResult & { manifest: Manifest }> {
  fs.mkdirSync(path.dirname(s.manifestPath), { recursive: true });
  s.log.lines = [];
  s.log.actions = [];
  s.log.warnings = [];
  s.log.errors = [];
  s.io.opens = [];
  s.io.kernelCopies = [];
  const manifest = await Manifest.open(s.manifestPath, {
    source: s.source,
    replica: s.replica,
    readOnly: options.dryRun,
    warn: (m) => s.log.warn(m),
  });
  const result = await runPass({
    source: s.source,
    replica: s.replica,
    dryRun: false,
    checksum: false,
    maxDelete: undefined,
    fsync: true,
    io: s.io,
    log: s.log,
    manifest,
    shouldStop: () => false,
    ...options,
    exclude: options.exclude ?? compileExcludes(options.excludes ?? []),
  });
  return { ...result, manifest };
}

/** Waits until every file written so far is older than the racy window. */
export function settle(ms = 150): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Sets mtime (seconds) of a path without following links. */
export function setMtime(abs: string, seconds: number): void {
  fs.utimesSync(abs, seconds, seconds);
}

export function md5(text: string | Buffer): string {
  return createHash('md5').update(text).digest('hex');
}

/** Every temporary file of ours below `root`. */
export function tempFiles(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir)) {
      const abs = path.join(dir, name);
      if (name.startsWith('.folder-sync-')) found.push(abs);
      if (fs.lstatSync(abs).isDirectory()) walk(abs);
    }
  };
  if (fs.existsSync(root)) walk(root);
  return found;
}
