import { randomUUID } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import type { Logger } from 'pino';
import { applyScope, type DbScope } from '../db.ts';
import { AppError, ERROR_CODES, errorMessage } from '../errors.ts';
import { silentLogger } from '../logger.ts';
import type { SyncMetrics } from '../metrics.ts';
import { restoreTenant, type RestoreResult } from '../restore/restore.ts';
import { exportSnapshot } from '../restore/snapshot.ts';
import { findDeployment, loadSourceSchema } from '../restore/source-schema.ts';
import { verifyTenant, type VerifyResult } from '../restore/verify.ts';
import { openWebUIRevision, readSchema } from '../sync/sqlite-reader.ts';
import { readTargetSchema } from '../sync/target-schema.ts';
import { tenantSchemaName } from '../sync/tenant-ddl.ts';
import { checkBookkeeping, type BookkeepingCheck } from './bookkeeping-check.ts';
import { processDrillDir, removeDrillFile } from './drill-files.ts';
import { BackupDigest, type FileCompareTable } from './file-compare.ts';
import { recordDrill } from './drill-store.ts';
import type { DrillChecks, DrillResult } from './drill-result.ts';

/**
 * A restore drill proves that a tenant's backup turns back into a database Open WebUI can run on, without touching
 * the live file: the latest backup is restored into a temporary file in the process's drill directory, then
 *
 *   restore      restoreTenant succeeded (its own PRAGMA integrity_check included);
 *   integrity    PRAGMA integrity_check of the restored file is "ok";
 *   compare      the restored file holds exactly the backup's rows (see file-compare.ts; on a difference,
 *                verifyTenant's row-by-row comparison against that file names the rows);
 *   bookkeeping  every backup row has its sync bookkeeping and still hashes to what its sync wrote, and no row the
 *                bookkeeping holds live is missing (catches a backup damaged or edited outside a sync);
 *   openwebui    the file opens as Open WebUI opens it: its schema revision (alembic_version, or migratehistory
 *                before Alembic) is the one the backup's data and recorded DDL say, and a user and a chat read back.
 *
 * Restore, compare and bookkeeping read the backup in one shared snapshot (see ../restore/snapshot.ts), so a sync
 * committing meanwhile cannot look like a difference. The result is recorded in sync_state.restore_drills; the
 * temporary file is removed whatever happens.
 */

export type DrillOptions = {
  /** Service-role pool (needs INSERT on sync_state.restore_drills to record). */
  pool: pg.Pool;
  clientName: string;
  scope?: DbScope;
  /** The drill directory; the process works in its own `pid-<pid>` directory under it. */
  drillDir: string;
  triggeredBy: string;
  queueJobId?: string;
  runBy?: string;
  /** Record the result in sync_state.restore_drills (default true). */
  record?: boolean;
  logger?: Logger;
  metrics?: SyncMetrics;
  /** Called with the restored file before it is compared (tests use it to damage the file). */
  onRestored?: (file: string) => void;
};

/** Runs one drill of a tenant (see the module comment). Throws only when the tenant is not registered or visible. */
export async function runDrill(opts: DrillOptions): Promise<DrillResult> {
  const started = performance.now();
  const startedAt = new Date();
  const logger = opts.logger ?? silentLogger();
  const scope = opts.scope ?? {};
  tenantSchemaName(opts.clientName);
  const drillId = randomUUID();
  const file = path.join(processDrillDir(opts.drillDir), `${opts.clientName}-${drillId}.db`);
  const checks: DrillChecks = { restore: { ok: false } };
  const holder = await opts.pool.connect();
  let deploymentId: string | null = null;
  let aborted: string | null = null;
  try {
    await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await applyScope(holder, scope);
    const dep = await findDeployment(holder, opts.clientName);
    deploymentId = dep.deploymentId;
    const snapshot = await exportSnapshot(holder);
    try {
      await drillSteps({ ...opts, scope, file, snapshot, holder, dep, checks });
    } finally {
      removeDrillFile(file);
    }
    await holder.query('COMMIT');
  } catch (error) {
    await holder.query('ROLLBACK').catch(() => undefined);
    // An unknown tenant is the caller's mistake, not a failed drill.
    if (error instanceof AppError && error.code === ERROR_CODES.notFound) throw error;
    aborted = errorMessage(error);
    logger.warn({ err: error, client: opts.clientName }, `drill of "${opts.clientName}" stopped: ${aborted}`);
  } finally {
    holder.release();
  }
  const failure = failureOf(checks, aborted);
  const durationSeconds = (performance.now() - started) / 1000;
  const result: DrillResult = {
    drillId,
    clientName: opts.clientName,
    passed: failure === null,
    failure,
    triggeredBy: opts.triggeredBy,
    queueJobId: opts.queueJobId ?? null,
    runBy: opts.runBy ?? null,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    durationSeconds,
    restoreSeconds: checks.restore.seconds ?? null,
    rowsRestored: checks.restore.rows ?? null,
    revision: checks.openwebui?.revision ?? null,
    checks,
  };
  if (opts.record !== false && deploymentId) await recordDrill(opts.pool, scope, deploymentId, result);
  opts.metrics?.drills.inc({ result: result.passed ? 'passed' : 'failed' });
  opts.metrics?.drillDuration.observe(durationSeconds);
  const log = { client: opts.clientName, drill: drillId, seconds: Number(durationSeconds.toFixed(3)) };
  if (result.passed) logger.info(log, `restore drill of "${opts.clientName}" passed`);
  else logger.warn({ ...log, failure }, `restore drill of "${opts.clientName}" failed: ${failure}`);
  return result;
}

