import { qualified, quoteIdent } from '@owui-sync/schema';
import type { SqliteTable } from './sqlite-reader.ts';
import type { TargetTable } from './target-schema.ts';
import { HISTORY_INSERT, historyChangesSql, historyDataSql, keyFromTextSql } from './row-history.ts';
import { kindForType, type ValueKind } from './value-codec.ts';

/**
 * Everything a run needs to move one table: the synced columns (target order, present on both sides), how each
 * value is encoded, the row key, the incremental cursor column, and the SQL built once per table. Identifiers only
 * ever go through quoteIdent/qualified; values are always parameters or COPY data.
 */
export type TablePlan = {
  readonly name: string;
  readonly schemaName: string;
  readonly target: string;
  readonly columns: readonly string[];
  readonly types: readonly string[];
  readonly kinds: readonly ValueKind[];
  readonly key: readonly string[];
  readonly keyIndexes: readonly number[];
  readonly cursorColumn: string | null;
  readonly cursorIndex: number;
  readonly serialColumns: readonly { column: string; sequence: string }[];
  /** Every column can be sent to the target table as is (no text-staged casts): bulk loads COPY directly. */
  readonly directCopy: boolean;
  readonly sqlite: {
    readonly all: string;
    readonly after: string;
    /** Rows by rowid (parameter: a JSON array of rowids). */
    readonly byRowids: string;
    readonly byKey: string;
    /** Whether a row with this key exists (same parameters as byKey). */
    readonly keyExists: string;
    readonly keys: string;
    readonly count: string;
  };
  readonly sql: {
    readonly stageDdl: string;
    readonly copyStage: string;
    readonly copyTarget: string;
    readonly fillRowState: string;
    readonly fillKeys: string;
    readonly write: string;
    readonly bulk: string;
    readonly keysDdl: string;
    readonly copyKeys: string;
    readonly tombstone: string;
    /** Tombstones the live rows whose keys are $4 (text[]), keeping their last versions in the history. */
    readonly tombstoneKeys: string;
    /** The target row `t` as row history data (see row-history.ts). */
    readonly historyData: string;
    readonly rowKeyOfStage: string;
    readonly snapshotStage: string;
    readonly snapshotTarget: string;
    readonly keyJson: string;
    readonly joinStageTarget: string;
    readonly hashTarget: string;
    readonly hashStage: string;
  };
};

export const STAGE = 'owui_stage';
/** Text values longer than this (in bytes) are read from SQLite as bytes. */
const LONG_TEXT_BYTES = 1024;
export const KEYS = 'owui_keys';

const sq = (name: string) => `"${name.replaceAll('"', '""')}"`;

function stageType(type: string, kind: ValueKind): string {
  return kind === 'text-cast' ? 'text' : type;
}

/** `(expr)::text` for the row key; composite keys are joined with U+001F. */
export function keyExpression(alias: string, key: readonly string[]): string {
  if (key.length === 1) return `(${alias}.${quoteIdent(key[0] as string)})::text`;
  return `concat_ws(chr(31), ${key.map((k) => `${alias}.${quoteIdent(k)}::text`).join(', ')})`;
}

/** JS twin of keyExpression for values read from SQLite. */
export function rowKeyText(values: readonly unknown[]): string {
  return values.map((v) => (typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v))).join('\u001f');
}

/** A name that reaches the rowid of `table` (a column may be called rowid itself). */
function rowidName(table: SqliteTable): string {
  const names = new Set(table.columns.map((c) => c.name.toLowerCase()));
  return ['rowid', '_rowid_', 'oid'].find((n) => !names.has(n)) ?? 'rowid';
}

