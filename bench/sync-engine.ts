// Stays whole (over 400 lines): every scenario is measured against the same baseline in the same run, and the report puts them side by side.
/**
 * Sync engine benchmark: full sync of a ~250 MB generated Open WebUI tenant into an empty schema, against a
 * baseline measured in the same run — the same tables piped through `sqlite3 -csv | psql \copy` into an identical
 * empty schema — plus incremental runs while a long-lived connection writes as Open WebUI does (nothing; one
 * realistic minute of activity, most of it leaving updated_at alone; 1 000 changed chats; a checkpoint that loses
 * the WAL's frames), a rollback-journal file, and the peak RSS during the full sync. Exactness is checked with verify.
 *
 *   npx tsx bench/sync-engine.ts            # BENCH_SCALE tenant, 3 repetitions, medians
 *   BENCH_REPS=5 BENCH_SQLITE=/path/webui.db npx tsx bench/sync-engine.ts   # a copy of that file instead
 *   BENCH_PART=full npx tsx bench/sync-engine.ts   # only the full syncs against the baseline
 *
 * Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres) and the sqlite3 and
 * psql command-line tools.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { linkSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { install, qualified, quoteIdent } from '@owui-sync/schema';
import { createPool, createLogger } from '@owui-sync/engine';
import { provisionTenant, readTargetSchema, runTenantSync, parentsFirst } from '@owui-sync/engine/sync';
import { verifyTenant } from '@owui-sync/engine/restore';
import { median, now, withDb, withUser } from './support.ts';

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REPS = Number(process.env.BENCH_REPS ?? 3);
const TARGETS = { fullRatio: 1.0, noChangeMs: 10, minuteMs: 300, changedMs: 500, rssMb: 250 };

/** CPU seconds used so far by this process's finished children and by the PostgreSQL server (when it runs here). */
function cpuSeconds(postmaster: number | null): { children: number; server: number } {
  const ticks = (pid: number | 'self', fields: number[]) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return fields.reduce((sum, f) => sum + Number(rest[f - 3] ?? 0), 0);
    } catch {
      return 0;
    }
  };
  let server = 0;
  if (postmaster !== null) {
    // The postmaster, the backends that ended (reaped by it) and those still running.
    server = ticks(postmaster, [14, 15, 16, 17]);
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === postmaster) server += ticks(Number(entry), [14, 15]);
      } catch {
        // gone meanwhile
      }
    }
  }
  return { children: ticks('self', [16, 17]) / 100, server: server / 100 };
}

/** The PostgreSQL server's process id, when it runs on this machine (else CPU figures are left out). */
async function postmasterPid(client: pg.Client): Promise<number | null> {
  const r = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  try {
    const stat = readFileSync(`/proc/${r.rows[0]?.pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

async function sourceDatabase(dir: string): Promise<{ file: string; generated: boolean }> {
  if (process.env.BENCH_SQLITE) {
    // A copy: the incremental runs write to the tenant's file, never to the one given.
    const copy = path.join(dir, 'webui.db');
    const db = new Database(process.env.BENCH_SQLITE, { readonly: true, fileMustExist: true });
    await db.backup(copy);
    db.close();
    const wal = new Database(copy);
    wal.pragma('journal_mode = wal');
    wal.close();
    return { file: copy, generated: false };
  }
  // Loaded only when no BENCH_SQLITE file is given.
  const fixtures = await import('@owui-sync/fixtures');
  const file = path.join(dir, 'webui.db');
  fixtures.generateOpenWebUIDatabase({
    path: file,
    era: '0.11.0',
    scale: fixtures.BENCH_SCALE,
    seed: 42,
    journalMode: 'wal',
  });
  return { file, generated: true };
}

function run(cmd: string, args: string[], input?: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.resume();
    if (input && child.stdin) input.pipe(child.stdin);
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err.slice(0, 500)}`)),
    );
  });
}

