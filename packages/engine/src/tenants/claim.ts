import type pg from 'pg';
import { ConflictError, NotFoundError } from '../errors.ts';
import { withTransaction, type DbScope, type Queryable } from '../db.ts';

/**
 * The tenant's sync claim: one running sync per tenant (a claim row on client_deployments with an expiry, renewed
 * while the run is alive, not a session lock). Claiming opens the run's sync_jobs row; jobs whose claim expired (their
 * worker stopped) are marked failed. The claim is released when the run's end is recorded (../sync/job-record.ts).
 * It lives with the tenants because it is a question about the tenant's row (is a run holding it?) that the sync job
 * and the scheduler's reaper both ask; it imports nothing from ../sync/, which imports it.
 */

/** The tenant as a sync run reads it when it claims it. */
export type ClaimedTenant = {
  deploymentId: string;
  clientName: string;
  schemaName: string;
  sqlitePath: string | null;
  status: string;
  syncEnabled: boolean;
  conflictStrategy: string;
  conflictConfig: unknown;
  sourceFingerprint: string | null;
  lastFullSyncAt: Date | null;
};

/** A second sync of a tenant was started while one is running (it must not run concurrently). */
export class SyncAlreadyRunningError extends ConflictError {
  constructor(clientName: string, jobId: string, claimedBy: string | null, expiresAt: Date) {
    super(
      `a sync of tenant "${clientName}" is already running (job ${jobId}${claimedBy ? ` on ${claimedBy}` : ''}); ` +
        'wait for it to finish or check: syncctl status',
      { jobId, claimedBy, expiresAt: expiresAt.toISOString() },
    );
  }
}

const CLAIMED_TENANT_COLUMNS = `deployment_id, client_name, schema_name, sqlite_path, status, sync_enabled,
  conflict_strategy, conflict_config, source_fingerprint, last_full_sync_at,
  sync_claim_job_id, sync_claimed_by, sync_claim_expires_at, sync_claim_expires_at > now() AS claim_live`;

type ClaimedTenantRow = {
  deployment_id: string;
  client_name: string;
  schema_name: string;
  sqlite_path: string | null;
  status: string;
  sync_enabled: boolean;
  conflict_strategy: string;
  conflict_config: unknown;
  source_fingerprint: string | null;
  last_full_sync_at: Date | null;
  sync_claim_job_id: string | null;
  sync_claimed_by: string | null;
  sync_claim_expires_at: Date | null;
  claim_live: boolean | null;
};

function toClaimedTenant(r: ClaimedTenantRow): ClaimedTenant {
  return {
    deploymentId: r.deployment_id,
    clientName: r.client_name,
    schemaName: r.schema_name,
    sqlitePath: r.sqlite_path,
    status: r.status,
    syncEnabled: r.sync_enabled,
    conflictStrategy: r.conflict_strategy,
    conflictConfig: r.conflict_config,
    sourceFingerprint: r.source_fingerprint,
    lastFullSyncAt: r.last_full_sync_at,
  };
}

/**
 * A capped fairness group a run belongs to (the pg-boss group of its job, see syncGroupConcurrency in
 * ../cluster/worker.ts) and how many of the group's runs its cluster allows at once.
 */
export type ClaimGroup = { readonly id: string; readonly limit: number };

/**
 * The tenant's fairness group already has as many runs as its cap allows in the cluster. Not a failure: the run
 * waits its turn (a worker queues the job again; see startSyncWorker).
 */
export class SyncGroupFullError extends ConflictError {
  readonly group: string;
  readonly running: number;
  constructor(clientName: string, group: ClaimGroup, running: number) {
    super(
      `the ${group.id} group already has ${running} sync(s) running in this cluster (at most ${group.limit} at once); ` +
        `"${clientName}" waits its turn`,
      { clientName, group: group.id, limit: group.limit, running },
    );
    this.group = group.id;
    this.running = running;
  }
}

