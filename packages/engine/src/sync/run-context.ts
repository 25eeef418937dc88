import type pg from 'pg';
import type { Logger } from 'pino';
import type { ConflictConfig } from '@owui-sync/schema';
import type { Lookahead } from './lookahead.ts';
import type { SqliteSnapshot } from './sqlite-reader.ts';

/**
 * What every part of one run over one snapshot shares: the connections, the snapshot, the tenant's settings, and the
 * counters the run's outcome is built from. The snapshot run creates it; the table passes, the chunk writer,
 * conflict settlement and deletion detection read it.
 */

export type RunContext = {
  readonly client: pg.PoolClient;
  /** A second connection for bookkeeping that can run while the next chunk loads (absent on small pools). */
  readonly side: pg.PoolClient | undefined;
  readonly snapshot: SqliteSnapshot;
  readonly deploymentId: string;
  readonly clientName: string;
  readonly jobId: string;
  readonly conflictConfig: ConflictConfig;
  readonly batchSize: number;
  readonly chunkBytes: number;
  readonly signal: AbortSignal | undefined;
  readonly logger: Logger;
  /** Snapshot reads for later tables, done while waiting for PostgreSQL. */
  readonly lookahead: Lookahead;
  /** `chunkSettings(…)` for this server: run at the start of every chunk transaction. */
  readonly txSettings: string;
  /** When this run's SQLite snapshot was taken. */
  readonly snapshotAt: Date;
  readonly stats: RunStats;
};

/** Conflicts a run met: how many, settled per strategy, left for a person, per table. */
export type ConflictTally = {
  detected: number;
  resolved: Record<string, number>;
  pending: number;
  byTable: Record<string, number>;
};

export function emptyTally(): ConflictTally {
  return { detected: 0, resolved: {}, pending: 0, byTable: {} };
}

export type RunStats = {
  rowsSynced: number;
  rowsRead: number;
  rowsFailed: number;
  rowsDeleted: number;
  nulStripped: number;
  conflicts: ConflictTally;
  failures: { table: string; key: string; error: string }[];
  /** Tables whose deletes needed every key compared (the others were found from the changed pages alone). */
  keySetComparisons?: number;
  /** How change capture found this incremental run's changes. */
  capture?: { mode: string; changedPages: number; unknownPages: number; tables: number };
};

export function emptyStats(): RunStats {
  return {
    rowsSynced: 0,
    rowsRead: 0,
    rowsFailed: 0,
    rowsDeleted: 0,
    nulStripped: 0,
    conflicts: emptyTally(),
    failures: [],
  };
}
