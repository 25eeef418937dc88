/**
 * Selective recovery benchmark: `recover --user` of one user with 500 chats (8 KB chat bodies, 4 messages each)
 * out of a tenant of 10 such users (5 000 chats, era 0.11.0), after half of that user's chats were deleted in the
 * source and synced. Measures, in this process, the export of all the user's chats, the export of the deleted ones
 * only, and the export plus a SQLite file of the user's rows. Target: ≤ 2 s each.
 *
 *   npx tsx bench/recover.ts               # 5 repetitions, medians (about a minute)
 *   BENCH_REPS=9 npx tsx bench/recover.ts
 *
 * Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { install, quoteIdent } from '@owui-sync/schema';
import { createPool } from '@owui-sync/engine';
import { captureSourceSchema, recoverUserChats } from '@owui-sync/engine/restore';
import { provisionTenant, runTenantSync } from '@owui-sync/engine/sync';
import { generateOpenWebUIDatabase } from '@owui-sync/fixtures';
import { median, now, withDb, withUser } from './support.ts';

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REPS = Number(process.env.BENCH_REPS ?? 5);
const TARGET_SECONDS = 2;
const USERS = 10;
const CHATS_PER_USER = 500;

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'owui-bench-recover-'));
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
    const t0 = now();
    const file = path.join(dir, 'webui.db');
    generateOpenWebUIDatabase({
      path: file,
      era: '0.11.0',
      seed: 7,
      scale: { users: USERS, chats: USERS * CHATS_PER_USER, chatBodyBytes: 8192, chatMessagesPerChat: 4, files: 200 },
    });
    console.log(
      `source: ${(statSync(file).size / 1e6).toFixed(1)} MB, prepared in ${((now() - t0) / 1000).toFixed(1)} s`,
    );
    await install({ adminUrl, serviceRole: role, servicePassword: password, withQueue: false });
    admin = createPool(adminUrl, { max: 2 });
    service = createPool(withUser(adminUrl, role, password), { max: 4 });
    const host = await admin.query<{ host_id: string }>(
      `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
       VALUES (sync_metadata.host_identity('bench', 'bench', 'node'), 'bench', 'bench', 'node') RETURNING host_id`,
    );
    const hostId = host.rows[0]?.host_id as string;
    const name = 'recover-bench';
    await admin.query(
      `INSERT INTO sync_metadata.client_deployments (client_name, host_id, sqlite_path, schema_name, sync_enabled, status)
       VALUES ($1, $2, $3, $4, true, 'active')`,
      [name, hostId, file, 'client_recover_bench'],
    );
    await provisionTenant({ adminPool: admin, clientName: name, sqlitePath: file, serviceRole: role });
    await captureSourceSchema({ pool: admin, clientName: name });
    const scope = { hostId };
    const t1 = now();
    const full = await runTenantSync({ pool: service, clientName: name, scope, triggeredBy: 'bench', fullSync: true });
    if (full.status !== 'success') throw new Error(`sync failed: ${full.error ?? ''}`);
    console.log(`full sync: ${((now() - t1) / 1000).toFixed(1)} s`);

    // The user deletes half of their chats (and Open WebUI their messages); the next run tombstones them.
    const d = new Database(file);
    const user = d.prepare('SELECT id, email FROM "user" ORDER BY id LIMIT 1').get() as { id: string; email: string };
    const chats = d.prepare('SELECT id FROM chat WHERE user_id = ? ORDER BY id').pluck().all(user.id) as string[];
    const gone = chats.filter((_, i) => i % 2 === 0);
    d.transaction(() => {
      for (const id of gone) {
        d.prepare('DELETE FROM chat_message WHERE chat_id = ?').run(id);
        d.prepare('DELETE FROM chat WHERE id = ?').run(id);
      }
    })();
    d.close();
    const inc = await runTenantSync({ pool: service, clientName: name, scope, triggeredBy: 'bench' });
    if (inc.status !== 'success') throw new Error(`sync failed: ${inc.error ?? ''}`);
    console.log(`user ${user.email}: ${chats.length} chats, ${gone.length} deleted in the source and synced\n`);

    const cases = [
      { label: 'all chats of the user (JSON)', opts: {} },
      { label: 'deleted chats only (JSON)', opts: { deletedOnly: true } },
      { label: 'all chats, JSON + SQLite file', opts: { sqlite: 'user.db' } },
    ] as const;
    const results: { label: string; seconds: number; chats: number; mb: number }[] = [];
    for (const c of cases) {
      const times: number[] = [];
      let count = 0;
      let mb = 0;
      for (let r = 0; r < REPS; r += 1) {
        const out = path.join(dir, 'export.json');
        const sqlite = 'sqlite' in c.opts ? path.join(dir, c.opts.sqlite) : undefined;
        const t = now();
        const res = await recoverUserChats({
          pool: service,
          clientName: name,
          scope,
          user: user.email,
          out,
          force: true,
          ...('deletedOnly' in c.opts ? { deletedOnly: true } : {}),
          ...(sqlite ? { sqlite } : {}),
        });
        times.push((now() - t) / 1000);
        count = res.chats.length;
        mb = statSync(out).size / 1e6;
      }
      results.push({ label: c.label, seconds: median(times), chats: count, mb });
    }
    for (const r of results) {
      const ok = r.seconds <= TARGET_SECONDS ? 'OK' : 'MISSED';
      console.log(
        `${r.label.padEnd(32)} ${r.chats} chats, ${r.mb.toFixed(1)} MB: ${r.seconds.toFixed(2)} s (median of ${REPS}; target ≤ ${TARGET_SECONDS} s) ${ok}`,
      );
    }
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
