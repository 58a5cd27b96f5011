/** The kernel's copy of one open file into another, by a `cat` process (see `catCopy`). */
import { spawn, type ChildProcess } from 'node:child_process';

/**
 * Perf: `cat` (GNU coreutils 9 and later) copies one regular file into another with
 * copy_file_range: the bytes stay in the kernel, which costs about half the CPU time of reading
 * and writing them through a buffer here (4 GiB, cold cache, writeback included: 2.6-4.0 s of CPU
 * against 6.6-7.8 s), and leaves a core to the thread that hashes the same file meanwhile.
 *
 * Safety: why a process and not `fs.copyFile`, Node's only kernel copy. libuv's copy (1.46, in
 * Node 20) asks for the size it saw at the start and loops forever, on a thread-pool thread that
 * nothing can stop, when the source shrinks meanwhile (a log truncated in place); even
 * `process.exit` then hangs. It also gives the temporary file the source's permission bits before
 * writing the first byte. `cat` stops at the end of the file, works on the descriptors we opened
 * (the very inode opened with O_NOFOLLOW, no path looked up again), leaves the temporary file
 * private (0600), and can be killed. An older or other `cat` copies through its own buffer:
 * slower, still right.
 */
export function catCopy(input: number, output: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('cat', [], { stdio: [input, output, 'pipe'] });
    trackChild(child);
    // Settled only once the process is gone: a stopped copy writes nothing after.
    const kill = () => child.kill('SIGKILL');
    signal.addEventListener('abort', kill, { once: true });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-500)));
    child.on('error', reject); // not started (no `cat`)
    child.on('close', (code, killedBy) => {
      signal.removeEventListener('abort', kill);
      if (code === 0) resolve();
      else reject(new Error(`cat ${killedBy ? `killed by ${killedBy}` : `exited with status ${code}`}${stderr ? `: ${stderr.trim()}` : ''}`));
    });
  });
}

const children = new Set<ChildProcess>();

/**
 * Safety: a copying process must not outlive the pass that started it (after a second SIGINT, the
 * process exits at once): those still running are killed on exit. A SIGKILL of folder-sync itself
 * leaves them to finish their copy into a temporary file that the next pass resumes or sweeps.
 */
function trackChild(child: ChildProcess): void {
  if (!exitHookSet) {
    exitHookSet = true;
    process.on('exit', () => {
      for (const running of children) running.kill('SIGKILL');
    });
  }
  children.add(child);
  const forget = () => children.delete(child);
  child.on('error', forget);
  child.on('close', forget);
}
let exitHookSet = false;

