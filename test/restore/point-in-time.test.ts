import fs from 'node:fs';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaderElector, runMaintenancePass, validateMaintenanceSettings } from '@owui-sync/engine/cluster';
import { createPool, silentLogger } from '@owui-sync/engine';
import { historyWindow, parseRestoreTime, readRowsAt, restoreTenant, sqliteRevision } from '@owui-sync/engine/restore';
import { runTenantSync, upgradeTenantSchema } from '@owui-sync/engine/sync';
import { generateOpenWebUIDatabase } from '@owui-sync/fixtures';
import { OpenWebUIWriter } from '../engine/openwebui-writer.ts';
import { useTestDatabase } from '../support/db.ts';
import { backUp, dumpDatabase, integrityCheck, scratchDir } from './helpers.ts';

const SCALE = {
  users: 4,
  chats: 30,
  chatBodyBytes: 6000,
  chatMessagesPerChat: 2,
  channels: 2,
  channelMessages: 30,
  tags: 8,
  files: 3,
  rowsPerTable: 3,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('point-in-time restore from the row history', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-pitr-');
  let admin: pg.Pool;
  let service: pg.Pool;
  const pools = () => ({ admin, service, serviceRole: db.current.serviceRole, adminUrl: db.current.adminUrl });

  beforeAll(() => {
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 4 });
  });
  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  it('restore --at T equals the source as it was at T, across edits, deletes and a schema upgrade', async () => {
    const file = scratch.file('pitr.db');
    generateOpenWebUIDatabase({ path: file, era: '0.11.0', scale: SCALE, seed: 5, journalMode: 'wal' });
    const name = 'pitr';
    const { hostId } = await backUp(pools(), name, file);
    const scope = { hostId };
    const writer = new OpenWebUIWriter(file, 77);
    const points: { at: Date; copy: string; what: string; revision: string | null }[] = [];
    const mark = async (what: string) => {
      const r = await runTenantSync({ pool: service, clientName: name, scope, triggeredBy: 'test' });
      expect(r, `${what}: ${r.error}`).toMatchObject({ status: 'success' });
      const copy = scratch.file(`snap-${points.length}.db`);
      writer.db.exec(`VACUUM INTO '${copy}'`);
      await sleep(5);
      points.push({ at: new Date(), copy, what, revision: sqliteRevision(copy) });
      await sleep(5);
    };
    // One chat changed column by column in successive runs, then deleted: its state at each point comes from a
    // chain of history entries.
    const chained = writer.db.prepare('SELECT id FROM chat ORDER BY id LIMIT 1').pluck().get() as string;
    const change = (sql: string) => writer.db.prepare(sql).run(chained);
    try {
      await mark('initial state');
      change("UPDATE chat SET title = 'first rename' WHERE id = ?");
      for (const op of ['chatTurn', 'chatTurn', 'chatRename', 'userSettings', 'chatSameSizeEdit']) writer.apply(op);
      await mark('edits');
      change("UPDATE chat SET chat = json_set(chat, '$.title', 'body edit'), archived = 1 WHERE id = ?");
      for (const op of ['chatDelete', 'chatDeleteAllOfUser', 'rekeyed', 'tags']) writer.apply(op);
      await mark('deletes and re-keyed rows');
      change("UPDATE chat SET title = 'second rename' WHERE id = ?");
      await mark('another rename');
      change('DELETE FROM chat WHERE id = ?');
      writer.apply('chatImport');
      writer.apply('chatTurn');
      await mark('an import and a turn');
      // An Open WebUI upgrade: a new column, a new table, a new alembic head.
      writer.db.exec("ALTER TABLE chat ADD COLUMN upgrade_note TEXT DEFAULT 'migrated'");
      writer.db.exec('CREATE TABLE upgrade_extra (id TEXT PRIMARY KEY, value TEXT, updated_at BIGINT)');
      writer.db.prepare("INSERT INTO upgrade_extra VALUES ('a', 'x', 1)").run();
      writer.db.prepare("UPDATE alembic_version SET version_num = 'f00dfeed0001'").run();
      writer.refreshSchema();
      const drift = await runTenantSync({ pool: service, clientName: name, scope, triggeredBy: 'test' });
      expect(drift).toMatchObject({ status: 'failed' });
      await upgradeTenantSchema({
        adminPool: admin,
        clientName: name,
        sqlitePath: file,
        serviceRole: db.current.serviceRole,
      });
      await mark('after the schema upgrade');
      for (const op of ['chatTurn', 'chatArchive', 'chatDelete', 'userActivity']) writer.apply(op);
      writer.db
        .prepare("UPDATE chat SET upgrade_note = 'edited' WHERE rowid IN (SELECT rowid FROM chat LIMIT 2)")
        .run();
      await mark('edits after the upgrade');
    } finally {
      writer.close();
    }
    expect(new Set(points.map((p) => p.revision)).size).toBe(2);
    expect(points.length).toBe(7);

    for (const [i, p] of points.entries()) {
      const to = scratch.file(`at-${i}.db`);
      const r = await restoreTenant({ pool: service, clientName: name, to, scope, at: p.at });
      expect(integrityCheck(to)).toBe('ok');
      expect(dumpDatabase(to), `restore at point ${i} (${p.what})`).toEqual(dumpDatabase(p.copy));
      expect(r.openwebuiRevision).toBe(p.revision);
      expect(r.pointInTime?.runFinishedAt).toBeDefined();
      expect(new Date(r.pointInTime?.runFinishedAt as string).getTime()).toBeLessThanOrEqual(p.at.getTime());
    }
    // Before the upgrade, the restore says the tenant runs another revision today.
    const old = await restoreTenant({
      pool: service,
      clientName: name,
      to: scratch.file('old.db'),
      scope,
      at: points[1]!.at,
    });
    expect(old.warnings.join('\n')).toMatch(/now at revision alembic:f00dfeed0001/);

    // Replacing a file of another revision (--force) warns; --expect-revision refuses before writing anything.
    const replaced = await restoreTenant({
      pool: service,
      clientName: name,
      to: points[6]!.copy,
      scope,
      at: points[1]!.at,
      force: true,
    });
    expect(replaced.warnings.join('\n')).toMatch(
      /was at Open WebUI revision alembic:f00dfeed0001; the restored file is at alembic:/,
    );
    const target = scratch.file('expect.db');
    await expect(
      restoreTenant({
        pool: service,
        clientName: name,
        to: target,
        scope,
        at: points[1]!.at,
        expectRevision: 'alembic:f00dfeed0001',
      }),
    ).rejects.toThrow(/is at Open WebUI revision alembic:\w+, not alembic:f00dfeed0001; nothing was written/);
    expect(fs.existsSync(target)).toBe(false);

    // One table as of a time, for code that needs a few rows (one user's chats, say).
    const src = new Database(points[1]!.copy, { readonly: true });
    const chatIds = (src.prepare('SELECT id FROM chat ORDER BY id').pluck().all() as string[]).sort();
    src.close();
    const at1 = await readRowsAt<{ id: string }>(service, {
      clientName: name,
      table: 'chat',
      at: points[1]!.at,
      scope,
    });
    expect(at1.rows.map((r) => r.id).sort()).toEqual(chatIds);
  });

  it('retention: maintenance prunes history older than the tenant keeps; --at beyond it names the oldest time', async () => {
    const file = scratch.file('ret.db');
    generateOpenWebUIDatabase({ path: file, era: '0.11.0', scale: SCALE, seed: 9, journalMode: 'wal' });
    const name = 'ret';
    const { hostId } = await backUp(pools(), name, file);
    const scope = { hostId };
    const writer = new OpenWebUIWriter(file, 3);
    try {
      for (let i = 0; i < 3; i += 1) {
        writer.apply('chatTurn');
        writer.apply('chatDelete');
        const r = await runTenantSync({ pool: service, clientName: name, scope, triggeredBy: 'test' });
        expect(r.status).toBe('success');
      }
    } finally {
      writer.close();
    }
    const dep = await admin.query<{ deployment_id: string }>(
      'SELECT deployment_id FROM sync_metadata.client_deployments WHERE client_name = $1',
      [name],
    );
    const id = dep.rows[0]!.deployment_id;
    const count = async () =>
      Number(
        (await admin.query('SELECT count(*) AS n FROM sync_state.row_history WHERE deployment_id = $1', [id])).rows[0]
          .n,
      );
    expect(await count()).toBeGreaterThan(0);
    // Age everything by 10 days, as if the runs had happened then.
    await admin.query(
      `UPDATE sync_state.row_history SET replaced_at = replaced_at - interval '10 days' WHERE deployment_id = $1`,
      [id],
    );
    await admin.query(
      `UPDATE sync_state.history_runs SET finished_at = finished_at - interval '10 days' WHERE deployment_id = $1`,
      [id],
    );
    // One run inside the retention: the only restorable point after pruning.
    const r = await runTenantSync({ pool: service, clientName: name, scope, triggeredBy: 'test', fullSync: true });
    expect(r.status).toBe('success');
    const window = await historyWindow(admin, name);
    expect(window.retentionDays).toBe(7);

    // The leader's maintenance prunes, with the tenant's own retention (7 days by default).
    const elector = new LeaderElector({
      pool: service,
      cluster: 'test',
      leaderId: 'node-a@pitr',
      hostId,
      leaseSeconds: 30,
      renewSeconds: 10,
      logger: silentLogger(),
    });
    await elector.start();
    try {
      expect(elector.isLeader()).toBe(true);
      const settings = validateMaintenanceSettings({
        retentionSeconds: {
          skipped_runs: 30 * 86_400,
          sync_jobs: 30 * 86_400,
          conflict_log: 30 * 86_400,
          failed_rows: 30 * 86_400,
          cache_events: 30 * 86_400,
          sync_progress: 30 * 86_400,
          restore_drills: 30 * 86_400,
        },
        batchSize: 1000,
        pauseMs: 0,
        intervalSeconds: 60,
      });
      const pass = await runMaintenancePass({ elector, cluster: 'test', settings });
      expect(pass.rowHistoryDeleted.row_history).toBeGreaterThan(0);
      expect(pass.rowHistoryDeleted.history_runs).toBe(4);
    } finally {
      await elector.stop();
    }
    expect(await count()).toBe(0);
    await expect(service.query('DELETE FROM sync_state.row_history')).rejects.toThrow(/permission denied/);

    const old = new Date(Date.now() - 9 * 86_400_000);
    const err = await restoreTenant({
      pool: service,
      clientName: name,
      to: scratch.file('x.db'),
      scope,
      at: old,
    }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const oldest = (await historyWindow(admin, name)).oldest as Date;
    expect((err as Error).message).toContain(`the oldest restorable time is ${oldest.toISOString()}`);
    expect((err as Error).message).toMatch(/syncctl client retention ret DAYS/);
    // The time it names works.
    const ok = await restoreTenant({ pool: service, clientName: name, to: scratch.file('ok.db'), scope, at: oldest });
    expect(ok.rowsRestored).toBeGreaterThan(0);
  });

  it('parses ISO and relative times, and rejects bad ones clearly', () => {
    const now = new Date('2026-05-02T12:00:00Z');
    expect(parseRestoreTime('-2h', now).toISOString()).toBe('2026-05-02T10:00:00.000Z');
    expect(parseRestoreTime('-30m', now).toISOString()).toBe('2026-05-02T11:30:00.000Z');
    expect(parseRestoreTime('-7d', now).toISOString()).toBe('2026-04-25T12:00:00.000Z');
    expect(parseRestoreTime('-1d12h', now).toISOString()).toBe('2026-05-01T00:00:00.000Z');
    expect(parseRestoreTime('now', now)).toEqual(now);
    expect(parseRestoreTime('2026-05-01T13:55:00Z', now).toISOString()).toBe('2026-05-01T13:55:00.000Z');
    expect(parseRestoreTime('2026-05-01T13:55:00+02:00', now).toISOString()).toBe('2026-05-01T11:55:00.000Z');
    expect(parseRestoreTime('2026-05-01 13:55', now).toISOString()).toBe('2026-05-01T13:55:00.000Z');
    expect(parseRestoreTime('2026-05-01', now).toISOString()).toBe('2026-05-01T00:00:00.000Z');
    for (const bad of ['', 'yesterday', '-2x', '-h', '2026-13-01', '2026-05-01T25:00', '+2h', '2027-01-01T00:00:00Z']) {
      expect(() => parseRestoreTime(bad, now), bad).toThrow(/time/);
    }
    expect(() => parseRestoreTime('2027-01-01', now)).toThrow(/in the future/);
    expect(() => parseRestoreTime('-2x', now)).toThrow(/-2h, -30m, -7d/);
  });
});
