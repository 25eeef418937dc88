import type { ProgressRow } from './progress.ts';
import type { TableChanges } from './change-capture.ts';
import type { RunContext } from './run-context.ts';
import { ChunkWriter } from './chunk-writer.ts';
import { cursorBind, decodeKeyValues, encodeKeyValues, rowKeyText, type TablePlan } from './table-plan.ts';
import { detectDeletes } from './tombstones.ts';

/**
 * One table's part of a run: a full pass (key order, resumable from resume_key, direct COPY into an empty table)
 * or an incremental pass (the rows change capture found), each followed by deletion detection.
 */

/** Tracks the highest (cursor, key) actually read. */
class CursorTracker {
  value: bigint | number | string | null = null;
  key: string | null = null;
  constructor(private readonly plan: TablePlan) {}
  see(values: unknown[]): void {
    if (this.plan.cursorIndex < 0) return;
    const v = values[this.plan.cursorIndex];
    if (v === null || v === undefined || Buffer.isBuffer(v)) return;
    const c = v as bigint | number | string;
    if (this.value === null || compareSqlite(c, this.value) >= 0) {
      this.value = c;
      this.key = encodeKeyValues(this.plan.keyIndexes.map((i) => values[i]));
    }
  }
  text(): string | null {
    return this.value === null ? null : String(this.value);
  }
}

