import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { ConflictError, InvalidInputError, NotFoundError, withTransaction, type Queryable } from '@owui-sync/engine';
import { deleteQueuedSyncJobs } from '@owui-sync/engine/queue';
import {
  applySyncSwitch,
  canSyncNow,
  deleteTenant,
  findTenant,
  SYNC_REFUSALS,
  tenantClusterOf,
  tenantStatuses,
  updateTenantSettings,
  type Tenant,
  type TenantStatusRow,
} from '@owui-sync/engine/tenants';
import {
  conflictConfigSchema,
  type ConflictConfig,
  checkClientName,
  schemaNameFor,
  quoteIdent,
} from '@owui-sync/schema';

/** Tenant lifecycle operations on sync_metadata.client_deployments, scoped to one cluster. */

/** A tenant's row of sync_metadata.v_sync_status, as `client list` and `client status` print it. */
export type TenantStatus = TenantStatusRow;

/** A tenant's client_deployments row (with its cluster), as the CLI's tenant commands read it. */
export type TenantRegistration = Tenant;

export function validName(name: string): string {
  const check = checkClientName(name);
  if (!check.ok) throw new InvalidInputError(check.reason);
  return check.value;
}

/** Runs `fn` in a transaction scoped to the cluster (what RLS lets a service session see). */
export function inCluster<T>(pool: pg.Pool, cluster: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  return withTransaction(pool, fn, { cluster });
}

export async function findDeployment(db: Queryable, name: string, cluster: string): Promise<TenantRegistration> {
  const row = await findTenant(db, name, cluster);
  if (row) return row;
  // An admin session sees every cluster: say where the tenant is when it is elsewhere.
  const other = await tenantClusterOf(db, name);
  if (other) {
    throw new NotFoundError(
      `client "${name}" belongs to cluster "${other}", not "${cluster}"; pass --cluster ${other} or set CLUSTER_NAME=${other}`,
    );
  }
  throw new NotFoundError(
    `client "${name}" is not registered in cluster "${cluster}"; list them with: syncctl clients — ` +
      `or register it: syncctl client register ${name} --sqlite PATH`,
  );
}

export type EnableResult = { client_name: string; sync_enabled: boolean; status: string; changed: boolean };

/** start-sync / pause-sync: sync_enabled and status; the leader's scheduler reacts on its next tick. */
export async function setSyncEnabled(
  pool: pg.Pool,
  cluster: string,
  name: string,
  enabled: boolean,
): Promise<EnableResult> {
  validName(name);
  return inCluster(pool, cluster, async (c) => {
    const before = await findDeployment(c, name, cluster);
    const after = await applySyncSwitch(c, before, { sync_enabled: enabled });
    return { client_name: name, sync_enabled: after.sync_enabled, status: after.status, changed: after.changed };
  });
}

export async function tenantStatus(pool: pg.Pool, cluster: string, name: string): Promise<TenantStatus> {
  validName(name);
  return inCluster(pool, cluster, async (c) => {
    await findDeployment(c, name, cluster);
    const rows = await tenantStatuses(c, cluster, { clientName: name });
    return rows[0] as TenantStatus;
  });
}

export async function listTenants(pool: pg.Pool, cluster: string): Promise<TenantStatus[]> {
  return inCluster(pool, cluster, async (c) => {
    return tenantStatuses(c, cluster);
  });
}

export const MAX_INTERVAL = 31_536_000;

export function parseInterval(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1 || n > MAX_INTERVAL) {
    throw new InvalidInputError(
      `interval "${text}" is not a whole number of seconds between 1 and ${MAX_INTERVAL} (e.g. 60, 300, 3600, 86400)`,
    );
  }
  return n;
}

export async function setSyncInterval(
  pool: pg.Pool,
  cluster: string,
  name: string,
  seconds: number,
): Promise<{ client_name: string; sync_interval: number; previous: number }> {
  validName(name);
  return inCluster(pool, cluster, async (c) => {
    const before = await findDeployment(c, name, cluster);
    // next_sync_at was computed from the old interval; clearing it makes the tenant due one new interval after its
    // last sync, and the leader spreads it again on the next enqueue.
    await updateTenantSettings(c, before.deployment_id, { sync_interval: seconds, clearNextSync: true });
    return { client_name: name, sync_interval: seconds, previous: before.sync_interval };
  });
}

/** Reads and validates a conflict-resolution JSON file (either of the design documents' shapes). */
export function readConflictConfig(file: string): ConflictConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new InvalidInputError(`cannot read conflict config ${file}: ${why}`);
  }
  const parsed = conflictConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new InvalidInputError(
      `conflict config ${file} is invalid:\n  - ${issues.join('\n  - ')}\n` +
        'expected {"default_strategy": "newest_wins", "table_strategies": {"chat": {"strategy": "merge", ' +
        '"merge_rules": {"messages": "append"}}}}',
    );
  }
  return parsed.data as ConflictConfig;
}

