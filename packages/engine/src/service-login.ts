import type pg from 'pg';
import { PROCESS_LABELS, quoteIdent, type ProcessKind } from '@owui-sync/schema';
import { ConfigError } from './errors.ts';

/**
 * Who a connection logs in as, compared with the admin: services (nodes, workers, the API) and the tenant grants
 * must never treat the admin login as the restricted service role. The configuration's shared checks compare the
 * roles the two URLs log in as; these ask the server, so they also hold when ADMIN_URL is not configured.
 */

type Queryable = Pick<pg.ClientBase, 'query'>;

type LoginFacts = { role: string; superuser: boolean; ownsMetadata: boolean };

async function loginFacts(db: Queryable): Promise<LoginFacts> {
  const res = await db.query<{ role: string; superuser: boolean; owns: boolean }>(
    `SELECT current_user::text AS role,
            coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user), false) AS superuser,
            EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n
                     WHERE n.nspname = 'sync_metadata'
                       AND pg_catalog.pg_has_role(current_user, n.nspowner, 'MEMBER')) AS owns`,
  );
  const row = res.rows[0];
  return { role: row?.role ?? '', superuser: Boolean(row?.superuser), ownsMetadata: Boolean(row?.owns) };
}

/**
 * Null when the connection's role is a restricted one; else why a service must not run with it (a superuser, or
 * the owner of sync_metadata, which the admin login is).
 */
export async function serviceLoginProblem(db: Queryable, kind: ProcessKind): Promise<string | null> {
  const facts = await loginFacts(db);
  if (!facts.superuser && !facts.ownsMetadata) return null;
  const what = facts.superuser ? 'a superuser' : 'the owner of sync_metadata';
  return (
    `DATABASE_URL logs in as "${facts.role}", ${what} (the admin login); ${PROCESS_LABELS[kind]} must run as the restricted ` +
    'service role: set DATABASE_URL to SYNC_URL from .credentials (syncctl init writes it)'
  );
}

/**
 * Refuses to treat `role` as the restricted service role of a tenant schema when it is the admin: the role this
 * admin connection logs in as (`current_user` / `session_user`), or the owner of the schema or of any table in it.
 * Granting "SELECT, INSERT, UPDATE only" to such a role would first revoke the owner's own privileges on the
 * tenant's tables (DELETE and DDL, where the admin is not a superuser, as on Supabase).
 */
export async function assertGrantableServiceRole(db: Queryable, schemaName: string, role: string): Promise<void> {
  const res = await db.query<{ me: string; is_me: boolean; owner: boolean }>(
    `SELECT current_user::text AS me,
            $2::text = current_user::text OR $2::text = session_user::text AS is_me,
            EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n
                     WHERE n.nspname = $1::text AND pg_catalog.pg_get_userbyid(n.nspowner) = $2::text)
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = $1::text AND pg_catalog.pg_get_userbyid(c.relowner) = $2::text) AS owner`,
    [schemaName, role],
  );
  const row = res.rows[0];
  if (row?.is_me || row?.owner) {
    throw new ConfigError([
      `the service role "${role}" is the admin login ${row.is_me ? `(this admin connection logs in as it)` : `(it owns ${quoteIdent(schemaName)})`}; ` +
        'its own privileges would be revoked down to SELECT/INSERT/UPDATE. Set DATABASE_URL to the restricted ' +
        'role (SYNC_URL in .credentials) or SERVICE_ROLE to its name (default sync_service)',
    ]);
  }
}
