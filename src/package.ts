/**
 * Where the package's own files are. Run from source this module is `src/package.ts`, built it is
 * part of a file in `dist/`: both one level below the package's root, where `package.json` and the
 * native addon's `build/` are.
 */
import { readFileSync } from 'node:fs';

export const PACKAGE_ROOT = new URL('../', import.meta.url);

export const VERSION = (JSON.parse(readFileSync(new URL('package.json', PACKAGE_ROOT), 'utf8')) as { version: string }).version;
