import type pg from 'pg';
import { quoteIdent, type ConflictConfig, type MergeRule, type TableStrategy } from '@owui-sync/schema';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors.ts';
import { withTransaction, type DbScope } from '../db.ts';
import type { RunContext } from './run-context.ts';
import { STAGE, keyExpression, type TablePlan } from './table-plan.ts';
import { HISTORY_INSERT, historyDataSql } from './row-history.ts';
import { readTargetSchema } from './target-schema.ts';

/**
 * Rows changed on both sides since the last sync (three-way: the staged source row differs from the source hash
 * recorded last time AND the target row differs from the target hash recorded last time AND the two differ from
 * each other). Each is settled by the table's strategy and written to conflict_log with both versions.
 */

export type Resolution = 'source' | 'target' | 'merged' | 'pending';

export function strategyFor(config: ConflictConfig, table: string): TableStrategy {
  return config.table_strategies[table] ?? { strategy: config.default_strategy };
}

type ConflictRow = {
  key: string;
  s_cmp: string | null;
  t_cmp: string | null;
  s_cols: Record<string, string | null>;
  t_cols: Record<string, string | null>;
};

/** Compares two compare-field values (integers exactly, else as text); positive when `a` is newer. */
export function compareValues(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  if (/^-?\d+$/.test(a) && /^-?\d+$/.test(b)) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x === y ? 0 : x > y ? 1 : -1;
  }
  return a > b ? 1 : -1;
}

/** Settles the conflicting keys of the staged chunk; returns how many rows were written to the target. */
export async function resolveChunkConflicts(
  client: pg.ClientBase,
  ctx: RunContext,
  plan: TablePlan,
  keys: string[],
): Promise<number> {
  const strategy = strategyFor(ctx.conflictConfig, plan.name);
  const compareField =
    strategy.compare_field && plan.columns.includes(strategy.compare_field)
      ? strategy.compare_field
      : plan.columns.includes('updated_at')
        ? 'updated_at'
        : null;
  const mergeTargets = strategy.strategy === 'merge' ? mergeTargetsFor(plan, strategy.merge_rules ?? {}) : [];
  const mergeCols = [...new Set(mergeTargets.map((m) => m.column))];
  const kS = keyExpression('s', plan.key);
  const colObj = (alias: string) =>
    mergeCols.length
      ? `json_build_object(${mergeCols.map((c) => `'${c.replaceAll("'", "''")}', ${alias}.${quoteIdent(c)}::text`).join(', ')})`
      : `'{}'::json`;
  const cmp = compareField ? quoteIdent(compareField) : null;
  const rows = await client.query<ConflictRow>(
    `SELECT ${kS} AS key, ${cmp ? `s.${cmp}::text` : 'NULL'} AS s_cmp, ${cmp ? `t.${cmp}::text` : 'NULL'} AS t_cmp,
            ${colObj('s')} AS s_cols, ${colObj('t')} AS t_cols
       FROM pg_temp.${STAGE} s JOIN ${plan.target} t ON ${plan.sql.joinStageTarget}
      WHERE ${kS} = ANY($1::text[])`,
    [keys],
  );
  const groups: Record<Resolution, string[]> = { source: [], target: [], merged: [], pending: [] };
  const merged = new Map<string, Record<string, string | null>>();
  for (const r of rows.rows) {
    const sourceNewer = compareValues(r.s_cmp, r.t_cmp) >= 0;
    switch (strategy.strategy) {
      case 'source_wins':
        groups.source.push(r.key);
        break;
      case 'target_wins':
        groups.target.push(r.key);
        break;
      case 'newest_wins':
        groups[sourceNewer ? 'source' : 'target'].push(r.key);
        break;
      case 'manual':
        groups.pending.push(r.key);
        break;
      case 'merge':
        groups.merged.push(r.key);
        merged.set(r.key, mergeRow(mergeTargets, r.s_cols, r.t_cols, sourceNewer));
        break;
    }
  }
  const snapshots = ctx.conflictConfig.resolution_log?.include_data_snapshot ?? true;
  // Manual conflicts wait in the log for a decision, so only automatic resolutions can go unlogged.
  const logResolved = ctx.conflictConfig.resolution_log?.enabled ?? true;
  let written = 0;
  for (const resolution of ['source', 'target', 'merged', 'pending'] as const) {
    const group = groups[resolution];
    if (group.length === 0) continue;
    if (resolution === 'pending' || logResolved) {
      await logConflicts(
        client,
        ctx,
        plan,
        group,
        strategy.strategy,
        resolution,
        snapshots || resolution === 'pending',
      );
    }
    if (resolution === 'source') {
      const res = await client.query<{ n: number }>(sourceWriteSql(plan), [
        ctx.deploymentId,
        plan.name,
        ctx.jobId,
        group,
      ]);
      written += res.rows[0]?.n ?? 0;
    } else if (resolution === 'merged') {
      for (const key of group) {
        await client.query(mergeWriteSql(plan, Object.keys(merged.get(key) ?? {})), [
          key,
          JSON.stringify(merged.get(key) ?? {}),
          ctx.deploymentId,
          plan.name,
          ctx.jobId,
        ]);
        written += 1;
      }
      await client.query(
        `UPDATE sync_metadata.conflict_log c SET resolved_data = x.snap
           FROM (SELECT ${kS} AS k, ${plan.sql.snapshotTarget} AS snap
                   FROM pg_temp.${STAGE} s JOIN ${plan.target} t ON ${plan.sql.joinStageTarget}
                  WHERE ${kS} = ANY($3::text[])) x
          WHERE c.job_id = $1::uuid AND c.table_name = $2::text AND c.resolution = 'merged'
            AND c.row_key = (SELECT ${plan.sql.keyJson} FROM ${plan.target} t WHERE ${keyExpression('t', plan.key)} = x.k)`,
        [ctx.jobId, plan.name, group],
      );
    }
    if (resolution !== 'pending' && resolution !== 'source') {
      await client.query(acceptHashesSql(plan), [ctx.deploymentId, plan.name, ctx.jobId, group]);
    }
    const tally = ctx.stats.conflicts;
    tally.detected += group.length;
    tally.byTable[plan.name] = (tally.byTable[plan.name] ?? 0) + group.length;
    if (resolution === 'pending') tally.pending += group.length;
    else tally.resolved[strategy.strategy] = (tally.resolved[strategy.strategy] ?? 0) + group.length;
  }
  if (strategy.notify && rows.rows.length > 0) {
    const waiting = groups.pending.length;
    ctx.logger.warn(
      { table: plan.name, conflicts: rows.rows.length, pending: waiting },
      `tenant "${ctx.clientName}": ${rows.rows.length} conflict(s) in table ${plan.name} (strategy ` +
        `${strategy.strategy}${waiting ? `, ${waiting} awaiting a decision` : ''}); review them: ` +
        `syncctl conflicts --client ${ctx.clientName}`,
    );
  }
  return written;
}

