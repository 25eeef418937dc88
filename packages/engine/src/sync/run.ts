import { statSync } from 'node:fs';
import type pg from 'pg';
import type { Logger } from 'pino';
import { CONFIG_DEFAULTS } from '@owui-sync/schema';
import {
  AbortedError,
  AppError,
  InvalidInputError,
  SchemaDriftError,
  SourceUnusableError,
  errorMessage,
} from '../errors.ts';
import { isConnectionError, type DbScope } from '../db.ts';
import { silentLogger } from '../logger.ts';
import type { SyncMetrics } from '../metrics.ts';
import {
  claimTenant,
  finishJob,
  loadProgress,
  renewClaim,
  saveProgress,
  type Deployment,
  type JobOutcome,
  type RunCounts,
} from './bookkeeping.ts';
import { parseConflictConfig } from './conflicts/index.ts';
import { emptyStats, type RunContext, type RunStats } from './run-context.ts';
import { assertRegisteredSource } from './source-path.ts';
import {
  LockHoldExceededError,
  SqliteSnapshot,
  sourceFingerprint,
  toSourceError,
  type SqliteTable,
} from './sqlite-reader.ts';
import { Lookahead } from './lookahead.ts';
import { chunkSettings, serverHasLz4 } from './table-sync.ts';
import { fullTable, incrementalTable } from './table-runs.ts';
import { captureChanges, walMarkUsable, type Capture } from './change-capture.ts';
import type { Btree } from './page-state.ts';
import { StateBuilder } from './state-builder.ts';
import { recordKeyReader, type KeyReader } from './leaf-cells.ts';
import { loadCellChunks, loadPageChunks, loadPageHeader, savePageState } from './page-store.ts';
import { buildPlan, decodeKeyValues, type TablePlan } from './table-plan.ts';
import { describeDrift, findDrift, parentsFirst, readTargetSchema, schemaExists } from './target-schema.ts';
import { assertOpenWebUI } from './tenant-ddl.ts';
import { sourceDdl, type SourceDdl } from './row-history.ts';

export type SyncProgress = {
  table: string;
  rowsDone: number;
  rowsTotal: number | null;
  tableIndex: number;
  tableCount: number;
};

export type SyncRunResult = RunCounts & {
  jobId: string;
  status: 'success' | 'failed' | 'conflict';
  error?: string;
  exitCode: 0 | 1 | 2;
};

export type RunTenantSyncOptions = {
  pool: pg.Pool;
  clientName: string;
  scope: DbScope;
  fullSync?: boolean;
  triggeredBy: string;
  queueJobId?: string;
  workerId?: string;
  /** Rows per transaction (BATCH_SIZE; a chunk also closes at ~4 MB of encoded data). */
  batchSize?: number;
  signal?: AbortSignal;
  logger?: Logger;
  metrics?: SyncMetrics;
  onProgress?: (p: SyncProgress) => void;
  /** Claim lifetime, seconds (SYNC_CLAIM_TTL); renewed every third of it while the run is alive. */
  claimTtlSeconds?: number;
  /** Skip an incremental run whose SQLite file has not committed anything since the last run (default true). */
  skipUnchangedSource?: boolean;
  /** How long to retry a locked SQLite file (default 10 s). */
  lockRetryMs?: number;
  /**
   * Rollback-journal files: how long (ms) an incremental run may read the file in place, holding the shared lock
   * that delays Open WebUI's commits, before it continues from a copy (default 250 ms + 1 ms per MB of file, at
   * most 1 s; 0 always copies).
   */
  inPlaceLockBudgetMs?: number;
};

/** The configuration's defaults (CONFIG_DEFAULTS), for callers that pass no BATCH_SIZE / SYNC_CLAIM_TTL. */
export const DEFAULT_BATCH_SIZE = CONFIG_DEFAULTS.BATCH_SIZE;
const CHUNK_BYTES = 4 << 20;

