import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { hostIdentity } from '@owui-sync/engine/cluster';
import { withTransaction, ConflictError } from '@owui-sync/engine';
import type { Logger } from '@owui-sync/engine';
import { captureSourceSchema } from '@owui-sync/engine/restore';
import { assertSqliteFileUnclaimed, inspectSqliteSource, provisionTenant } from '@owui-sync/engine/sync';
import { grantTenantSchema, schemaNameFor } from '@owui-sync/schema';
import { hasLiveLeader } from './cluster.ts';
import { checkContainer, type ContainerCheck } from './docker.ts';
import { validName } from './tenants.ts';

/** Node name of the host row syncctl creates for a machine that registers tenants before any node ran. */
export const ADMIN_NODE_NAME = 'syncctl';

/** Where an Open WebUI container's database lives by default: its data volume under TENANTS_DIR. */
export function defaultSqlitePath(name: string, env: Readonly<Record<string, string | undefined>>): string {
  const root = env.TENANTS_DIR ?? '/var/lib/docker/volumes';
  return path.join(root, `openwebui-${name}-data`, '_data', 'webui.db');
}

export type RegisterOptions = {
  readonly adminPool: pg.Pool;
  readonly cluster: string;
  readonly name: string;
  readonly containerName?: string | undefined;
  readonly sqlitePath: string;
  readonly intervalSeconds?: number | undefined;
  /** register-sync-client-to-supabase: check the cluster, container and file, then enable sync. */
  readonly enable: boolean;
  /** Ask Docker whether the container runs when enabling (default true; the demo's tenant has no container). */
  readonly checkContainer?: boolean;
  readonly serviceRole: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly logger?: Logger;
  /** Progress lines for the operator. */
  readonly say?: (line: string) => void;
};

export type RegisterResult = {
  client_name: string;
  schema_name: string;
  schema_existed: boolean;
  tables: number;
  openwebui_version: string | null;
  host: { host_id: string; node_name: string; created: boolean };
  container: ContainerCheck & { name: string };
  sqlite_path: string;
  sync_enabled: boolean;
  status: string;
  sync_interval: number;
};

/**
 * register-client (+ register-sync-client-to-supabase with `enable`): refuses an existing tenant, checks the SQLite
 * file is an Open WebUI database (and, when enabling, that the cluster has a live leader and the container runs),
 * creates the tenant schema and tables (an existing schema's tables and data are left untouched), and records the
 * deployment on the cluster's most recent host — sync disabled unless `enable`.
 */