type StepContext = DrillOptions & {
  scope: DbScope;
  file: string;
  snapshot: string;
  holder: pg.PoolClient;
  dep: { deploymentId: string; schemaName: string };
  checks: DrillChecks;
};

async function drillSteps(ctx: StepContext): Promise<void> {
  const { checks, file } = ctx;
  const digest = new BackupDigest();
  let restored: RestoreResult;
  try {
    restored = await restoreTenant({
      pool: ctx.pool,
      clientName: ctx.clientName,
      to: file,
      scope: ctx.scope,
      snapshot: ctx.snapshot,
      onRow: digest.add,
      ...(ctx.logger ? { logger: ctx.logger } : {}),
    });
  } catch (error) {
    checks.restore = { ok: false, error: errorMessage(error) };
    return;
  }
  checks.restore = {
    ok: true,
    rows: restored.rowsRestored,
    tables: Object.keys(restored.tables).length,
    ddl: restored.ddl,
    seconds: restored.durationSeconds,
    warnings: restored.warnings,
  };
  // restoreTenant ran PRAGMA integrity_check on the finished file just before renaming it into place.
  checks.integrity = { ok: restored.integrityCheck === 'ok', result: restored.integrityCheck };
  checks.openwebui = await openLikeOpenWebUI(ctx, restored);
  ctx.onRestored?.(file);

  // The bookkeeping check runs in the database while this process reads the file back (one query, sent first).
  const target = await readTargetSchema(ctx.holder, ctx.dep.schemaName);
  const db = new Database(file, { readonly: true });
  let tables: FileCompareTable[];
  let bookkeeping: Promise<BookkeepingCheck>;
  const t0 = performance.now();
  try {
    bookkeeping = checkBookkeeping(ctx.holder, ctx.dep, readSchema(db), target);
    bookkeeping.catch(() => undefined); // awaited below; a failure must not be unhandled meanwhile
    await new Promise<void>((resolve) => setImmediate(resolve));
    tables = digest.compare(db, restored.tables);
  } finally {
    db.close();
  }
  const bad = tables.filter((t) => !t.ok);
  checks.compare = {
    ok: bad.length === 0,
    missing: 0,
    extra: 0,
    differing: 0,
    seconds: 0,
    tables: bad.map((t) => ({ table: t.table, status: 'differs', missing: [], extra: [], differing: [] })),
  };
  if (bad.length > 0) {
    // Which rows: the row-by-row comparison, reading the file through a WAL snapshot (in place, no copy).
    const w = new Database(file);
    try {
      w.pragma('journal_mode = WAL');
    } finally {
      w.close();
    }
    const v: VerifyResult = await verifyTenant({
      pool: ctx.pool,
      clientName: ctx.clientName,
      scope: ctx.scope,
      sqlitePath: file,
      snapshot: ctx.snapshot,
    });
    checks.compare = {
      ok: false,
      missing: v.totals.missing,
      extra: v.totals.extra,
      differing: v.totals.differing,
      seconds: 0,
      tables: v.tables
        .filter((t) => t.status !== 'ok')
        .map((t) => ({ table: t.table, status: t.status, ...t.examples })),
    };
    if (checks.compare.tables.length === 0) {
      checks.compare.tables = bad.map((t) => ({
        table: t.table,
        status: `${t.fileRows} rows in the file, ${t.backupRows} streamed from the backup`,
        missing: [],
        extra: [],
        differing: [],
      }));
    }
  }
  checks.compare.seconds = (performance.now() - t0) / 1000;
  checks.bookkeeping = await bookkeeping;
}