// One claimer of a group at a time per cluster: a transaction-scoped advisory lock (released at commit, so nothing
// outlives the transaction behind a transaction-mode pooler), then the group's live claims are counted in a
// statement that starts after the lock is held and so sees every claim committed before.
const LOCK_GROUP_SQL = `SELECT pg_advisory_xact_lock(
  hashtextextended('owui-sync sync group ' || coalesce(sync_metadata.deployment_cluster($1::uuid), '') || ' ' || $2::text, 0))`;
const COUNT_GROUP_SQL = `
  SELECT count(*)::int AS running
    FROM sync_metadata.client_deployments d
    JOIN sync_metadata.hosts h ON h.host_id = d.host_id
   WHERE d.sync_claim_group = $2::text AND d.sync_claim_expires_at > now() AND d.deployment_id <> $1::uuid
     AND h.cluster_name = sync_metadata.deployment_cluster($1::uuid)`;

/** Refuses with SyncGroupFullError when the group is at its cap; call inside the claim's transaction. */
async function checkGroupCapacity(
  client: Queryable,
  deploymentId: string,
  clientName: string,
  group: ClaimGroup,
): Promise<void> {
  await client.query(LOCK_GROUP_SQL, [deploymentId, group.id]);
  const res = await client.query<{ running: number }>(COUNT_GROUP_SQL, [deploymentId, group.id]);
  const running = res.rows[0]?.running ?? 0;
  if (running >= group.limit) throw new SyncGroupFullError(clientName, group, running);
}

export const STOPPED_WORKER_ERROR =
  'the worker running this sync stopped, or could not reach PostgreSQL, before it recorded the end (its claim expired)';

/** Marks sync_jobs rows left 'running'/'pending' without a live claim as failed. Returns how many. */
async function failOrphanedJobs(client: Queryable, deploymentId: string, liveJobId: string | null): Promise<number> {
  const res = await client.query(
    `UPDATE sync_metadata.sync_jobs
        SET status = 'failed', completed_at = now(), updated_at = now(),
            duration_seconds = round(extract(epoch FROM (now() - started_at))::numeric, 3),
            error = $3::text || '; the next run resumes its work'
      WHERE deployment_id = $1::uuid AND status IN ('pending', 'running')
        AND job_id IS DISTINCT FROM $2::uuid`,
    [deploymentId, liveJobId, STOPPED_WORKER_ERROR],
  );
  return res.rowCount ?? 0;
}

export type ClaimResult = { jobId: string; tenant: ClaimedTenant; reapedJobs: number };

/**
 * Claims the tenant for one run: fails jobs of dead workers, refuses when another run holds a live claim (or, with
 * `group`, when the group already runs its cap of syncs in the cluster: SyncGroupFullError), inserts the sync_jobs
 * row ('running') and sets last_sync_status = 'running'.
 */
