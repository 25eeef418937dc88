import { statSync } from 'node:fs';
import type pg from 'pg';
import type { Logger } from 'pino';
import { AbortedError, SchemaDriftError, SourceUnusableError, errorMessage } from '../errors.ts';
import type { ClaimedTenant } from '../tenants/claim.ts';
import { parseConflictConfig } from './conflicts/index.ts';
import { loadProgress, saveProgress } from './progress.ts';
import type { RunContext, RunStats } from './run-context.ts';
import { DEFAULT_BATCH_SIZE, type RunTenantSyncOptions } from './run-options.ts';
import { assertRegisteredSource } from './source-path.ts';
import {
  LockHoldExceededError,
  SqliteSnapshot,
  sourceFingerprint,
  toSourceError,
  type SqliteTable,
} from './sqlite-reader.ts';
import { Lookahead } from './lookahead.ts';
import { chunkSettings, serverHasLz4 } from './chunk-tx.ts';
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
/**
 * The run over one snapshot of the tenant's SQLite file: open it (in place or from a copy), check it is the Open
 * WebUI database the tenant schema was built from, decide full or incremental, run every table parents first (with
 * change capture for an incremental run), and record the snapshot's page state for the next run.
 */

const CHUNK_BYTES = 4 << 20;

/**
 * How a run over a snapshot ended: synced (every table applied), skipped (the file is unchanged since the last run
 * and no row waits for a retry), or failed with the error that stopped it. The sync type is the one the run settled
 * on (an incremental run of a tenant with no full sync yet, or a full sync to resume, runs as full).
 */
export type SnapshotOutcome =
  | {
      readonly kind: 'synced';
      readonly syncType: SyncType;
      readonly fullSyncCompleted: boolean;
      /** The file's fingerprint, null when the next run must not be skipped as unchanged. */
      readonly fingerprint: string | null;
      readonly history: SourceDdl;
    }
  | { readonly kind: 'skipped'; readonly syncType: SyncType; readonly fingerprint: string }
  | { readonly kind: 'failed'; readonly syncType: SyncType; readonly error: unknown };

type SyncType = 'full' | 'incremental';

/**
 * An incremental run of a rollback-journal file first reads the file in place (no copy: the cost follows the changes,
 * not the file's size) within a lock budget; when the budget runs out, the committed chunks stay and the run goes
 * on from a copy of the file, as a resumed run would.
 */
export async function runSnapshot(run: SnapshotRun): Promise<SnapshotOutcome> {
  try {
    await assertRegisteredSource(run.opts.pool, run.opts.scope, run.tenant);
  } catch (error) {
    return { kind: 'failed', syncType: run.opts.fullSync ? 'full' : 'incremental', error };
  }
  const inPlace = await syncFromSnapshot(true, run);
  if (inPlace.kind !== 'failed' || !(inPlace.error instanceof LockHoldExceededError)) return inPlace;
  run.logger.info(
    `${inPlace.error.message}; continuing from a copy of the file so Open WebUI's commits are not held up`,
  );
  return syncFromSnapshot(false, run);
}

/** One run's inputs, passed from runTenantSync down to the snapshot it reads. */
export type SnapshotRun = {
  readonly opts: RunTenantSyncOptions;
  readonly tenant: ClaimedTenant;
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

async function syncFromSnapshot(inPlace: boolean, run: SnapshotRun): Promise<SnapshotOutcome> {
  const { opts, tenant: dep, jobId, stats, signal, logger } = run;
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
      if ((open.rows[0]?.n ?? 0) === 0) return { kind: 'skipped', syncType, fingerprint };
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
      if (skippedDone) return { kind: 'synced', syncType, fullSyncCompleted: true, fingerprint: null, history };
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
    return { kind: 'synced', syncType, fullSyncCompleted: syncType === 'full', fingerprint, history };
  } catch (error) {
    broken = isBrokenConnection(error);
    return { kind: 'failed', syncType, error };
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
function unmatchedAdvice(dep: ClaimedTenant, table: string, source: SqliteTable): string {
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