/** SQLite ordering across storage classes: numbers < text. */
function compareSqlite(a: bigint | number | string, b: bigint | number | string): number {
  const num = (x: unknown) => typeof x === 'bigint' || typeof x === 'number';
  if (num(a) && num(b)) return a < b ? -1 : a > b ? 1 : 0;
  if (num(a)) return -1;
  if (num(b)) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export async function fullTable(
  ctx: RunContext,
  plan: TablePlan,
  progress: ProgressRow | undefined,
  failedKeys: unknown[][],
  report: (done: number, total: number | null) => void,
): Promise<void> {
  const resumeKey = progress?.fullSyncPending ? progress.resumeKey : null;
  const t0 = performance.now();
  const empty = await tableIsEmpty(ctx, plan);
  const writer = new ChunkWriter(ctx, plan, empty ? 'bulk' : 'compare', failedKeys.length > 0);
  const total = Number(ctx.snapshot.db.prepare(plan.sqlite.count).pluck().get());
  const cursor = new CursorTracker(plan);
  let done = resumeKey ? (progress?.rowsDone ?? 0) : 0;
  const stmt = resumeKey
    ? ctx.snapshot.db.prepare(plan.sqlite.after).raw(true).safeIntegers(true)
    : ctx.snapshot.db.prepare(plan.sqlite.all).raw(true).safeIntegers(true);
  const iter = (resumeKey ? stmt.iterate(...decodeKeyValues(resumeKey)) : stmt.iterate()) as IterableIterator<
    unknown[]
  >;
  try {
    for (const values of iter) {
      cursor.see(values);
      done += 1;
      const rowsDone = done;
      await writer.add(values, () => {
        report(rowsDone, total);
        // Resume after the last row of the chunk (encoded only for that row).
        return {
          phase: 'running',
          resumeKey: encodeKeyValues(plan.keyIndexes.map((i) => values[i])),
          rowsDone,
          rowsTotal: total,
        };
      });
    }
  } catch (e) {
    iter.return?.();
    await writer.drain();
    throw e;
  }
  // Failed rows sit before the resume point or anywhere: re-read them by key (already covered in a full scan).
  const previous = progress?.cursorValue ?? null;
  const finalCursor = resumeKey ? minCursor(previous, cursor.text()) : cursor.text();
  await writer.finish({
    phase: 'done',
    resumeKey: null,
    fullSyncPending: false,
    rowsDone: done,
    rowsTotal: total,
    cursorValue: finalCursor,
    cursorKey: finalCursor === cursor.text() ? cursor.key : (progress?.cursorKey ?? null),
    ...(finalCursor === cursor.text() ? { cursorReadAt: ctx.snapshotAt } : {}),
    fullSyncDone: true,
    // A first load into an empty table has nothing that could have been deleted since.
    ...(empty && !resumeKey ? { deletesChecked: true } : {}),
  });
  report(done, total);
  const t1 = performance.now();
  if (resumeKey) await writer.fillBookkeeping(false);
  else if (empty && plan.directCopy && writer.filledAlongside === 0) await writer.fillBookkeeping(!writer.stagedSome);
  const t2 = performance.now();
  if (!(empty && !resumeKey)) await detectDeletes(ctx, plan, { failures: writer.failed + failedKeys.length });
  ctx.logger.debug(
    {
      table: plan.name,
      rows: done,
      mode: empty ? 'bulk' : 'compare',
      loadMs: Math.round(t1 - t0),
      bookkeepingMs: Math.round(t2 - t1),
      deletesMs: Math.round(performance.now() - t2),
    },
    `full sync of ${plan.name}: ${done} rows`,
  );
}

function minCursor(a: string | null, b: string | null): string | null {
  if (a === null || b === null) return null;
  return compareSqlite(cursorBind(a), cursorBind(b)) <= 0 ? a : b;
}

async function tableIsEmpty(ctx: RunContext, plan: TablePlan): Promise<boolean> {
  const res = await ctx.client.query<{ empty: boolean }>(
    `SELECT NOT EXISTS (SELECT 1 FROM ${plan.target}) AND NOT EXISTS (
        SELECT 1 FROM sync_state.row_state WHERE deployment_id = $1::uuid AND table_name = $2::text) AS empty`,
    [ctx.deploymentId, plan.name],
  );
  return res.rows[0]?.empty ?? false;
}

/**
 * One table's part of an incremental run: the rows change capture found on changed pages (or every row, when the
 * capture could not narrow it down) are read from the snapshot and compared by content hash, and a table whose pages
 * changed is checked for deletes (counts first, key sets when they differ). Rows that failed before are retried by
 * key on every run.
 */
export async function incrementalTable(
  ctx: RunContext,
  plan: TablePlan,
  changes: TableChanges | undefined,
  failedKeys: unknown[][],
  report: (done: number, total: number | null) => void,
): Promise<void> {
  if (!changes && failedKeys.length === 0) return;
  const t0 = performance.now();
  const writer = new ChunkWriter(ctx, plan, 'compare', failedKeys.length > 0);
  const db = ctx.snapshot.db;
  let done = 0;
  const keep = () => ({ phase: 'running' as const, rowsDone: done });
  // Keys already read in this run (a row must not be staged twice in one chunk).
  const seen = failedKeys.length > 0 && !changes?.all ? new Set<string>() : undefined;
  const feed = async (iter: IterableIterator<unknown[]>) => {
    try {
      for (const values of iter) {
        done += 1;
        seen?.add(rowKeyText(plan.keyIndexes.map((i) => values[i])));
        await writer.add(values, keep);
      }
    } catch (e) {
      iter.return?.();
      await writer.drain();
      throw e;
    }
  };
  if (changes?.all) {
    await feed(db.prepare(plan.sqlite.all).raw(true).safeIntegers(true).iterate() as IterableIterator<unknown[]>);
  } else if (changes && changes.rowids.size > 0) {
    const rowids = [...changes.rowids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const stmt = db.prepare(plan.sqlite.byRowids).raw(true).safeIntegers(true);
    for (let i = 0; i < rowids.length; i += ROWIDS_PER_READ) {
      const list = `[${rowids.slice(i, i + ROWIDS_PER_READ).join(',')}]`;
      await feed(stmt.iterate(list) as IterableIterator<unknown[]>);
    }
  }
  if (seen) {
    const byKey = db.prepare(plan.sqlite.byKey).raw(true).safeIntegers(true);
    for (const k of failedKeys) {
      const values = byKey.get(...k) as unknown[] | undefined;
      if (values && !seen.has(rowKeyText(plan.keyIndexes.map((i) => values[i])))) await writer.add(values, keep);
    }
  }
  await writer.finish({ phase: 'done', rowsDone: done, ...(changes?.all ? { fullSyncDone: true } : {}) });
  report(done, null);
  // A failed row missing from the source now is settled by the key comparison (its key is no longer there).
  await detectDeletes(ctx, plan, {
    failures: writer.failed + failedKeys.length,
    removed: changes && !changes.all ? changes.removed : null,
  });
  ctx.logger.debug(
    { table: plan.name, rows: done, all: changes?.all ?? false, ms: Math.round(performance.now() - t0) },
    `incremental ${plan.name}: ${done} rows compared`,
  );
}

const ROWIDS_PER_READ = 500;