export async function registerTenant(opts: RegisterOptions): Promise<RegisterResult> {
  const say = opts.say ?? (() => undefined);
  const name = validName(opts.name);
  const containerName = opts.containerName ?? `openwebui-${name}`;
  const sqlitePath = path.resolve(opts.sqlitePath);
  const schemaName = schemaNameFor(name);
  await assertNotRegistered(opts.adminPool, name);
  await assertSchemaUnclaimed(opts.adminPool, name, schemaName);
  const sqliteRealpath = await assertSqliteFileUnclaimed(opts.adminPool, sqlitePath, name, opts.cluster);

  let container: ContainerCheck = { checked: false, reason: 'not checked (sync not enabled)' };
  if (opts.enable) {
    if (!(await hasLiveLeader(opts.adminPool, opts.cluster))) {
      throw new ConflictError(
        `cluster "${opts.cluster}" has no live leader, so nothing would sync this tenant; start the nodes ` +
          '(syncctl node, or docker compose up -d), check syncctl cluster status, then re-run — ' +
          `or register without --enable and start it later: syncctl client start ${name}`,
      );
    }
    say(`✅ Cluster "${opts.cluster}" has a live leader`);
    container =
      opts.checkContainer === false
        ? { checked: false, reason: 'no container for this tenant' }
        : await checkContainer(containerName, opts.env);
    if (!container.checked) say(`ℹ️  Container check skipped (${container.reason})`);
    else if (!container.running) {
      throw new ConflictError(
        `container ${containerName} is ${container.exists ? `not running (${container.state})` : 'not found'}; ` +
          `start it (docker start ${containerName}) or pass the right one with --container NAME`,
      );
    } else say(`✅ Container ${containerName} is running`);
  }
  const source = await inspectSqliteSource(sqlitePath);
  say(
    `✅ ${sqlitePath} is an Open WebUI database (${source.tables.length} tables, version ${source.openwebuiVersion ?? 'unknown'})`,
  );

  const existing = await existingSchemaTables(opts.adminPool, schemaName);
  if (existing > 0) {
    say(
      `⚠️  Schema ${schemaName} already exists with ${existing} tables: existing tables and data are left untouched ` +
        '(only missing tables are added)',
    );
  }
  const provisioned = await provisionTenant({
    adminPool: opts.adminPool,
    clientName: name,
    sqlitePath,
    serviceRole: opts.serviceRole,
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  if (existing === 0) say(`✅ Created schema ${schemaName} with ${provisioned.tables.length} tables`);
  // The schema belongs to its cluster's role alone (other clusters' roles lose any access they had).
  await withTransaction(opts.adminPool, (c) => grantTenantSchema(c, schemaName, opts.cluster));

  const host = await hostForRegistration(opts.adminPool, opts.cluster);
  const status = opts.enable ? 'active' : 'registered';
  const interval = opts.intervalSeconds ?? 300;
  try {
    await withTransaction(opts.adminPool, async (c) => {
      await c.query(
        `INSERT INTO sync_metadata.client_deployments
           (client_name, host_id, container_name, sqlite_path, schema_name, sync_enabled, status, sync_interval,
            openwebui_version, sqlite_realpath)
         VALUES ($1::text, $2::uuid, $3::text, $4::text, $5::text, $6::boolean, $7::text, $8::int, $9::text,
                 $10::text)`,
        [
          name,
          host.host_id,
          containerName,
          sqlitePath,
          schemaName,
          opts.enable,
          status,
          interval,
          source.openwebuiVersion,
          sqliteRealpath,
        ],
      );
    });
  } catch (error) {
    const pgError = error as { code?: string; constraint?: string };
    if (pgError.code === '23505' && pgError.constraint?.includes('schema_name')) {
      await assertSchemaUnclaimed(opts.adminPool, name, schemaName);
    }
    if (pgError.code === '23505') throw alreadyRegistered(name);
    throw error;
  }
  // The source's exact DDL, so a restore recreates the same declared types, keys and indexes.
  await captureSourceSchema({ pool: opts.adminPool, clientName: name, sqlitePath });
  return {
    client_name: name,
    schema_name: schemaName,
    schema_existed: existing > 0,
    tables: provisioned.tables.length,
    openwebui_version: source.openwebuiVersion,
    host,
    container: { ...container, name: containerName },
    sqlite_path: sqlitePath,
    sync_enabled: opts.enable,
    status,
    sync_interval: interval,
  };
}

function alreadyRegistered(name: string): ConflictError {
  return new ConflictError(
    `Client already registered: "${name}". To resume syncing run: syncctl client start ${name}; ` +
      `to start over: syncctl client deregister ${name} first`,
  );
}

async function assertNotRegistered(adminPool: pg.Pool, name: string): Promise<void> {
  const r = await adminPool.query('SELECT 1 FROM sync_metadata.client_deployments WHERE client_name = $1::text', [
    name,
  ]);
  if ((r.rowCount ?? 0) > 0) throw alreadyRegistered(name);
}

/**
 * Names that differ only in `-` versus `_` (acme-corp, acme_corp) map to the same schema: refuses, before anything is
 * touched, a name whose schema already belongs to another tenant.
 */
async function assertSchemaUnclaimed(adminPool: pg.Pool, name: string, schemaName: string): Promise<void> {
  const r = await adminPool.query<{ client_name: string }>(
    'SELECT client_name FROM sync_metadata.client_deployments WHERE schema_name = $1::text AND client_name <> $2::text',
    [schemaName, name],
  );
  const owner = r.rows[0]?.client_name;
  if (owner) {
    throw new ConflictError(
      `tenant name "${name}" maps to schema ${schemaName}, which already belongs to tenant "${owner}" ` +
        '("-" and "_" give the same schema name); nothing was changed — choose a name that differs by more than ' +
        '"-" and "_"',
      { owner, schemaName },
    );
  }
}

async function existingSchemaTables(adminPool: pg.Pool, schemaName: string): Promise<number> {
  const r = await adminPool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1::text',
    [schemaName],
  );
  return r.rows[0]?.n ?? 0;
}

/**
 * The host a new deployment is attached to: the cluster's most recent node (as the design documents' scripts
 * do), else any host of the cluster, else a host row for this machine registered by the admin (role `admin`),
 * so tenants can be registered before the nodes first start.
 */
export async function hostForRegistration(
  adminPool: pg.Pool,
  cluster: string,
): Promise<{ host_id: string; node_name: string; created: boolean }> {
  const r = await adminPool.query<{ host_id: string; node_name: string }>(
    `SELECT host_id, node_name FROM sync_metadata.hosts WHERE cluster_name = $1::text
      ORDER BY (role = 'node') DESC, created_at DESC LIMIT 1`,
    [cluster],
  );
  const found = r.rows[0];
  if (found) return { ...found, created: false };
  const hostname = os.hostname();
  const hostId = hostIdentity({ cluster, hostname, nodeName: ADMIN_NODE_NAME });
  await adminPool.query(
    `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name, role, status)
     VALUES ($1::uuid, $2::text, $3::text, $4::text, 'admin', 'online')
     ON CONFLICT (host_id) DO UPDATE SET updated_at = now()`,
    [hostId, hostname, cluster, ADMIN_NODE_NAME],
  );
  return { host_id: hostId, node_name: ADMIN_NODE_NAME, created: true };
}
