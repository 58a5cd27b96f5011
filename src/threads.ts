/**
 * Starting one of our worker threads. Built, each thread's module is `<name>.js` beside this one.
 * Run from source (tsx: the tests), it is `<name>.ts`, and a worker does not inherit tsx's loader:
 * it registers it, then imports the module.
 */
import { Worker } from 'node:worker_threads';

export function startThread(name: string, workerData?: unknown): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, import.meta.url), { workerData });
  const entry = new URL(`./${name}.ts`, import.meta.url).href;
  // Resolved here: an eval'd worker resolves bare names from the working folder, which may be anywhere.
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(api)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData });
}
