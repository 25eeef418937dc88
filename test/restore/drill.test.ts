import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, createMetrics } from '@owui-sync/engine';
import { listDrills, runDrill, sweepStaleDrillDirs } from '@owui-sync/engine/drill';
import { tenantSchemaName } from '@owui-sync/engine/sync';
import { ERAS, generateOpenWebUIDatabase } from '@owui-sync/fixtures';
import { useTestDatabase } from '../support/db.ts';
import { backUp, makeMiniOpenWebUI, scratchDir } from './helpers.ts';

/**
 * Restore drills against a real backup: a good backup passes every check in every schema era, and a backup damaged
 * in each way a drill is meant to catch fails and says what and where. The live file is never touched and the drill
 * leaves no file behind.
 */

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('restore drills', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-drill-');
  let admin: pg.Pool;
  let service: pg.Pool;
  const pools = () => ({ admin, service, serviceRole: db.current.serviceRole, adminUrl: db.current.adminUrl });
  let drillDir: string;

  beforeAll(() => {
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 4 });
    drillDir = scratch.file('drills');
  });
  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  const leftovers = () =>
    fs.existsSync(drillDir) ? fs.readdirSync(drillDir).flatMap((d) => fs.readdirSync(path.join(drillDir, d))) : [];

  it.each(ERAS.map((era, i) => [era, i] as const))('era %s: a good backup passes every check', async (era, i) => {
    const source = scratch.file(`good-${i}.db`);
    generateOpenWebUIDatabase({ path: source, era, seed: 5 });
    const name = `drill${i}`;
    const { hostId } = await backUp(pools(), name, source);
    const before = sha(source);
    const metrics = createMetrics();
    const r = await runDrill({
      pool: service,
      clientName: name,
      scope: { hostId },
      drillDir,
      triggeredBy: 'test',
      runBy: 'vitest',
      metrics,
    });
    expect(r.failure).toBeNull();
    expect(r.passed).toBe(true);
    expect(r.checks.restore).toMatchObject({ ok: true, ddl: 'captured' });
    expect(r.checks.integrity).toEqual({ ok: true, result: 'ok' });
    expect(r.checks.compare).toMatchObject({ ok: true, missing: 0, extra: 0, differing: 0 });
    expect(r.checks.bookkeeping).toMatchObject({ ok: true, unbooked: 0, lost: 0, damaged: 0 });
    expect(r.checks.bookkeeping?.rows).toBe(r.rowsRestored);
    const owui = r.checks.openwebui;
    expect(owui?.problems).toEqual([]);
    expect(owui?.revision).toBe(owui?.dataRevision);
    if (era === 'pre-migration') expect(owui?.revision).toBeNull();
    else expect(owui?.revision).toMatch(/^(alembic|peewee):/);
    expect(owui?.user?.id).toBeTruthy();
    expect(owui?.chat?.id).toBeTruthy();
    // Recorded, counted, and nothing left behind; the live file is as it was.
    const [rec] = await service.connect().then(async (c) => {
      try {
        await c.query('BEGIN');
        await c.query("SELECT set_config('app.current_host_id', $1, true)", [hostId]);
        return await listDrills(c, name);
      } finally {
        await c.query('COMMIT');
        c.release();
      }
    });
    expect(rec).toMatchObject({
      drillId: r.drillId,
      passed: true,
      failure: null,
      triggeredBy: 'test',
      runBy: 'vitest',
    });
    expect(rec?.checks.compare?.ok).toBe(true);
    expect((await metrics.drills.get()).values).toEqual([
      expect.objectContaining({ labels: { result: 'passed' }, value: 1 }),
    ]);
    expect(leftovers()).toEqual([]);
    expect(sha(source)).toBe(before);
  });

  async function damaged(name: string, damage: (schema: string, deploymentId: string) => Promise<void>) {
    const source = scratch.file(`${name}.db`);
    makeMiniOpenWebUI(source, { chats: 40 });
    const { hostId } = await backUp(pools(), name, source);
    const dep = await admin.query<{ id: string }>(
      'SELECT deployment_id::text AS id FROM sync_metadata.client_deployments WHERE client_name = $1',
      [name],
    );
    const ok = await runDrill({ pool: service, clientName: name, scope: { hostId }, drillDir, triggeredBy: 'test' });
    expect(ok.failure).toBeNull();
    await damage(`"${tenantSchemaName(name)}"`, dep.rows[0]!.id);
    const r = await runDrill({ pool: service, clientName: name, scope: { hostId }, drillDir, triggeredBy: 'test' });
    expect(r.passed).toBe(false);
    expect(leftovers()).toEqual([]);
    const stored = await admin.query<{ passed: boolean; failure: string | null }>(
      `SELECT passed, failure FROM sync_state.restore_drills WHERE drill_id = $1::uuid`,
      [r.drillId],
    );
    expect(stored.rows).toEqual([{ passed: false, failure: r.failure }]);
    return r;
  }

  it('a row changed in the backup outside a sync fails the drill, naming the table and row', async () => {
    const r = await damaged('dmg-edit', async (schema) => {
      await admin.query(`UPDATE ${schema}.chat SET title = 'tampered' WHERE id = 'chat-00007'`);
    });
    expect(r.checks.bookkeeping).toMatchObject({ ok: false, damaged: 1, unbooked: 0, lost: 0 });
    expect(r.checks.compare?.ok).toBe(true);
    expect(r.failure).toContain('chat: 1 row(s) changed since their sync wrote them (chat-00007)');
  });

  it('a row whose bookkeeping was deleted fails the drill', async () => {
    const r = await damaged('dmg-book', async (_schema, id) => {
      await admin.query(
        `DELETE FROM sync_state.row_state WHERE deployment_id = $1::uuid AND table_name = 'user' AND row_key = 'u2'`,
        [id],
      );
    });
    expect(r.checks.bookkeeping).toMatchObject({ ok: false, unbooked: 1 });
    expect(r.failure).toContain('user: 1 row(s) without sync bookkeeping (u2)');
  });

  it('a row deleted from the backup outside a sync fails the drill', async () => {
    const r = await damaged('dmg-lost', async (schema) => {
      await admin.query(`DELETE FROM ${schema}.chat_message WHERE id = (SELECT min(id) FROM ${schema}.chat_message)`);
    });
    expect(r.checks.bookkeeping).toMatchObject({ ok: false, lost: 1 });
    expect(r.failure).toMatch(/chat_message: 1 row\(s\) missing from the backup/);
  });

  it("a schema revision that disagrees with the backup's recorded DDL fails the drill", async () => {
    const r = await damaged('dmg-rev', async (schema) => {
      await admin.query(`UPDATE ${schema}.alembic_version SET version_num = 'f0bd01a18a3d'`);
    });
    expect(r.checks.openwebui).toMatchObject({
      ok: false,
      revision: 'alembic:f0bd01a18a3d',
      ddlRevision: 'alembic:c440947495f3',
    });
    expect(r.failure).toContain("the backup's recorded DDL is of revision alembic:c440947495f3");
  });

  it('a backup whose tables are gone fails the drill with the restore error', async () => {
    const r = await damaged('dmg-gone', async (schema) => {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    });
    expect(r.checks.restore.ok).toBe(false);
    expect(r.failure).toMatch(/^restore failed: tenant "dmg-gone" has no backup tables/);
  });

  it('a restored file that does not hold the backup’s rows fails the compare, naming the rows', async () => {
    const source = scratch.file('cmp.db');
    makeMiniOpenWebUI(source, { chats: 20 });
    const { hostId } = await backUp(pools(), 'cmp', source);
    const run = (damage: (db: Database.Database) => void) =>
      runDrill({
        pool: service,
        clientName: 'cmp',
        scope: { hostId },
        drillDir,
        triggeredBy: 'test',
        onRestored: (file) => {
          const db = new Database(file);
          try {
            damage(db);
          } finally {
            db.close();
          }
        },
      });
    const changed = await run((db) => db.prepare("UPDATE chat SET title = 'x' WHERE id = 'chat-00003'").run());
    expect(changed.checks.compare).toMatchObject({ ok: false, differing: 1, missing: 0, extra: 0 });
    expect(changed.checks.compare?.tables).toEqual([
      expect.objectContaining({ table: 'chat', differing: ['chat-00003'] }),
    ]);
    expect(changed.failure).toContain(
      'restored file differs from the backup: 0 missing, 0 extra, 1 differing rows in chat (chat-00003)',
    );
    const dropped = await run((db) => db.prepare('DELETE FROM tag WHERE rowid = (SELECT min(rowid) FROM tag)').run());
    expect(dropped.checks.compare).toMatchObject({ ok: false, extra: 1 });
    expect(dropped.failure).toMatch(
      /restored file differs from the backup: 0 missing, 1 extra, 0 differing rows in tag/,
    );
    expect(leftovers()).toEqual([]);
    // Untouched, the same backup passes.
    const ok = await run(() => undefined);
    expect(ok.failure).toBeNull();
  });

  it('an unknown tenant is an error, not a failed drill', async () => {
    await expect(
      runDrill({ pool: service, clientName: 'nobody', scope: { cluster: 'x' }, drillDir, triggeredBy: 'test' }),
    ).rejects.toThrow(/not registered/);
  });

  it('the sweep removes directories of dead processes only', () => {
    const root = scratch.file('sweep');
    fs.mkdirSync(path.join(root, 'pid-999999999'), { recursive: true });
    fs.writeFileSync(path.join(root, 'pid-999999999', 'x.db'), 'x');
    fs.mkdirSync(path.join(root, `pid-${process.pid}`), { recursive: true });
    fs.mkdirSync(path.join(root, 'pid-1'), { recursive: true }); // init: alive
    fs.mkdirSync(path.join(root, 'other'), { recursive: true });
    expect(sweepStaleDrillDirs(root)).toEqual([path.join(root, 'pid-999999999')]);
    expect(fs.readdirSync(root).sort()).toEqual(['other', 'pid-1', `pid-${process.pid}`]);
  });
});