function sourceWriteSql(plan: TablePlan): string {
  const kS = keyExpression('s', plan.key);
  const cols = plan.columns.map(quoteIdent).join(', ');
  const nonKey = plan.columns.filter((c) => !plan.key.includes(c));
  const set = nonKey.length
    ? `DO UPDATE SET ${nonKey.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(', ')}`
    : 'DO NOTHING';
  const exprs = plan.columns.map((c, i) =>
    plan.kinds[i] === 'text-cast' ? `s.${quoteIdent(c)}::${plan.types[i]} AS ${quoteIdent(c)}` : `s.${quoteIdent(c)}`,
  );
  return `WITH w AS MATERIALIZED (
      SELECT ${exprs.join(', ')}, ${plan.sql.hashStage} AS __h, ${kS} AS __k
        FROM pg_temp.${STAGE} s WHERE ${kS} = ANY($4::text[])
    ), hv AS (
      ${HISTORY_INSERT}
      SELECT $1::uuid, $2::text, w.__k, now(), $3::uuid, ${plan.sql.historyData}
        FROM w JOIN ${plan.target} t ON ${plan.key.map((k) => `t.${quoteIdent(k)} = w.${quoteIdent(k)}`).join(' AND ')}
      RETURNING 1
    ), ins AS (
      INSERT INTO ${plan.target} (${cols}) SELECT ${cols} FROM w
      ON CONFLICT (${plan.key.map(quoteIdent).join(', ')}) ${set} RETURNING 1
    ), rs AS (
      INSERT INTO sync_state.row_state AS r (deployment_id, table_name, row_key, source_hash, target_hash, job_id)
      SELECT $1::uuid, $2::text, __k, __h, __h, $3::uuid FROM w
      ON CONFLICT (deployment_id, table_name, row_key) DO UPDATE
        SET source_hash = EXCLUDED.source_hash, target_hash = EXCLUDED.target_hash, deleted_at = NULL,
            job_id = EXCLUDED.job_id, updated_at = now()
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM ins)::int AS n, (SELECT count(*) FROM rs)::int AS tracked`;
}

