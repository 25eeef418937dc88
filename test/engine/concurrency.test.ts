import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '@owui-sync/engine';
import { provisionTenant, runTenantSync } from '@owui-sync/engine/sync';
import { reapStaleSyncJobs, STOPPED_WORKER_ERROR, SyncAlreadyRunningError } from '@owui-sync/engine/tenants';
import { useTestDatabase } from '../support/db.ts';
import { makeMiniOpenWebUI, registerTenant, scratchDir } from './helpers.ts';

/** A separate process that keeps committing to the SQLite file and reports its slowest commit. */
function startWriter(file: string, ms: number): Promise<{ commits: number; maxLatencyMs: number }> {
  const script = `
    const Database = require('better-sqlite3');
    const db = new Database(process.argv[1]);
    db.pragma('busy_timeout = 5000');
    const ins = db.prepare("INSERT INTO chat VALUES (?, 'u1', 'live', NULL, 0, ?, ?, '{}', 0, '{}', NULL)");
    let n = 0, max = 0; const end = Date.now() + Number(process.argv[2]);
    const tick = () => {
      if (Date.now() >= end) { process.stdout.write(JSON.stringify({ commits: n, maxLatencyMs: max })); db.close(); return; }
      const t = Date.now(); ins.run('live-' + n, 1800000000 + n, 1800000000 + n); max = Math.max(max, Date.now() - t); n++;
      setTimeout(tick, 5);
    };
    tick();`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, file, String(ms)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`writer failed: ${err}`))));
  });
}