/** sqlite3 -csv | psql \copy, table by table (parents first), into an empty provisioned schema. */
async function baseline(
  sqliteFile: string,
  adminUrl: string,
  schema: string,
  tables: { name: string; columns: string[] }[],
): Promise<void> {
  for (const t of tables) {
    const select = `SELECT ${t.columns.map((c) => `"${c}"`).join(', ')} FROM "${t.name}"`;
    const sqlite = spawn('sqlite3', ['-csv', '-readonly', sqliteFile, select], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const copy = `\\copy ${qualified(schema, t.name)} (${t.columns.map(quoteIdent).join(', ')}) FROM STDIN WITH (FORMAT csv)`;
    await run('psql', ['-q', '-v', 'ON_ERROR_STOP=1', adminUrl, '-c', copy], sqlite.stdout);
  }
}

type ChildResult = { ms: number; peakRssMb: number; result: { status: string; error?: string; rowsSynced: number } };

/** Runs one full sync in a fresh Node process and reports its duration and peak RSS (VmHWM). */
function syncInChild(serviceUrl: string, clientName: string, hostId: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child'], {
      env: { ...process.env, BENCH_CHILD_URL: serviceUrl, BENCH_CHILD_CLIENT: clientName, BENCH_CHILD_HOST: hostId },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as ChildResult)
        : reject(new Error(`child exited ${code}`)),
    );
  });
}

