import Database from 'better-sqlite3';
import { openWebUIRevision } from '../sync/sqlite-reader.ts';
import type { PointInTime } from './history.ts';

/**
 * Open WebUI schema revisions around a restore: the revision of an existing SQLite file (the database an instance
 * at the target path runs), and the warnings an operator needs before starting Open WebUI on a restored file.
 */

/**
 * The Open WebUI revision recorded in a SQLite file: `alembic:<version_num>` (0.4+), else `peewee:<last migration>`
 * (older releases); null when it has neither or cannot be read as an Open WebUI database.
 */
export function sqliteRevision(file: string): string | null {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const tables = new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]);
    return openWebUIRevision(db, tables);
  } catch {
    return null;
  } finally {
    db?.close();
  }
}

/**
 * What differs between the revision restored and the Open WebUI that will open it: the file replaced at the target
 * path (with --force) was at another revision, or the tenant's source is at another revision today than at the
 * point in time restored.
 */
export function revisionWarnings(o: {
  revision: string | null;
  latestRevision: string | null;
  pit: PointInTime | null;
  to: string;
  /** Revision of the file the restore replaces (undefined: nothing replaced). */
  replacedRevision: string | null | undefined;
}): string[] {
  const out: string[] = [];
  const rev = o.revision ?? 'unknown';
  if (o.replacedRevision !== undefined && o.replacedRevision !== o.revision) {
    out.push(
      `${o.to} was at Open WebUI revision ${o.replacedRevision ?? 'unknown'}; the restored file is at ${rev}: the ` +
        'Open WebUI that opens it must be of that revision or newer (a newer one upgrades the file when it starts, an ' +
        'older one cannot read it)',
    );
  }
  if (o.pit && o.latestRevision && o.revision && o.latestRevision !== o.revision) {
    out.push(
      `the tenant's Open WebUI is now at revision ${o.latestRevision}, the restored file at ${o.revision} (as at ` +
        `${o.pit.runFinishedAt.toISOString()}): starting today's Open WebUI on it upgrades it on start; an older ` +
        `release must be used to run it as it was`,
    );
  }
  return out;
}
