import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '@owui-sync/engine';
import { provisionTenant, resolveConflict, runTenantSync } from '@owui-sync/engine/sync';
import { useTestDatabase } from '../support/db.ts';
import { makeMiniOpenWebUI, registerTenant, scratchDir } from './helpers.ts';

const CONFIG = {
  conflict_resolution: {
    default_strategy: 'newest_wins',
    table_strategies: {
      user: { strategy: 'newest_wins', compare_field: 'updated_at' },
      chat: { strategy: 'merge', merge_rules: { messages: 'append', meta: 'union' } },
      config: { strategy: 'manual', notify: true },
      tag: { strategy: 'target_wins' },
      auth: { strategy: 'source_wins' },
    },
  },
};

describe('conflicts: rows changed on both sides since the last sync', () => {
  const db = useTestDatabase();
  const scratch = scratchDir();
  const sqlitePath = scratch.file('webui.db');
  let admin: pg.Pool;
  let service: pg.Pool;
  let scope: { hostId: string };
  const sync = () => runTenantSync({ pool: service, clientName: 'cf', scope, triggeredBy: 'test' });
  const source = (sql: string) => {
    const d = new Database(sqlitePath);
    try {
      d.prepare(sql).run();
    } finally {
      d.close();
    }
  };

  beforeAll(async () => {
    makeMiniOpenWebUI(sqlitePath, { chats: 3 });
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 3 });
    scope = {
      hostId: (await registerTenant(db.current.adminUrl, 'cf', sqlitePath, { conflictConfig: CONFIG })).hostId,
    };
    await provisionTenant({ adminPool: admin, clientName: 'cf', sqlitePath, serviceRole: db.current.serviceRole });
    expect(await sync()).toMatchObject({ status: 'success' });
  });

  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  it('a change on the source alone, or on the target alone, is not a conflict', async () => {
    source("UPDATE \"user\" SET name = 'Ada L.', updated_at = 1700000300 WHERE id = 'u1'");
    await admin.query("UPDATE client_cf.\"user\" SET name = 'Bobby' WHERE id = 'u2'");
    const r = await sync();
    expect(r).toMatchObject({ status: 'success', conflictsDetected: 0, rowsSynced: 1 });
    const names = await admin.query('SELECT id, name FROM client_cf."user" ORDER BY id');
    expect(names.rows).toEqual([
      { id: 'u1', name: 'Ada L.' },
      { id: 'u2', name: 'Bobby' },
    ]);
  });

  it('newest_wins keeps the newer side and logs both versions', async () => {
    source("UPDATE \"user\" SET name = 'Ada (source)', updated_at = 1700000400 WHERE id = 'u1'");
    await admin.query("UPDATE client_cf.\"user\" SET name = 'Ada (target)', updated_at = 1700000900 WHERE id = 'u1'");
    const r = await sync();
    expect(r).toMatchObject({ status: 'success', conflictsDetected: 1, conflictsUnresolved: 0 });
    const row = await admin.query('SELECT name FROM client_cf."user" WHERE id = \'u1\'');
    expect(row.rows[0]).toEqual({ name: 'Ada (target)' });
    const log = await admin.query(
      `SELECT table_name, row_key, resolution_strategy, resolution, resolved_by, source_data->>'name' AS s,
              target_data->>'name' AS t, resolved_at IS NOT NULL AS resolved
         FROM sync_metadata.conflict_log WHERE job_id = $1`,
      [r.jobId],
    );
    expect(log.rows).toEqual([
      {
        table_name: 'user',
        row_key: { id: 'u1' },
        resolution_strategy: 'newest_wins',
        resolution: 'target',
        resolved_by: 'automatic',
        s: 'Ada (source)',
        t: 'Ada (target)',
        resolved: true,
      },
    ]);
    // Settled: the next run neither re-raises it nor overwrites the kept version.
    source("UPDATE config SET updated_at = updated_at WHERE key = 'x'");
    const again = await runTenantSync({ pool: service, clientName: 'cf', scope, triggeredBy: 'test', fullSync: true });
    expect(again).toMatchObject({ status: 'success', conflictsDetected: 0 });
    expect((await admin.query('SELECT name FROM client_cf."user" WHERE id = \'u1\'')).rows[0]).toEqual({
      name: 'Ada (target)',
    });
  });

  it('source_wins and target_wins', async () => {
    source("UPDATE auth SET password = 'from-source' WHERE id = 'u1'");
    await admin.query("UPDATE client_cf.auth SET password = 'from-target' WHERE id = 'u1'");
    source("UPDATE tag SET name = 'Src' WHERE id = 'work' AND user_id = 'u1'");
    await admin.query("UPDATE client_cf.tag SET name = 'Tgt' WHERE id = 'work' AND user_id = 'u1'");
    const r = await sync();
    expect(r).toMatchObject({ status: 'success', conflictsDetected: 2 });
    expect((await admin.query("SELECT password FROM client_cf.auth WHERE id = 'u1'")).rows[0]).toEqual({
      password: 'from-source',
    });
    expect((await admin.query("SELECT name FROM client_cf.tag WHERE id = 'work' AND user_id = 'u1'")).rows[0]).toEqual({
      name: 'Tgt',
    });
  });

  it('merge appends messages and unions meta', async () => {
    source(
      `UPDATE chat SET updated_at = 1700000600, meta = '{"tags":["a","src"]}',
         chat = json_set(chat, '$.messages', json('[{"id":"m0","content":"hello"},{"id":"s1","content":"from source"}]'))
       WHERE id = 'chat-00000'`,
    );
    await admin.query(
      `UPDATE client_cf.chat SET meta = '{"tags":["a","tgt"]}',
         chat = '{"title":"Chat 0","messages":[{"id":"m0","content":"hello"},{"id":"t1","content":"from target"}]}'
       WHERE id = 'chat-00000'`,
    );
    const r = await sync();
    expect(r).toMatchObject({ status: 'success', conflictsDetected: 1 });
    const row = await admin.query<{ chat: { messages: { id: string }[] }; meta: { tags: string[] } }>(
      "SELECT chat, meta FROM client_cf.chat WHERE id = 'chat-00000'",
    );
    expect(row.rows[0]?.chat.messages.map((m) => m.id)).toEqual(['m0', 't1', 's1']);
    expect(row.rows[0]?.meta).toEqual({ tags: ['a', 'tgt', 'src'] });
    const log = await admin.query(
      'SELECT resolution, resolved_data IS NOT NULL AS has FROM sync_metadata.conflict_log WHERE job_id = $1',
      [r.jobId],
    );
    expect(log.rows).toEqual([{ resolution: 'merged', has: true }]);
  });

  it('manual leaves the target untouched until a person resolves it (exit code 2)', async () => {
    source("UPDATE config SET value = '10', updated_at = 1700000700 WHERE key = 'rag.top_k'");
    await admin.query("UPDATE client_cf.config SET value = '7' WHERE key = 'rag.top_k'");
    const r = await sync();
    expect(r).toMatchObject({ status: 'conflict', exitCode: 2, conflictsDetected: 1, conflictsUnresolved: 1 });
    expect(
      (await admin.query("SELECT value::text AS v FROM client_cf.config WHERE key = 'rag.top_k'")).rows[0],
    ).toEqual({
      v: '7',
    });
    const job = await admin.query('SELECT status FROM sync_metadata.sync_jobs WHERE job_id = $1', [r.jobId]);
    expect(job.rows[0]).toEqual({ status: 'conflict' });
    // Still pending on the next run, and not logged twice.
    source("UPDATE config SET value = '11', updated_at = 1700000701 WHERE key = 'rag.top_k'");
    const again = await sync();
    expect(again).toMatchObject({ status: 'conflict', exitCode: 2, conflictsUnresolved: 1 });
    const pending = await admin.query<{ log_id: string; s: string }>(
      "SELECT log_id, source_data->>'value' AS s FROM sync_metadata.conflict_log WHERE resolved_at IS NULL",
    );
    expect(pending.rows).toHaveLength(1);
    expect(pending.rows[0]?.s).toBe('11');

    const resolved = await resolveConflict({
      pool: service,
      scope,
      logId: Number(pending.rows[0]?.log_id),
      keep: 'source',
      resolvedBy: 'alice',
    });
    expect(resolved).toEqual({ logId: Number(pending.rows[0]?.log_id), resolution: 'source' });
    expect(
      (await admin.query("SELECT value::text AS v FROM client_cf.config WHERE key = 'rag.top_k'")).rows[0],
    ).toEqual({
      v: '11',
    });
    const log = await admin.query('SELECT resolution, resolved_by FROM sync_metadata.conflict_log WHERE log_id = $1', [
      pending.rows[0]?.log_id,
    ]);
    expect(log.rows[0]).toEqual({ resolution: 'source', resolved_by: 'alice' });
    await expect(
      resolveConflict({
        pool: service,
        scope,
        logId: Number(pending.rows[0]?.log_id),
        keep: 'target',
        resolvedBy: 'bob',
      }),
    ).rejects.toThrow(/already resolved by alice/);
    const clean = await runTenantSync({ pool: service, clientName: 'cf', scope, triggeredBy: 'test', fullSync: true });
    expect(clean).toMatchObject({ status: 'success', exitCode: 0, conflictsDetected: 0 });
  });

  it('a manual conflict resolved by keeping the target, or with merged data, stays as decided', async () => {
    source("UPDATE config SET value = '\"src\"', updated_at = 1700000800 WHERE key = 'ui.enable_signup'");
    await admin.query("UPDATE client_cf.config SET value = '\"tgt\"' WHERE key = 'ui.enable_signup'");
    source("UPDATE config SET value = '0.9', updated_at = 1700000800 WHERE key = 'rag.relevance'");
    await admin.query("UPDATE client_cf.config SET value = '0.1' WHERE key = 'rag.relevance'");
    const r = await sync();
    expect(r).toMatchObject({ status: 'conflict', conflictsUnresolved: 2 });
    const rows = await admin.query<{ log_id: string; key: string }>(
      "SELECT log_id, row_key->>'key' AS key FROM sync_metadata.conflict_log WHERE resolved_at IS NULL ORDER BY 2",
    );
    const byKey = new Map(rows.rows.map((x) => [x.key, Number(x.log_id)]));
    await resolveConflict({
      pool: service,
      scope,
      logId: byKey.get('ui.enable_signup') as number,
      keep: 'target',
      resolvedBy: 'alice',
    });
    await resolveConflict({
      pool: service,
      scope,
      logId: byKey.get('rag.relevance') as number,
      data: { value: '0.5' },
      resolvedBy: 'bob',
    });
    const after = await runTenantSync({ pool: service, clientName: 'cf', scope, triggeredBy: 'test', fullSync: true });
    expect(after).toMatchObject({ status: 'success', conflictsDetected: 0, conflictsUnresolved: 0 });
    const values = await admin.query(
      "SELECT key, value::text AS v FROM client_cf.config WHERE key IN ('ui.enable_signup', 'rag.relevance') ORDER BY key",
    );
    expect(values.rows).toEqual([
      { key: 'rag.relevance', v: '0.5' },
      { key: 'ui.enable_signup', v: '"tgt"' },
    ]);
  });
});