async function openLikeOpenWebUI(
  ctx: StepContext,
  restored: RestoreResult,
): Promise<NonNullable<DrillChecks['openwebui']>> {
  const problems: string[] = [];
  const ddlRevision = (await loadSourceSchema(ctx.holder, ctx.dep.deploymentId))?.openwebuiVersion ?? null;
  const dataRevision = await backupRevision(ctx.holder, ctx.dep.schemaName);
  const db = new Database(ctx.file);
  try {
    const tables = new Set(
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]).map((n) => n),
    );
    const revision = openWebUIRevision(db, tables);
    if (revision !== dataRevision) {
      problems.push(
        `the restored file is at revision ${revision ?? 'none'}, the backup's data at ${dataRevision ?? 'none'}`,
      );
    }
    if (ddlRevision !== null && restored.ddl !== 'reconstructed' && ddlRevision !== dataRevision) {
      problems.push(
        `the backup's recorded DDL is of revision ${ddlRevision} but its data of ${dataRevision ?? 'none'}: the ` +
          `restored schema is older than its data; record the current DDL with: syncctl verify ${ctx.clientName}`,
      );
    }
    let user: { id: string; email: string | null } | null = null;
    let chat: { id: string; title: string | null; messages: number | null } | null = null;
    if (!tables.has('user')) problems.push('no "user" table: Open WebUI cannot sign anyone in');
    else {
      const u = db.prepare('SELECT * FROM "user" ORDER BY rowid LIMIT 1').get() as Record<string, unknown> | undefined;
      if (u) {
        if (typeof u.id !== 'string' || u.id === '') problems.push('the first user has no id');
        user = { id: String(u.id), email: typeof u.email === 'string' ? u.email : null };
      }
    }
    if (!tables.has('chat')) problems.push('no "chat" table');
    else {
      const c = db.prepare('SELECT * FROM chat ORDER BY rowid LIMIT 1').get() as Record<string, unknown> | undefined;
      if (c) {
        let messages: number | null = null;
        if (typeof c.chat === 'string') {
          try {
            const body = JSON.parse(c.chat) as { messages?: unknown };
            messages = Array.isArray(body.messages) ? body.messages.length : null;
          } catch {
            problems.push(`chat ${String(c.id)}: its body is not valid JSON`);
          }
        }
        chat = { id: String(c.id), title: typeof c.title === 'string' ? c.title : null, messages };
      }
    }
    return { ok: problems.length === 0, revision, dataRevision, ddlRevision, user, chat, problems };
  } finally {
    db.close();
  }
}

/** The Open WebUI revision the backup's own data says (alembic_version, else migratehistory), as detectOpenWebUIVersion. */
async function backupRevision(client: pg.ClientBase, schemaName: string): Promise<string | null> {
  const has = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1::text AND c.relname IN ('alembic_version', 'migratehistory') AND c.relkind = 'r'`,
    [schemaName],
  );
  const names = new Set(has.rows.map((r) => r.name));
  const s = `"${schemaName.replaceAll('"', '""')}"`;
  if (names.has('alembic_version')) {
    const r = await client.query<{ v: string }>(`SELECT version_num::text AS v FROM ${s}.alembic_version LIMIT 1`);
    if (r.rows[0]?.v) return `alembic:${r.rows[0].v}`;
  }
  if (names.has('migratehistory')) {
    const r = await client.query<{ v: string }>(
      `SELECT name::text AS v FROM ${s}.migratehistory ORDER BY id DESC LIMIT 1`,
    );
    if (r.rows[0]?.v) return `peewee:${r.rows[0].v}`;
  }
  return null;
}

/** The first failed check, said in one line (null when every check passed). */
export function failureOf(checks: DrillChecks, aborted: string | null = null): string | null {
  if (!checks.restore.ok) return `restore failed: ${checks.restore.error ?? aborted ?? 'unknown error'}`;
  if (checks.integrity && !checks.integrity.ok) return `PRAGMA integrity_check: ${checks.integrity.result}`;
  const problems: string[] = [];
  if (checks.openwebui && !checks.openwebui.ok)
    problems.push(`Open WebUI check: ${checks.openwebui.problems.join('; ')}`);
  const c = checks.compare;
  if (c && !c.ok) {
    const where = c.tables.map((t) => {
      const keys = [...t.missing, ...t.extra, ...t.differing].slice(0, 3).map((k) => k.replaceAll('\u001f', '/'));
      return `${t.table}${keys.length ? ` (${keys.join(', ')})` : ''}`;
    });
    problems.push(
      `restored file differs from the backup: ${c.missing} missing, ${c.extra} extra, ${c.differing} differing rows in ${where.join(', ')}`,
    );
  }
  const b = checks.bookkeeping;
  if (b && !b.ok) problems.push(b.summary);
  if (aborted) problems.push(`drill stopped: ${aborted}`);
  if (!c && !aborted && checks.restore.ok) problems.push('the restored file was not compared with the backup');
  return problems.length ? problems.join('; ') : null;
}
