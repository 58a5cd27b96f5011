/**
 * Starting one of our worker threads. Built, each thread's module is `<name>.js` beside this one.
 * Run from source (tsx: the tests), it is its source file (`THREAD_MODULES`), and a worker does not inherit tsx's loader:
 * it registers it, then imports the module.
 */
import { Worker } from 'node:worker_threads';

/**
 * Perf: our threads keep little alive (a folder's listing, a chunk being hashed); V8's default
 * young generation (16 MB semi-spaces) made each one hold 25 MB of heap, 4 MB makes it 13 MB
 * (measured on the 1M-file no-change pass: a peak ~25 MB lower, in the same time).
 */
const resourceLimits = { maxYoungGenerationSizeMb: 4 };

/** Each thread's module: built, `dist/<name>.js` (see `scripts/build.mjs`); from source, this file. */
export const THREAD_MODULES = {
  'lister-worker': 'tree/lister-worker.ts',
  'hash-worker': 'hash/hash-worker.ts',
  'copy-worker': 'replica/local/copiers/copy-worker.ts',
} as const;

export type ThreadName = keyof typeof THREAD_MODULES;

export function startThread(name: ThreadName, workerData?: unknown, options: { trackUnmanagedFds?: boolean } = {}): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, import.meta.url), { workerData, resourceLimits, ...options });
  const entry = new URL(`./${THREAD_MODULES[name]}`, import.meta.url).href;
  // Resolved here: an eval'd worker resolves bare names from the working folder, which may be anywhere.
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(api)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData, resourceLimits, ...options });
}