/** After keeping the target (or merging into it): remember what each side looks like now. */
function acceptHashesSql(plan: TablePlan): string {
  const kS = keyExpression('s', plan.key);
  return `INSERT INTO sync_state.row_state AS r (deployment_id, table_name, row_key, source_hash, target_hash, job_id)
    SELECT $1::uuid, $2::text, ${kS}, ${plan.sql.hashStage}, ${plan.sql.hashTarget}, $3::uuid
      FROM pg_temp.${STAGE} s JOIN ${plan.target} t ON ${plan.sql.joinStageTarget}
     WHERE ${kS} = ANY($4::text[])
    ON CONFLICT (deployment_id, table_name, row_key) DO UPDATE
      SET source_hash = EXCLUDED.source_hash, target_hash = EXCLUDED.target_hash, job_id = EXCLUDED.job_id,
          deleted_at = NULL, updated_at = now()`;
}

function mergeWriteSql(plan: TablePlan, columns: string[]): string {
  const set = columns
    .map(
      (c) => `${quoteIdent(c)} = ($2::jsonb ->> '${c.replaceAll("'", "''")}')::${plan.types[plan.columns.indexOf(c)]}`,
    )
    .join(', ');
  // The version the merge replaces is kept in the row history first.
  return `WITH hv AS (
      ${HISTORY_INSERT}
      SELECT $3::uuid, $4::text, $1::text, now(), $5::uuid, ${plan.sql.historyData}
        FROM ${plan.target} t WHERE ${keyExpression('t', plan.key)} = $1::text RETURNING 1)
    UPDATE ${plan.target} t SET ${set} WHERE ${keyExpression('t', plan.key)} = $1::text`;
}

async function logConflicts(
  client: pg.ClientBase,
  ctx: RunContext,
  plan: TablePlan,
  keys: string[],
  strategy: string,
  resolution: Resolution,
  withData: boolean,
): Promise<void> {
  const kS = keyExpression('s', plan.key);
  const from = `FROM pg_temp.${STAGE} s JOIN ${plan.target} t ON ${plan.sql.joinStageTarget}
      LEFT JOIN sync_state.row_state r ON r.deployment_id = $2::uuid AND r.table_name = $4::text AND r.row_key = ${kS}
     WHERE ${kS} = ANY($7::text[])`;
  if (resolution === 'pending') {
    // One open entry per row: refresh it instead of piling up duplicates run after run.
    await client.query(
      `UPDATE sync_metadata.conflict_log c
          SET source_data = x.sd, target_data = x.td, job_id = $3::uuid, detected_at = now()
         FROM (SELECT ${plan.sql.keyJson} AS rk, ${plan.sql.snapshotStage} AS sd, ${plan.sql.snapshotTarget} AS td
                 ${from}) x
        WHERE c.deployment_id = $2::uuid AND c.table_name = $4::text AND c.resolved_at IS NULL AND c.row_key = x.rk
          AND $1::text IS NOT NULL AND $5::text IS NOT NULL AND $6::text IS NOT NULL`,
      [ctx.clientName, ctx.deploymentId, ctx.jobId, plan.name, strategy, resolution, keys],
    );
  }
  await client.query(
    `INSERT INTO sync_metadata.conflict_log
       (client_id, deployment_id, job_id, table_name, row_key, conflict_type, source_data, target_data, base_hash,
        resolution_strategy, resolution, resolved_at, resolved_by)
     SELECT $1::text, $2::uuid, $3::uuid, $4::text, ${plan.sql.keyJson}, 'update_update',
            CASE WHEN $8::boolean THEN ${plan.sql.snapshotStage} END,
            CASE WHEN $8::boolean THEN ${plan.sql.snapshotTarget} END,
            r.target_hash::text, $5::text, $6::text,
            CASE WHEN $6::text = 'pending' THEN NULL ELSE now() END,
            CASE WHEN $6::text = 'pending' THEN NULL ELSE 'automatic' END
       ${from}
        AND NOT ($6::text = 'pending' AND EXISTS (
              SELECT 1 FROM sync_metadata.conflict_log c
               WHERE c.deployment_id = $2::uuid AND c.table_name = $4::text AND c.resolved_at IS NULL
                 AND c.row_key = ${plan.sql.keyJson}))`,
    [ctx.clientName, ctx.deploymentId, ctx.jobId, plan.name, strategy, resolution, keys, withData],
  );
}

