import fs from 'node:fs';
import path from 'node:path';
import { ConflictError, InvalidInputError } from '../errors.ts';
import { realPathOf } from '../sync/source-path.ts';

/**
 * Where recovery may write: a new file (or an existing one with `force`) in an existing directory, never the
 * tenant's live SQLite file or its -wal/-shm/-journal companions. Files are created with mode 0600 (they hold a
 * user's chats) under a temporary name and renamed into place, so a path holds either the whole file or what it
 * held before.
 */

export function checkOutputPath(
  file: string,
  opts: { force: boolean; livePaths: readonly string[]; what: string },
): string {
  const to = path.resolve(file);
  const dir = path.dirname(to);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new InvalidInputError(
      `directory ${dir} does not exist; create it first or choose another path for ${opts.what}`,
    );
  }
  const live = new Set<string>();
  for (const p of opts.livePaths) {
    for (const base of [path.resolve(p), realPathOf(p)]) {
      if (!base) continue;
      for (const suffix of ['', '-wal', '-shm', '-journal']) live.add(base + suffix);
    }
  }
  const dirReal = realPathOf(dir);
  const candidates = [to, realPathOf(to), dirReal ? path.join(dirReal, path.basename(to)) : null];
  if (candidates.some((c) => c !== null && live.has(c))) {
    throw new ConflictError(
      `${to} is the tenant's live SQLite database (or one of its journal files); recovery never writes there — ` +
        'choose another path and import the file through Open WebUI',
    );
  }
  let st: fs.Stats | null = null;
  try {
    st = fs.lstatSync(to);
  } catch {
    st = null;
  }
  if (st?.isDirectory()) throw new InvalidInputError(`${to} is a directory; name a file for ${opts.what}`);
  if (st && !opts.force) throw new ConflictError(`${to} already exists; add --force to replace it`);
  return to;
}

/** A temporary sibling of `to` for building the file before the rename. */
export function temporaryPath(to: string): string {
  return path.join(path.dirname(to), `.${path.basename(to)}.recover-${process.pid}-${Date.now()}.tmp`);
}

/** Writes `text` to `to` atomically with mode 0600. */
export function writeFileAtomically(to: string, text: string): void {
  const tmp = temporaryPath(to);
  try {
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.fchmodSync(fd, 0o600);
      fs.writeFileSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, to);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** A file name for a user's export: `<tenant>-<user>-chats-<UTC time>.json` with unsafe characters replaced. */
export function exportFileName(clientName: string, user: string, now: Date = new Date()): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._@-]+/g, '_').slice(0, 80);
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${safe(clientName)}-${safe(user)}-chats-${stamp}.json`;
}
