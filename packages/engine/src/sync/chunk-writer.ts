import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { AbortedError, errorMessage } from '../errors.ts';
import { isConnectionError } from '../db.ts';
import { saveProgress, type ProgressUpdate } from './progress.ts';
import { resolveChunkConflicts } from './conflicts/index.ts';
import type { RunContext } from './run-context.ts';
import { rowKeyText, type TablePlan } from './table-plan.ts';
import { CopyEncoder, ValueError, stripNul } from './value-codec.ts';
import { copyInto } from './chunk-tx.ts';
import { describeRowError, isRowError, recordFailures, type Failure } from './failed-rows.ts';

/**
 * Moves rows of one table from the SQLite snapshot into PostgreSQL in chunks, one transaction per chunk:
 * COPY (binary) into an ON COMMIT DROP staging table, then one statement that classifies every staged row against
 * the bookkeeping (unchanged / changed / changed on both sides), upserts the changed ones, records their hashes and
 * the table's progress. Reading the next chunk overlaps with PostgreSQL working on the previous one.
 */

export type ChunkMode = 'bulk' | 'compare';

/** A buffer that grew for a huge row is let go rather than kept for the next chunk. */
const RECYCLE_MAX_BYTES = 16 << 20;

/** Only the key is kept per row; a refused chunk is re-read from the snapshot by key (memory stays bounded). */
type PendingRow = { keyValues: unknown[]; key: string };

/** Accumulates rows, encodes them, and flushes chunks; progress fields are written with each chunk. */
export class ChunkWriter {
  private readonly ctx: RunContext;
  private readonly plan: TablePlan;
  private mode: ChunkMode;
  private readonly recoverFailed: boolean;
  private encoder: CopyEncoder;
  private rows: PendingRow[] = [];
  private failures: Failure[] = [];
  private bytesSinceYield = 0;
  private inflight: Promise<void> | undefined;
  /** The buffer behind the chunk in flight. */
  private inflightBuffer: Buffer | undefined;
  written = 0;
  /** Some rows went through the staging path (which records their hashes itself). */
  stagedSome = false;
  /** Rows of this table that could not be written in this run. */
  failed = 0;
  /** Bookkeeping of directly loaded chunks, running on the side connection. */
  private fills: Promise<void> = Promise.resolve();
  private fillError: unknown;
  /** Directly loaded chunks whose bookkeeping is recorded by the side connection. */
  filledAlongside = 0;

  constructor(ctx: RunContext, plan: TablePlan, mode: ChunkMode, recoverFailed: boolean) {
    this.ctx = ctx;
    this.plan = plan;
    this.mode = mode;
    this.recoverFailed = recoverFailed;
    this.encoder = new CopyEncoder(plan.columns, plan.kinds);
  }

  /** Adds one SQLite row; flushes when the chunk is full. `progress` is recorded with the chunk holding this row. */
  async add(values: unknown[], progress: () => ProgressUpdate): Promise<void> {
    const keyValues = this.plan.keyIndexes.map((i) => values[i]);
    const key = rowKeyText(keyValues);
    this.ctx.stats.rowsRead += 1;
    try {
      const n = this.encoder.encode(values);
      this.bytesSinceYield += n;
      this.rows.push({ keyValues, key });
    } catch (error) {
      if (!(error instanceof ValueError)) throw error;
      this.failures.push({ key, keyValues, error: error.message });
    }
    if (this.rows.length >= this.ctx.batchSize || this.encoder.size >= this.ctx.chunkBytes) {
      await this.flush(progress());
    } else if (this.bytesSinceYield >= 1 << 20) {
      this.bytesSinceYield = 0;
      if (this.ctx.signal?.aborted) {
        await this.drain();
        throw new AbortedError('sync aborted; the next run resumes where this one stopped');
      }
      await this.stopIfHoldSpent();
      await yieldToLoop();
    }
  }

  /** Sends the current chunk (waiting for the previous one first) with its progress update. */
  async flush(progress: ProgressUpdate): Promise<void> {
    await this.waitInflight();
    this.inflight = undefined;
    const rows = this.rows;
    const failures = this.failures;
    // The previous chunk is committed, so its buffer is free: encoding goes on in it (two buffers per table in all,
    // instead of a fresh one per chunk for the garbage collector to catch up with).
    const sent = this.inflightBuffer;
    this.inflightBuffer = this.encoder.current;
    const payload = this.encoder.detach(sent && sent.length <= RECYCLE_MAX_BYTES ? sent : undefined);
    this.ctx.stats.nulStripped += this.encoder.nulStripped;
    this.encoder.nulStripped = 0;
    this.rows = [];
    this.failures = [];
    if (this.ctx.signal?.aborted) throw new AbortedError('sync aborted; the next run resumes where this one stopped');
    const run = this.writeChunk(rows, payload, failures, progress);
    this.inflight = run;
    // Surface the failure on the next await even if nobody awaits this promise right away.
    run.catch(() => undefined);
    await this.stopIfHoldSpent();
  }

