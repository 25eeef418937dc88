import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase, withConnection } from '../support/db.ts';
import { makeTenantDb, syncctl } from './support.ts';

/** Registration refuses, before touching anything, what would mix two tenants. */
describe('syncctl client register: names and files that collide', () => {
  const db = useTestDatabase();
  const scratchRoot = mkdtempSync(path.join(tmpdir(), 'syncctl-guards-'));
  const scratch = (name: string) => path.join(scratchRoot, name);
  afterAll(() => rmSync(scratchRoot, { recursive: true, force: true }));
  const env = () => ({
    ADMIN_URL: db.current.adminUrl,
    DATABASE_URL: db.current.serviceUrl,
    CLUSTER_NAME: 'guards',
    DOCKER_HOST: 'unix:///nonexistent/docker.sock',
  });
  const q = async (sql: string, params: unknown[] = []) =>
    withConnection(db.current.adminUrl, async (c) => (await c.query(sql, params)).rows);
  const tablesOf = async (schema: string) =>
    (await q('SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1', [schema])).map((r) => r.tablename);

  it('refuses a name whose schema already belongs to another tenant, says which, and changes nothing', async () => {
    const first = scratch('acme-corp.db');
    makeTenantDb(first, 3);
    const ok = await syncctl(['client', 'register', 'acme-corp', '--sqlite', first], { env: env() });
    expect(ok.code, ok.stderr).toBe(0);
    const tablesBefore = await tablesOf('client_acme_corp');
    const deployments = await q(
      'SELECT client_name, schema_name, sqlite_realpath FROM sync_metadata.client_deployments',
    );
    expect(deployments).toEqual([
      { client_name: 'acme-corp', schema_name: 'client_acme_corp', sqlite_realpath: first },
    ]);

    // A different file whose extra table would otherwise be added to acme-corp's schema.
    const second = scratch('acme_corp.db');
    makeTenantDb(second, 2);
    const d = new Database(second);
    d.exec('CREATE TABLE note (id TEXT PRIMARY KEY, title TEXT)');
    d.close();
    const clash = await syncctl(['client', 'register', 'acme_corp', '--sqlite', second], { env: env() });
    expect(clash.code).toBe(1);
    expect(clash.stderr).toMatch(
      /tenant name "acme_corp" maps to schema client_acme_corp, which already belongs to tenant "acme-corp"/,
    );
    expect(await tablesOf('client_acme_corp')).toEqual(tablesBefore);
    expect(await q('SELECT client_name FROM sync_metadata.client_deployments')).toEqual([{ client_name: 'acme-corp' }]);
  });

  it('refuses a file that already is another tenant’s registered file, also through a symlink', async () => {
    const file = scratch('shared.db');
    makeTenantDb(file, 2);
    expect((await syncctl(['client', 'register', 'owner', '--sqlite', file], { env: env() })).code).toBe(0);
    const same = await syncctl(['client', 'register', 'thief', '--sqlite', file], { env: env() });
    expect(same.code).toBe(1);
    expect(same.stderr).toContain(`${file} is already the registered SQLite file of tenant "owner"`);
    const link = scratch('innocent-looking.db');
    symlinkSync(file, link);
    const viaLink = await syncctl(['client', 'register', 'thief', '--sqlite', link], { env: env() });
    expect(viaLink.code).toBe(1);
    expect(viaLink.stderr).toContain(`${link} (which resolves to ${file}) is already the registered SQLite file`);
    expect(await q("SELECT 1 FROM pg_namespace WHERE nspname = 'client_thief'")).toEqual([]);
    expect(await q("SELECT 1 FROM sync_metadata.client_deployments WHERE client_name = 'thief'")).toEqual([]);
    // The same path in another cluster is another machine's file.
    const elsewhere = await syncctl(['client', 'register', 'elsewhere', '--sqlite', file, '--cluster', 'guards-2'], {
      env: env(),
    });
    expect(elsewhere.code, elsewhere.stderr).toBe(0);

    // A symlinked path of its own is fine: its real path is recorded at registration.
    const own = scratch('own.db');
    makeTenantDb(own, 1);
    const ownLink = scratch('own-link.db');
    symlinkSync(own, ownLink);
    expect((await syncctl(['client', 'register', 'linked', '--sqlite', ownLink], { env: env() })).code).toBe(0);
    expect(
      await q("SELECT sqlite_path, sqlite_realpath FROM sync_metadata.client_deployments WHERE client_name = 'linked'"),
    ).toEqual([{ sqlite_path: ownLink, sqlite_realpath: own }]);

    // Swapped to the other tenant's file afterwards: the admin's schema upgrade refuses to read it.
    unlinkSync(ownLink);
    symlinkSync(file, ownLink);
    const upgrade = await syncctl(['client', 'upgrade-schema', 'linked'], { env: env() });
    expect(upgrade.code).toBe(1);
    expect(upgrade.stderr).toContain(
      `${ownLink} now resolves to ${file}, the registered SQLite file of tenant "owner"`,
    );
  });
});
