import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { migrate, type MigrateResult } from './migrate.ts';
import {
  PGBOSS_SCHEMA,
  SYNC_DEAD_LETTER_QUEUE,
  SYNC_DEAD_LETTER_QUEUE_OPTIONS,
  SYNC_QUEUE,
  SYNC_QUEUE_OPTIONS,
} from './queues.ts';
import { quoteIdent, quoteLiteral } from './sql.ts';

export const DEFAULT_SERVICE_ROLE = 'sync_service';

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
    throw new Error(`service role name "${role}" is invalid: use lowercase letters, digits and _ (max 63)`);
  }
  return role;
}

/** A strong random password that survives URLs and shells unescaped. */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * Installs or upgrades everything owui-sync needs in one database, using the admin connection: the sync_metadata
 * migrations, the service role with its grants and timeouts, and pg-boss's schema and queues. Safe to re-run: a
 * second run applies nothing and changes no grants' effect.
 */
export async function install(options: InstallOptions): Promise<InstallResult> {
  const role = assertRoleName(options.serviceRole ?? DEFAULT_SERVICE_ROLE);
  const client = new pg.Client({ connectionString: options.adminUrl });
  await client.connect();
  try {
    const migrations = await migrate(client);
    const { created, passwordSet } = await ensureServiceRole(client, role, options);
    await grantServiceRole(client, role);
    let queueSchemaInstalled = false;
    let queuesCreated: string[] = [];
    if (options.withQueue !== false) {
      ({ queueSchemaInstalled, queuesCreated } = await installQueue(options.adminUrl));
      await grantQueueSchema(client, role);
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

/** pg-boss maintenance deletes its own rows, so DELETE is granted there and nowhere else. */
async function grantQueueSchema(client: pg.Client, role: string): Promise<void> {
  const r = quoteIdent(role);
  const s = quoteIdent(PGBOSS_SCHEMA);
  const owner = (await client.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u ?? '';
  const statements = [
    `GRANT USAGE ON SCHEMA ${s} TO ${r}`,
    `REVOKE CREATE ON SCHEMA ${s} FROM ${r}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${r}`,
    `GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${s} TO ${r}`,
    `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${s} TO ${r}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(owner)} IN SCHEMA ${s}
       GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${r}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(owner)} IN SCHEMA ${s}
       GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${r}`,
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

/** Installs/upgrades pg-boss's schema and creates the sync queues, as admin. */
async function installQueue(adminUrl: string): Promise<{ queueSchemaInstalled: boolean; queuesCreated: string[] }> {
  const probe = new pg.Client({ connectionString: adminUrl });
  await probe.connect();
  let existed: boolean;
  try {
    const r = await probe.query('SELECT to_regclass($1::text) IS NOT NULL AS ok', [`${PGBOSS_SCHEMA}.version`]);
    existed = Boolean(r.rows[0]?.ok);
  } finally {
    await probe.end();
  }
  const boss = new PgBoss({
    connectionString: adminUrl,
    schema: PGBOSS_SCHEMA,
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