export async function setConflictConfig(
  pool: pg.Pool,
  cluster: string,
  name: string,
  config: ConflictConfig,
): Promise<{ client_name: string; conflict_strategy: string; conflict_config: ConflictConfig }> {
  validName(name);
  return inCluster(pool, cluster, async (c) => {
    const before = await findDeployment(c, name, cluster);
    await updateTenantSettings(c, before.deployment_id, {
      conflict_config: config,
      conflict_strategy: config.default_strategy,
    });
    return { client_name: name, conflict_strategy: config.default_strategy, conflict_config: config };
  });
}

export type DeregisterResult = {
  client_name: string;
  deregistered: boolean;
  schema_name: string;
  schema_dropped: boolean;
  schema_exists: boolean;
  jobs_removed: number;
  queued_jobs_removed: number;
};

/** Facts shown before deregistering: does the schema exist, how many rows, is a sync running. */
export async function describeRemoval(
  adminPool: pg.Pool,
  cluster: string,
  name: string,
): Promise<{
  registered: TenantRegistration | null;
  schema_name: string;
  schema_exists: boolean;
  tables: number;
  running: number;
}> {
  validName(name);
  const schema = schemaNameFor(name);
  return inCluster(adminPool, cluster, async (c) => {
    let registered: TenantRegistration | null = null;
    try {
      registered = await findDeployment(c, name, cluster);
    } catch (error) {
      if (!(error instanceof NotFoundError) || /belongs to cluster/.test(error.message)) throw error;
    }
    const schemaName = registered?.schema_name ?? schema;
    const t = await c.query<{ n: number; e: boolean }>(
      `SELECT (SELECT count(*)::int FROM pg_tables WHERE schemaname = $1::text) AS n,
              EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1::text) AS e`,
      [schemaName],
    );
    const running = registered
      ? Number(
          (
            await c.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM sync_metadata.sync_jobs WHERE deployment_id = $1::uuid AND status = 'running'`,
              [registered.deployment_id],
            )
          ).rows[0]?.n ?? 0,
        )
      : 0;
    return {
      registered,
      schema_name: schemaName,
      schema_exists: Boolean(t.rows[0]?.e),
      tables: t.rows[0]?.n ?? 0,
      running,
    };
  });
}

/**
 * deregister-client: removes the registration (its jobs, progress and conflict history go with it by cascade) and,
 * with `dropSchema`, the tenant's schema and every row in it. Admin connection: the service role cannot delete.
 */
export async function deregisterTenant(
  adminPool: pg.Pool,
  cluster: string,
  name: string,
  options: { dropSchema: boolean },
): Promise<DeregisterResult> {
  validName(name);
  return inCluster(adminPool, cluster, async (c) => {
    let dep: TenantRegistration | null = null;
    try {
      dep = await findDeployment(c, name, cluster);
    } catch (error) {
      if (!(error instanceof NotFoundError) || /belongs to cluster/.test(error.message) || !options.dropSchema) {
        throw error;
      }
    }
    const schemaName = dep?.schema_name ?? schemaNameFor(name);
    let jobsRemoved = 0;
    let queuedRemoved = 0;
    if (dep) {
      const jobs = await c.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM sync_metadata.sync_jobs WHERE deployment_id = $1::uuid',
        [dep.deployment_id],
      );
      jobsRemoved = jobs.rows[0]?.n ?? 0;
      await deleteTenant(c, dep.deployment_id);
      queuedRemoved = await dropQueuedJobs(c, name);
    }
    const exists = await c.query<{ e: boolean }>(
      'SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1::text) AS e',
      [schemaName],
    );
    const schemaExists = Boolean(exists.rows[0]?.e);
    let dropped = false;
    if (options.dropSchema && schemaExists) {
      await c.query(`DROP SCHEMA ${quoteIdent(schemaName)} CASCADE`);
      dropped = true;
    }
    if (!dep && !dropped) {
      throw new NotFoundError(
        `client "${name}" is not registered and schema ${schemaName} does not exist; nothing to do`,
      );
    }
    return {
      client_name: name,
      deregistered: dep !== null,
      schema_name: schemaName,
      schema_dropped: dropped,
      schema_exists: schemaExists && !dropped,
      jobs_removed: jobsRemoved,
      queued_jobs_removed: queuedRemoved,
    };
  });
}

/** Queued (not yet running) sync jobs of a removed tenant would only fail and retry: they go with it. */
export function dropQueuedJobs(c: pg.PoolClient, name: string): Promise<number> {
  return deleteQueuedSyncJobs(c, name);
}

/** A paused tenant is not synced by hand either, unless forced: pausing is how an operator freezes it (canSyncNow). */
export function assertSyncAllowed(dep: TenantRegistration, force: boolean): void {
  const refusal = canSyncNow(dep, { clientName: dep.client_name, scheduled: false, force });
  if (refusal?.reason === SYNC_REFUSALS.paused) {
    throw new ConflictError(
      `${refusal.message}; run: syncctl client start ${dep.client_name} ` +
        '(or pass --force to sync it once while paused)',
    );
  }
  if (refusal) throw new ConflictError(`${refusal.message}; register it again to sync it`);
}