/** The exit code a CLI should use for a run result: 0 success, 1 failed, 2 unresolved manual conflicts. */
export function exitCodeFor(status: SyncRunResult['status']): 0 | 1 | 2 {
  return status === 'success' ? 0 : status === 'conflict' ? 2 : 1;
}

/**
 * Runs one sync of one tenant with the service-role pool: claims the tenant (a second concurrent run is refused
 * with SyncAlreadyRunningError), reads one consistent snapshot of its SQLite file, syncs every table parents first
 * (full, or incremental: the rows on the pages that changed since the last run), detects deletions and conflicts,
 * records the snapshot's page state for the next run, and records sync_jobs,
 * sync_progress and last_sync_*. Sync failures are returned as status 'failed' with the error (never thrown);
 * only misuse (unknown tenant, concurrent run, bad options) throws.
 */
export async function runTenantSync(opts: RunTenantSyncOptions): Promise<SyncRunResult> {
  if (!opts.clientName) throw new InvalidInputError('clientName is required');
  if (!opts.triggeredBy) throw new InvalidInputError('triggeredBy is required (who or what started the sync)');
  const logger = (opts.logger ?? silentLogger()).child({ client: opts.clientName });
  const started = process.hrtime.bigint();
  const claimTtl = opts.claimTtlSeconds ?? CONFIG_DEFAULTS.SYNC_CLAIM_TTL;
  const requestedType = opts.fullSync ? 'full' : 'incremental';
  const claim = await claimTenant(opts.pool, opts.scope, {
    clientName: opts.clientName,
    syncType: requestedType,
    triggeredBy: opts.triggeredBy,
    queueJobId: opts.queueJobId,
    workerId: opts.workerId,
    claimTtlSeconds: claimTtl,
  });
  const { jobId, deployment } = claim;
  if (claim.reapedJobs > 0) {
    logger.warn({ reaped: claim.reapedJobs }, 'marked sync jobs of a stopped worker as failed; resuming their work');
  }
  const stats: RunStats = emptyStats();
  let claimLost = false;
  const internal = new AbortController();
  const onAbort = () => internal.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) internal.abort(opts.signal.reason);
  const renewer = setInterval(
    () => {
      renewClaim(opts.pool, opts.scope, deployment.deploymentId, jobId, claimTtl)
        .then((ok) => {
          if (!ok && !claimLost) {
            claimLost = true;
            internal.abort(new Error('claim lost'));
          }
        })
        .catch((error: unknown) =>
          logger.warn({ err: error }, `could not renew the sync claim: ${errorMessage(error)}`),
        );
    },
    Math.max(200, (claimTtl * 1000) / 3),
  );
  renewer.unref();

  let syncType: 'full' | 'incremental' = requestedType;
  let error: string | null = null;
  let fullSyncCompleted = false;
  let fingerprint: string | null = null;
  let history: SourceDdl | undefined;
  const details: Record<string, unknown> = {};
  try {
    const out = await syncDeployment({ opts, dep: deployment, jobId, stats, signal: internal.signal, logger });
    syncType = out.syncType;
    fullSyncCompleted = out.fullSyncCompleted;
    fingerprint = out.fingerprint;
    history = out.history;
    if (out.skipped) details.skipped = 'source unchanged since the last run';
    if (stats.capture) details.capture = { ...stats.capture, keySetComparisons: stats.keySetComparisons ?? 0 };
  } catch (e) {
    syncType = (e as { syncType?: 'full' | 'incremental' }).syncType ?? syncType;
    error = describeFailure(e, opts.clientName, claimLost);
    logger.error({ err: e }, `sync of tenant "${opts.clientName}" failed: ${error}`);
  } finally {
    clearInterval(renewer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
  if (!error && stats.rowsFailed > 0) {
    error =
      `${stats.rowsFailed} row(s) could not be written (first: ${stats.failures[0]?.table} ${JSON.stringify(
        stats.failures[0]?.key,
      )}: ${stats.failures[0]?.error}); they are kept in sync_state.failed_rows and retried on every run — fix the ` +
      'values in Open WebUI or see docs/engine.md';
  }
  let unresolved = 0;
  try {
    unresolved = await countUnresolved(opts.pool, deployment.deploymentId);
  } catch {
    unresolved = stats.conflicts.pending;
  }
  const status: SyncRunResult['status'] = error ? 'failed' : unresolved > 0 ? 'conflict' : 'success';
  const durationSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (stats.failures.length) details.failures = stats.failures;
  if (stats.nulStripped) details.nulCharactersRemoved = stats.nulStripped;
  if (stats.conflicts.detected) details.conflicts = stats.conflicts;
  const counts: RunCounts = {
    syncType,
    rowsSynced: stats.rowsSynced,
    rowsFailed: stats.rowsFailed,
    rowsDeleted: stats.rowsDeleted,
    conflictsDetected: stats.conflicts.detected,
    conflictsUnresolved: unresolved,
    durationSeconds,
  };
  const outcome: JobOutcome = {
    status,
    ...counts,
    error,
    details,
    sourceFingerprint: fingerprint,
    fullSyncCompleted,
    history,
  };
  try {
    await recordOutcome(opts, deployment.deploymentId, jobId, outcome, claimTtl, logger);
  } catch (e) {
    // PostgreSQL stayed away for the claim's lifetime: the claim expires and the next run marks this job failed
    // and resumes the work.
    logger.error(
      { err: e },
      `could not record the end of sync job ${jobId}: ${errorMessage(e)}; its claim expires and the next run ` +
        'marks it failed and resumes its work',
    );
    if (!error) error = `the sync finished but its result could not be recorded: ${errorMessage(e)}`;
  }
  recordMetrics(opts.metrics, outcome, stats);
  const result: SyncRunResult = {
    jobId,
    status: error ? 'failed' : status,
    ...counts,
    exitCode: exitCodeFor(error ? 'failed' : status),
  };
  if (error) result.error = error;
  return result;
}

/**
 * Records the end of the run (sync_jobs row, the tenant's last_sync_*, and the claim released, in one transaction).
 * After a PostgreSQL restart the pool's connections are dead and the server may still be starting: each attempt
 * takes a fresh connection (a broken one is discarded), retrying with backoff for up to the claim's lifetime, so
 * the tenant is free for its next run as soon as the database is back instead of when the claim expires.
 */
async function recordOutcome(
  opts: RunTenantSyncOptions,
  deploymentId: string,
  jobId: string,
  outcome: JobOutcome,
  claimTtlSeconds: number,
  logger: Logger,
): Promise<void> {
  const deadline = performance.now() + claimTtlSeconds * 1000;
  let delayMs = 100;
  for (let attempt = 1; ; attempt += 1) {
    try {
      await finishJob(opts.pool, opts.scope, deploymentId, jobId, outcome);
      if (attempt > 1) logger.info({ attempt }, `recorded the end of sync job ${jobId} once the database answered`);
      return;
    } catch (e) {
      if (!isConnectionError(e) || performance.now() + delayMs > deadline) throw e;
      logger.warn(
        { err: e, attempt },
        `could not record the end of sync job ${jobId} yet (${errorMessage(e)}); retrying in ${delayMs} ms`,
      );
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      delayMs = Math.min(delayMs * 2, 2000);
    }
  }
}

function describeFailure(e: unknown, clientName: string, claimLost: boolean): string {
  if (claimLost) return 'the sync claim was lost (another run took the tenant over after this one stalled)';
  if (isConnectionError(e)) {
    return (
      `the connection to PostgreSQL was lost during the sync (${errorMessage(e)}); the worker carried on and the ` +
      `next run of "${clientName}" resumes from the last committed chunk`
    );
  }
  if (e instanceof AbortedError) return `${e.message}`;
  if (e instanceof AppError) return e.message;
  return `${errorMessage(e)}; the next run of "${clientName}" resumes from the last committed chunk`;
}

async function countUnresolved(pool: pg.Pool, deploymentId: string): Promise<number> {
  const res = await pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM sync_metadata.conflict_log WHERE deployment_id = $1::uuid AND resolved_at IS NULL',
    [deploymentId],
  );
  return res.rows[0]?.n ?? 0;
}