type MergeTarget = { rule: MergeRule; column: string; path: string | null };

/** Rule keys name a column, `column.key` inside a JSON column, or a top-level key of one of the JSON columns. */
function mergeTargetsFor(plan: TablePlan, rules: Record<string, MergeRule>): MergeTarget[] {
  const out: MergeTarget[] = [];
  const jsonCols = plan.columns.filter((c, i) => plan.types[i] === 'json' || plan.types[i] === 'text');
  for (const [name, rule] of Object.entries(rules)) {
    if (plan.columns.includes(name)) {
      if (!plan.key.includes(name)) out.push({ rule, column: name, path: null });
      continue;
    }
    const dot = name.indexOf('.');
    if (dot > 0 && plan.columns.includes(name.slice(0, dot))) {
      out.push({ rule, column: name.slice(0, dot), path: name.slice(dot + 1) });
      continue;
    }
    // e.g. "messages" for chat: a key inside the `chat` JSON body.
    const host = plan.name === 'chat' && jsonCols.includes('chat') ? 'chat' : jsonCols.find((c) => c !== 'id');
    if (host && name !== 'metadata') out.push({ rule, column: host, path: name });
    else if (name === 'metadata' && plan.columns.includes('meta')) out.push({ rule, column: 'meta', path: null });
  }
  return out;
}

function parseJson(text: string | null | undefined): { ok: boolean; value: unknown } {
  if (text === null || text === undefined) return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, value: undefined };
  }
}

function identity(item: unknown): string {
  if (item && typeof item === 'object' && !Array.isArray(item) && 'id' in item) {
    return `id:${JSON.stringify((item as { id: unknown }).id)}`;
  }
  return JSON.stringify(item);
}

/** Applies one merge rule to a target and a source value. */
export function combine(rule: MergeRule, target: unknown, source: unknown, sourceNewer: boolean): unknown {
  if (source === undefined) return target;
  if (target === undefined) return source;
  if (Array.isArray(target) && Array.isArray(source)) {
    const seen = new Set<string>();
    const out: unknown[] = [];
    const base = rule === 'union' ? target.filter((x) => !seen.has(identity(x)) && seen.add(identity(x))) : [...target];
    if (rule !== 'union') for (const x of target) seen.add(identity(x));
    out.push(...base);
    for (const x of source) {
      const id = identity(x);
      if (!seen.has(id)) {
        seen.add(id);
        out.push(x);
      }
    }
    return out;
  }
  const isObj = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (rule !== 'newest_wins' && isObj(target) && isObj(source)) {
    const t = target as Record<string, unknown>;
    const s = source as Record<string, unknown>;
    const out: Record<string, unknown> = { ...t };
    for (const [k, v] of Object.entries(s)) {
      if (!(k in out)) out[k] = v;
      else out[k] = combine(rule, out[k], v, sourceNewer);
    }
    return out;
  }
  return sourceNewer ? source : target;
}

/** Merged values (as column text) for the merge-rule columns; everything else keeps the target's value. */
export function mergeRow(
  targets: MergeTarget[],
  s: Record<string, string | null>,
  t: Record<string, string | null>,
  sourceNewer: boolean,
): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  const current = (col: string) => (col in out ? out[col] : t[col]) ?? null;
  for (const m of targets) {
    const tText = current(m.column);
    const sText = s[m.column] ?? null;
    if (m.path === null) {
      const tj = parseJson(tText);
      const sj = parseJson(sText);
      if (tj.ok && sj.ok && (typeof tj.value === 'object' || typeof sj.value === 'object')) {
        const v = combine(m.rule, tj.value, sj.value, sourceNewer);
        out[m.column] = v === undefined ? null : JSON.stringify(v);
      } else {
        out[m.column] = sourceNewer ? sText : tText;
      }
      continue;
    }
    const tj = parseJson(tText);
    const sj = parseJson(sText);
    if (!tj.ok || !sj.ok || typeof tj.value !== 'object' || tj.value === null) continue;
    const tObj = { ...(tj.value as Record<string, unknown>) };
    const sObj = (sj.value ?? {}) as Record<string, unknown>;
    tObj[m.path] = combine(m.rule, tObj[m.path], sObj[m.path], sourceNewer);
    out[m.column] = JSON.stringify(tObj);
  }
  return out;
}

