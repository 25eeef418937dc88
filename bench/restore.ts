/**
 * Restore benchmark: restore of the ~250 MB generated Open WebUI tenant (BENCH_SCALE, era 0.11.0) to a new SQLite
 * file, against the full sync of the same tenant measured in the same run (target: restore ≤ 2× the full sync);
 * then a restore drill of the same tenant (restore into a temporary file, compare, bookkeeping and Open WebUI
 * checks), against that restore (target: drill ≤ 2× the plain restore); and a point-in-time restore (`restore --at`,
 * the state right after the full sync, with a few hours of Open WebUI's writes synced since) against that plain
 * restore (target: ≤ 1.5×). Each full sync, restore and drill runs in its own Node process, so peak RSS is that
 * operation's own.
 *
 *   npx tsx bench/restore.ts                 # 3 repetitions, medians
 *   BENCH_REPS=5 BENCH_SQLITE=/path/webui.db npx tsx bench/restore.ts
 *
 *   BENCH_RESTORE_HEAP_MB=48 npx tsx bench/restore.ts   # restore and drill with a 48 MB V8 heap: memory is bounded
 *
 * Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { install, quoteIdent } from '@owui-sync/schema';
import { createPool } from '@owui-sync/engine';
import { runDrill } from '@owui-sync/engine/drill';
import { captureSourceSchema, restoreTenant } from '@owui-sync/engine/restore';
import { provisionTenant, runTenantSync } from '@owui-sync/engine/sync';
import { BENCH_SCALE, generateOpenWebUIDatabase } from '@owui-sync/fixtures';
import { OpenWebUIWriter } from '../test/engine/openwebui-writer.ts';
import { median, now, withDb, withUser } from './support.ts';

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REPS = Number(process.env.BENCH_REPS ?? 3);
const TARGET_RATIO = 2;
const TARGET_AT_RATIO = 1.5;
/** Chat turns written (and synced) between the full sync and the point-in-time restore. */
const EDITS = Number(process.env.BENCH_AT_EDITS ?? 1000);

type ChildResult = { ms: number; peakRssMb: number; detail: Record<string, unknown> };

function inChild(mode: 'sync' | 'restore' | 'drill', env: Record<string, string>): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    // BENCH_RESTORE_HEAP_MB caps the restoring process's V8 heap, to show that restore's memory does not grow with
    // the tenant's size (it fails with an out-of-memory error if it did).
    const heap = mode !== 'sync' && process.env.BENCH_RESTORE_HEAP_MB;
    const flags = heap ? [`--max-old-space-size=${heap}`] : [];
    const child = spawn(
      process.execPath,
      [...flags, '--import', 'tsx', fileURLToPath(import.meta.url), `--child-${mode}`],
      {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as ChildResult)
        : reject(new Error(`${mode} child exited ${code}`)),
    );
  });
}