function recordMetrics(metrics: SyncMetrics | undefined, o: JobOutcome, stats: RunStats): void {
  if (!metrics) return;
  metrics.operations.inc({ status: o.status, sync_type: o.syncType });
  metrics.operationDuration.observe({ sync_type: o.syncType }, o.durationSeconds);
  metrics.rowsSynced.inc(o.rowsSynced);
  if (o.rowsFailed) metrics.rowsFailed.inc(o.rowsFailed);
  for (const [table, n] of Object.entries(stats.conflicts.byTable)) metrics.conflictsDetected.inc({ table }, n);
  for (const [strategy, n] of Object.entries(stats.conflicts.resolved)) metrics.conflictsResolved.inc({ strategy }, n);
}

type SyncOutcome = {
  syncType: 'full' | 'incremental';
  fullSyncCompleted: boolean;
  fingerprint: string | null;
  skipped: boolean;
  history?: SourceDdl;
};

/**
 * An incremental run of a rollback-journal file first reads the file in place (no copy: the cost follows the changes,
 * not the file's size) within a lock budget; when the budget runs out, the committed chunks stay and the run goes
 * on from a copy of the file, as a resumed run would.
 */
async function syncDeployment(run: SyncRun): Promise<SyncOutcome> {
  await assertRegisteredSource(run.opts.pool, run.opts.scope, run.dep);
  try {
    return await syncFromSnapshot(true, run);
  } catch (e) {
    if (!(e instanceof LockHoldExceededError)) throw e;
    run.logger.info(`${e.message}; continuing from a copy of the file so Open WebUI's commits are not held up`);
    return syncFromSnapshot(false, run);
  }
}

