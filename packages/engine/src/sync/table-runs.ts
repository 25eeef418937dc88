import { createHash } from 'node:crypto';
import { saveContentFingerprint, saveProgress, type ProgressRow } from './bookkeeping.ts';
import { ChunkWriter, type RunContext } from './table-sync.ts';
import { cursorBind, cursorSettled, decodeKeyValues, encodeKeyValues, type TablePlan } from './table-plan.ts';
import { detectDeletes } from './tombstones.ts';

/**
 * One table's part of a run: a full pass (key order, resumable from resume_key, direct COPY into an empty table)
 * or an incremental pass (from the table's cursor), each followed by deletion detection when it is due.
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
  if (progress?.contentFingerprint) await saveContentFingerprint(ctx.client, ctx.deploymentId, plan.name, null);
  const empty = await tableIsEmpty(ctx, plan);
  const writer = new ChunkWriter(ctx, plan, empty ? 'bulk' : 'compare', failedKeys.length > 0);
  const total = Number(ctx.snapshot.db.prepare(plan.sqlite.count).pluck().get());
  const cursor = new CursorTracker(plan);
  let done = resumeKey ? (progress?.rowsDone ?? 0) : 0;
  let lastKey: string | null = resumeKey;
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
      lastKey = encodeKeyValues(plan.keyIndexes.map((i) => values[i]));
      const snapshotKey = lastKey;
      const rowsDone = done;
      await writer.add(values, () => {
        report(rowsDone, total);
        return { phase: 'running', resumeKey: snapshotKey, rowsDone, rowsTotal: total };
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
  });
  report(done, total);
  void lastKey;
  const t1 = performance.now();
  if (resumeKey) await writer.fillBookkeeping(false);
  else if (empty && plan.directCopy && writer.filledAlongside === 0) await writer.fillBookkeeping(!writer.stagedSome);
  const t2 = performance.now();
  // A first load into an empty table has nothing that could have been deleted since.
  if (empty && !resumeKey)
    await saveProgress(ctx.client, ctx.deploymentId, plan.name, ctx.jobId, { deletesChecked: true });
  else await detectDeletes(ctx, plan, { failures: writer.failed + failedKeys.length });
  // Remember what a table without updated_at now holds (applied and checked for deletes), so the next incremental
  // run can skip it if unchanged.
  if (plan.cursorColumn === null && writer.failed === 0 && failedKeys.length === 0) {
    await saveContentFingerprint(ctx.client, ctx.deploymentId, plan.name, tableFingerprint(ctx.snapshot.db, plan));
  }
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

export async function incrementalTable(
  ctx: RunContext,
  plan: TablePlan,
  progress: ProgressRow | undefined,
  failedKeys: unknown[][],
  deletesDue: boolean,
  report: (done: number, total: number | null) => void,
): Promise<void> {
  const t0 = performance.now();
  const writer = new ChunkWriter(ctx, plan, 'compare', failedKeys.length > 0);
  const cursor = new CursorTracker(plan);
  const db = ctx.snapshot.db;
  const start = progress?.cursorValue ?? null;
  const ahead = ctx.lookahead.take(plan.name);
  let fingerprint: string | null = null;
  let done = 0;
  const keep = () => ({
    phase: 'running' as const,
    rowsDone: done,
    ...(cursor.text() !== null
      ? { cursorValue: cursor.text(), cursorKey: cursor.key, cursorReadAt: ctx.snapshotAt }
      : {}),
  });
  const feed = async (iter: IterableIterator<unknown[]>, trackCursor: boolean) => {
    try {
      for (const values of iter) {
        if (trackCursor) cursor.see(values);
        done += 1;
        await writer.add(values, keep);
      }
    } catch (e) {
      iter.return?.();
      await writer.drain();
      throw e;
    }
  };
  if (plan.cursorColumn && start !== null && progress) {
    // Nothing to read when the lookahead already found no row past the cursor in this snapshot.
    if (!(ahead && 'changed' in ahead && !ahead.changed)) {
      const read = cursorRead(progress, start);
      const stmt = db.prepare(read.after ? plan.sqlite.changedAfter : plan.sqlite.changedSince);
      await feed(
        stmt
          .raw(true)
          .safeIntegers(true)
          .iterate(...read.params) as IterableIterator<unknown[]>,
        true,
      );
    }
    // Rows whose updated_at is NULL cannot be found by the cursor; Open WebUI sets updated_at whenever it changes
    // a row, so they are compared by content hash on the same schedule as the key-set comparison (and on every
    // full sync), not on every run.
    if (deletesDue) {
      await feed(
        db.prepare(plan.sqlite.nullCursor).raw(true).safeIntegers(true).iterate() as IterableIterator<unknown[]>,
        false,
      );
    }
  } else if (plan.cursorColumn === null) {
    // No updated_at: compare every row by key and content hash, unless the table's content is exactly what the
    // last run applied (one local pass over the snapshot, no round trip per row).
    fingerprint = ahead && 'fingerprint' in ahead ? ahead.fingerprint : tableFingerprint(db, plan);
    if (fingerprint === progress?.contentFingerprint && failedKeys.length === 0) {
      // Exactly the content the last run applied and checked for deletes: nothing can have been deleted since.
      ctx.logger.debug({ table: plan.name, ms: Math.round(performance.now() - t0) }, `unchanged ${plan.name}`);
      if (deletesDue) await saveProgress(ctx.client, ctx.deploymentId, plan.name, ctx.jobId, { deletesChecked: true });
      return;
    }
    await feed(db.prepare(plan.sqlite.all).raw(true).safeIntegers(true).iterate() as IterableIterator<unknown[]>, true);
  } else {
    // Never synced incrementally: compare every row by key and content hash.
    await feed(db.prepare(plan.sqlite.all).raw(true).safeIntegers(true).iterate() as IterableIterator<unknown[]>, true);
  }
  if (failedKeys.length > 0) {
    const byKey = db.prepare(plan.sqlite.byKey).raw(true).safeIntegers(true);
    for (const k of failedKeys) {
      const values = byKey.get(...k) as unknown[] | undefined;
      if (values) await writer.add(values, keep);
    }
  }
  ctx.logger.debug(
    { table: plan.name, rows: done, ms: Math.round(performance.now() - t0) },
    `incremental ${plan.name}`,
  );
  const final = cursor.text() ?? start;
  if (done === 0 && failedKeys.length === 0 && final === start && fingerprint === null) {
    // Nothing read: leave the table's progress row as it is (saves a round trip per table).
    if (deletesDue) await detectDeletes(ctx, plan, { failures: failedKeys.length });
    return;
  }
  await writer.finish({
    phase: 'done',
    rowsDone: done,
    cursorValue: final,
    cursorKey: cursor.text() !== null ? cursor.key : (progress?.cursorKey ?? null),
    ...(cursor.text() !== null ? { cursorReadAt: ctx.snapshotAt } : {}),
  });
  report(done, null);
  // A table without updated_at whose content changed is always checked for deletes (its key set may have changed).
  if (deletesDue || fingerprint !== null) {
    await detectDeletes(ctx, plan, { failures: writer.failed + failedKeys.length });
  }
  // Only content applied without failures (and checked for deletes) is remembered; anything else is compared again.
  if (fingerprint !== null) {
    await saveContentFingerprint(ctx.client, ctx.deploymentId, plan.name, writer.failed === 0 ? fingerprint : null);
  }
  ctx.logger.debug(
    { table: plan.name, rows: done, ms: Math.round(performance.now() - t0) },
    `incremental ${plan.name} done`,
  );
}

/**
 * Which rows an incremental read starts from. Rows at exactly the cursor value are re-read while that value is
 * recent (a transaction still committing could add another row with it); once it is settled, paging continues
 * strictly after (cursor, key).
 */
