// Stays whole (over 400 lines): install and cluster roles share the grant builders, so that every role the installer creates gets the same grants.
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { migrate, type MigrateResult } from './migrate.ts';
import {
  PGBOSS_SCHEMA,
  SYNC_DEAD_LETTER_QUEUE,
  SYNC_DEAD_LETTER_QUEUE_OPTIONS,
  SYNC_QUEUE,
  SYNC_QUEUE_OPTIONS,
  DRILL_QUEUE,
  DRILL_QUEUE_OPTIONS,
} from './queues.ts';
import { quoteIdent, quoteLiteral } from './sql.ts';

export const DEFAULT_SERVICE_ROLE = 'sync_service';

/** NOLOGIN group every cluster role belongs to; it carries the grants all clusters share (and maps to none). */
export const DEFAULT_CLUSTER_GROUP_ROLE = 'sync_cluster';

export type InstallOptions = {
  /** Admin connection string (owner of everything installed). */
  readonly adminUrl: string;
  /** Login role the service runs as. */
  readonly serviceRole?: string;
  /** Sets (or resets) the service role's password; when omitted an existing role keeps its password. */
  readonly servicePassword?: string;
  /** Role-level statement_timeout (ms) and idle_in_transaction_session_timeout (ms). */
  readonly statementTimeoutMs?: number;
  readonly idleInTransactionTimeoutMs?: number;
  /** Skip pg-boss (tests of the metadata schema alone). */
  readonly withQueue?: boolean;
  /** Name of the NOLOGIN group role of the per-cluster roles (default sync_cluster). */
  readonly groupRole?: string;
};

export type InstallResult = {
  readonly migrations: MigrateResult;
  readonly roleCreated: boolean;
  readonly passwordSet: boolean;
  readonly queueSchemaInstalled: boolean;
  readonly queuesCreated: readonly string[];
};

/** Role-name rule: what a PostgreSQL login role may be called here (keeps grants readable and unambiguous). */
const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function assertRoleName(role: string): string {
  if (!ROLE_NAME.test(role)) {
    throw new Error(`role name "${role}" is invalid: use lowercase letters, digits and _ (max 63)`);
  }
  return role;
}

/** A strong random password that survives URLs and shells unescaped. */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * Installs or upgrades everything owui-sync needs in one database, using the admin connection: the sync_metadata
 * migrations, the shared service role with its grants and timeouts (recorded as the role of every cluster), the
 * NOLOGIN group role of the per-cluster roles, and pg-boss's schemas and queues (the shared one and every cluster
 * role's own). Safe to re-run: a second run applies nothing and changes no grants' effect.
 */
export async function install(options: InstallOptions): Promise<InstallResult> {
  const role = assertRoleName(options.serviceRole ?? DEFAULT_SERVICE_ROLE);
  const client = new pg.Client({ connectionString: options.adminUrl });
  await client.connect();
  try {
    const migrations = await migrate(client);
    const pinned = (await clusterRoles(client)).find((r) => r.role_name === role && r.cluster_name !== null);
    if (pinned) {
      throw new Error(
        `role "${role}" is the role of cluster "${pinned.cluster_name}", not the shared service role: ` +
          `manage it with syncctl cluster add-role --cluster ${pinned.cluster_name} --role ${role}`,
      );
    }
    const { created, passwordSet } = await ensureServiceRole(client, role, options);
    await grantServiceRole(client, role);
    await recordSharedServiceRole(client, role);
    const group = assertRoleName(options.groupRole ?? DEFAULT_CLUSTER_GROUP_ROLE);
    await ensureGroupRole(client, group);
    await grantServiceRole(client, group);
    let queueSchemaInstalled = false;
    let queuesCreated: string[] = [];
    if (options.withQueue !== false) {
      ({ queueSchemaInstalled, queuesCreated } = await installQueue(options.adminUrl));
      await grantQueueSchema(client, role);
      // Cluster roles (that still exist): their own queue schemas get this release's pg-boss and grants too.
      const live = await client.query<{ rolname: string }>('SELECT rolname FROM pg_roles');
      const existing = new Set(live.rows.map((r) => r.rolname));
      const upgraded = new Set<string>();
      for (const { role_name, queue_schema } of await clusterRoles(client)) {
        if (queue_schema === PGBOSS_SCHEMA || !existing.has(role_name)) continue;
        if (!upgraded.has(queue_schema)) await installQueue(options.adminUrl, queue_schema);
        upgraded.add(queue_schema);
        await grantQueueSchema(client, role_name, queue_schema);
      }
    }
    return { migrations, roleCreated: created, passwordSet, queueSchemaInstalled, queuesCreated };
  } finally {
    await client.end();
  }
}

