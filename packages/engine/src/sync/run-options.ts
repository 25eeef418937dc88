import type pg from 'pg';
import type { Logger } from 'pino';
import { CONFIG_DEFAULTS } from '@owui-sync/schema';
import type { DbScope } from '../db.ts';
import type { SyncMetrics } from '../metrics.ts';
import type { ClaimGroup } from '../tenants/claim.ts';

/** What a caller gives runTenantSync, read by the job lifecycle (job.ts) and the snapshot run (snapshot-run.ts). */

export type SyncProgress = {
  table: string;
  rowsDone: number;
  rowsTotal: number | null;
  tableIndex: number;
  tableCount: number;
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
  /**
   * The capped fairness group of the run's queue job: the claim is refused with SyncGroupFullError while the
   * cluster already runs `limit` syncs of the group.
   */
  group?: ClaimGroup;
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