function cursorRead(progress: ProgressRow, start: string): { after: boolean; params: unknown[] } {
  const readAt = progress.cursorReadAt?.getTime() ?? 0;
  const settledKey = progress.cursorKey && cursorSettled(start, readAt) ? progress.cursorKey : null;
  const bound = cursorBind(start);
  return settledKey
    ? { after: true, params: [bound, bound, ...decodeKeyValues(settledKey)] }
    : { after: false, params: [bound] };
}

/**
 * Queues, for every table of an incremental run, the snapshot reads its turn will start with: the content
 * fingerprint of a table without updated_at, or whether any row lies past the cursor (see Lookahead).
 */
export function scheduleLookahead(
  ctx: RunContext,
  plans: readonly TablePlan[],
  progress: ReadonlyMap<string, ProgressRow>,
): void {
  const db = ctx.snapshot.db;
  for (const plan of plans) {
    const p = progress.get(plan.name);
    if (plan.cursorColumn === null) {
      ctx.lookahead.schedule(plan.name, () => ({ fingerprint: tableFingerprint(db, plan) }));
    } else if (p?.cursorValue != null) {
      const start = p.cursorValue;
      ctx.lookahead.schedule(plan.name, () => {
        const read = cursorRead(p, start);
        const probe = db.prepare(read.after ? plan.sqlite.probeAfter : plan.sqlite.probeSince).safeIntegers(true);
        return { changed: probe.get(...read.params) !== undefined };
      });
    }
  }
}

/**
 * SHA-256 over every row of the table in key order, as read from this run's snapshot (values with their SQLite
 * storage class, so 1 and '1' differ). Equal fingerprints mean equal content, so the row-by-row comparison can be
 * skipped.
 */
function tableFingerprint(db: RunContext['snapshot']['db'], plan: TablePlan): string {
  const hash = createHash('sha256');
  hash.update(plan.columns.join('\u001f'));
  for (const values of db.prepare(plan.sqlite.all).raw(true).safeIntegers(true).iterate() as IterableIterator<
    unknown[]
  >) {
    for (const v of values) {
      if (v === null || v === undefined) hash.update('\u0000n');
      else if (typeof v === 'bigint') hash.update(`\u0000i${v}`);
      else if (typeof v === 'number') hash.update(`\u0000r${v}`);
      else if (Buffer.isBuffer(v)) hash.update('\u0000b').update(v);
      else hash.update(`\u0000t${String(v).length}:`).update(String(v));
    }
    hash.update('\u001e');
  }
  return hash.digest('base64');
}