/**
 * Applies a person's decision to a conflict_log row: keep the source version, keep the target version, or write
 * supplied data (same shape as source_data: json columns as their JSON text). Records resolution, resolved_by and
 * resolved_at, and updates the bookkeeping so the next sync neither re-raises the conflict nor undoes the choice.
 */
/**
 * A merged row may only name columns of the table, must keep the conflict's key, and must set at least one column
 * that is not part of the key:
 * anything else would close the conflict as "merged" with the name of a column silently ignored.
 */
function assertMergeColumns(
  logId: number,
  table: string,
  target: { columns: readonly { name: string }[]; key: readonly string[] },
  data: Record<string, unknown>,
  rowKey: Record<string, unknown>,
): void {
  const names = new Set(target.columns.map((c) => c.name));
  const unknown = Object.keys(data).filter((k) => !names.has(k));
  if (unknown.length > 0) {
    throw new InvalidInputError(
      `table ${table} has no column ${unknown.map((k) => JSON.stringify(k)).join(', ')}; conflict ${logId} was left ` +
        `open and nothing was written (columns: ${[...names].join(', ')})`,
      { unknownColumns: unknown },
    );
  }
  const moved = target.key.filter((k) => k in data && data[k] !== null && String(data[k]) !== String(rowKey[k]));
  if (moved.length > 0) {
    throw new InvalidInputError(
      `the merged row names another row than conflict ${logId} (${moved
        .map((k) => `${k} ${JSON.stringify(data[k])} instead of ${JSON.stringify(rowKey[k])}`)
        .join(', ')}); a resolution cannot change the key — leave the key out of data; the conflict was left open`,
    );
  }
  if (!Object.keys(data).some((k) => !target.key.includes(k))) {
    throw new InvalidInputError(
      `the merged row for conflict ${logId} sets no column besides the key (${target.key.join(', ')}); give the ` +
        'columns to write, or keep "source" or "target"; the conflict was left open',
    );
  }
}

