/**
 * Exclude patterns, compiled once at start-up into one function.
 *
 * Semantics (the contract's, plus rsync's two habits users bring along):
 * - a pattern is a micromatch glob against the `/`-separated path relative to the root;
 * - a pattern without `/` matches a name at any depth (`*.tmp`, `node_modules`);
 * - `*` matches dotfiles too;
 * - a leading `/` anchors the pattern at the root (`/build` is only the top-level build);
 * - a trailing `/` makes it match folders only (`cache/`);
 * - `!pattern` re-includes what an earlier pattern excluded (last match wins), for ignore files.
 */
import micromatch from 'micromatch';

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
  const test = micromatch.matcher(pattern, { dot: true, basename });
  return { negate, dirOnly, test };
}
