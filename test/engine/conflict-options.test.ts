import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, createLogger } from '@owui-sync/engine';
import { provisionTenant, runTenantSync } from '@owui-sync/engine/sync';
import { conflictConfigSchema } from '@owui-sync/schema';
import { useTestDatabase } from '../support/db.ts';
import { makeMiniOpenWebUI, registerTenant, scratchDir } from './helpers.ts';

/** The conflict config's options do what they say: notify, resolution_log.enabled, retention_days. */
describe('conflict config options', () => {
  const db = useTestDatabase();
  const scratch = scratchDir();
  const sqlitePath = scratch.file('webui.db');
  let admin: pg.Pool;
  let service: pg.Pool;
  let scope: { hostId: string };
  const lines: string[] = [];
  const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
  const sync = () => runTenantSync({ pool: service, clientName: 'opt', scope, triggeredBy: 'test', logger });

  beforeAll(async () => {
    makeMiniOpenWebUI(sqlitePath, { chats: 2 });
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 3 });
    const conflictConfig = conflictConfigSchema.parse({
      table_strategies: { user: { strategy: 'source_wins', notify: true } },
      resolution_log: { enabled: false },
    });
    scope = { hostId: (await registerTenant(db.current.adminUrl, 'opt', sqlitePath, { conflictConfig })).hostId };
    await provisionTenant({ adminPool: admin, clientName: 'opt', sqlitePath, serviceRole: db.current.serviceRole });
    expect(await sync()).toMatchObject({ status: 'success' });
  });

  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  it('notify warns about the table’s conflicts; enabled=false leaves automatic resolutions out of the log', async () => {
    const d = new Database(sqlitePath);
    d.prepare("UPDATE \"user\" SET name = 'Ada (source)', updated_at = 1700000400 WHERE id = 'u1'").run();
    d.close();
    await admin.query("UPDATE client_opt.\"user\" SET name = 'Ada (target)', updated_at = 1700000900 WHERE id = 'u1'");
    lines.length = 0;
    const r = await sync();
    expect(r).toMatchObject({ status: 'success', conflictsDetected: 1, conflictsUnresolved: 0 });
    const row = await admin.query('SELECT name FROM client_opt."user" WHERE id = \'u1\'');
    expect(row.rows[0]).toEqual({ name: 'Ada (source)' });
    const warned = lines.map((l) => JSON.parse(l) as { level: number; msg: string; table?: string });
    expect(warned).toContainEqual(
      expect.objectContaining({
        level: 40,
        table: 'user',
        msg: expect.stringMatching(/tenant "opt": 1 conflict\(s\) in table user .*syncctl conflicts --client opt/),
      }),
    );
    const logged = await admin.query('SELECT count(*)::int AS n FROM sync_metadata.conflict_log WHERE job_id = $1', [
      r.jobId,
    ]);
    expect(logged.rows[0]).toEqual({ n: 0 });
  });

  it('a config that sets no retention_days keeps none, so CONFLICT_RETENTION_DAYS applies to the tenant', () => {
    const parsed = conflictConfigSchema.parse({ resolution_log: { include_data_snapshot: false } });
    expect(parsed.resolution_log).toEqual({ include_data_snapshot: false });
    expect(conflictConfigSchema.parse({ resolution_log: { retention_days: 5 } }).resolution_log).toEqual({
      retention_days: 5,
    });
    expect(conflictConfigSchema.safeParse({ resolution_log: { retention_days: 0 } }).success).toBe(false);
  });
});
