import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateOpenWebUIDatabase } from '@owui-sync/fixtures';
import { useTestDatabase, withConnection } from '../support/db.ts';
import { syncctl } from './support.ts';

/** The admin maintenance commands a failed sync or an operator points to: upgrade-schema and purge-deleted. */
describe('syncctl client upgrade-schema / purge-deleted', () => {
  const db = useTestDatabase();
  const scratch = mkdtempSync(path.join(tmpdir(), 'syncctl-maint-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  const file = path.join(scratch, 'globex.db');
  const env = () => ({ ADMIN_URL: db.current.adminUrl, DATABASE_URL: db.current.serviceUrl, CLUSTER_NAME: 'maint' });
  const q = async (sql: string, params: unknown[] = []) =>
    withConnection(db.current.adminUrl, async (c) => (await c.query(sql, params)).rows);

  it('a sync after an Open WebUI upgrade fails clearly; upgrade-schema applies the change and the next sync copies it', async () => {
    generateOpenWebUIDatabase({ path: file, era: '0.6.42', seed: 7 });
    expect((await syncctl(['client', 'register', 'globex', '--sqlite', file], { env: env() })).code).toBe(0);
    const captured = async () =>
      (
        await q(
          `SELECT s.objects FROM sync_state.source_schema s
             JOIN sync_metadata.client_deployments d USING (deployment_id) WHERE d.client_name = 'globex'`,
        )
      )[0]?.objects as { name: string; sql: string | null }[] | undefined;
    // Registration records the source's exact DDL for restores.
    expect((await captured())?.find((o) => o.name === 'chat')?.sql).toMatch(/CREATE TABLE/);
    const first = await syncctl(['client', 'sync', 'globex', '--full', '--json'], { env: env() });
    expect(first.code, first.stderr).toBe(0);

    const src = new Database(file);
    src.exec(`ALTER TABLE "user" ADD COLUMN nickname TEXT;
              UPDATE "user" SET nickname = 'nick-' || id;
              CREATE TABLE widget (id TEXT NOT NULL PRIMARY KEY, name TEXT, updated_at BIGINT);
              INSERT INTO widget VALUES ('w1', 'first', 1700000000), ('w2', 'second', 1700000001);`);
    src.close();

    const drifted = await syncctl(['client', 'sync', 'globex', '--json'], { env: env() });
    expect(drifted.code).toBe(1);
    expect(drifted.stdout + drifted.stderr).toMatch(/syncctl client upgrade-schema globex/);

    const help = await syncctl(['client', 'upgrade-schema', '--help'], { env: env() });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/schema drift/);

    const upgraded = await syncctl(['client', 'upgrade-schema', 'globex', '--json'], { env: env() });
    expect(upgraded.code, upgraded.stderr).toBe(0);
    const changes = (upgraded.json() as { changes: string[] }).changes.join('\n');
    expect(changes).toMatch(/widget/);
    expect(changes).toMatch(/nickname/);

    expect((await captured())?.find((o) => o.name === 'user')?.sql).toMatch(/nickname/);
    const again = await syncctl(['client', 'upgrade-schema', 'globex', '--json'], { env: env() });
    expect((again.json() as { changes: string[] }).changes).toEqual([]);

    const after = await syncctl(['client', 'sync', 'globex', '--json'], { env: env() });
    expect(after.code, after.stdout + after.stderr).toBe(0);
    expect(await q('SELECT id, name FROM client_globex.widget ORDER BY id')).toEqual([
      { id: 'w1', name: 'first' },
      { id: 'w2', name: 'second' },
    ]);
    const nicks = await q('SELECT count(*)::int AS n FROM client_globex."user" WHERE nickname LIKE $1', ['nick-%']);
    expect(nicks[0].n).toBeGreaterThan(0);
    // Filling the new columns is not a conflict.
    expect(await q("SELECT count(*)::int AS n FROM sync_metadata.conflict_log WHERE client_id = 'globex'")).toEqual([
      { n: 0 },
    ]);
  });

  it('purge-deleted removes tombstoned rows only after confirmation', async () => {
    const src = new Database(file);
    src.exec("DELETE FROM widget WHERE id = 'w1'");
    src.close();
    const full = await syncctl(['client', 'sync', 'globex', '--full', '--json'], { env: env() });
    expect(full.code, full.stdout + full.stderr).toBe(0);
    // Tombstoned, not deleted, by the service.
    expect(await q("SELECT id FROM client_globex.widget WHERE id = 'w1'")).toEqual([{ id: 'w1' }]);

    const refused = await syncctl(['client', 'purge-deleted', 'globex'], { env: env() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/--yes/);
    expect(await q("SELECT id FROM client_globex.widget WHERE id = 'w1'")).toEqual([{ id: 'w1' }]);

    const wrongName = await syncctl(['client', 'purge-deleted', 'globex'], {
      env: env(),
      interactive: true,
      input: 'not-globex\n',
    });
    expect(wrongName.code).toBe(1);
    expect(await q("SELECT id FROM client_globex.widget WHERE id = 'w1'")).toEqual([{ id: 'w1' }]);

    const purged = await syncctl(['client', 'purge-deleted', 'globex', '--yes', '--json'], { env: env() });
    expect(purged.code, purged.stderr).toBe(0);
    expect(purged.json()).toMatchObject({ client_name: 'globex', removed: { widget: 1 } });
    expect(await q('SELECT id FROM client_globex.widget ORDER BY id')).toEqual([{ id: 'w2' }]);
  });

  it('says what to do for an unknown tenant', async () => {
    const r = await syncctl(['client', 'upgrade-schema', 'nobody'], { env: env() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not registered.*syncctl clients/);
  });
});