export function buildPlan(schemaName: string, target: TargetTable, source: SqliteTable): TablePlan {
  const sourceCols = new Set(source.columns.map((c) => c.name));
  const cols = target.columns.filter((c) => sourceCols.has(c.name));
  const columns = cols.map((c) => c.name);
  const types = cols.map((c) => c.type);
  const kinds = types.map(kindForType);
  const key = [...target.key];
  const keyIndexes = key.map((k) => columns.indexOf(k));
  const t = qualified(schemaName, target.name);
  const cursorColumn =
    columns.includes('updated_at') && ['bigint', 'integer'].includes(types[columns.indexOf('updated_at')] ?? '')
      ? 'updated_at'
      : null;
  const st = sq(source.name);
  const selectList = columns.map(sq).join(', ');
  // Reads of changed rows take long text values as their UTF-8 bytes, copied into the COPY stream as they are (see
  // CopyEncoder): no decoding into JavaScript strings and encoding back, much cheaper for chat bodies. Short
  // values stay strings, which is cheaper for them; keys and the cursor are always read as stored. Whole-table scans
  // (full syncs) keep strings: there PostgreSQL sets the pace, and short-lived strings keep peak memory lower than
  // byte buffers freed only when the garbage collector gets to them.
  const changedValues = columns
    .map((c, i) =>
      (kinds[i] === 'text' || kinds[i] === 'json') && !key.includes(c) && c !== cursorColumn
        ? `CASE WHEN octet_length(${sq(c)}) > ${LONG_TEXT_BYTES} AND typeof(${sq(c)}) = 'text' ` +
          `THEN CAST(${sq(c)} AS BLOB) ELSE ${sq(c)} END`
        : sq(c),
    )
    .join(', ');
  // One character per column, '1' where the stored value is a BLOB: long text read as bytes and a real BLOB then
  // look alike, and a BLOB in a text column cannot be kept exactly (see CopyEncoder).
  const textLike = (i: number) => kinds[i] === 'text' || kinds[i] === 'json' || kinds[i] === 'text-cast';
  const blobMask = columns.some((_, i) => textLike(i))
    ? columns
        .map((c, i) => (textLike(i) ? `(CASE WHEN typeof(${sq(c)}) = 'blob' THEN '1' ELSE '0' END)` : "'0'"))
        .join(' || ')
    : null;
  const changedList = blobMask ? `${changedValues}, ${blobMask}` : changedValues;
  const keyList = key.map(sq).join(', ');
  const keyParams = key.map(() => '?').join(', ');
  const keyTuple = key.length === 1 ? keyList : `(${keyList})`;
  const keyParamTuple = key.length === 1 ? '?' : `(${keyParams})`;

  // Cast from the staged column to the target type (only text-staged kinds need one).
  const castOf = (alias: string, i: number) => {
    const c = `${alias}.${quoteIdent(columns[i] as string)}`;
    return kinds[i] === 'text-cast' ? `${c}::${types[i]}` : c;
  };
  const hashArg = (expr: string, i: number) => (types[i] === 'json' ? `(${expr})::text` : expr);
  const stageExprs = columns.map((_, i) => castOf('s', i));
  const targetExprs = columns.map((c) => `t.${quoteIdent(c)}`);
  const hashStage = `hash_record_extended(ROW(${stageExprs.map(hashArg).join(', ')}), 0)`;
  const hashTarget = `hash_record_extended(ROW(${targetExprs.map(hashArg).join(', ')}), 0)`;
  const colList = columns.map(quoteIdent).join(', ');
  const srcCols = columns.map((c, i) => `${stageExprs[i]} AS ${quoteIdent(c)}`).join(', ');
  const joinOn = key.map((k) => `t.${quoteIdent(k)} = src.${quoteIdent(k)}`).join(' AND ');
  const joinStageTarget = key.map((k) => `t.${quoteIdent(k)} = s.${quoteIdent(k)}`).join(' AND ');
  const nonKey = columns.filter((c) => !key.includes(c));
  const updateSet = nonKey.length
    ? `DO UPDATE SET ${nonKey.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(', ')}`
    : 'DO NOTHING';
  const onConflict = key.length ? `ON CONFLICT (${key.map(quoteIdent).join(', ')}) ${updateSet}` : '';
  const snapshot = (alias: string) =>
    `jsonb_build_object(${columns
      .map((c, i) => {
        const e = alias === 's' ? castOf('s', i) : `${alias}.${quoteIdent(c)}`;
        return `${quoteLiteralIdent(c)}, ${types[i] === 'json' ? `(${e})::text` : e}`;
      })
      .join(', ')})`;
  const rowState = `INSERT INTO sync_state.row_state AS r
        (deployment_id, table_name, row_key, source_hash, target_hash, deleted_at, deleted_job_id, job_id, updated_at)
      SELECT $1::uuid, $2::text, w.__k, w.__h, w.__h, NULL, NULL, $3::uuid, now() FROM w
      ON CONFLICT (deployment_id, table_name, row_key) DO UPDATE
        SET source_hash = EXCLUDED.source_hash, target_hash = EXCLUDED.target_hash, deleted_at = NULL,
            deleted_job_id = NULL, job_id = EXCLUDED.job_id, updated_at = now()`;
  const resolveFailed = `UPDATE sync_state.failed_rows f SET resolved_at = now()
      WHERE $4::boolean AND f.deployment_id = $1::uuid AND f.table_name = $2::text AND f.resolved_at IS NULL
        AND f.row_key IN (SELECT w.__k FROM w)`;

  // What each written row was before this statement (CTEs see the table as it was): the old values of the columns
  // the update changes (an update that changes nothing is not kept), or nothing (an insert; a re-insert after a
  // delete, whose last version the tombstone already kept whole).
  const history = `${HISTORY_INSERT}
      SELECT $1::uuid, $2::text, x.k, now(), $3::uuid, x.d FROM (
        SELECT w.__k AS k, (w.__present AND w.__del IS NULL) AS upd,
               CASE WHEN w.__present AND w.__del IS NULL THEN ${historyChangesSql('o', 'w', columns, types)} END AS d
          FROM w LEFT JOIN ${t} o ON ${key.map((k) => `o.${quoteIdent(k)} = w.${quoteIdent(k)}`).join(' AND ')}) x
       WHERE NOT x.upd OR x.d <> '{}'::jsonb`;

  const write = `WITH src AS MATERIALIZED (
      SELECT ${srcCols}, ${hashStage} AS __h, ${keyExpression('s', key)} AS __k FROM pg_temp.${STAGE} s
    ), cls AS MATERIALIZED (
      SELECT src.*, r.deleted_at AS __del, coalesce(tt.__present, false) AS __present, CASE
          WHEN r.source_hash = src.__h AND r.deleted_at IS NULL AND tt.__present THEN 'same'
          WHEN r.target_hash IS NOT NULL AND tt.__present AND tt.__th <> r.target_hash AND tt.__th <> src.__h
            THEN 'conflict'
          ELSE 'write' END AS __c
        FROM src
        LEFT JOIN LATERAL (
          -- One index probe per staged row (LIMIT keeps the planner from hashing the table's whole bookkeeping).
          SELECT r.source_hash, r.target_hash, r.deleted_at FROM sync_state.row_state r
           WHERE r.deployment_id = $1::uuid AND r.table_name = $2::text AND r.row_key = src.__k LIMIT 1
        ) r ON true
        LEFT JOIN LATERAL (
          SELECT true AS __present,
                 CASE WHEN r.source_hash IS DISTINCT FROM src.__h THEN ${hashTarget} END AS __th
            FROM ${t} t WHERE ${joinOn}
        ) tt ON true
    ), w AS MATERIALIZED (SELECT * FROM cls WHERE __c = 'write'),
    ins AS (
      INSERT INTO ${t} AS t (${colList}) SELECT ${colList} FROM w ${onConflict} RETURNING 1
    ), rs AS (${rowState} RETURNING 1),
    fr AS (${resolveFailed} RETURNING 1),
    hv AS (${history} RETURNING 1)
    SELECT (SELECT count(*) FROM ins)::int AS written, (SELECT count(*) FROM w)::int AS changed,
           (SELECT count(*) FROM cls WHERE __c = 'same')::int AS same,
           (SELECT count(*) FROM rs)::int AS tracked, (SELECT count(*) FROM fr)::int AS recovered,
           coalesce((SELECT json_agg(__k) FROM cls WHERE __c = 'conflict'), '[]'::json) AS conflicts`;

  // First load of an empty table: nothing to compare against, so insert straight through.
  const bulk = `WITH w AS MATERIALIZED (
      SELECT ${srcCols}, ${hashStage} AS __h, ${keyExpression('s', key)} AS __k FROM pg_temp.${STAGE} s
    ), ins AS (INSERT INTO ${t} (${colList}) SELECT ${colList} FROM w ${onConflict} RETURNING 1),
    rs AS (${rowState} RETURNING 1),
    fr AS (${resolveFailed} RETURNING 1)
    SELECT (SELECT count(*) FROM ins)::int AS written, (SELECT count(*) FROM w)::int AS changed, 0 AS same,
           (SELECT count(*) FROM rs)::int AS tracked, (SELECT count(*) FROM fr)::int AS recovered,
           '[]'::json AS conflicts`;

  const keyCols = key.map((k) => ({
    name: k,
    type: types[columns.indexOf(k)] ?? 'text',
    kind: kinds[columns.indexOf(k)] ?? 'text',
  }));
  // A tombstone keeps the row's last version in the history (the backup table keeps it too, until purged).
  const keyTypes = key.map((k) => types[columns.indexOf(k)] ?? 'text');
  const keepDeleted = `hv AS (${HISTORY_INSERT}
      SELECT $1::uuid, $2::text, d.row_key, now(), $3::uuid, ${historyDataSql('o', columns, types)}
        FROM d JOIN ${t} o ON ${keyFromTextSql('o', key, keyTypes, 'd.row_key')} RETURNING 1)`;
  const tombstone = `WITH d AS (UPDATE sync_state.row_state r
        SET deleted_at = now(), deleted_job_id = $3::uuid, updated_at = now()
      WHERE r.deployment_id = $1::uuid AND r.table_name = $2::text AND r.deleted_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM pg_temp.${KEYS} k WHERE ${keyExpression('k', key)} = r.row_key)
      RETURNING r.row_key), ${keepDeleted}
    SELECT d.row_key FROM d`;
  const tombstoneKeys = `WITH d AS (UPDATE sync_state.row_state r
        SET deleted_at = now(), deleted_job_id = $3::uuid, updated_at = now()
      WHERE r.deployment_id = $1::uuid AND r.table_name = $2::text AND r.deleted_at IS NULL
        AND r.row_key = ANY($4::text[])
      RETURNING r.row_key), ${keepDeleted}
    SELECT d.row_key FROM d`;

  return {
    name: target.name,
    schemaName,
    target: t,
    columns,
    types,
    kinds,
    key,
    keyIndexes,
    cursorColumn,
    cursorIndex: cursorColumn ? columns.indexOf(cursorColumn) : -1,
    directCopy: !kinds.includes('text-cast'),
    serialColumns: cols
      .filter((c) => c.serialSequence !== null)
      .map((c) => ({ column: c.name, sequence: c.serialSequence as string })),
    sqlite: {
      all: `SELECT ${selectList} FROM ${st} ORDER BY ${keyList}`,
      after: `SELECT ${selectList} FROM ${st} WHERE ${keyTuple} > ${keyParamTuple} ORDER BY ${keyList}`,
      byRowids: `SELECT ${changedList} FROM ${st} WHERE ${rowidName(source)} IN (SELECT value FROM json_each(?))`,
      byKey: `SELECT ${changedList} FROM ${st} WHERE ${key.map((k) => `${sq(k)} = ?`).join(' AND ')}`,
      keyExists: `SELECT 1 FROM ${st} WHERE ${key.map((k) => `${sq(k)} = ?`).join(' AND ')} LIMIT 1`,
      keys: `SELECT ${keyList} FROM ${st}`,
      count: `SELECT count(*) FROM ${st}`,
    },
    sql: {
      stageDdl: `CREATE TEMP TABLE ${STAGE} (${columns
        .map((c, i) => `${quoteIdent(c)} ${stageType(types[i] as string, kinds[i] as ValueKind)}`)
        .join(', ')}) ON COMMIT DROP`,
      copyStage: `COPY pg_temp.${STAGE} (${colList}) FROM STDIN (FORMAT binary)`,
      copyTarget: `COPY ${t} (${colList}) FROM STDIN (FORMAT binary)`,
      fillRowState: `WITH w AS MATERIALIZED (
          SELECT ${keyExpression('t', key)} AS __k, ${hashTarget} AS __h FROM ${t} t
        ), rs AS (
          INSERT INTO sync_state.row_state (deployment_id, table_name, row_key, source_hash, target_hash, job_id)
          SELECT $1::uuid, $2::text, w.__k, w.__h, w.__h, $3::uuid FROM w
           WHERE $4::boolean OR NOT EXISTS (
             SELECT 1 FROM sync_state.row_state r
              WHERE r.deployment_id = $1::uuid AND r.table_name = $2::text AND r.row_key = w.__k)
          RETURNING 1
        )
        UPDATE sync_state.failed_rows f SET resolved_at = now()
         WHERE $5::boolean AND f.deployment_id = $1::uuid AND f.table_name = $2::text AND f.resolved_at IS NULL
           AND f.row_key IN (SELECT __k FROM w) AND (SELECT count(*) FROM rs) >= 0`,
      // One index probe per key: with a join the planner may merge the keys with the whole key index (or hash the
      // whole table), a cost that grows with every chunk already loaded.
      fillKeys: `WITH w AS MATERIALIZED (
          SELECT ${keyExpression('t', key)} AS __k, ${hashTarget} AS __h
            FROM unnest(${keyCols.map((k, i) => `$${i + 5}::${k.type}[]`).join(', ')}) AS u(${key.map((_, i) => `k${i}`).join(', ')})
            CROSS JOIN LATERAL (
              SELECT * FROM ${t} t WHERE ${key.map((k, i) => `t.${quoteIdent(k)} = u.k${i}`).join(' AND ')} LIMIT 1
            ) t
        ), rs AS (
          INSERT INTO sync_state.row_state (deployment_id, table_name, row_key, source_hash, target_hash, job_id)
          SELECT $1::uuid, $2::text, w.__k, w.__h, w.__h, $3::uuid FROM w RETURNING 1
        )
        UPDATE sync_state.failed_rows f SET resolved_at = now()
         WHERE $4::boolean AND f.deployment_id = $1::uuid AND f.table_name = $2::text AND f.resolved_at IS NULL
           AND f.row_key IN (SELECT __k FROM w) AND (SELECT count(*) FROM rs) >= 0`,
      write,
      bulk,
      keysDdl: `CREATE TEMP TABLE ${KEYS} (${keyCols
        .map((k) => `${quoteIdent(k.name)} ${stageType(k.type, k.kind)}`)
        .join(', ')}) ON COMMIT DROP`,
      copyKeys: `COPY pg_temp.${KEYS} (${key.map(quoteIdent).join(', ')}) FROM STDIN (FORMAT binary)`,
      tombstone,
      tombstoneKeys,
      historyData: historyDataSql('t', columns, types),
      rowKeyOfStage: keyExpression('s', key),
      snapshotStage: snapshot('s'),
      snapshotTarget: snapshot('t'),
      keyJson: `jsonb_build_object(${key.map((k) => `${quoteLiteralIdent(k)}, t.${quoteIdent(k)}`).join(', ')})`,
      joinStageTarget,
      hashTarget,
      hashStage,
    },
  };
}

/** A column name as a SQL string literal (for jsonb_build_object keys). */
function quoteLiteralIdent(name: string): string {
  return `'${name.replaceAll("'", "''")}'`;
}

/** Key values ↔ text that keeps their SQLite storage class (so a resumed scan binds integers as integers). */
export function encodeKeyValues(values: readonly unknown[]): string {
  return JSON.stringify(
    values.map((v) =>
      typeof v === 'bigint'
        ? ['i', v.toString()]
        : typeof v === 'number'
          ? ['r', v]
          : Buffer.isBuffer(v)
            ? ['b', v.toString('base64')]
            : ['s', v],
    ),
  );
}

export function decodeKeyValues(text: string): unknown[] {
  const parsed = JSON.parse(text) as [string, unknown][];
  return parsed.map(([t, v]) => (t === 'i' ? BigInt(v as string) : t === 'b' ? Buffer.from(v as string, 'base64') : v));
}

/** Cursor text → SQLite bind value (integers as BigInt so 19-digit values compare exactly). */
export function cursorBind(value: string): bigint | number | string {
  if (/^-?\d+$/.test(value)) return BigInt(value);
  if (/^-?\d*\.\d+$/.test(value)) return Number(value);
  return value;
}
