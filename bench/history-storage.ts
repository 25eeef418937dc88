/**
 * Row history storage benchmark: what the history for point-in-time restores costs in PostgreSQL under Open WebUI's
 * own write patterns (the writer of the change-capture tests), for one simulated day of a tenant, against the size
 * of the tenant's backup. Also reports what a delta per chat edit (instead of the whole previous row) would store,
 * the alternative the design was measured against, and the time of the incremental runs.
 *
 *   npx tsx bench/history-storage.ts                       # BENCH_SCALE tenant, one day = 96 runs (every 15 min)
 *   BENCH_DAY_RUNS=288 BENCH_DAY_TURNS=4000 npx tsx bench/history-storage.ts
 *
 * A day: BENCH_DAY_TURNS chat turns (a message appended to a chat body, default 20 per user) spread over
 * BENCH_DAY_RUNS runs; before every run the active users' last_active_at moves, and some chats are renamed,
 * flagged, read, tagged, and a few deleted; channel messages arrive. Needs PostgreSQL (BENCH_DATABASE_URL).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { install, quoteIdent } from '@owui-sync/schema';
import { createPool } from '@owui-sync/engine';
import { captureSourceSchema } from '@owui-sync/engine/restore';
import { provisionTenant, runTenantSync } from '@owui-sync/engine/sync';
import { BENCH_SCALE, generateOpenWebUIDatabase } from '@owui-sync/fixtures';
import { OpenWebUIWriter } from '../test/engine/openwebui-writer.ts';
import { median, withDb, withUser } from './support.ts';

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const RUNS = Number(process.env.BENCH_DAY_RUNS ?? 96);
const users = BENCH_SCALE.users ?? 200;
const TURNS = Number(process.env.BENCH_DAY_TURNS ?? users * 20);

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'owui-bench-history-'));
  const dbName = `owui_bench_${randomBytes(3).toString('hex')}`;
  const role = `owui_bench_svc_${randomBytes(3).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const root = new pg.Client({ connectionString: ADMIN_URL });
  await root.connect();
  await root.query(`CREATE DATABASE ${quoteIdent(dbName)}`);
  const adminUrl = withDb(ADMIN_URL, dbName);
  let admin: pg.Pool | undefined;
  let service: pg.Pool | undefined;
  try {
    const file = path.join(dir, 'webui.db');
    generateOpenWebUIDatabase({ path: file, era: '0.11.0', scale: BENCH_SCALE, seed: 42, journalMode: 'wal' });
    await install({ adminUrl, serviceRole: role, servicePassword: password, withQueue: false });
    admin = createPool(adminUrl, { max: 2 });
    service = createPool(withUser(adminUrl, role, password), { max: 4 });
    const host = await admin.query<{ host_id: string }>(
      `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
       VALUES (sync_metadata.host_identity('bench', 'bench', 'node'), 'bench', 'bench', 'node') RETURNING host_id`,
    );
    const hostId = host.rows[0]?.host_id as string;
    const name = 'history';
    await admin.query(
      `INSERT INTO sync_metadata.client_deployments (client_name, host_id, sqlite_path, schema_name, sync_enabled, status)
       VALUES ($1, $2, $3, 'client_history', true, 'active')`,
      [name, hostId, file],
    );
    await provisionTenant({ adminPool: admin, clientName: name, sqlitePath: file, serviceRole: role });
    await captureSourceSchema({ pool: admin, clientName: name });
    const scope = { hostId };
    const full = await runTenantSync({ pool: service, clientName: name, scope, triggeredBy: 'bench', fullSync: true });
    if (full.status !== 'success') throw new Error(`full sync failed: ${full.error}`);
    const sourceMb = statSync(file).size / 1e6;
    const backup = await admin.query<{ bytes: string }>(
      `SELECT sum(pg_total_relation_size(c.oid))::bigint AS bytes FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'client_history' AND c.relkind = 'r'`,
    );
    const backupBytes = Number(backup.rows[0]?.bytes ?? 0);
    console.log(`tenant: ${mb(statSync(file).size)} MB SQLite, backup tables ${mb(backupBytes)} MB in PostgreSQL`);

    const writer = new OpenWebUIWriter(file, 7);
    const times: number[] = [];
    let turns = 0;
    try {
      for (let run = 0; run < RUNS; run += 1) {
        writer.apply('userActivity');
        const n = Math.round(((run + 1) * TURNS) / RUNS) - turns;
        for (let i = 0; i < n; i += 1) writer.apply('chatTurn');
        turns += n;
        for (const op of ['chatRename', 'chatFlags', 'chatLastRead', 'tags', 'channelMessages']) writer.apply(op);
        if (run % 8 === 0) writer.apply('chatDelete');
        if (run % 24 === 0) writer.apply('checkpoint');
        const t = performance.now();
        const r = await runTenantSync({ pool: service, clientName: name, scope, triggeredBy: 'bench' });
        times.push(performance.now() - t);
        if (r.status !== 'success') throw new Error(`run ${run} failed: ${r.error}`);
      }
    } finally {
      writer.close();
    }
    const size = await admin.query<{
      entries: string;
      table_bytes: string;
      stored: string;
      raw: string;
      chat_entries: string;
      chat_stored: string;
      chat_raw: string;
      chat_delta: string;
    }>(
      `SELECT count(*) AS entries, pg_total_relation_size('sync_state.row_history') AS table_bytes,
              coalesce(sum(pg_column_size(h.data)), 0) AS stored,
              coalesce(sum(octet_length(h.data::text)), 0) AS raw,
              count(*) FILTER (WHERE h.table_name = 'chat') AS chat_entries,
              coalesce(sum(pg_column_size(h.data)) FILTER (WHERE h.table_name = 'chat'), 0) AS chat_stored,
              coalesce(sum(octet_length(h.data::text)) FILTER (WHERE h.table_name = 'chat'), 0) AS chat_raw,
              -- A delta against the next version stores at least what the edit added: the difference in length.
              (SELECT coalesce(sum(greatest(0, octet_length(v.next) - octet_length(v.body))), 0) FROM (
                 SELECT x.data ->> 'chat' AS body,
                        coalesce(lead(x.data ->> 'chat') OVER (PARTITION BY x.row_key ORDER BY x.replaced_at, x.history_id),
                                 c.chat::text) AS next
                   FROM sync_state.row_history x LEFT JOIN client_history.chat c ON c.id = x.row_key
                  WHERE x.table_name = 'chat' AND x.data IS NOT NULL) v) AS chat_delta
         FROM sync_state.row_history h`,
    );
    const s = size.rows[0];
    if (!s) throw new Error('no history measured');
    const byTable = await admin.query<{ table_name: string; n: string; stored: string }>(
      `SELECT table_name, count(*) AS n, sum(pg_column_size(data)) AS stored FROM sync_state.row_history
        GROUP BY table_name ORDER BY 3 DESC NULLS LAST LIMIT 6`,
    );
    const perDay = Number(s.table_bytes);
    console.log('');
    console.log(`one day: ${RUNS} runs, ${TURNS} chat turns, ${s.entries} history entries`);
    console.log(
      `history table (with indexes):  ${mb(perDay)} MB/day = ${((100 * perDay) / backupBytes).toFixed(1)}% of the backup, ` +
        `${((100 * perDay) / (sourceMb * 1e6)).toFixed(1)}% of the SQLite file per day`,
    );
    console.log(`history values stored:          ${mb(Number(s.stored))} MB (uncompressed ${mb(Number(s.raw))} MB)`);
    console.log(
      `chat entries: ${s.chat_entries}, stored ${mb(Number(s.chat_stored))} MB (uncompressed ${mb(Number(s.chat_raw))} MB); ` +
        `a delta per edit would hold ≥ ${mb(Number(s.chat_delta))} MB before compression`,
    );
    for (const r of byTable.rows)
      console.log(`  ${r.table_name.padEnd(16)} ${r.n.padStart(7)} entries ${mb(Number(r.stored))} MB`);
    console.log(`at the default retention (7 days): ≈ ${mb(perDay * 7)} MB per tenant like this one`);
    console.log(`incremental run with history (median of ${times.length}): ${median(times).toFixed(0)} ms`);
  } finally {
    await service?.end();
    await admin?.end();
    await root.query(`DROP DATABASE IF EXISTS ${quoteIdent(dbName)} WITH (FORCE)`).catch(() => undefined);
    await root.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`).catch(() => undefined);
    await root.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
