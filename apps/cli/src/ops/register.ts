import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { withTransaction, ConflictError } from '@owui-sync/engine';
import type { Logger } from '@owui-sync/engine';
import { captureSourceSchema } from '@owui-sync/engine/restore';
import { assertSqliteFileUnclaimed, inspectSqliteSource, provisionTenant } from '@owui-sync/engine/sync';
import {
  hostForRegistration,
  insertTenant,
  schemaOwner,
  tenantExists,
  type RegistrationHost,
} from '@owui-sync/engine/tenants';
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
  host: RegistrationHost;
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
 * deployment on the cluster's most recent node or worker (hostForRegistration) — sync disabled unless `enable`.
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

  // The cluster's most recent node, else worker (never an API-only or admin host), else this machine's admin row.
  const host = await hostForRegistration(opts.adminPool, {
    cluster: opts.cluster,
    hostname: os.hostname(),
    adminNodeName: ADMIN_NODE_NAME,
  });
  const status = opts.enable ? 'active' : 'registered';
  const interval = opts.intervalSeconds ?? 300;
  try {
    await withTransaction(opts.adminPool, (c) =>
      insertTenant(c, {
        clientName: name,
        hostId: host.host_id,
        containerName,
        sqlitePath,
        schemaName,
        syncEnabled: opts.enable,
        status,
        syncInterval: interval,
        openwebuiVersion: source.openwebuiVersion,
        sqliteRealpath,
      }),
    );
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
  if (await tenantExists(adminPool, name)) throw alreadyRegistered(name);
}

/**
 * Names that differ only in `-` versus `_` (acme-corp, acme_corp) map to the same schema: refuses, before anything is
 * touched, a name whose schema already belongs to another tenant.
 */
async function assertSchemaUnclaimed(adminPool: pg.Pool, name: string, schemaName: string): Promise<void> {
  const owner = await schemaOwner(adminPool, schemaName, name);
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