export async function claimTenant(
  pool: pg.Pool,
  scope: DbScope,
  opts: {
    clientName: string;
    syncType: 'full' | 'incremental';
    triggeredBy: string;
    queueJobId?: string | undefined;
    workerId?: string | undefined;
    claimTtlSeconds: number;
    /** The run's capped fairness group, counted exactly over the cluster's live claims. */
    group?: ClaimGroup | undefined;
  },
): Promise<ClaimResult> {
  return withTransaction(
    pool,
    async (client) => {
      const res = await client.query<ClaimedTenantRow>(
        `SELECT ${CLAIMED_TENANT_COLUMNS} FROM sync_metadata.client_deployments WHERE client_name = $1::text FOR UPDATE`,
        [opts.clientName],
      );
      const row = res.rows[0];
      if (!row) {
        throw new NotFoundError(`tenant "${opts.clientName}" is not registered here; run: syncctl client list`, {
          clientName: opts.clientName,
        });
      }
      if (row.claim_live && row.sync_claim_job_id) {
        throw new SyncAlreadyRunningError(
          opts.clientName,
          row.sync_claim_job_id,
          row.sync_claimed_by,
          row.sync_claim_expires_at as Date,
        );
      }
      if (opts.group) await checkGroupCapacity(client, row.deployment_id, row.client_name, opts.group);
      const reapedJobs = await failOrphanedJobs(client, row.deployment_id, null);
      const job = await client.query<{ job_id: string }>(
        `INSERT INTO sync_metadata.sync_jobs
           (deployment_id, client_name, queue_job_id, host_id, worker_id, status, sync_type, triggered_by)
         VALUES ($1::uuid, $2::text, $3::text, nullif($4::text, '')::uuid, $5::text, 'running', $6::text, $7::text)
         RETURNING job_id`,
        [
          row.deployment_id,
          row.client_name,
          opts.queueJobId ?? null,
          scope.hostId ?? '',
          opts.workerId ?? null,
          opts.syncType,
          opts.triggeredBy.slice(0, 200) || 'unknown',
        ],
      );
      const jobId = job.rows[0]?.job_id as string;
      await client.query(
        `UPDATE sync_metadata.client_deployments
            SET sync_claim_job_id = $2::uuid, sync_claimed_by = $3::text,
                sync_claim_expires_at = now() + make_interval(secs => $4::double precision),
                sync_claim_group = $5::text, last_sync_status = 'running', updated_at = now()
          WHERE deployment_id = $1::uuid`,
        [row.deployment_id, jobId, opts.workerId ?? scope.hostId ?? null, opts.claimTtlSeconds, opts.group?.id ?? null],
      );
      return { jobId, tenant: toClaimedTenant(row), reapedJobs };
    },
    scope,
  );
}

/** Extends the claim; false when it was lost (expired and taken over, or released). */
export async function renewClaim(
  pool: pg.Pool,
  scope: DbScope,
  deploymentId: string,
  jobId: string,
  ttlSeconds: number,
): Promise<boolean> {
  return withTransaction(
    pool,
    async (client) => {
      const res = await client.query(
        `UPDATE sync_metadata.client_deployments
            SET sync_claim_expires_at = now() + make_interval(secs => $3::double precision)
          WHERE deployment_id = $1::uuid AND sync_claim_job_id = $2::uuid`,
        [deploymentId, jobId, ttlSeconds],
      );
      return (res.rowCount ?? 0) > 0;
    },
    scope,
  );
}

/**
 * Fails sync_jobs rows whose worker died: every 'running'/'pending' job of a tenant whose claim expired (or was
 * taken by another job). Call it periodically (the scheduler does) so a crashed worker's job does not stay
 * 'running'; the next run of the tenant also does it. Returns how many jobs were failed.
 */
export async function reapStaleSyncJobs(pool: pg.Pool, scope: DbScope): Promise<number> {
  return withTransaction(
    pool,
    async (client) => {
      const deployments = await client.query<{ deployment_id: string; live_job: string | null }>(
        `SELECT d.deployment_id,
                CASE WHEN d.sync_claim_expires_at > now() THEN d.sync_claim_job_id END AS live_job
           FROM sync_metadata.client_deployments d
          WHERE EXISTS (SELECT 1 FROM sync_metadata.sync_jobs j
                         WHERE j.deployment_id = d.deployment_id AND j.status IN ('pending', 'running'))
          FOR UPDATE OF d SKIP LOCKED`,
      );
      let total = 0;
      for (const d of deployments.rows) {
        const n = await failOrphanedJobs(client, d.deployment_id, d.live_job);
        if (n > 0 && d.live_job === null) {
          await client.query(
            `UPDATE sync_metadata.client_deployments
                SET last_sync_status = 'failed', sync_claim_job_id = NULL, sync_claimed_by = NULL,
                    sync_claim_expires_at = NULL, sync_claim_group = NULL, updated_at = now()
              WHERE deployment_id = $1::uuid`,
            [d.deployment_id],
          );
        }
        total += n;
      }
      return total;
    },
    scope,
  );
}