  /** Records hashes of a committed direct-load chunk on the side connection, overlapping the next chunk. */
  private fillAlongside(rows: PendingRow[]): void {
    const side = this.ctx.side;
    if (!side) return;
    this.filledAlongside += 1;
    const columns = this.plan.keyIndexes.map((_, i) =>
      rows.map((r) => {
        const v = r.keyValues[i];
        return typeof v === 'string' ? stripNul(v) : v === null || v === undefined ? null : String(v);
      }),
    );
    this.fills = this.fills.then(async () => {
      if (this.fillError) return;
      try {
        // Like a chunk, its commit need not wait for the WAL flush: bookkeeping a crash loses is filled in again
        // by the resumed full sync (fillBookkeeping), and the run's end is recorded with a flushed commit.
        await side.query("BEGIN; SELECT set_config('synchronous_commit', 'off', true)");
        await side.query(this.plan.sql.fillKeys, [
          this.ctx.deploymentId,
          this.plan.name,
          this.ctx.jobId,
          this.recoverFailed,
          ...columns,
        ]);
        await side.query('COMMIT');
      } catch (error) {
        this.fillError = error;
        await side.query('ROLLBACK').catch(() => undefined);
      }
    });
  }

  /** Waits for the side connection's bookkeeping; rethrows its first failure. */
  async settleFills(): Promise<void> {
    await this.fills;
    if (this.fillError) throw this.fillError;
  }

  /** Flushes what is left and waits for every chunk to be committed. */
  async finish(progress: ProgressUpdate): Promise<void> {
    if (this.rows.length > 0 || this.failures.length > 0) {
      // The last chunk carries the final progress; settle the side bookkeeping first so "done" is never early.
      const last = progress;
      const { fullSyncPending: _p, resumeKey: _r, fullSyncDone: _d, deletesChecked: _c, ...mid } = last;
      await this.flush({ ...mid, phase: 'running' });
      await this.waitInflight();
      this.inflight = undefined;
      await this.settleFills();
      await saveProgress(this.ctx.client, this.ctx.deploymentId, this.plan.name, this.ctx.jobId, last);
    } else {
      await this.settleFills();
      await this.waitInflight();
      this.inflight = undefined;
      await saveProgress(this.ctx.client, this.ctx.deploymentId, this.plan.name, this.ctx.jobId, progress);
    }
    await this.inflight;
    this.inflight = undefined;
  }

  /**
   * A file read in place past its lock budget: the chunk in flight still commits, then the run stops here and goes on
   * from a copy (LockHoldExceededError). Nothing is left running on the connection when it throws.
   */
  private async stopIfHoldSpent(): Promise<void> {
    if (!this.ctx.snapshot.holdSpent()) return;
    await this.waitInflight();
    this.inflight = undefined;
    this.ctx.snapshot.checkHold();
  }

  /** Waits for the in-flight chunk, doing lookahead reads meanwhile. */
  private async waitInflight(): Promise<void> {
    if (this.inflight) await this.ctx.lookahead.during(this.inflight);
  }

  /** Waits for the in-flight chunk without flushing (used when a run stops early). */
  async drain(): Promise<void> {
    const p = this.inflight;
    this.inflight = undefined;
    await p?.catch(() => undefined);
  }

  private async writeChunk(
    rows: PendingRow[],
    payload: Buffer,
    failures: Failure[],
    progress: ProgressUpdate,
  ): Promise<void> {
    const { client } = this.ctx;
    const staged = rows.length > 0 && !(this.mode === 'bulk' && this.plan.directCopy);
    // One round trip for BEGIN, the chunk settings and the staging table.
    await client.query(`BEGIN; ${this.ctx.txSettings}${staged ? `; ${this.plan.sql.stageDdl}` : ''}`);
    try {
      let written = 0;
      if (rows.length > 0 && this.mode === 'bulk' && this.plan.directCopy) {
        // Empty table, first load: COPY straight into it (bookkeeping is filled from it when the table is done).
        await copyInto(client, this.plan.sql.copyTarget, payload);
        written = rows.length;
        await this.bumpSequences(written);
      } else if (rows.length > 0) {
        this.stagedSome = true;
        await copyInto(client, this.plan.sql.copyStage, payload);
        written = await this.applyStage();
      }
      await recordFailures(client, this.ctx, this.plan.name, failures);
      await saveProgress(client, this.ctx.deploymentId, this.plan.name, this.ctx.jobId, progress);
      await client.query('COMMIT');
      this.account(written, failures);
      if (!staged && rows.length > 0) this.fillAlongside(rows);
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (isConnectionError(error) || !isRowError(error) || rows.length === 0) throw error;
      this.ctx.logger.warn(
        { table: this.plan.name, err: error },
        `a chunk of ${this.plan.name} was refused (${errorMessage(error)}); retrying its rows one by one`,
      );
      await this.retryRowByRow(rows, failures, progress);
    }
  }

