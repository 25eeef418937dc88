import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { canConnect, startLocalPostgres, type LocalPostgres } from '@owui-sync/engine';
import { install, quoteIdent } from '@owui-sync/schema';
import type { TestDatabaseContext } from './context.ts';

/**
 * Once per run: find a PostgreSQL (TEST_DATABASE_URL, else 127.0.0.1:5432, else an embedded server), create a
 * service role and a template database with everything installed. Each test file clones the template.
 */

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const EMBEDDED_PORT = 54329;

let embedded: LocalPostgres | undefined;
let context: TestDatabaseContext | undefined;

export async function setup(project: TestProject): Promise<void> {
  let adminUrl = process.env.TEST_DATABASE_URL ?? DEFAULT_URL;
  // TEST_EMBEDDED=1 forces the embedded server (what a machine without PostgreSQL gets).
  if (process.env.TEST_EMBEDDED === '1' || !(await canConnect(adminUrl))) {
    if (process.env.TEST_DATABASE_URL) {
      throw new Error('TEST_DATABASE_URL is set but no PostgreSQL answers there');
    }
    embedded = await startLocalPostgres({
      dataDir: path.resolve('.data/test-postgres'),
      port: Number(process.env.TEST_EMBEDDED_PORT ?? EMBEDDED_PORT),
    });
    adminUrl = embedded.adminUrl;
  }
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const serviceRole = `owui_svc_${runId}`;
  const servicePassword = randomBytes(18).toString('base64url');
  const templateDb = `owui_tpl_${runId}`;
  const groupRole = `owui_grp_${runId}`;
  await admin(adminUrl, async (c) => {
    await c.query(`CREATE DATABASE ${quoteIdent(templateDb)}`);
  });
  const templateUrl = withDatabase(adminUrl, templateDb);
  await install({ adminUrl: templateUrl, serviceRole, servicePassword, groupRole });
  context = { adminUrl, templateDb, serviceRole, servicePassword, groupRole, runId };
  project.provide('pg', context);
}

export async function teardown(): Promise<void> {
  if (context) {
    const { adminUrl, runId, serviceRole } = context;
    await admin(adminUrl, async (c) => {
      const dbs = await c.query<{ datname: string }>(
        'SELECT datname FROM pg_database WHERE datname LIKE $1::text OR datname LIKE $2::text',
        [`owui_t_${runId}_%`, `owui_tpl_${runId}`],
      );
      for (const { datname } of dbs.rows) {
        await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(datname)} WITH (FORCE)`);
      }
      const roles = await c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1::text', [
        `owui_%${runId}%`,
      ]);
      for (const { rolname } of roles.rows) await c.query(`DROP ROLE IF EXISTS ${quoteIdent(rolname)}`);
      await c.query(`DROP ROLE IF EXISTS ${quoteIdent(serviceRole)}`);
    });
  }
  await embedded?.stop();
}

async function admin(url: string, fn: (c: pg.Client) => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await fn(client);
  } finally {
    await client.end();
  }
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