/** One run's inputs, passed from runTenantSync down to the snapshot it reads. */
type SyncRun = {
  readonly opts: RunTenantSyncOptions;
  readonly dep: Deployment;
  readonly jobId: string;
  readonly stats: RunStats;
  readonly signal: AbortSignal;
  readonly logger: Logger;
};

/** How long an incremental run may hold a rollback-journal file's shared lock: about what copying it would take. */
function inPlaceBudgetMs(opts: RunTenantSyncOptions, sqlitePath: string): number {
  if (opts.inPlaceLockBudgetMs !== undefined) return Math.max(0, opts.inPlaceLockBudgetMs);
  let mb = 0;
  try {
    mb = statSync(sqlitePath).size / 1e6;
  } catch {
    // Opening the file reports what is wrong with it.
  }
  return Math.round(Math.min(1000, 250 + mb));
}

async function syncFromSnapshot(inPlace: boolean, run: SyncRun): Promise<SyncOutcome> {
  const { opts, dep, jobId, stats, signal, logger } = run;
  if (!dep.sqlitePath) {
    throw new SourceUnusableError(
      `tenant "${dep.clientName}" has no sqlite_path registered; register the file path first`,
    );
  }
  const conflictConfig = parseConflictConfig(dep);
  const tStart = performance.now();
  const client = await opts.pool.connect();
  let snapshot: SqliteSnapshot | undefined;
  let side: pg.PoolClient | undefined;
  let broken = false;
  let syncType: 'full' | 'incremental' = opts.fullSync ? 'full' : 'incremental';
  try {
    const progress = await loadProgress(client, dep.deploymentId);
    const resuming = [...progress.values()].some((p) => p.fullSyncPending);
    if (resuming || progress.size === 0) syncType = 'full';
    const fingerprint = sourceFingerprint(dep.sqlitePath);
    if (syncType === 'incremental' && opts.skipUnchangedSource !== false && fingerprint === dep.sourceFingerprint) {
      const open = await client.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM sync_state.failed_rows WHERE deployment_id = $1::uuid AND resolved_at IS NULL',
        [dep.deploymentId],
      );
      if ((open.rows[0]?.n ?? 0) === 0) return { syncType, fullSyncCompleted: false, fingerprint, skipped: true };
    }
    const snapshotAt = new Date();
    try {
      snapshot = await SqliteSnapshot.open(dep.sqlitePath, {
        signal,
        lockRetryMs: opts.lockRetryMs ?? 10_000,
        inPlaceBudgetMs: inPlace && syncType === 'incremental' ? inPlaceBudgetMs(opts, dep.sqlitePath) : 0,
      });
    } catch (e) {
      throw toSourceError(dep.sqlitePath, e);
    }
    let sourceSchema;
    try {
      sourceSchema = snapshot.schema();
    } catch (e) {
      throw toSourceError(dep.sqlitePath, e);
    }
    assertOpenWebUI(dep.sqlitePath, sourceSchema);
    const history = sourceDdl(snapshot.db, sourceSchema);
    if (!(await schemaExists(client, dep.schemaName))) {
      throw new SchemaDriftError(
        `tenant schema ${dep.schemaName} does not exist; run: syncctl client upgrade-schema ${dep.clientName}`,
      );
    }
    const target = await readTargetSchema(client, dep.schemaName);
    const drift = findDrift(sourceSchema, target);
    if (drift.newTables.length || drift.newColumns.length) {
      throw new SchemaDriftError(
        `tenant "${dep.clientName}" SQLite schema changed (${describeDrift(drift)}); nothing was synced so no row is ` +
          `lost — run: syncctl client upgrade-schema ${dep.clientName}`,
        { drift },
      );
    }
    logger.debug({ ms: Math.round(performance.now() - tStart) }, 'snapshot opened and schemas compared');
    const sourceByName = new Map(sourceSchema.tables.map((t) => [t.name, t]));
    const names = parentsFirst(
      [...target.tables.keys()].filter((n) => sourceByName.has(n)),
      (n) => target.tables.get(n)?.parents ?? [],
    );
    const plans: TablePlan[] = [];
    // Tables whose rows cannot be matched are left out (and named when the run ends); every other table syncs.
    const unmatched: string[] = [];
    for (const name of names) {
      const t = target.tables.get(name);
      const s = sourceByName.get(name);
      if (!t || !s) continue;
      if (t.key.length === 0) {
        unmatched.push(unmatchedAdvice(dep, name, s));
        continue;
      }
      plans.push(buildPlan(dep.schemaName, t, s));
    }
    if (syncType === 'full' && !resuming) {
      // A new full-sync generation: every table is pending until it completes (a crash resumes from here). One
      // transaction, committed without waiting for the flush: lost in a crash, the next run starts the generation again.
      await client.query("BEGIN; SELECT set_config('synchronous_commit', 'off', true)");
      try {
        for (const p of plans) {
          await saveProgress(client, dep.deploymentId, p.name, jobId, {
            fullSyncPending: true,
            resumeKey: null,
            phase: 'idle',
          });
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    }
    const openFailed = await client.query<{ table_name: string; key_values: string }>(
      'SELECT table_name, key_values FROM sync_state.failed_rows WHERE deployment_id = $1::uuid AND resolved_at IS NULL',
      [dep.deploymentId],
    );
    const failedByTable = new Map<string, unknown[][]>();
    for (const r of openFailed.rows) {
      const list = failedByTable.get(r.table_name) ?? [];
      list.push(decodeKeyValues(r.key_values));
      failedByTable.set(r.table_name, list);
    }
    // A second connection records bookkeeping while the next chunk loads, when the pool can spare one (the claim
    // renewal needs a third).
    const poolMax = (opts.pool as unknown as { options?: { max?: number } }).options?.max ?? 10;
    if (syncType === 'full' && poolMax >= 3) side = await opts.pool.connect();
    const ctx: RunContext = {
      side,
      lookahead: new Lookahead(),
      txSettings: chunkSettings(await serverHasLz4(client)),
      client,
      snapshot,
      deploymentId: dep.deploymentId,
      clientName: dep.clientName,
      jobId,
      conflictConfig,
      batchSize: Math.max(1, opts.batchSize ?? DEFAULT_BATCH_SIZE),
      chunkBytes: CHUNK_BYTES,
      signal,
      logger,
      stats,
      snapshotAt,
    };
    const freshProgress = await loadProgress(client, dep.deploymentId);
    const pages = snapshot.openPages();
    try {
      const btrees = snapshot.btrees();
      const captureInput = {
        file: pages,
        walMark: snapshot.walMark,
        fileId: snapshot.fileId(),
        btrees,
        keyReaders: keyReaders(plans, sourceByName, btrees),
        checkpoint: () => {
          if (signal.aborted) throw new AbortedError('sync aborted; the next run resumes where this one stopped');
          snapshot?.checkHold();
        },
      };
      let capture: Capture | undefined;
      // A resumed full sync skips tables an earlier snapshot already filled.
      let skippedDone = false;
      // A full sync maps the file's pages to their tables while it waits for PostgreSQL to apply its chunks. The
      // pages of a WAL file are hashed by its next run (which learns from the WAL what changed meanwhile); those of
      // a rollback-journal file now, since its next run finds its changes by comparing every page's hash.
      const builder =
        syncType === 'full' ? new StateBuilder(captureInput, false, !walMarkUsable(captureInput.walMark)) : undefined;
      if (builder) ctx.lookahead.setBackground(() => builder.step());
      if (syncType === 'incremental') {
        const tCapture = performance.now();
        capture = await captureChanges({
          ...captureInput,
          previous: await loadPageHeader(client, dep.deploymentId),
          loadChunks: (state, chunks) => loadPageChunks(client, dep.deploymentId, state, chunks),
          loadCellChunks: (state, chunks) => loadCellChunks(client, dep.deploymentId, state, chunks),
        });
        stats.capture = {
          mode: capture.mode,
          changedPages: capture.changedPages,
          unknownPages: capture.unknownPages,
          tables: capture.tables.size,
        };
        if (capture.unknownPages > 0) {
          logger.warn(
            { unknownPages: capture.unknownPages },
            'changed pages that no table accounts for; every table is compared in full this time',
          );
        }
        logger.debug({ ...stats.capture, ms: Math.round(performance.now() - tCapture) }, 'changes captured');
      }
      for (const [index, plan] of plans.entries()) {
        const p = freshProgress.get(plan.name);
        const report = (rowsDone: number, rowsTotal: number | null) =>
          opts.onProgress?.({ table: plan.name, rowsDone, rowsTotal, tableIndex: index, tableCount: plans.length });
        try {
          if (syncType === 'full') {
            if (resuming && p && !p.fullSyncPending) {
              skippedDone = true;
              continue;
            }
            await fullTable(ctx, plan, p, failedByTable.get(plan.name) ?? [], report);
          } else {
            // A table never read in full (it had no key until now, say) is compared in full, whatever its pages say.
            const changes = p?.lastFullSyncAt
              ? capture?.tables.get(plan.name)
              : { rowids: new Set<bigint>(), all: true, removed: null };
            await incrementalTable(ctx, plan, changes, failedByTable.get(plan.name) ?? [], report);
          }
        } catch (e) {
          if (isSqliteError(e)) throw toSourceError(dep.sqlitePath, e);
          throw e;
        }
      }
      // Everything this snapshot holds is applied: its pages are what the next run compares with.
      ctx.lookahead.setBackground(undefined);
      // This snapshot's pages stand for the backup only when every table was read from it. A resumed full sync
      // keeps the state recorded before it began (older than any of its tables, so the next run finds at least
      // every change since), or none, and then the next run compares every table in full.
      // Its file fingerprint is not recorded either, so the next run is not skipped as "unchanged".
      if (skippedDone) return { syncType, fullSyncCompleted: true, fingerprint: null, skipped: false, history };
      const state = capture?.state ?? (builder as StateBuilder).finish();
      const tSave = performance.now();
      await savePageState(client, dep.deploymentId, jobId, state);
      logger.debug({ ms: Math.round(performance.now() - tSave), chunks: state.pageCount }, 'page state recorded');
    } finally {
      pages.close();
    }
    logger.debug({ ms: Math.round(performance.now() - tStart) }, 'all tables synced');
    if (unmatched.length > 0) {
      throw new SchemaDriftError(`every table was synced except ${unmatched.join('; ')}`);
    }
    return { syncType, fullSyncCompleted: syncType === 'full', fingerprint, skipped: false, history };
  } catch (e) {
    broken = isBrokenConnection(e);
    if (e && typeof e === 'object') (e as { syncType?: string }).syncType = syncType;
    throw e;
  } finally {
    snapshot?.close();
    client.release(broken ? new Error('connection lost during sync') : undefined);
    side?.release(broken ? new Error('connection lost during sync') : undefined);
  }
}

/** Per table b-tree root: how to read a row's key from its cell (see recordKeyReader). */
function keyReaders(
  plans: readonly TablePlan[],
  sources: ReadonlyMap<string, SqliteTable>,
  btrees: readonly Btree[],
): Map<number, KeyReader> {
  const out = new Map<number, KeyReader>();
  for (const plan of plans) {
    const source = sources.get(plan.name);
    const tree = btrees.find((b) => b.table === plan.name && b.rowidTable);
    if (!source || !tree) continue;
    const positions = plan.key.map((k) => source.columns.findIndex((c) => c.name === k));
    if (positions.some((p) => p < 0)) continue;
    const pk = source.columns.filter((c) => c.pk > 0);
    const alias =
      pk.length === 1 && pk[0]?.declaredType.toUpperCase() === 'INTEGER' ? source.columns.indexOf(pk[0]) : -1;
    out.set(tree.root, recordKeyReader(positions, alias));
  }
  return out;
}

/** Why a table without a row key is not synced, and what makes it sync. */
function unmatchedAdvice(dep: Deployment, table: string, source: SqliteTable): string {
  const sourceKeyed =
    source.columns.some((c) => c.pk > 0) ||
    source.indexes.some((ix) => ix.unique && !ix.partial && ix.columns.every((c) => c !== null));
  if (sourceKeyed) {
    return `${table}: its backup table has no primary key or unique index yet; run: syncctl client upgrade-schema ${dep.clientName}`;
  }
  return (
    `${table}: its SQLite table has no primary key or unique index (Open WebUI creates one; it was dropped, and the ` +
    `table may hold duplicate rows), so its rows cannot be matched and are not backed up — remove the duplicates ` +
    `(SELECT id, count(*) FROM "${table}" GROUP BY id HAVING count(*) > 1), recreate the unique index on id, then ` +
    `run: syncctl client upgrade-schema ${dep.clientName}`
  );
}

function isSqliteError(e: unknown): boolean {
  return (
    typeof (e as { code?: unknown } | null)?.code === 'string' &&
    String((e as { code: string }).code).startsWith('SQLITE_')
  );
}

function isBrokenConnection(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return (
    (typeof code === 'string' && (code.startsWith('08') || code.startsWith('57'))) ||
    /Connection terminated|ECONNRESET|EPIPE|ECONNREFUSED/i.test(errorMessage(e)) ||
    e instanceof AbortedError
  );
}
