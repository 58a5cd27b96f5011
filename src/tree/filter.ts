/**
 * Exclude patterns, compiled once at start-up into one function, and our own files (log, manifest,
 * backups) inside a root. The listing threads import this module: keep it light (Perf: a thread
 * that loaded the CLI's modules, winston among them, started listing ~100 ms later).
 *
 * Semantics (the contract's, plus rsync's two habits users bring along):
 * - a pattern is a micromatch glob against the `/`-separated path relative to the root;
 * - a pattern without `/` matches a name at any depth (`*.tmp`, `node_modules`);
 * - `*` matches dotfiles too;
 * - a leading `/` anchors the pattern at the root (`/build` is only the top-level build);
 * - a trailing `/` makes it match folders only (`cache/`);
 * - `!pattern` re-includes what an earlier pattern excluded (last match wins), for ignore files.
 */
import { createRequire } from 'node:module';

type Micromatch = typeof import('micromatch');
let micromatchModule: Micromatch | undefined;
/** Perf: loaded on the first pattern (~14 ms of start-up a thread, for nothing when there is none). */
function micromatch(): Micromatch {
  micromatchModule ??= createRequire(import.meta.url)('micromatch') as Micromatch;
  return micromatchModule;
}

/** `(relPath, isDir) => excluded?` */
export type ExcludeMatcher = (relPath: string, isDir: boolean) => boolean;

interface Rule {
  negate: boolean;
  dirOnly: boolean;
  test: (relPath: string) => boolean;
}

export const includeAll: ExcludeMatcher = () => false;

/** The source's own exclude list, in its root, used when present. */
export const IGNORE_FILE = '.folder-syncignore';

/**
 * Patterns from an ignore file or `--exclude-from`: one a line; blank lines and lines starting
 * with `#` are skipped; trailing spaces and a CR are cut; `!` re-includes; `\#` and `\!` start a
 * pattern with a literal `#` or `!` (micromatch reads the escape).
 */
export function readPatternFile(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/[ \t\r]+$/, ''))
    .filter((line) => line !== '' && !line.startsWith('#'));
}

export function compileExcludes(patterns: readonly string[]): ExcludeMatcher {
  const rules = patterns.map(compileRule).filter((rule): rule is Rule => rule !== undefined);
  if (rules.length === 0) return includeAll;
  // Perf: the common case, no `!` and no folder-only rules, is a single compiled regex test
  // (per-pattern matchers below are only built when the order of rules matters).
  if (rules.every((rule) => !rule.negate && !rule.dirOnly)) {
    return (relPath) => rules.some((rule) => rule.test(relPath));
  }
  return (relPath, isDir) => {
    let excluded = false;
    for (const rule of rules) {
      if (rule.negate !== excluded) continue; // only a rule that could flip the verdict matters
      if (rule.dirOnly && !isDir) continue;
      if (rule.test(relPath)) excluded = !rule.negate;
    }
    return excluded;
  };
}

/**
 * The names `patterns` are, if each is a plain name (`node_modules`, `.git`, `cache/`: no glob
 * character, no `/` but trailing ones, no `!` anywhere, so no re-inclusion); else undefined. Such
 * a pattern excludes every folder of that name, at any depth (see `compileRule`): the native
 * walker, which has no micromatch, does not descend into them (`nativeWalker` in `choose.ts`).
 */
export function plainNames(patterns: readonly string[]): string[] | undefined {
  const names: string[] = [];
  for (const pattern of patterns) {
    const name = pattern.replace(/\/+$/, '');
    if (!/^[^*?[\]{}()!+@\\|/#]+$/.test(name)) return undefined;
    names.push(name);
  }
  return names;
}

function compileRule(raw: string): Rule | undefined {
  let pattern = raw.trim() === '' ? '' : raw;
  let negate = false;
  if (pattern.startsWith('!')) {
    negate = true;
    pattern = pattern.slice(1);
  }
  let dirOnly = false;
  while (pattern.length > 1 && pattern.endsWith('/')) {
    dirOnly = true;
    pattern = pattern.slice(0, -1);
  }
  let anchored = false;
  if (pattern.startsWith('/')) {
    anchored = true;
    pattern = pattern.replace(/^\/+/, '');
  }
  if (pattern === '') return undefined;
  // micromatch's `basename` option applies to every pattern of a matcher, even ones with `/`:
  // only patterns without `/` may use it.
  const basename = !anchored && !pattern.includes('/');
  const test = micromatch().matcher(pattern, { dot: true, basename });
  return { negate, dirOnly, test };
}

/**
 * The exclude matcher of a pass: the user's patterns plus our own files (log, manifest) where they
 * live inside a root. Built the same way in the lister threads, from the same two lists.
 */
export function buildExclude(patterns: readonly string[], own: readonly OwnPath[]): ExcludeMatcher {
  const userExclude = compileExcludes(patterns);
  if (own.length === 0) return userExclude;
  const isOwn = compileOwn(own);
  return (relPath, isDir) => isOwn(relPath) || userExclude(relPath, isDir);
}

/**
 * One of our own files inside a root, relative to it, with what belongs to it:
 * - the manifest: `.lock`, the `.d` folder, set-aside `.corrupt-…` copies and lowdb's `.name.tmp`;
 * - the log: logrotate's `name.1`…, and with rotation on, winston's `name1.ext` to `name<rotated>.ext`;
 * - the backup dir: everything under it.
 */
export type OwnPath = { kind: 'manifest'; path: string } | { kind: 'log'; path: string; rotated: number } | { kind: 'backup'; path: string };

/** Compiled once per matcher: the names to test are worked out here, not per entry. */
function compileOwn(own: readonly OwnPath[]): (relPath: string) => boolean {
  const tests = own.map((o): ((relPath: string) => boolean) => {
    const file = o.path;
    switch (o.kind) {
      case 'backup':
        return (relPath) => relPath === file || relPath.startsWith(file + '/');
      case 'manifest': {
        const slash = file.lastIndexOf('/');
        const lowdbTemp = file.slice(0, slash + 1) + '.' + file.slice(slash + 1) + '.tmp';
        return (relPath) => {
          if (relPath === file || relPath === lowdbTemp) return true;
          if (!relPath.startsWith(file + '.')) return false;
          const rest = relPath.slice(file.length + 1);
          return rest === 'lock' || rest === 'd' || rest.startsWith('d/') || rest.startsWith('corrupt-');
        };
      }
      case 'log': {
        const slash = file.lastIndexOf('/');
        const dot = file.lastIndexOf('.');
        const [stem, ext] = dot > slash + 1 ? [file.slice(0, dot), file.slice(dot)] : [file, ''];
        const rotated = (n: string, max: number) => /^[1-9]\d*$/.test(n) && Number(n) <= max;
        return (relPath) =>
          relPath === file ||
          (relPath.startsWith(file + '.') && /^\d+$/.test(relPath.slice(file.length + 1))) ||
          (o.rotated > 0 && relPath.startsWith(stem) && relPath.endsWith(ext) && rotated(relPath.slice(stem.length, relPath.length - ext.length), o.rotated));
      }
    }
  });
  return (relPath) => tests.some((test) => test(relPath));
}