export async function resolveConflict(opts: {
  pool: pg.Pool;
  scope: DbScope;
  logId: number;
  keep?: 'source' | 'target';
  data?: Record<string, unknown>;
  resolvedBy: string;
}): Promise<{ logId: number; resolution: 'source' | 'target' | 'merged' }> {
  if ((opts.keep === undefined) === (opts.data === undefined)) {
    throw new InvalidInputError('give exactly one of keep ("source" or "target") or data (the merged row)');
  }
  if (!opts.resolvedBy.trim()) throw new InvalidInputError('resolvedBy must name who resolved the conflict');
  return withTransaction(
    opts.pool,
    async (client) => {
      const res = await client.query<{
        deployment_id: string;
        table_name: string;
        row_key: Record<string, unknown>;
        resolved_at: Date | null;
        resolved_by: string | null;
        schema_name: string;
        has_source: boolean;
      }>(
        `SELECT c.deployment_id, c.table_name, c.row_key, c.resolved_at, c.resolved_by, d.schema_name,
                c.source_data IS NOT NULL AS has_source
           FROM sync_metadata.conflict_log c
           JOIN sync_metadata.client_deployments d ON d.deployment_id = c.deployment_id
          WHERE c.log_id = $1::bigint FOR UPDATE OF c`,
        [opts.logId],
      );
      const row = res.rows[0];
      if (!row) throw new NotFoundError(`conflict ${opts.logId} does not exist (or belongs to another cluster)`);
      if (row.resolved_at) {
        throw new ConflictError(
          `conflict ${opts.logId} was already resolved by ${row.resolved_by ?? 'someone'} at ${row.resolved_at.toISOString()}`,
        );
      }
      const target = (await readTargetSchema(client, row.schema_name)).tables.get(row.table_name);
      if (!target || target.key.length === 0) {
        throw new NotFoundError(
          `table ${row.table_name} of conflict ${opts.logId} no longer exists in ${row.schema_name}`,
        );
      }
      if (opts.data) assertMergeColumns(opts.logId, row.table_name, target, opts.data, row.row_key);
      const t = `${quoteIdent(row.schema_name)}.${quoteIdent(row.table_name)}`;
      const types = new Map(target.columns.map((c) => [c.name, c.type]));
      const typed = (src: string, c: string) => `(${src} ->> '${c.replaceAll("'", "''")}')::${types.get(c)}`;
      const hashOf = (src: string) =>
        `hash_record_extended(ROW(${target.columns
          .map((c) => (c.type === 'json' ? `${typed(src, c.name)}::text` : typed(src, c.name)))
          .join(', ')}), 0)`;
      const tHash = `hash_record_extended(ROW(${target.columns
        .map((c) => (c.type === 'json' ? `t.${quoteIdent(c.name)}::text` : `t.${quoteIdent(c.name)}`))
        .join(', ')}), 0)`;
      const keyMatch = target.key.map((k) => `t.${quoteIdent(k)} = ${typed('$2::jsonb', k)}`).join(' AND ');
      const resolution: 'source' | 'target' | 'merged' = opts.data ? 'merged' : (opts.keep as 'source' | 'target');
      let written: Record<string, unknown> | null = null;
      if (resolution !== 'target') {
        if (resolution === 'source' && !row.has_source) {
          throw new ConflictError(
            `conflict ${opts.logId} has no source snapshot to keep; keep the target or supply data`,
          );
        }
        const dataParam =
          resolution === 'source'
            ? `(SELECT source_data FROM sync_metadata.conflict_log WHERE log_id = $1::bigint)`
            : '$3::jsonb';
        const cols = target.columns.filter((c) => resolution === 'source' || (opts.data && c.name in opts.data));
        const set = cols
          .filter((c) => !target.key.includes(c.name))
          .map((c) => `${quoteIdent(c.name)} = ${typed('d.v', c.name)}`);
        if (set.length > 0) {
          // The version a person's decision replaces is kept in the row history too (no run: no job id).
          await client.query(
            `${HISTORY_INSERT}
             SELECT $3::uuid, $4::text, ${keyExpression('t', target.key)}, now(), NULL,
                    ${historyDataSql(
                      't',
                      target.columns.map((c) => c.name),
                      target.columns.map((c) => c.type),
                    )}
               FROM ${t} t WHERE ${keyMatch} AND $1::bigint IS NOT NULL`,
            [opts.logId, row.row_key, row.deployment_id, row.table_name],
          );
          await client.query(
            `UPDATE ${t} t SET ${set.join(', ')} FROM (SELECT ${dataParam} AS v) d WHERE ${keyMatch} AND $1::bigint IS NOT NULL`,
            resolution === 'source' ? [opts.logId, row.row_key] : [opts.logId, row.row_key, JSON.stringify(opts.data)],
          );
        }
        written = resolution === 'merged' ? (opts.data ?? null) : null;
      }
      await client.query(
        `INSERT INTO sync_state.row_state AS r (deployment_id, table_name, row_key, source_hash, target_hash)
         SELECT $3::uuid, $4::text, ${keyExpression('t', target.key)},
                CASE WHEN c.source_data IS NULL THEN NULL ELSE ${hashOf('c.source_data')} END, ${tHash}
           FROM ${t} t, sync_metadata.conflict_log c
          WHERE c.log_id = $1::bigint AND ${keyMatch}
         ON CONFLICT (deployment_id, table_name, row_key) DO UPDATE
           SET source_hash = coalesce(EXCLUDED.source_hash, r.source_hash), target_hash = EXCLUDED.target_hash,
               updated_at = now()`,
        [opts.logId, row.row_key, row.deployment_id, row.table_name],
      );
      await client.query(
        `UPDATE sync_metadata.conflict_log
            SET resolution = $2::text, resolved_at = now(), resolved_by = $3::text,
                resolved_data = CASE WHEN $2::text = 'source' THEN source_data
                                     WHEN $2::text = 'target' THEN target_data ELSE $4::jsonb END
          WHERE log_id = $1::bigint`,
        [opts.logId, resolution, opts.resolvedBy, written === null ? null : JSON.stringify(written)],
      );
      return { logId: opts.logId, resolution };
    },
    opts.scope,
  );
}