describe('one run per tenant, dead workers, aborts, lost connections, live writers', () => {
  const db = useTestDatabase();
  const scratch = scratchDir();
  let admin: pg.Pool;
  let service: pg.Pool;
  let scope: { hostId: string };

  beforeAll(async () => {
    admin = createPool(db.current.adminUrl, { max: 3 });
    service = createPool(db.current.serviceUrl, { max: 6 });
  });

  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  async function setup(name: string, opts: { chats: number; journalMode?: 'wal' | 'delete' }): Promise<string> {
    const file = scratch.file(`${name}.db`);
    makeMiniOpenWebUI(file, opts);
    scope = { hostId: (await registerTenant(db.current.adminUrl, name, file)).hostId };
    await provisionTenant({
      adminPool: admin,
      clientName: name,
      sqlitePath: file,
      serviceRole: db.current.serviceRole,
    });
    return file;
  }

  it('provisions several tenants at once (their grants on the shared bookkeeping schema take turns)', async () => {
    const names = ['para1', 'para2', 'para3', 'para4', 'para5', 'para6'];
    const files = names.map((name) => {
      const file = scratch.file(`${name}.db`);
      makeMiniOpenWebUI(file, { chats: 2 });
      return file;
    });
    const pool = createPool(db.current.adminUrl, { max: names.length });
    try {
      const results = await Promise.allSettled(
        names.map((name, i) =>
          provisionTenant({
            adminPool: pool,
            clientName: name,
            sqlitePath: files[i]!,
            serviceRole: db.current.serviceRole,
          }),
        ),
      );
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    } finally {
      await pool.end();
    }
  });

  it('refuses a second concurrent sync of the same tenant', async () => {
    await setup('busy', { chats: 3000 });
    const runs = await Promise.allSettled([
      runTenantSync({ pool: service, clientName: 'busy', scope, triggeredBy: 'a', batchSize: 200 }),
      runTenantSync({ pool: service, clientName: 'busy', scope, triggeredBy: 'b', batchSize: 200 }),
    ]);
    const ok = runs.filter((r) => r.status === 'fulfilled');
    const refused = runs.filter((r) => r.status === 'rejected');
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect((refused[0] as PromiseRejectedResult).reason).toBeInstanceOf(SyncAlreadyRunningError);
    expect((refused[0] as PromiseRejectedResult).reason.message).toMatch(/already running/);
    const jobs = await admin.query("SELECT count(*)::int AS n FROM sync_metadata.sync_jobs WHERE client_name = 'busy'");
    expect(jobs.rows[0]).toEqual({ n: 1 });
  });

  it('marks a job left running by a dead worker as failed (by the reaper, or by the next run)', async () => {
    const insertStale = async () => {
      const job = await admin.query<{ job_id: string }>(
        `INSERT INTO sync_metadata.sync_jobs (deployment_id, client_name, status, sync_type, triggered_by, worker_id)
         SELECT deployment_id, client_name, 'running', 'incremental', 'scheduler', 'dead-worker'
           FROM sync_metadata.client_deployments WHERE client_name = 'busy' RETURNING job_id`,
      );
      await admin.query(
        `UPDATE sync_metadata.client_deployments SET sync_claim_job_id = $1, sync_claimed_by = 'dead-worker',
           sync_claim_expires_at = now() - interval '1 second' WHERE client_name = 'busy'`,
        [job.rows[0]?.job_id],
      );
      return job.rows[0]?.job_id as string;
    };
    const first = await insertStale();
    expect(await reapStaleSyncJobs(service, scope)).toBe(1);
    const reaped = await admin.query('SELECT status, error FROM sync_metadata.sync_jobs WHERE job_id = $1', [first]);
    expect(reaped.rows[0]?.status).toBe('failed');
    expect(reaped.rows[0]?.error).toContain(STOPPED_WORKER_ERROR);

    const second = await insertStale();
    const r = await runTenantSync({ pool: service, clientName: 'busy', scope, triggeredBy: 'test' });
    expect(r.status).toBe('success');
    const after = await admin.query('SELECT status FROM sync_metadata.sync_jobs WHERE job_id = $1', [second]);
    expect(after.rows[0]).toEqual({ status: 'failed' });
  });

  it('stops promptly on abort, and the next run resumes instead of restarting', async () => {
    const file = await setup('abort', { chats: 2000 });
    const controller = new AbortController();
    let chatChunks = 0;
    const aborted = await runTenantSync({
      pool: service,
      clientName: 'abort',
      scope,
      triggeredBy: 'test',
      batchSize: 100,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.table === 'chat' && ++chatChunks === 3) controller.abort();
      },
    });
    expect(aborted).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(aborted.error).toMatch(/aborted/);
    const progress = await admin.query<{ resume_key: string; rows_done: string }>(
      `SELECT p.resume_key, p.rows_done FROM sync_metadata.sync_progress p
         JOIN sync_metadata.client_deployments d USING (deployment_id)
        WHERE d.client_name = 'abort' AND p.table_name = 'chat'`,
    );
    expect(progress.rows[0]?.resume_key, JSON.stringify(progress.rows)).toBeTruthy();
    const partial = await admin.query('SELECT count(*)::int AS n FROM client_abort.chat');
    expect(partial.rows[0]?.n).toBeGreaterThan(0);
    expect(partial.rows[0]?.n).toBeLessThan(2000);
    // A silent update in a table the aborted run had already finished: the resumed run skips that table, so the
    // next run must still find it.
    const w = new Database(file);
    w.prepare(`UPDATE auth SET password = 'changed meanwhile' WHERE id = (SELECT min(id) FROM auth)`).run();
    w.close();

    const resumed = await runTenantSync({
      pool: service,
      clientName: 'abort',
      scope,
      triggeredBy: 'test',
      batchSize: 100,
    });
    expect(resumed).toMatchObject({ status: 'success', syncType: 'full' });
    expect(resumed.rowsSynced).toBeLessThan(2000 * 2 + 20);
    const src = new Database(file, { readonly: true });
    const expected = src.prepare('SELECT count(*) FROM chat').pluck().get();
    src.close();
    const total = await admin.query('SELECT count(*)::int AS n FROM client_abort.chat');
    expect(total.rows[0]?.n).toBe(expected);
    const next = await runTenantSync({ pool: service, clientName: 'abort', scope, triggeredBy: 'test' });
    expect(next).toMatchObject({ status: 'success', syncType: 'incremental' });
    const renamed = await admin.query(
      `SELECT count(*)::int AS n FROM client_abort.auth WHERE password = 'changed meanwhile'`,
    );
    expect(renamed.rows[0]?.n).toBe(1);
  });

  it('fails cleanly when PostgreSQL drops the connection mid-run; the next run completes the work', async () => {
    const file = await setup('dropped', { chats: 2000 });
    let killed = false;
    const r = await runTenantSync({
      pool: service,
      clientName: 'dropped',
      scope,
      triggeredBy: 'test',
      batchSize: 100,
      onProgress: (p) => {
        if (!killed && p.table === 'chat' && p.rowsDone >= 300) {
          killed = true;
          void admin.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE usename = $1 AND datname = current_database() AND pid <> pg_backend_pid()`,
            [db.current.serviceRole],
          );
        }
      },
    });
    expect(killed).toBe(true);
    expect(r).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(r.error).toMatch(/terminat|connection/i);
    const next = await runTenantSync({ pool: service, clientName: 'dropped', scope, triggeredBy: 'test' });
    expect(next).toMatchObject({ status: 'success', syncType: 'full' });
    const src = new Database(file, { readonly: true });
    const expected = src.prepare('SELECT count(*) FROM chat_message').pluck().get();
    src.close();
    const total = await admin.query('SELECT count(*)::int AS n FROM client_dropped.chat_message');
    expect(total.rows[0]?.n).toBe(expected);
  });

  for (const journalMode of ['wal', 'delete'] as const) {
    it(`never blocks Open WebUI's writes for more than a moment (${journalMode} journal)`, async () => {
      const file = await setup(`live-${journalMode}`, { chats: 3000, journalMode });
      const writer = startWriter(file, 1500);
      await new Promise((r) => setTimeout(r, 200));
      const result = await runTenantSync({
        pool: service,
        clientName: `live-${journalMode}`,
        scope,
        triggeredBy: 'test',
        batchSize: 100,
      });
      const stats = await writer;
      expect(result).toMatchObject({ status: 'success', rowsFailed: 0 });
      expect(stats.commits).toBeGreaterThan(30);
      expect(stats.maxLatencyMs).toBeLessThan(1000);
      // The file is still Open WebUI's own: same journal mode, and no sync leftovers next to it.
      const check = new Database(file, { readonly: true });
      expect(String(check.pragma('journal_mode', { simple: true }))).toBe(journalMode);
      check.close();
      // The next incremental run picks up what the writer committed meanwhile.
      const next = await runTenantSync({
        pool: service,
        clientName: `live-${journalMode}`,
        scope,
        triggeredBy: 'test',
      });
      expect(next.status).toBe('success');
      const src = new Database(file, { readonly: true });
      const expected = src.prepare('SELECT count(*) FROM chat').pluck().get();
      src.close();
      const total = await admin.query(`SELECT count(*)::int AS n FROM "client_live_${journalMode}".chat`);
      expect(total.rows[0]?.n).toBe(expected);
    });
  }

  it('reads a rollback-journal file in place for a short incremental run, and from a copy once the budget is spent', async () => {
    const file = await setup('inplace', { chats: 400, journalMode: 'delete' });
    const sync = (extra: Partial<Parameters<typeof runTenantSync>[0]>) =>
      runTenantSync({ pool: service, clientName: 'inplace', scope, triggeredBy: 'test', ...extra });
    expect(await sync({})).toMatchObject({ status: 'success', syncType: 'full' });
    let round = 0;
    const touch = (title: string) => {
      round += 1;
      const w = new Database(file);
      w.prepare('UPDATE chat SET title = ?, updated_at = ? + rowid').run(title, 1_700_100_000 + round * 10_000);
      w.close();
    };
    // Whether Open WebUI could commit (without waiting) while the run was reading: not while the file is read in
    // place (its shared lock is held), yes when the run reads a copy.
    const commitDuringRun = () => {
      const w = new Database(file);
      w.pragma('busy_timeout = 0');
      try {
        w.prepare("UPDATE auth SET active = active WHERE id = 'u1'").run();
        return 'committed';
      } catch (error) {
        return (error as { code?: string }).code ?? 'failed';
      } finally {
        w.close();
      }
    };
    const seen: string[] = [];
    const onProgress = (p: { table: string }) => {
      if (p.table === 'chat' && seen.length === 0) seen.push(commitDuringRun());
    };

    touch('in place');
    const inPlace = await sync({ onProgress, inPlaceLockBudgetMs: 60_000 });
    expect(inPlace).toMatchObject({ status: 'success', syncType: 'incremental', rowsSynced: 400 });
    expect(seen).toEqual(['SQLITE_BUSY']);

    seen.length = 0;
    touch('copied');
    expect(await sync({ onProgress, inPlaceLockBudgetMs: 0 })).toMatchObject({ status: 'success', rowsSynced: 400 });
    expect(seen).toEqual(['committed']);

    // A budget spent in the middle of a table: the committed chunks stay, the rest comes from a copy.
    touch('switched');
    const switched = await sync({ inPlaceLockBudgetMs: 1, batchSize: 20 });
    expect(switched).toMatchObject({ status: 'success', rowsFailed: 0 });
    const titles = await admin.query<{ title: string; n: number }>(
      'SELECT title, count(*)::int AS n FROM client_inplace.chat GROUP BY title',
    );
    expect(titles.rows).toEqual([{ title: 'switched', n: 400 }]);
    const check = new Database(file, { readonly: true });
    expect(String(check.pragma('journal_mode', { simple: true }))).toBe('delete');
    check.close();
  });
});