  private account(written: number, failures: Failure[]): void {
    this.written += written;
    this.ctx.stats.rowsSynced += written;
    this.ctx.stats.rowsFailed += failures.length;
    this.failed += failures.length;
    for (const f of failures) {
      if (this.ctx.stats.failures.length < 50) {
        this.ctx.stats.failures.push({ table: this.plan.name, key: f.key, error: f.error });
      }
    }
  }

  /** Runs the classify/upsert statement over the staged rows and settles conflicts; returns rows written. */
  private async applyStage(): Promise<number> {
    const { client } = this.ctx;
    const sql = this.mode === 'bulk' ? this.plan.sql.bulk : this.plan.sql.write;
    const res = await client.query<{ written: number; conflicts: string[] }>(sql, [
      this.ctx.deploymentId,
      this.plan.name,
      this.ctx.jobId,
      this.recoverFailed,
    ]);
    const row = res.rows[0];
    let written = row?.written ?? 0;
    const conflicts = row?.conflicts ?? [];
    if (conflicts.length > 0) {
      written += await resolveChunkConflicts(client, this.ctx, this.plan, conflicts);
    }
    await this.bumpSequences(written);
    return written;
  }

  /**
   * After a direct (bulk) load: record hashes for every row of the table that has none yet, and close failed
   * rows that are now present. One pass over the table, in PostgreSQL.
   */
  async fillBookkeeping(fresh: boolean): Promise<void> {
    const { client } = this.ctx;
    await client.query('BEGIN');
    try {
      // `fresh`: the table had no bookkeeping at all, so a plain insert (no per-row existence check) is safe.
      await client.query(this.plan.sql.fillRowState, [
        this.ctx.deploymentId,
        this.plan.name,
        this.ctx.jobId,
        fresh,
        this.recoverFailed,
      ]);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  private async bumpSequences(written: number): Promise<void> {
    if (written === 0) return;
    for (const { column, sequence } of this.plan.serialColumns) {
      await this.ctx.client.query(
        `SELECT setval($1::regclass, m) FROM (SELECT max(${quoteCol(column)})::bigint AS m FROM ${this.plan.target}) x
          WHERE m IS NOT NULL AND m > (SELECT last_value FROM ${sequence})`,
        [sequence],
      );
    }
  }

  /**
   * A chunk was refused (bad JSON, a foreign key to a missing parent, …): write its rows one by one inside
   * savepoints, in passes (a child may need a parent later in the same chunk), and record the rows that still fail.
   */
  private async retryRowByRow(rows: PendingRow[], failures: Failure[], progress: ProgressUpdate): Promise<void> {
    const { client } = this.ctx;
    const allFailures = [...failures];
    let written = 0;
    this.stagedSome = true;
    await client.query(`BEGIN; ${this.ctx.txSettings}; ${this.plan.sql.stageDdl}`);
    try {
      let pending = rows;
      const lastError = new Map<string, string>();
      for (let pass = 0; pass < 5 && pending.length > 0; pass += 1) {
        const next: PendingRow[] = [];
        const byKey = this.ctx.snapshot.db.prepare(this.plan.sqlite.byKey).raw(true).safeIntegers(true);
        for (const r of pending) {
          const values = byKey.get(...r.keyValues) as unknown[] | undefined;
          if (!values) continue;
          const enc = new CopyEncoder(this.plan.columns, this.plan.kinds, 1024);
          enc.encode(values);
          await client.query('SAVEPOINT owui_row');
          try {
            await copyInto(client, this.plan.sql.copyStage, enc.take());
            written += await this.applyStage();
            await client.query(`DELETE FROM pg_temp.owui_stage`);
            await client.query('RELEASE SAVEPOINT owui_row');
          } catch (error) {
            await client.query('ROLLBACK TO SAVEPOINT owui_row');
            if (isConnectionError(error) || !isRowError(error)) throw error;
            lastError.set(r.key, describeRowError(error));
            next.push(r);
          }
        }
        if (next.length === pending.length) {
          pending = next;
          break;
        }
        pending = next;
      }
      for (const r of pending) {
        allFailures.push({
          key: r.key,
          keyValues: r.keyValues,
          error: lastError.get(r.key) ?? 'refused by PostgreSQL',
        });
      }
      await recordFailures(client, this.ctx, this.plan.name, allFailures);
      await saveProgress(client, this.ctx.deploymentId, this.plan.name, this.ctx.jobId, progress);
      await client.query('COMMIT');
      this.account(written, allFailures);
      if (pending.length > 0) {
        this.ctx.logger.warn(
          { table: this.plan.name, failed: pending.length },
          `${pending.length} row(s) of ${this.plan.name} could not be written; they are kept in sync_state.failed_rows and retried on every run`,
        );
      }
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }
}

function quoteCol(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
