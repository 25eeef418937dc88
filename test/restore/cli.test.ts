import fs from 'node:fs';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase, withConnection } from '../support/db.ts';
import { makeTenantDb, syncctl } from '../cli/support.ts';
import { scratchDir } from './helpers.ts';

describe('syncctl restore / verify', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('syncctl-restore-');
  afterAll(() => scratch.cleanup());
  const env = () => ({
    ADMIN_URL: db.current.adminUrl,
    DATABASE_URL: db.current.serviceUrl,
    CLUSTER_NAME: 'restore',
    DOCKER_HOST: 'unix:///nonexistent/docker.sock',
  });

  it('verify matches after a sync and records the schema; restore writes a file verify accepts; exit 1 on drift', async () => {
    const file = scratch.file('acme.db');
    makeTenantDb(file, 8);
    expect((await syncctl(['client', 'register', 'acme', '--sqlite', file], { env: env() })).code).toBe(0);
    const synced = await syncctl(['client', 'sync', 'acme', '--full'], { env: env() });
    expect(synced.code, synced.stderr).toBe(0);

    const v = await syncctl(['verify', 'acme', '--json'], { env: env() });
    expect(v.code, v.stderr).toBe(0);
    expect(v.json()).toMatchObject({ match: true, totals: { missing: 0, extra: 0, differing: 0 } });
    // The tenant's last verification, as /metrics reads it for sync_verify_ok.
    const last = () =>
      withConnection(db.current.adminUrl, async (c) => {
        const res = await c.query(
          `SELECT d.client_name AS "clientName", v.match, v.sqlite_path AS "sqlitePath", v.totals
             FROM sync_state.verify_results v JOIN sync_metadata.client_deployments d USING (deployment_id)
            WHERE d.client_name = 'acme'`,
        );
        return res.rows;
      });
    expect(await last()).toEqual([expect.objectContaining({ clientName: 'acme', match: true, sqlitePath: file })]);

    const to = scratch.file('out/webui.db');
    const noDir = await syncctl(['restore', 'acme', '--to', to], { env: env() });
    expect(noDir.code).toBe(1);
    expect(noDir.stderr).toMatch(/does not exist; create it first/);
    fs.mkdirSync(scratch.file('out'));
    const r = await syncctl(['restore', 'acme', '--to', to], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Restored "acme" to .*webui\.db: \d+ rows/);
    expect(r.stdout).not.toMatch(/Schema rebuilt/);
    const again = await syncctl(['restore', 'acme', '--to', to], { env: env() });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists.*--force/);
    const againJson = await syncctl(['restore', 'acme', '--to', to, '--force', '--json'], { env: env() });
    expect(againJson.code, againJson.stderr).toBe(0);
    expect(againJson.json()).toMatchObject({ integrityCheck: 'ok', ddl: 'captured' });

    const restored = await syncctl(['verify', 'acme', '--sqlite', to], { env: env() });
    expect(restored.code, restored.stdout).toBe(0);
    expect(restored.stdout).toMatch(/matches/);

    const s = new Database(file);
    s.prepare("UPDATE chat SET title = 'changed' WHERE rowid = 1").run();
    s.close();
    const drift = await syncctl(['verify', 'acme'], { env: env() });
    expect(drift.code).toBe(1);
    expect(drift.stdout).toMatch(/differs/);
    expect(drift.stdout).toMatch(/chat\s+differs/);
    expect(drift.stdout).toMatch(/syncctl client sync acme/);
    expect(await last()).toEqual([
      expect.objectContaining({ match: false, totals: expect.objectContaining({ differing: 1 }) }),
    ]);
  });

  it('restore --at: a past state with its revision; times outside the history and bad times fail clearly', async () => {
    // The first test registered and synced "acme" and then changed one title in the source without syncing.
    const before = new Date().toISOString();
    const synced = await syncctl(['client', 'sync', 'acme'], { env: env() });
    expect(synced.code, synced.stderr).toBe(0);
    const to = scratch.file('at.db');
    const r = await syncctl(['restore', 'acme', '--to', to, '--at', before, '--json'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ integrityCheck: 'ok', pointInTime: { requested: before } });
    const d = new Database(to, { readonly: true });
    expect(d.prepare("SELECT count(*) FROM chat WHERE title = 'changed'").pluck().get()).toBe(0);
    d.close();
    const now = await syncctl(['restore', 'acme', '--to', scratch.file('now.db'), '--at', '-0s'], { env: env() });
    expect(now.code, now.stderr).toBe(0);
    expect(now.stdout).toMatch(/As of .*: the last sync run at or before/);
    expect(now.stdout).toMatch(/Open WebUI schema revision: alembic:\w+/);

    const old = await syncctl(['restore', 'acme', '--to', scratch.file('x.db'), '--at', '2026-01-01T00:00:00Z'], {
      env: env(),
    });
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/cannot be restored to 2026-01-01T00:00:00.000Z: the oldest restorable time is \d{4}-/);
    for (const bad of ['yesterday', '-2x', '2026-02-30T25:00']) {
      const b = await syncctl(['restore', 'acme', '--to', scratch.file('x.db'), '--at', bad], { env: env() });
      expect(b.code, bad).toBe(1);
      expect(b.stderr, bad).toMatch(/is not a (valid |relative )?time.*-2h, -30m, -7d/);
    }
    const both = await syncctl(['restore', 'acme', '--to', scratch.file('x.db'), '--at', '-1m', '--include-deleted'], {
      env: env(),
    });
    expect(both.stderr).toMatch(/--include-deleted cannot be combined with --at/);
    expect(fs.existsSync(scratch.file('x.db'))).toBe(false);

    const ret = await syncctl(['client', 'retention', 'acme', '30', '--json'], { env: env() });
    expect(ret.code, ret.stderr).toBe(0);
    expect(ret.json()).toMatchObject({ clientName: 'acme', retentionDays: 30, previous: 7 });
    const badDays = await syncctl(['client', 'retention', 'acme', '0'], { env: env() });
    expect(badDays.code).toBe(1);
    expect(badDays.stderr).toMatch(/not a whole number of days between 1 and 3650/);
    const help = await syncctl(['client', 'retention', '--help'], { env: env() });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/point-in-time/);
  });

  it('every command has --help', async () => {
    for (const cmd of [['restore'], ['verify']]) {
      const h = await syncctl([...cmd, '--help'], { env: env() });
      expect(h.code).toBe(0);
      expect(h.stdout).toMatch(/Usage|usage|syncctl/);
      expect(h.stdout).toMatch(cmd[0] === 'restore' ? /--include-deleted/ : /--sqlite/);
    }
  });
});