async function childMain(mode: string): Promise<void> {
  const pool = createPool(process.env.BENCH_CHILD_URL as string, { max: 4 });
  try {
    const scope = { hostId: process.env.BENCH_CHILD_HOST as string };
    const clientName = process.env.BENCH_CHILD_CLIENT as string;
    const t = now();
    const to = process.env.BENCH_CHILD_TO as string;
    const detail =
      mode === '--child-sync'
        ? await runTenantSync({ pool, clientName, scope, triggeredBy: 'bench', fullSync: true })
        : mode === '--child-drill'
          ? await runDrill({ pool, clientName, scope, drillDir: path.dirname(to), triggeredBy: 'bench' })
          : await restoreTenant({
              pool,
              clientName,
              scope,
              to,
              force: true,
              ...(process.env.BENCH_CHILD_AT ? { at: new Date(process.env.BENCH_CHILD_AT) } : {}),
            });
    const ms = now() - t;
    const status = readFileSync('/proc/self/status', 'utf8');
    const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? process.resourceUsage().maxRSS);
    process.stdout.write(`${JSON.stringify({ ms, peakRssMb: hwmKb / 1024, detail })}\n`);
  } finally {
    await pool.end();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'owui-bench-restore-'));
  const dbName = `owui_bench_${randomBytes(3).toString('hex')}`;
  const role = `owui_bench_svc_${randomBytes(3).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const root = new pg.Client({ connectionString: ADMIN_URL });
  await root.connect();
  await root.query(`CREATE DATABASE ${quoteIdent(dbName)}`);
  const adminUrl = withDb(ADMIN_URL, dbName);
  const serviceUrl = withUser(adminUrl, role, password);
  let admin: pg.Pool | undefined;
  try {
    const t0 = now();
    let file = process.env.BENCH_SQLITE;
    if (!file) {
      file = path.join(dir, 'webui.db');
      generateOpenWebUIDatabase({ path: file, era: '0.11.0', scale: BENCH_SCALE, seed: 42, journalMode: 'wal' });
    }
    const sizeMb = (statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0)) / 1e6;
    console.log(`source: ${file} (${sizeMb.toFixed(1)} MB, prepared in ${((now() - t0) / 1000).toFixed(1)} s)`);
    await install({ adminUrl, serviceRole: role, servicePassword: password, withQueue: false });
    admin = createPool(adminUrl, { max: 2 });
    const host = await admin.query<{ host_id: string }>(
      `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
       VALUES (sync_metadata.host_identity('bench', 'bench', 'node'), 'bench', 'bench', 'node') RETURNING host_id`,
    );
    const hostId = host.rows[0]?.host_id as string;
    const syncs: number[] = [];
    const restores: number[] = [];
    const restoreRss: number[] = [];
    const drills: number[] = [];
    const drillRss: number[] = [];
    const restoresAt: number[] = [];
    const service = createPool(serviceUrl, { max: 4 });
    let rows = 0;
    let outMb = 0;
    for (let r = 0; r < REPS; r += 1) {
      const name = `restore-${r}`;
      // Each repetition writes to its own copy (the point-in-time part edits it).
      const repFile = path.join(dir, `webui-${r}.db`);
      copyFileSync(file, repFile);
      if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, `${repFile}-wal`);
      await admin.query(
        `INSERT INTO sync_metadata.client_deployments (client_name, host_id, sqlite_path, schema_name, sync_enabled, status)
         VALUES ($1, $2, $3, $4, true, 'active')`,
        [name, hostId, repFile, `client_${name.replaceAll('-', '_')}`],
      );
      await provisionTenant({ adminPool: admin, clientName: name, sqlitePath: repFile, serviceRole: role });
      await captureSourceSchema({ pool: admin, clientName: name });
      const env = { BENCH_CHILD_URL: serviceUrl, BENCH_CHILD_CLIENT: name, BENCH_CHILD_HOST: hostId };
      await admin.query('CHECKPOINT');
      const s = await inChild('sync', env);
      if ((s.detail as { status?: string }).status !== 'success')
        throw new Error(`sync failed: ${JSON.stringify(s.detail)}`);
      syncs.push(s.ms);
      const to = path.join(dir, `restored-${r}.db`);
      const rr = await inChild('restore', { ...env, BENCH_CHILD_TO: to });
      restores.push(rr.ms);
      restoreRss.push(rr.peakRssMb);
      rows = Number((rr.detail as { rowsRestored?: number }).rowsRestored ?? 0);
      outMb = statSync(to).size / 1e6;
      rmSync(to, { force: true });
      const d = await inChild('drill', { ...env, BENCH_CHILD_TO: path.join(dir, 'drills', 'x') });
      const drill = d.detail as { passed?: boolean; failure?: string | null };
      if (!drill.passed) throw new Error(`drill failed: ${drill.failure ?? JSON.stringify(d.detail)}`);
      drills.push(d.ms);
      drillRss.push(d.peakRssMb);
      // A few hours of Open WebUI's writes after the full sync, synced in several runs, then restore --at the time
      // right after the full sync: every changed or deleted row comes from the history.
      const at = new Date();
      await new Promise((resolve) => setTimeout(resolve, 20));
      const writer = new OpenWebUIWriter(repFile, 11 + r);
      try {
        for (let run = 0; run < 10; run += 1) {
          writer.apply('userActivity');
          for (let i = 0; i < EDITS / 10; i += 1) writer.apply('chatTurn');
          for (const op of ['chatRename', 'chatFlags', 'chatDelete', 'tags', 'channelMessages']) writer.apply(op);
          const inc = await runTenantSync({ pool: service, clientName: name, scope: { hostId }, triggeredBy: 'bench' });
          if (inc.status !== 'success') throw new Error(`incremental sync failed: ${inc.error}`);
        }
      } finally {
        writer.close();
      }
      await admin.query('CHECKPOINT');
      const ra = await inChild('restore', { ...env, BENCH_CHILD_TO: to, BENCH_CHILD_AT: at.toISOString() });
      restoresAt.push(ra.ms);
      rmSync(to, { force: true });
      rmSync(repFile, { force: true });
      rmSync(`${repFile}-wal`, { force: true });
      rmSync(`${repFile}-shm`, { force: true });
      console.log(
        `rep ${r + 1}: full sync ${(s.ms / 1000).toFixed(2)} s, restore ${(rr.ms / 1000).toFixed(2)} s ` +
          `(ratio ${(rr.ms / s.ms).toFixed(2)}), restore peak RSS ${rr.peakRssMb.toFixed(0)} MB, ` +
          `drill ${(d.ms / 1000).toFixed(2)} s (ratio to restore ${(d.ms / rr.ms).toFixed(2)}), drill peak RSS ` +
          `${d.peakRssMb.toFixed(0)} MB, ` +
          `restore --at ${(ra.ms / 1000).toFixed(2)} s (ratio to restore ${(ra.ms / rr.ms).toFixed(2)}, ` +
          `${(ra.detail as { rowsRestored?: number }).rowsRestored ?? 0} rows)`,
      );
    }
    const ratio = median(restores) / median(syncs);
    console.log('');
    console.log(`rows restored:            ${rows} (${outMb.toFixed(1)} MB SQLite file)`);
    console.log(`full sync (median):       ${(median(syncs) / 1000).toFixed(2)} s`);
    console.log(`restore (median):         ${(median(restores) / 1000).toFixed(2)} s`);
    console.log(
      `restore / full sync:      ${ratio.toFixed(2)}× (target ≤ ${TARGET_RATIO}×) ${ratio <= TARGET_RATIO ? 'OK' : 'MISSED'}`,
    );
    console.log(`restore peak RSS (median): ${median(restoreRss).toFixed(0)} MB`);
    const drillRatio = median(drills) / median(restores);
    console.log(`drill (median):           ${(median(drills) / 1000).toFixed(2)} s`);
    console.log(
      `drill / restore:          ${drillRatio.toFixed(2)}× (target ≤ ${TARGET_RATIO}×) ${drillRatio <= TARGET_RATIO ? 'OK' : 'MISSED'}`,
    );
    console.log(`drill peak RSS (median):   ${median(drillRss).toFixed(0)} MB`);
    const atRatio = median(restoresAt) / median(restores);
    console.log(`restore --at (median):    ${(median(restoresAt) / 1000).toFixed(2)} s (${EDITS} chat turns since)`);
    console.log(
      `restore --at / restore:   ${atRatio.toFixed(2)}× (target ≤ ${TARGET_AT_RATIO}×) ${atRatio <= TARGET_AT_RATIO ? 'OK' : 'MISSED'}`,
    );
    await service.end();
  } finally {
    await admin?.end();
    await root.query(`DROP DATABASE IF EXISTS ${quoteIdent(dbName)} WITH (FORCE)`).catch(() => undefined);
    await root.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`).catch(() => undefined);
    await root.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

const mode = process.argv[2];
if (mode?.startsWith('--child-')) await childMain(mode);
else await main();
