import type pg from 'pg';
import type { Logger } from 'pino';
import { CONFIG_DEFAULTS } from '@owui-sync/schema';
import { AbortedError, AppError, InvalidInputError, errorMessage } from '../errors.ts';
import { isConnectionError } from '../db.ts';
import { silentLogger } from '../logger.ts';
import type { SyncMetrics } from '../metrics.ts';
import { claimTenant, renewClaim } from '../tenants/claim.ts';
import { finishJob, type JobRecord, type RunCounts } from './job-record.ts';
import { emptyStats, type RunStats } from './run-context.ts';
import type { RunTenantSyncOptions } from './run-options.ts';
import { runSnapshot, type SnapshotOutcome } from './snapshot-run.ts';

/**
 * The job lifecycle of one sync: claim the tenant (which opens its sync_jobs row), keep the claim alive while the
 * snapshot run works, then record the end (sync_jobs, last_sync_*, claim released) on a fresh connection with
 * retries, and return what the run did.
 */

/**
 * What a run did, told apart by its status: 'success', 'conflict' (rows wait for a person's decision; exit code 2)
 * or 'failed' (with the reason; exit code 1). A skipped run (source unchanged) is a success.
 */
export type SyncRunResult = RunCounts & { jobId: string } & (
    | { status: 'success'; exitCode: 0; error?: undefined }
    | { status: 'conflict'; exitCode: 2; error?: undefined }
    | { status: 'failed'; exitCode: 1; error: string }
  );

/** The exit code a CLI should use for a run result: 0 success, 1 failed, 2 unresolved manual conflicts. */
export function exitCodeFor(status: 'success'): 0;
export function exitCodeFor(status: 'conflict'): 2;
export function exitCodeFor(status: 'failed'): 1;
export function exitCodeFor(status: SyncRunResult['status']): 0 | 1 | 2;
export function exitCodeFor(status: SyncRunResult['status']): 0 | 1 | 2 {
  return status === 'success' ? 0 : status === 'conflict' ? 2 : 1;
}

/**
 * Runs one sync of one tenant with the service-role pool: claims the tenant (a second concurrent run is refused
 * with SyncAlreadyRunningError, a run over its fairness group's cap with SyncGroupFullError), reads one consistent snapshot of its SQLite file, syncs every table parents first
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
    group: opts.group,
  });
  const { jobId, tenant } = claim;
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
      renewClaim(opts.pool, opts.scope, tenant.deploymentId, jobId, claimTtl)
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

  let out: SnapshotOutcome;
  try {
    out = await runSnapshot({ opts, tenant, jobId, stats, signal: internal.signal, logger });
  } finally {
    clearInterval(renewer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
  const { syncType } = out;
  let error: string | null = null;
  const details: Record<string, unknown> = {};
  if (out.kind === 'failed') {
    error = describeFailure(out.error, opts.clientName, claimLost);
    logger.error({ err: out.error }, `sync of tenant "${opts.clientName}" failed: ${error}`);
  } else {
    if (out.kind === 'skipped') details.skipped = 'source unchanged since the last run';
    if (stats.capture) details.capture = { ...stats.capture, keySetComparisons: stats.keySetComparisons ?? 0 };
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
    unresolved = await countUnresolved(opts.pool, tenant.deploymentId);
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
  const record: JobRecord = {
    status,
    ...counts,
    error,
    details,
    sourceFingerprint: out.kind === 'failed' ? null : out.fingerprint,
    fullSyncCompleted: out.kind === 'synced' && out.fullSyncCompleted,
    history: out.kind === 'synced' ? out.history : undefined,
  };
  try {
    await recordEnd(opts, tenant.deploymentId, jobId, record, claimTtl, logger);
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
  recordMetrics(opts.metrics, record, stats);
  if (error) return { jobId, status: 'failed', ...counts, exitCode: 1, error };
  return status === 'conflict'
    ? { jobId, status, ...counts, exitCode: exitCodeFor(status) }
    : { jobId, status: 'success', ...counts, exitCode: exitCodeFor('success') };
}

/**
 * Records the end of the run (sync_jobs row, the tenant's last_sync_*, and the claim released, in one transaction).
 * After a PostgreSQL restart the pool's connections are dead and the server may still be starting: each attempt
 * takes a fresh connection (a broken one is discarded), retrying with backoff for up to the claim's lifetime, so
 * the tenant is free for its next run as soon as the database is back instead of when the claim expires.
 */
async function recordEnd(
  opts: RunTenantSyncOptions,
  deploymentId: string,
  jobId: string,
  record: JobRecord,
  claimTtlSeconds: number,
  logger: Logger,
): Promise<void> {
  const deadline = performance.now() + claimTtlSeconds * 1000;
  let delayMs = 100;
  for (let attempt = 1; ; attempt += 1) {
    try {
      await finishJob(opts.pool, opts.scope, deploymentId, jobId, record);
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

function recordMetrics(metrics: SyncMetrics | undefined, o: JobRecord, stats: RunStats): void {
  if (!metrics) return;
  metrics.operations.inc({ status: o.status, sync_type: o.syncType });
  metrics.operationDuration.observe({ sync_type: o.syncType }, o.durationSeconds);
  metrics.rowsSynced.inc(o.rowsSynced);
  if (o.rowsFailed) metrics.rowsFailed.inc(o.rowsFailed);
  for (const [table, n] of Object.entries(stats.conflicts.byTable)) metrics.conflictsDetected.inc({ table }, n);
  for (const [strategy, n] of Object.entries(stats.conflicts.resolved)) metrics.conflictsResolved.inc({ strategy }, n);
}
