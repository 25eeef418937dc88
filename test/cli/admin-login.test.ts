import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createPool } from '@owui-sync/engine';
import { provisionTenant } from '@owui-sync/engine/sync';
import { loginRole, quoteIdent } from '@owui-sync/schema';
import { adminQuery, createTestRole, useTestDatabase, withUser } from '../support/db.ts';
import { makeTenantDb, syncctl } from './support.ts';

/** Runs an app's entry file as `tsx apps/…/main.ts` does; resolves with its exit code and output. */
function runEntry(
  file: string,
  env: Record<string, string | undefined>,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', file], {
    env: { PATH: process.env.PATH, LOG_LEVEL: 'warn', WORKER_CONCURRENCY: '1', ENABLE_API: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Services and tenant grants never take the admin login for the restricted service role. */
describe('the admin login is never the service role', () => {
  const db = useTestDatabase();
  const scratch = mkdtempSync(path.join(tmpdir(), 'admin-login-'));
  const admin = loginRole(inject('pg').adminUrl) ?? 'postgres';
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it.each(['apps/node/src/main.ts', 'apps/worker/src/main.ts'])(
    '%s refuses DATABASE_URL = ADMIN_URL with a clear error',
    async (file) => {
      const url = db.current.adminUrl;
      const r = await runEntry(file, { DATABASE_URL: url, ADMIN_URL: url, CLUSTER_NAME: 'adm-a' });
      expect(r.code, r.output).toBe(2);
      expect(r.output).toMatch(
        new RegExp(`DATABASE_URL: is the admin login \\(it logs in as "${admin}", like ADMIN_URL\\)`),
      );
      expect(r.output).not.toMatch(/"level":|\n\s+at /);
    },
  );

  it.each(['apps/node/src/main.ts', 'apps/worker/src/main.ts'])(
    '%s reads DATABASE_URL_FILE and refuses an admin login even without ADMIN_URL',
    async (file) => {
      const secret = path.join(scratch, `url-${path.basename(path.dirname(path.dirname(file)))}`);
      writeFileSync(secret, `${db.current.adminUrl}\n`, { mode: 0o600 });
      const r = await runEntry(file, { DATABASE_URL_FILE: secret, CLUSTER_NAME: 'adm-b' });
      expect(r.code, r.output).toBe(2);
      expect(r.output).toMatch(new RegExp(`DATABASE_URL logs in as "${admin}", a superuser \\(the admin login\\)`));
      const hosts = await adminQuery(
        db.current.adminUrl,
        "SELECT 1 FROM sync_metadata.hosts WHERE cluster_name = 'adm-b'",
      );
      expect(hosts.rowCount).toBe(0);
    },
  );

  it('a worker refuses the owner of sync_metadata (the admin where it is no superuser, as on Supabase)', async () => {
    const { role, password } = await createTestRole('owner');
    const adminUrl = db.current.adminUrl;
    await adminQuery(adminUrl, `ALTER SCHEMA sync_metadata OWNER TO ${quoteIdent(role)}`);
    try {
      const r = await runEntry('apps/worker/src/main.ts', {
        DATABASE_URL: withUser(adminUrl, role, password),
        CLUSTER_NAME: 'adm-c',
      });
      expect(r.code, r.output).toBe(2);
      expect(r.output).toMatch(new RegExp(`DATABASE_URL logs in as "${role}", the owner of sync_metadata`));
    } finally {
      await adminQuery(adminUrl, `ALTER SCHEMA sync_metadata OWNER TO ${quoteIdent(admin)}`);
    }
  });

  it('client register with DATABASE_URL = ADMIN_URL refuses and leaves the admin its privileges', async () => {
    const file = path.join(scratch, 'acme.db');
    makeTenantDb(file, 2);
    const url = db.current.adminUrl;
    const r = await syncctl(['client', 'register', 'acme', '--sqlite', file], {
      env: { ADMIN_URL: url, DATABASE_URL: url, CLUSTER_NAME: 'adm-d' },
    });
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`DATABASE_URL names the admin role "${admin}" .* as the service role`));
    const schema = await adminQuery(url, "SELECT 1 FROM pg_namespace WHERE nspname = 'client_acme'");
    expect(schema.rowCount).toBe(0);
  });

  it('provisioning never revokes from the admin: naming its role is refused inside the transaction', async () => {
    const file = path.join(scratch, 'beta.db');
    makeTenantDb(file, 2);
    const url = db.current.adminUrl;
    const pool = createPool(url, { max: 2 });
    try {
      // The role this admin connection logs in as, however the URLs spell it: only the server can tell.
      await expect(
        provisionTenant({ adminPool: pool, clientName: 'beta', sqlitePath: file, serviceRole: admin }),
      ).rejects.toThrow(
        new RegExp(`the service role "${admin}" is the admin login \\(this admin connection logs in as it\\)`),
      );
    } finally {
      await pool.end();
    }
    const tables = await adminQuery(url, "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'client_beta'");
    expect(tables.rows[0]).toEqual({ n: 0 });

    // The same registration with the restricted role grants it SELECT/INSERT/UPDATE and leaves the owner all.
    const ok = await syncctl(['client', 'register', 'beta', '--sqlite', file], {
      env: { ADMIN_URL: url, DATABASE_URL: db.current.serviceUrl, CLUSTER_NAME: 'adm-e' },
    });
    expect(ok.code, ok.stderr).toBe(0);
    const privileges = await adminQuery(
      url,
      `SELECT a.privilege_type, pg_get_userbyid(a.grantee) AS grantee
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
        WHERE n.nspname = 'client_beta' AND c.relname = 'chat'
        ORDER BY 2, 1`,
    );
    const of = (role: string) =>
      privileges.rows
        .filter((p: { grantee: string }) => p.grantee === role)
        .map((p: { privilege_type: string }) => p.privilege_type);
    expect(of(admin)).toEqual(expect.arrayContaining(['DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']));
    expect(of(db.current.serviceRole).sort()).toEqual(['INSERT', 'SELECT', 'UPDATE']);
  });
});
