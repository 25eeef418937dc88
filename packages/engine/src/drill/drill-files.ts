import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Where drills write: one directory per process under the drill directory, `pid-<pid>`, readable by its owner only
 * (a restored database holds password hashes). A drill removes its files when it ends; a process killed mid-drill
 * leaves its directory behind, and the next process to start a drill worker removes every directory whose process
 * is gone (sweepStaleDrillDirs).
 */

/** The default drill directory: `owui-sync-drills` in the system's temporary directory. */
export function defaultDrillDir(): string {
  return path.join(os.tmpdir(), 'owui-sync-drills');
}

const PID_DIR = /^pid-(\d{1,10})$/;

/** This process's own directory under `root`, created (mode 0700) when missing. */
export function processDrillDir(root: string): string {
  const dir = path.join(path.resolve(root), `pid-${process.pid}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // In a shared temporary directory someone else may have put something at this path first.
  const st = fs.lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) {
    throw new Error(`${dir} is not a directory of this user; remove it or set DRILL_DIR to a private directory`);
  }
  fs.chmodSync(dir, 0o700);
  return dir;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the `pid-N` directories under `root` whose process no longer runs (drills killed mid-way). Returns the
 * directories removed. Anything else under `root` is left alone.
 */
export function sweepStaleDrillDirs(root: string): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(root, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const removed: string[] = [];
  for (const e of entries) {
    const m = PID_DIR.exec(e.name);
    if (!m || !e.isDirectory()) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    const dir = path.join(root, e.name);
    fs.rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

/** Removes a drill's database and whatever SQLite or the restore left beside it. */
export function removeDrillFile(file: string): void {
  const dir = path.dirname(file);
  const base = path.basename(file);
  for (const suffix of ['', '-journal', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
  // restoreTenant's temporary name (.<base>.restore-…), when the restore itself was interrupted.
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (name.startsWith(`.${base}.restore-`)) fs.rmSync(path.join(dir, name), { force: true });
  }
}