async function ensureServiceRole(
  client: pg.Client,
  role: string,
  options: InstallOptions,
): Promise<{ created: boolean; passwordSet: boolean }> {
  const ident = quoteIdent(role);
  await client.query('BEGIN');
  try {
    // Serialise concurrent installs: CREATE ROLE has no IF NOT EXISTS.
    await client.query("SELECT pg_advisory_xact_lock(hashtext('owui-sync:role'))");
    const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1::text', [role]);
    const created = exists.rowCount === 0;
    if (created) {
      await client.query(`CREATE ROLE ${ident} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION`);
    }
    const password = options.servicePassword ?? (created ? generatePassword() : undefined);
    if (password !== undefined) await client.query(`ALTER ROLE ${ident} PASSWORD ${quoteLiteral(password)}`);
    const statementTimeout = options.statementTimeoutMs ?? 300_000;
    const idleTimeout = options.idleInTransactionTimeoutMs ?? 60_000;
    await client.query(`ALTER ROLE ${ident} SET statement_timeout = ${Math.trunc(statementTimeout)}`);
    await client.query(`ALTER ROLE ${ident} SET idle_in_transaction_session_timeout = ${Math.trunc(idleTimeout)}`);
    await client.query('COMMIT');
    return { created, passwordSet: password !== undefined };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Grants on sync_metadata: USAGE, SELECT/INSERT/UPDATE on tables and views, sequences, no DELETE/TRUNCATE, no
 * CREATE anywhere; default privileges so tables added by later migrations get the same.
 */
async function grantServiceRole(client: pg.Client, role: string): Promise<void> {
  const r = quoteIdent(role);
  const db = await client.query<{ db: string; owner: string }>(
    'SELECT current_database() AS db, current_user AS owner',
  );
  const { db: database, owner } = db.rows[0] ?? { db: '', owner: '' };
  const statements = [
    `GRANT CONNECT ON DATABASE ${quoteIdent(database)} TO ${r}`,
    `REVOKE CREATE ON DATABASE ${quoteIdent(database)} FROM ${r}`,
    `REVOKE CREATE ON SCHEMA public FROM ${r}`,
    `GRANT USAGE ON SCHEMA sync_metadata TO ${r}`,
    `REVOKE CREATE ON SCHEMA sync_metadata FROM ${r}`,
    `REVOKE ALL ON ALL TABLES IN SCHEMA sync_metadata FROM ${r}`,
    `GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA sync_metadata TO ${r}`,
    `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA sync_metadata TO ${r}`,
    `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA sync_metadata TO ${r}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(owner)} IN SCHEMA sync_metadata
       GRANT SELECT, INSERT, UPDATE ON TABLES TO ${r}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(owner)} IN SCHEMA sync_metadata
       GRANT USAGE, SELECT ON SEQUENCES TO ${r}`,
    // Sync engine bookkeeping (migration 000002): upserts only, never DELETE.
    `GRANT USAGE ON SCHEMA sync_state TO ${r}`,
    `REVOKE CREATE ON SCHEMA sync_state FROM ${r}`,
    `GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA sync_state TO ${r}`,
  ];
  await client.query('BEGIN');
  try {
    await client.query("SELECT pg_advisory_xact_lock(hashtext('owui-sync:grants'))");
    for (const sql of statements) await client.query(sql);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** pg-boss functions the service never calls: creating, deleting and rebuilding queues are install-time work. */
const QUEUE_ADMIN_FUNCTIONS = [
  'create_queue',
  'delete_queue',
  'job_table_run',
  'job_table_run_async',
  'job_table_format',
];

/**
 * What pg-boss needs at run time, and nothing else: SELECT on its tables; INSERT, UPDATE and DELETE on the job
 * tables (a retry or failure moves a job by delete + insert, maintenance deletes expired jobs), the instance
 * registry, warnings, statistics and dependencies; UPDATE (no INSERT, no DELETE) on queue and version, whose rows
 * carry the supervision timestamps and counters; EXECUTE on job_now() only. No CREATE, no TRUNCATE, and none of
 * the queue admin functions (which are also closed to PUBLIC).
 */
async function grantQueueSchema(client: pg.Client, role: string, schema: string = PGBOSS_SCHEMA): Promise<void> {
  const r = quoteIdent(role);
  const s = quoteIdent(schema);
  const owner = (await client.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u ?? '';
  const tables = await client.query<{ relname: string; parent: string | null }>(
    `SELECT c.relname, p.relname AS parent
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
       LEFT JOIN pg_class p ON p.oid = i.inhparent
      WHERE n.nspname = $1::text AND c.relkind IN ('r', 'p')`,
    [schema],
  );
  const writable = new Set(['job', 'instance', 'warning', 'queue_stats', 'job_dependency', 'bam']);
  const statements = [
    `GRANT USAGE ON SCHEMA ${s} TO ${r}`,
    `REVOKE CREATE ON SCHEMA ${s} FROM ${r}`,
    `REVOKE ALL ON ALL TABLES IN SCHEMA ${s} FROM ${r}`,
    `GRANT SELECT ON ALL TABLES IN SCHEMA ${s} TO ${r}`,
    `GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${s} TO ${r}`,
    `REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ${s} FROM ${r}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(owner)} IN SCHEMA ${s}
       REVOKE DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLES FROM ${r}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(owner)} IN SCHEMA ${s}
       GRANT SELECT, INSERT, UPDATE ON TABLES TO ${r}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(owner)} IN SCHEMA ${s}
       GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${r}`,
  ];
  for (const { relname, parent } of tables.rows) {
    const table = `${s}.${quoteIdent(relname)}`;
    if (writable.has(relname) || (parent !== null && writable.has(parent))) {
      statements.push(`GRANT INSERT, UPDATE, DELETE ON ${table} TO ${r}`);
    } else if (relname === 'queue' || relname === 'version') {
      statements.push(`GRANT UPDATE ON ${table} TO ${r}`);
    }
  }
  const functions = await client.query<{ signature: string; name: string }>(
    `SELECT p.oid::regprocedure::text AS signature, p.proname AS name
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = $1::text`,
    [schema],
  );
  for (const { signature, name } of functions.rows) {
    if (QUEUE_ADMIN_FUNCTIONS.includes(name)) statements.push(`REVOKE EXECUTE ON FUNCTION ${signature} FROM PUBLIC`);
    else statements.push(`GRANT EXECUTE ON FUNCTION ${signature} TO ${r}`);
  }
  await client.query('BEGIN');
  try {
    await client.query("SELECT pg_advisory_xact_lock(hashtext('owui-sync:grants'))");
    for (const sql of statements) await client.query(sql);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Installs/upgrades a pg-boss schema and creates the sync queues in it, as admin. */
async function installQueue(
  adminUrl: string,
  schema: string = PGBOSS_SCHEMA,
): Promise<{ queueSchemaInstalled: boolean; queuesCreated: string[] }> {
  const probe = new pg.Client({ connectionString: adminUrl });
  await probe.connect();
  let existed: boolean;
  try {
    const r = await probe.query('SELECT to_regclass($1::text) IS NOT NULL AS ok', [`${quoteIdent(schema)}.version`]);
    existed = Boolean(r.rows[0]?.ok);
  } finally {
    await probe.end();
  }
  const boss = new PgBoss({
    connectionString: adminUrl,
    schema,
    max: 2,
    supervise: false,
    schedule: false,
    migrate: true,
    createSchema: true,
  });
  boss.on('error', () => undefined);
  await boss.start();
  const created: string[] = [];
  try {
    for (const [name, opts] of [
      [SYNC_DEAD_LETTER_QUEUE, SYNC_DEAD_LETTER_QUEUE_OPTIONS],
      [SYNC_QUEUE, SYNC_QUEUE_OPTIONS],
      [DRILL_QUEUE, DRILL_QUEUE_OPTIONS],
    ] as const) {
      const existing = await boss.getQueue(name);
      if (existing) {
        // policy, dead letter, retryDelayMax and heartbeat are fixed at creation; the rest follows this release.
        const { policy: _p, ...rest } = opts;
        const updatable: Record<string, unknown> = { ...rest };
        for (const fixed of ['deadLetter', 'retryDelayMax', 'heartbeatSeconds']) delete updatable[fixed];
        await boss.updateQueue(name, updatable);
      } else {
        await boss.createQueue(name, { ...opts });
        created.push(name);
      }
    }
  } finally {
    await boss.stop({ graceful: false });
  }
  return { queueSchemaInstalled: !existed, queuesCreated: created };
}

// Per-cluster roles ---------------------------------------------------------------------------------------------

/** Cluster names as CLUSTER_NAME accepts them. */
const CLUSTER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function assertClusterName(cluster: string): string {
  if (!CLUSTER_NAME.test(cluster)) {
    throw new Error(`cluster name "${cluster}" is invalid: letters, digits, ".", "_" and "-" only (max 63)`);
  }
  return cluster;
}

/** A cluster name as part of an identifier: lowercase, every other character `_`. */
function identPart(cluster: string, max: number): string {
  return cluster
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, max);
}

/** Default login role of a cluster: `sync_<cluster>` (host-a → sync_host_a). */
export function clusterRoleNameFor(cluster: string): string {
  return `sync_${identPart(assertClusterName(cluster), 58)}`;
}

/** The pg-boss schema a cluster's role gets: `pgboss_<cluster>`, with a hash suffix if another cluster has it. */
function queueSchemaCandidates(cluster: string): [string, string] {
  const base = `pgboss_${identPart(cluster, 46)}`;
  return [base, `${base}_${createHash('sha256').update(cluster).digest('hex').slice(0, 8)}`];
}

export type ClusterRoleRow = {
  readonly role_name: string;
  /** null: the shared service role of a single-cluster install (every cluster, scoped by the session settings). */
  readonly cluster_name: string | null;
  readonly queue_schema: string;
};

/** Every mapped role (admin connection). */
export async function clusterRoles(client: pg.ClientBase): Promise<ClusterRoleRow[]> {
  const res = await client.query<ClusterRoleRow>(
    'SELECT role_name::text AS role_name, cluster_name, queue_schema::text AS queue_schema FROM sync_admin.cluster_roles ORDER BY role_name',
  );
  return res.rows;
}

/** Records the shared service role as the unrestricted one unless it is already mapped (e.g. to one cluster). */
async function recordSharedServiceRole(client: pg.Client, role: string): Promise<void> {
  await client.query(
    `INSERT INTO sync_admin.cluster_roles (role_name, cluster_name, queue_schema)
     VALUES ($1::name, NULL, $2::name) ON CONFLICT (role_name) DO NOTHING`,
    [role, PGBOSS_SCHEMA],
  );
}

async function ensureGroupRole(client: pg.Client, group: string): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query("SELECT pg_advisory_xact_lock(hashtext('owui-sync:role'))");
    const existing = await client.query<{ rolcanlogin: boolean; rolsuper: boolean }>(
      'SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1::text',
      [group],
    );
    const row = existing.rows[0];
    if (!row) {
      // Roles are shared by every database of the server; another database's install may create it first.
      await client.query('SAVEPOINT create_group');
      try {
        await client.query(
          `CREATE ROLE ${quoteIdent(group)} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS`,
        );
      } catch (error) {
        if (!['42710', '23505'].includes((error as { code?: string }).code ?? '')) throw error;
        await client.query('ROLLBACK TO SAVEPOINT create_group');
      }
    } else if (row.rolcanlogin || row.rolsuper) {
      throw new Error(
        `role "${group}" exists and can log in; the cluster group role must be a NOLOGIN role of its own ` +
          '(choose another group role name)',
      );
    }
    const mapped = await client.query('SELECT 1 FROM sync_admin.cluster_roles WHERE role_name = $1::name', [group]);
    if (mapped.rowCount) throw new Error(`role "${group}" is a cluster role; it cannot also be the group role`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

export type AddClusterRoleOptions = {
  readonly adminUrl: string;
  readonly cluster: string;
  /** Login role to create (default sync_<cluster>). */
  readonly role?: string;
  /** Sets (or resets) the password; a new role gets a generated one when omitted. */
  readonly password?: string;
  readonly groupRole?: string;
  readonly statementTimeoutMs?: number;
  readonly idleInTransactionTimeoutMs?: number;
};

export type AddClusterRoleResult = {
  readonly role: string;
  readonly cluster: string;
  readonly created: boolean;
  /** The password that was set, or null when an existing role kept its own. */
  readonly password: string | null;
  readonly queueSchema: string;
  /** Tenant schemas of the cluster now granted to the role. */
  readonly tenantSchemas: readonly string[];
};

/**
 * Creates (or re-applies) the login role of one cluster, as admin: member of the NOLOGIN group role that carries
 * the shared grants, mapped to the cluster in sync_admin.cluster_roles (so row-level security confines it there),
 * with its own pg-boss schema and queues and the cluster's tenant schemas. Refuses a role that exists but is not
 * this cluster's (another cluster's, the shared service role, or any other role of the server).
 */
export async function addClusterRole(options: AddClusterRoleOptions): Promise<AddClusterRoleResult> {
  const cluster = assertClusterName(options.cluster);
  const role = assertRoleName(options.role ?? clusterRoleNameFor(cluster));
  const group = assertRoleName(options.groupRole ?? DEFAULT_CLUSTER_GROUP_ROLE);
  if (role === group) throw new Error(`role "${role}" is the group role; choose another name`);
  const client = new pg.Client({ connectionString: options.adminUrl });
  await client.connect();
  try {
    const installed = await client.query("SELECT to_regclass('sync_admin.cluster_roles') IS NOT NULL AS ok");
    if (!installed.rows[0]?.ok) throw new Error('this database is not installed or not upgraded yet: run syncctl init');
    await ensureGroupRole(client, group);
    let created = false;
    let password: string | null = null;
    let queueSchema = '';
    await client.query('BEGIN');
    try {
      await client.query("SELECT pg_advisory_xact_lock(hashtext('owui-sync:role'))");
      const mapping = await client.query<{ cluster_name: string | null; queue_schema: string }>(
        'SELECT cluster_name, queue_schema::text AS queue_schema FROM sync_admin.cluster_roles WHERE role_name = $1::name',
        [role],
      );
      const mapped = mapping.rows[0];
      const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1::text', [role]);
      if (mapped && mapped.cluster_name !== cluster) {
        throw new Error(
          mapped.cluster_name === null
            ? `role "${role}" is the shared service role of every cluster; choose another role name`
            : `role "${role}" already belongs to cluster "${mapped.cluster_name}"; choose another role name`,
        );
      }
      if (!mapped && exists.rowCount) {
        throw new Error(`role "${role}" already exists and is not a cluster role; choose another role name`);
      }
      const ident = quoteIdent(role);
      if (!exists.rowCount) {
        await client.query(
          `CREATE ROLE ${ident} LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS`,
        );
        created = true;
      }
      await client.query(`GRANT ${quoteIdent(group)} TO ${ident}`);
      password = options.password ?? (created ? generatePassword() : null);
      if (password !== null) await client.query(`ALTER ROLE ${ident} PASSWORD ${quoteLiteral(password)}`);
      const statementTimeout = options.statementTimeoutMs ?? 300_000;
      const idleTimeout = options.idleInTransactionTimeoutMs ?? 60_000;
      await client.query(`ALTER ROLE ${ident} SET statement_timeout = ${Math.trunc(statementTimeout)}`);
      await client.query(`ALTER ROLE ${ident} SET idle_in_transaction_session_timeout = ${Math.trunc(idleTimeout)}`);
      if (mapped) {
        queueSchema = mapped.queue_schema;
      } else {
        const sibling = await client.query<{ queue_schema: string }>(
          'SELECT queue_schema::text AS queue_schema FROM sync_admin.cluster_roles WHERE cluster_name = $1::text LIMIT 1',
          [cluster],
        );
        queueSchema = sibling.rows[0]?.queue_schema ?? '';
        if (!queueSchema) {
          for (const candidate of queueSchemaCandidates(cluster)) {
            const taken = await client.query(
              `SELECT 1 FROM sync_admin.cluster_roles WHERE queue_schema = $1::name
               UNION ALL SELECT 1 FROM pg_namespace WHERE nspname = $1::text`,
              [candidate],
            );
            if (!taken.rowCount) {
              queueSchema = candidate;
              break;
            }
          }
        }
        if (!queueSchema) throw new Error(`no free pg-boss schema name for cluster "${cluster}"`);
        await client.query(
          'INSERT INTO sync_admin.cluster_roles (role_name, cluster_name, queue_schema) VALUES ($1::name, $2::text, $3::name)',
          [role, cluster, queueSchema],
        );
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    await installQueue(options.adminUrl, queueSchema);
    await grantQueueSchema(client, role, queueSchema);
    const tenants = await client.query<{ schema_name: string }>(
      `SELECT d.schema_name FROM sync_metadata.client_deployments d
         JOIN sync_metadata.hosts h ON h.host_id = d.host_id
        WHERE h.cluster_name = $1::text AND d.status <> 'deregistered'
          AND EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = d.schema_name)
        ORDER BY 1`,
      [cluster],
    );
    for (const { schema_name } of tenants.rows) await grantTenantSchema(client, schema_name, cluster);
    return {
      role,
      cluster,
      created,
      password,
      queueSchema,
      tenantSchemas: tenants.rows.map((r) => r.schema_name),
    };
  } finally {
    await client.end();
  }
}

/**
 * Grants one tenant schema to the roles of the cluster that owns it (USAGE, SELECT/INSERT/UPDATE on its tables and
 * on tables added later, sequences) and takes it away from every other cluster's role. The shared service role's
 * grants are left as provisioning made them; the group role never has any. Admin connection; safe to repeat.
 */
export async function grantTenantSchema(client: pg.ClientBase, schemaName: string, cluster: string): Promise<void> {
  const s = quoteIdent(schemaName);
  const owner = (await client.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u ?? '';
  const mapped = (await clusterRoles(client)).filter((r) => r.cluster_name !== null);
  const present = await client.query<{ rolname: string }>(
    'SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])',
    [mapped.map((r) => r.role_name)],
  );
  const live = new Set(present.rows.map((r) => r.rolname));
  const statements: string[] = [];
  for (const { role_name, cluster_name } of mapped) {
    if (!live.has(role_name)) continue;
    const r = quoteIdent(role_name);
    if (cluster_name === cluster) {
      statements.push(
        `GRANT USAGE ON SCHEMA ${s} TO ${r}`,
        `REVOKE CREATE ON SCHEMA ${s} FROM ${r}`,
        `REVOKE ALL ON ALL TABLES IN SCHEMA ${s} FROM ${r}`,
        `GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA ${s} TO ${r}`,
        `GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${s} TO ${r}`,
        `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(owner)} IN SCHEMA ${s} GRANT SELECT, INSERT, UPDATE ON TABLES TO ${r}`,
        `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(owner)} IN SCHEMA ${s} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${r}`,
      );
    } else {
      statements.push(
        `REVOKE ALL ON SCHEMA ${s} FROM ${r}`,
        `REVOKE ALL ON ALL TABLES IN SCHEMA ${s} FROM ${r}`,
        `REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${s} FROM ${r}`,
        `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(owner)} IN SCHEMA ${s} REVOKE ALL ON TABLES FROM ${r}`,
        `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(owner)} IN SCHEMA ${s} REVOKE ALL ON SEQUENCES FROM ${r}`,
      );
    }
  }
  for (const sql of statements) await client.query(sql);
}
