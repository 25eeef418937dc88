import { realpathSync } from 'node:fs';
import type pg from 'pg';
import { withTransaction, type DbScope, type Queryable } from '../db.ts';
import { ConflictError, SourceUnusableError } from '../errors.ts';

/**
 * A tenant's registered SQLite path is resolved (every symlink followed) once, when it is registered, and kept in
 * client_deployments.sqlite_realpath. Before a run reads anything it resolves the path again and refuses when it now
 * leads elsewhere — above all into another tenant's registered file, which would copy that tenant's data into this
 * tenant's backup.
 */

/** The real path of a file, or null when it does not exist (the open that follows reports that clearly). */
export function realPathOf(filePath: string): string | null {
  try {
    return realpathSync(filePath);
  } catch {
    return null;
  }
}

/**
 * The tenant of the same cluster (other than `clientName`) whose registered file is `realPath`, if any, within the
 * session's scope. The cluster is `cluster`, else the one `clientName` is registered in: the same path on the hosts
 * of another cluster is another machine's file.
 */
export async function ownerOfSqliteFile(
  client: Queryable,
  realPath: string,
  clientName: string,
  cluster?: string,
): Promise<string | null> {
  const res = await client.query<{ client_name: string }>(
    `SELECT o.client_name FROM sync_metadata.client_deployments o
       JOIN sync_metadata.hosts oh ON oh.host_id = o.host_id
      WHERE o.client_name <> $2::text
        AND (o.sqlite_realpath = $1::text OR (o.sqlite_realpath IS NULL AND o.sqlite_path = $1::text))
        AND oh.cluster_name = coalesce($3::text,
              (SELECT h.cluster_name FROM sync_metadata.client_deployments d
                 JOIN sync_metadata.hosts h ON h.host_id = d.host_id WHERE d.client_name = $2::text))
      ORDER BY o.client_name LIMIT 1`,
    [realPath, clientName, cluster ?? null],
  );
  return res.rows[0]?.client_name ?? null;
}

/**
 * Registration: refuses a file that already is the registered SQLite file of another tenant of `cluster`. Returns its
 * real path.
 */
export async function assertSqliteFileUnclaimed(
  client: Queryable,
  sqlitePath: string,
  clientName: string,
  cluster: string,
): Promise<string | null> {
  const real = realPathOf(sqlitePath);
  if (real === null) return null;
  const owner = await ownerOfSqliteFile(client, real, clientName, cluster);
  if (owner) {
    throw new ConflictError(
      `${sqlitePath}${real === sqlitePath ? '' : ` (which resolves to ${real})`} is already the registered SQLite ` +
        `file of tenant "${owner}"; nothing was changed — register "${clientName}" with its own file`,
      { owner, realPath: real },
    );
  }
  return real;
}

type RegisteredSource = {
  readonly deploymentId: string;
  readonly clientName: string;
  readonly sqlitePath: string | null;
};

/**
 * Refuses (SourceUnusableError, nothing read) a registered sqlite_path that now resolves to another file than at
 * registration, or to another tenant's registered file. Returns the real path to record when none is recorded yet
 * (null otherwise, and when the file does not exist: opening it reports that).
 */
export async function checkRegisteredSource(client: Queryable, dep: RegisteredSource): Promise<string | null> {
  if (!dep.sqlitePath) return null;
  const sqlitePath = dep.sqlitePath;
  const real = realPathOf(sqlitePath);
  if (real === null) return null;
  const owner = await ownerOfSqliteFile(client, real, dep.clientName);
  if (owner) {
    throw new SourceUnusableError(
      `${sqlitePath} now resolves to ${real}, the registered SQLite file of tenant "${owner}"; nothing was read ` +
        `or written — point ${sqlitePath} back at the file of "${dep.clientName}"`,
      { details: { owner, realPath: real } },
    );
  }
  const res = await client.query<{ sqlite_realpath: string | null }>(
    'SELECT sqlite_realpath FROM sync_metadata.client_deployments WHERE deployment_id = $1::uuid',
    [dep.deploymentId],
  );
  const registered = res.rows[0]?.sqlite_realpath ?? null;
  if (registered === null) return real;
  if (registered !== real) {
    throw new SourceUnusableError(
      `${sqlitePath} now resolves to ${real}, not to ${registered} as when tenant "${dep.clientName}" was ` +
        'registered; nothing was read or written — restore the link, or if the file really moved, register ' +
        `the tenant again (syncctl client deregister ${dep.clientName}, then register it with the new path)`,
      { details: { registered, realPath: real } },
    );
  }
  return null;
}

/**
 * Before a run reads the tenant's file: checkRegisteredSource, and for a tenant registered before real paths were
 * recorded, records where its path resolves now.
 */
export async function assertRegisteredSource(pool: pg.Pool, scope: DbScope, dep: RegisteredSource): Promise<void> {
  await withTransaction(
    pool,
    async (client) => {
      const record = await checkRegisteredSource(client, dep);
      if (record === null) return;
      await client.query(
        `UPDATE sync_metadata.client_deployments SET sqlite_realpath = $2::text
          WHERE deployment_id = $1::uuid AND sqlite_realpath IS NULL`,
        [dep.deploymentId, record],
      );
    },
    scope,
  );
}