async function childMain(): Promise<void> {
  const pool = createPool(process.env.BENCH_CHILD_URL as string, { max: 4 });
  try {
    const t = now();
    const result = await runTenantSync({
      pool,
      clientName: process.env.BENCH_CHILD_CLIENT as string,
      scope: { hostId: process.env.BENCH_CHILD_HOST as string },
      triggeredBy: 'bench',
      fullSync: true,
    });
    const ms = now() - t;
    const status = readFileSync('/proc/self/status', 'utf8');
    const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? process.resourceUsage().maxRSS);
    process.stdout.write(`${JSON.stringify({ ms, peakRssMb: hwmKb / 1024, result })}\n`);
  } finally {
    await pool.end();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'owui-bench-'));
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
    const { file } = await sourceDatabase(dir);
    const sizeMb = (statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0)) / 1e6;
    console.log(`source: ${file} (${sizeMb.toFixed(1)} MB, prepared in ${((now() - t0) / 1000).toFixed(1)} s)`);
    await install({ adminUrl, serviceRole: role, servicePassword: password, withQueue: false });
    admin = createPool(adminUrl, { max: 2 });
    service = createPool(withUser(adminUrl, role, password), { max: 4 });
    const host = await admin.query<{ host_id: string }>(
      `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
       VALUES (sync_metadata.host_identity('bench', 'bench', 'node'), 'bench', 'bench', 'node') RETURNING host_id`,
    );
    const scope = { hostId: host.rows[0]?.host_id as string };
    const src = new Database(file, { readonly: true });
    const totalRows = (
      src
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .pluck()
        .all() as string[]
    )
      .map((t) => Number(src.prepare(`SELECT count(*) FROM "${t}"`).pluck().get()))
      .reduce((a, b) => a + b, 0);
    src.close();

    // Every tenant gets its own name of the same file (one file is one tenant's): the baseline's schemas are
    // provisioned from it, each engine tenant syncs it; the last one is then written to through its name.
    const register = async (name: string) => {
      const sqlitePath = path.join(dir, `${name}.db`);
      linkSync(file, sqlitePath);
      await admin!.query(
        `INSERT INTO sync_metadata.client_deployments (client_name, host_id, sqlite_path, schema_name, sync_enabled, status)
         VALUES ($1, $2, $3, $4, true, 'active')`,
        [name, scope.hostId, sqlitePath, `client_${name.replaceAll('-', '_')}`],
      );
      return provisionTenant({ adminPool: admin!, clientName: name, sqlitePath, serviceRole: role });
    };

    const baseTimes: number[] = [];
    const engineTimes: number[] = [];
    const rssPeaks: number[] = [];
    // CPU seconds of everything each side ran: sqlite3 and psql, or the syncing process; PostgreSQL's in both.
    const baseCpu: number[] = [];
    const engineCpu: number[] = [];
    const engineServerCpu: number[] = [];
    const postmaster = await postmasterPid(root);
    let lastEngine = '';
    for (let r = 0; r < REPS; r += 1) {
      const base = await register(`base-${r}`);
      const target = await readTargetSchema(admin, base.schemaName);
      const order = parentsFirst([...target.tables.keys()], (n) => target.tables.get(n)?.parents ?? []).map((n) => ({
        name: n,
        columns: target.tables.get(n)?.columns.map((c) => c.name) ?? [],
      }));
      await admin.query('CHECKPOINT');
      const c0 = cpuSeconds(postmaster);
      const t = now();
      await baseline(file, adminUrl, base.schemaName, order);
      baseTimes.push(now() - t);
      const c1 = cpuSeconds(postmaster);
      baseCpu.push(c1.children - c0.children + c1.server - c0.server);

      const eng = await register(`eng-${r}`);
      await admin.query('CHECKPOINT');
      // The full sync runs in its own process, as a worker would, so its peak RSS is the syncing process's own.
      const c2 = cpuSeconds(postmaster);
      const child = await syncInChild(withUser(adminUrl, role, password), `eng-${r}`, scope.hostId);
      const c3 = cpuSeconds(postmaster);
      engineCpu.push(c3.children - c2.children + c3.server - c2.server);
      engineServerCpu.push(c3.server - c2.server);
      engineTimes.push(child.ms);
      rssPeaks.push(child.peakRssMb);
      const res = child.result;
      if (res.status !== 'success') throw new Error(`engine run failed: ${res.error}`);
      console.log(
        `rep ${r + 1}: baseline ${(baseTimes[r]! / 1000).toFixed(2)} s, engine ${(engineTimes[r]! / 1000).toFixed(2)} s ` +
          `(${res.rowsSynced} rows), peak RSS ${rssPeaks[r]!.toFixed(0)} MB; CPU s baseline ${baseCpu[r]!.toFixed(2)}, ` +
          `engine ${engineCpu[r]!.toFixed(2)} (PostgreSQL ${engineServerCpu[r]!.toFixed(2)})`,
      );
      if (r < REPS - 1) {
        for (const s of [base.schemaName, eng.schemaName]) await admin.query(`DROP SCHEMA ${quoteIdent(s)} CASCADE`);
      }
      lastEngine = `eng-${r}`;
    }

    if (process.env.BENCH_PART === 'full') {
      const b = median(baseTimes);
      const e = median(engineTimes);
      const ratios = engineTimes.map((x, i) => (x / (baseTimes[i] as number)).toFixed(2)).join(' / ');
      console.log(
        `\nfull sync: baseline ${(b / 1000).toFixed(2)} s, engine ${(e / 1000).toFixed(2)} s, ratio ${(e / b).toFixed(2)}x ` +
          `(per repetition ${ratios}; target <= ${TARGETS.fullRatio.toFixed(1)}x: ${e / b <= TARGETS.fullRatio ? 'met' : 'MISSED'}), ` +
          `peak RSS ${median(rssPeaks).toFixed(0)} MB (target < ${TARGETS.rssMb} MB); ` +
          `CPU seconds baseline ${median(baseCpu).toFixed(2)}, engine ${median(engineCpu).toFixed(2)}`,
      );
      return;
    }

    // Incremental runs while Open WebUI's connection stays open (as its connection pool does), so its WAL persists.
    // Start from a clean buffer cache state (the full syncs above left the server writing out dirty pages).
    await admin.query('CHECKPOINT');
    const engineFile = path.join(dir, `${lastEngine}.db`);
    const w = new Database(engineFile);
    w.pragma('busy_timeout = 5000');
    const debug = process.env.BENCH_DEBUG === '1' ? { logger: createLogger({ level: 'debug' }) } : {};
    const modes: string[] = [];
    const incremental = async (what: string, check: (r: Awaited<ReturnType<typeof runTenantSync>>) => boolean) => {
      const t = now();
      const res = await runTenantSync({
        pool: service!,
        clientName: lastEngine,
        scope,
        triggeredBy: 'bench',
        ...debug,
      });
      const ms = now() - t;
      if (res.status !== 'success' || !check(res)) throw new Error(`${what}: ${JSON.stringify(res)}`);
      const job = await admin!.query<{ details: { capture?: { mode: string } } }>(
        'SELECT details FROM sync_metadata.sync_jobs WHERE job_id = $1',
        [res.jobId],
      );
      modes.push(`${what}: ${job.rows[0]?.details.capture?.mode ?? 'skipped'}`);
      return ms;
    };
    const noChange: number[] = [];
    for (let i = 0; i < 5; i += 1) noChange.push(await incremental('no change', (r) => r.rowsSynced === 0));

    const chatIds = w.prepare('SELECT id FROM chat ORDER BY id').pluck().all() as string[];
    const userIds = w.prepare('SELECT id FROM "user" ORDER BY id').pluck().all() as string[];
    let cursor = 0;
    const nextChats = (n: number) => {
      const out = chatIds.slice(cursor, cursor + n);
      cursor += n;
      return out;
    };
    // One realistic minute of a busy tenant, each request its own transaction as Open WebUI commits them: 20 chats
    // edited (10 chat turns that append a message and move updated_at, 10 sidebar renames that leave it alone), 50
    // users' last_active_at/settings (never touching updated_at), 5 chats deleted with their messages, 3 archived.
    const turn = w.prepare(
      "UPDATE chat SET chat = json_insert(chat, '$.messages[#]', json(?)), updated_at = ? WHERE id = ?",
    );
    const rename = w.prepare("UPDATE chat SET title = ?, chat = json_set(chat, '$.title', ?) WHERE id = ?");
    const active = w.prepare('UPDATE "user" SET last_active_at = ?, settings = ? WHERE id = ?');
    const delMessages = w.prepare('DELETE FROM chat_message WHERE chat_id = ?');
    const delChat = w.prepare('DELETE FROM chat WHERE id = ?');
    const archive = w.prepare('UPDATE chat SET archived = 1 WHERE id = ?');
    const minute = (round: number) => {
      const ts = Math.floor(Date.now() / 1000);
      const message = (i: number) =>
        JSON.stringify({ id: `bench-${round}-${i}`, role: 'assistant', content: 'Sure, here it is. '.repeat(60) });
      nextChats(10).forEach((id, i) => w.transaction(() => turn.run(message(i), ts, id))());
      nextChats(10).forEach((id, i) =>
        w.transaction(() => rename.run(`Renamed ${round}.${i}`, `Renamed ${round}.${i}`, id))(),
      );
      for (let i = 0; i < 50; i += 1) {
        const id = userIds[(round * 50 + i) % userIds.length] as string;
        w.transaction(() =>
          active.run(ts + i, JSON.stringify({ ui: { theme: i % 2 ? 'dark' : 'light' }, n: round }), id),
        )();
      }
      for (const id of nextChats(5)) {
        w.transaction(() => {
          delMessages.run(id);
          delChat.run(id);
        })();
      }
      nextChats(3).forEach((id) => w.transaction(() => archive.run(id))());
    };
    const minutes: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      minute(i);
      minutes.push(await incremental('realistic minute', (r) => r.rowsDeleted >= 5 && r.rowsSynced >= 70));
    }
    // 1 000 chats edited in one transaction (a bulk operation): the WAL passes SQLite's automatic checkpoint.
    const changed: number[] = [];
    const upd = w.prepare("UPDATE chat SET title = coalesce(title, '') || ' (edited)', updated_at = ? WHERE id = ?");
    for (let i = 0; i < 3; i += 1) {
      const ids = nextChats(1000);
      w.transaction(() => ids.forEach((id) => upd.run(Math.floor(Date.now() / 1000), id)))();
      changed.push(await incremental('1 000 changed chats', (r) => r.rowsSynced >= 1000));
    }
    // A checkpoint that truncates the WAL after writes the last run did not see: their frames are gone, so the run
    // compares the file's pages with the recorded hashes.
    const lost: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      minute(10 + i);
      w.pragma('wal_checkpoint(TRUNCATE)');
      w.transaction(() => active.run(1, '{}', userIds[0]))();
      lost.push(await incremental('after a truncating checkpoint', (r) => r.rowsDeleted >= 5));
    }
    w.close();
    const stateBytes = await admin.query<{ pages: string; cells: string }>(
      `SELECT (SELECT coalesce(sum(octet_length(c.data)), 0) FROM sync_state.source_page_chunks c
                WHERE c.deployment_id = d.deployment_id) AS pages,
              (SELECT coalesce(sum(octet_length(c.data)), 0) FROM sync_state.source_cell_chunks c
                WHERE c.deployment_id = d.deployment_id) AS cells
         FROM sync_metadata.client_deployments d WHERE d.client_name = $1`,
      [lastEngine],
    );
    const stateMb = (Number(stateBytes.rows[0]?.pages ?? 0) + Number(stateBytes.rows[0]?.cells ?? 0)) / 1e6;
    const tv = now();
    const verified = await verifyTenant({ pool: service, clientName: lastEngine, scope });
    const verifyMs = now() - tv;
    // The same on a rollback-journal file (what Open WebUI before 0.9 writes): a short incremental run reads it in
    // place under its shared lock, within the lock budget (reported, no target).
    const journal = new Database(engineFile);
    journal.pragma('journal_mode = delete');
    journal.close();
    const changedRollback: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const j = new Database(engineFile);
      const ids = j.prepare('SELECT id FROM chat ORDER BY id LIMIT 20 OFFSET ?').pluck().all(cursor) as string[];
      cursor += 20;
      const r = j.prepare("UPDATE chat SET title = coalesce(title, '') || ' (renamed)' WHERE id = ?");
      j.transaction(() => ids.forEach((id) => r.run(id)))();
      j.close();
      changedRollback.push(await incremental('rollback journal', (res) => res.rowsSynced >= 20));
    }
    if (process.env.BENCH_DEBUG === '1') console.log(modes.join('\n'));

    const b = median(baseTimes);
    const e = median(engineTimes);
    const rows = [
      ['full sync, baseline sqlite3 -csv | psql \\copy', `${(b / 1000).toFixed(2)} s`, ''],
      [
        'full sync, engine',
        `${(e / 1000).toFixed(2)} s`,
        `ratio ${(e / b).toFixed(2)}x (target <= ${TARGETS.fullRatio.toFixed(1)}x)`,
      ],
      ['engine throughput', `${Math.round(totalRows / (e / 1000))} rows/s`, `${(sizeMb / (e / 1000)).toFixed(1)} MB/s`],
      [
        'peak RSS of the syncing process (full sync)',
        `${median(rssPeaks).toFixed(0)} MB`,
        `target < ${TARGETS.rssMb} MB`,
      ],
      ['incremental, no change', `${median(noChange).toFixed(1)} ms`, `target <= ${TARGETS.noChangeMs} ms`],
      ['incremental, one realistic minute', `${median(minutes).toFixed(1)} ms`, `target <= ${TARGETS.minuteMs} ms`],
      ['incremental, 1 000 changed chats', `${median(changed).toFixed(1)} ms`, `target <= ${TARGETS.changedMs} ms`],
      ['  after a truncating checkpoint (pages compared)', `${median(lost).toFixed(1)} ms`, 'no target'],
      ['  20 renames, rollback-journal file', `${median(changedRollback).toFixed(1)} ms`, 'no target'],
      [
        'page state recorded for change capture',
        `${stateMb.toFixed(1)} MB`,
        `${((stateMb / sizeMb) * 100).toFixed(1)} % of the file`,
      ],
      [
        'backup equals the source afterwards (verify)',
        verified.match ? 'yes' : 'NO',
        `${verified.totals.sourceRows} rows compared in ${(verifyMs / 1000).toFixed(1)} s`,
      ],
    ];
    const met = (ok: boolean) => (ok ? 'met' : 'MISSED');
    const checks: [string, boolean][] = [
      ['full sync ratio', e / b <= TARGETS.fullRatio],
      ['peak RSS', median(rssPeaks) < TARGETS.rssMb],
      ['no change', median(noChange) <= TARGETS.noChangeMs],
      ['realistic minute', median(minutes) <= TARGETS.minuteMs],
      ['1 000 changed chats', median(changed) <= TARGETS.changedMs],
      ['exact', verified.match],
    ];
    console.log(`\nSync engine benchmark (${REPS} repetitions, medians; ${totalRows} rows, ${sizeMb.toFixed(1)} MB)`);
    for (const [k, v, n] of rows) console.log(`  ${k!.padEnd(48)} ${v!.padStart(14)}  ${n}`);
    console.log(`\n${checks.map(([k, ok]) => `${k}: ${met(ok)}`).join('; ')}`);
    const ok = checks.every(([, v]) => v);
    console.log(ok ? 'all targets met' : 'SOME TARGETS MISSED');
    process.exitCode = ok ? 0 : 1;
  } finally {
    await service?.end();
    await admin?.end();
    await root.query(`DROP DATABASE IF EXISTS ${quoteIdent(dbName)} WITH (FORCE)`);
    await root.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`);
    await root.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

(process.argv.includes('--child') ? childMain() : main()).catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
