/** The locks that keep two folder-syncs off one manifest, and off one replica. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { acquireLock } from '../src/cli/lock.js';
import { tempDir } from './helpers/tree.js';

describe('locks', () => {
  test('refreshed before each pass: its times moved to now (a cleaner of old files in /tmp never takes it), made again if removed, and a warning if another process holds it now', () => {
    const dir = tempDir('fs-lock-');
    const lock = acquireLock(path.join(dir, 'm.json'));
    assert.equal(fs.readFileSync(lock.path, 'utf8'), `${process.pid}\n`);
    fs.utimesSync(lock.path, 1_000_000_000, 1_000_000_000); // aged, as if held for years
    assert.equal(lock.refresh(), undefined);
    assert.ok(Date.now() - fs.statSync(lock.path).mtimeMs < 60_000, 'touched');
    fs.rmSync(lock.path); // a cleaner took it
    assert.equal(lock.refresh(), undefined);
    assert.equal(fs.readFileSync(lock.path, 'utf8'), `${process.pid}\n`, 'made again');
    // Meanwhile another (running) process took it: said, and left to it.
    fs.writeFileSync(lock.path, `${process.ppid}\n`);
    assert.match(lock.refresh() ?? '', new RegExp(`^another folder-sync \\(pid ${process.ppid}\\) took the lock `));
    lock.release();
    assert.equal(fs.readFileSync(lock.path, 'utf8'), `${process.ppid}\n`, 'not ours to remove');
  });
});
