import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';
import { quoteIdent } from '@owui-sync/schema';
import type { TestDatabaseContext } from './context.ts';

export type TestDatabase = {
  readonly name: string;
  /** Superuser URL on this database. */
  readonly adminUrl: string;
  /** URL that logs in as the restricted service role. */
  readonly serviceUrl: string;
  readonly serviceRole: string;
  readonly context: TestDatabaseContext;
  drop(): Promise<void>;
};

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export function withUser(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** Creates a fresh database from the migrated template; `drop()` removes it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const context = inject('pg');
  const name = `owui_t_${context.runId}_${randomBytes(4).toString('hex')}`;
  await adminQuery(context.adminUrl, `CREATE DATABASE ${quoteIdent(name)} TEMPLATE ${quoteIdent(context.templateDb)}`);
  const adminUrl = withDatabase(context.adminUrl, name);
  return {
    name,
    adminUrl,
    serviceUrl: withUser(adminUrl, context.serviceRole, context.servicePassword),
    serviceRole: context.serviceRole,
    context,
    drop: async () => {
      // Pools resolve end() before their connections have closed: give those a moment to go, so that FORCE does
      // not terminate a connection a test is still closing (its pool would report that as an uncaught error).
      for (let i = 0; i < 40; i += 1) {
        const left = await adminQuery(
          context.adminUrl,
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [name],
        );
        if (left.rows[0].n === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await adminQuery(context.adminUrl, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    },
  };
}

/** Registers a per-file database: created before the file's tests, dropped after. */
export function useTestDatabase(): { readonly current: TestDatabase } {
  const holder: { current: TestDatabase } = { current: undefined as unknown as TestDatabase };
  beforeAll(async () => {
    holder.current = await createTestDatabase();
  });
  afterAll(async () => {
    await holder.current?.drop();
  });
  return holder;
}

/** Runs one statement on a short-lived connection. */
export async function adminQuery(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}

/** Runs `fn` with a connected client that is always closed. */
export async function withConnection<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates an extra login role for this run (dropped by the global teardown). */
export async function createTestRole(prefix: string): Promise<{ role: string; password: string }> {
  const context = inject('pg');
  const role = `owui_${prefix}_${context.runId}_${randomBytes(2).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  await adminQuery(context.adminUrl, `CREATE ROLE ${quoteIdent(role)} LOGIN PASSWORD '${password}'`);
  return { role, password };
}
