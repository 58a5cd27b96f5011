/**
 * Builds `dist/`: the program bundled by esbuild, one file per entry (the command and its three
 * kinds of threads: `threads.ts` starts `<name>.js` beside itself), what they share in chunks, and
 * winston in a chunk of its own that the first logger loads (`log.ts`). Types are checked apart
 * (`tsc`, which writes nothing: `noEmit`), in `npm run build`.
 *
 * Perf: Node 20 loads a module at a time, resolving and compiling each: the program's 33 modules
 * and its packages' 127 (winston and what it needs, 115) cost the no-change pass at 100k ~70 ms of
 * CPU and ~40 ms of its time: 0.64 s, bundled 0.60 s (medians of 11, alternating). Bundled, they
 * are a few files. The tests run the sources (tsx); `test/build.test.ts` runs what this builds.
 *
 * Usage: node scripts/build.mjs [outdir]   (default: dist)
 */
import { build } from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
/** The command, and the modules `startThread` starts threads from (`THREAD_MODULES` in src/threads.ts), by their name in `outdir`. */
const ENTRIES = {
  bin: 'src/bin.ts',
  'lister-worker': 'src/tree/lister-worker.ts',
  'hash-worker': 'src/hash/hash-worker.ts',
  'copy-worker': 'src/replica/local/copiers/copy-worker.ts',
};

/**
 * Bundles the program into `outdir`, which must be a folder of the repository's top level: the
 * program finds `../package.json` and `../build/Release/fswalk.node` (the native lister) from it.
 */
export async function bundle(outdir) {
  fs.rmSync(outdir, { recursive: true, force: true });
  await build({
    absWorkingDir: ROOT,
    entryPoints: ENTRIES,
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // The CommonJS packages (commander, winston) call require() for Node's own modules.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    logLevel: 'warning',
    // ssh2 loads its optional native parts (.node files) itself, and only for a remote replica:
    // left out of the bundle, it is loaded from node_modules when one is used.
    external: ['ssh2'],
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await bundle(path.resolve(ROOT, process.argv[2] ?? 'dist'));
