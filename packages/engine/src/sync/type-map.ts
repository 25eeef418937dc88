import type { SqliteColumn, SqliteTable } from './sqlite-reader.ts';

/**
 * SQLite declared type → PostgreSQL type, following what Open WebUI itself creates on PostgreSQL rather than what
 * SQLite declares (see docs/engine.md, "Type mapping"):
 * - JSON → json (never jsonb); TEXT (incl. JSONField) → text; VARCHAR(n) → varchar(n); VARCHAR → varchar;
 * - BIGINT → bigint; INTEGER → bigint, except boolean-named 0/1 columns → boolean, a single INTEGER primary key →
 *   integer with a sequence (serial), and `version` of config tables → integer;
 * - BOOLEAN → boolean;
 * - DATETIME / DATE / TIMESTAMP holding epoch integers (chat.created_at, pre-migration `timestamp`) → bigint;
 *   DATETIME holding text datetimes (config_old, migratehistory) → timestamp; DATE holding text (date_of_birth) → date;
 * - REAL / FLOAT / DOUBLE → double precision; NUMERIC / DECIMAL → numeric; BLOB → bytea; no type → text.
 */

/** What the data says about one column (gathered once, at provisioning). */
export type ColumnStats = {
  readonly storageTypes: ReadonlySet<string>;
  readonly maxLength: number | null;
  readonly onlyZeroOne: boolean;
};

export type MappedType = { readonly sql: string; readonly serial: boolean };

const BOOLEAN_NAMES = /^(is_.+|active|archived|verified|pinned|done|enabled|is_active|is_global|all_day)$/;
const TIMESTAMP_NAMES = /(^|_)at$|^timestamp$/;
/** Tables whose DATETIME columns hold text datetimes in every era. */
const TEXT_DATETIME_TABLES = new Set(['config', 'config_old', 'migratehistory']);

function baseType(declared: string): { name: string; length: number | null } {
  const m = /^\s*([A-Za-z ]+?)\s*(?:\(\s*(\d+)\s*(?:,\s*\d+\s*)?\))?\s*$/.exec(declared);
  if (!m) return { name: declared.trim().toUpperCase(), length: null };
  return { name: (m[1] ?? '').trim().toUpperCase(), length: m[2] ? Number(m[2]) : null };
}

/** Maps one column; `stats` may be omitted (empty table / no data inspection). */
export function mapColumnType(table: SqliteTable, column: SqliteColumn, stats?: ColumnStats): MappedType {
  const { name, length } = baseType(column.declaredType);
  const pkColumns = table.columns.filter((c) => c.pk > 0);
  const lower = column.name.toLowerCase();
  const onlyIntegers = stats ? [...stats.storageTypes].every((t) => t === 'integer' || t === 'null') : true;
  const hasText = stats ? stats.storageTypes.has('text') : false;

  if (name === 'JSON') return { sql: 'json', serial: false };
  if (name === 'BOOLEAN' || name === 'BOOL') return { sql: 'boolean', serial: false };
  if (name.includes('INT')) {
    if (name === 'INTEGER' && pkColumns.length === 1 && column.pk === 1) return { sql: 'integer', serial: true };
    if (name === 'INTEGER' && BOOLEAN_NAMES.test(lower) && (stats?.onlyZeroOne ?? true)) {
      return { sql: 'boolean', serial: false };
    }
    if (name === 'INTEGER' && lower === 'version' && TEXT_DATETIME_TABLES.has(table.name)) {
      return { sql: 'integer', serial: false };
    }
    if (name === 'SMALLINT' || name === 'TINYINT') return { sql: 'smallint', serial: false };
    return { sql: 'bigint', serial: false };
  }
  if (name === 'DATETIME' || name === 'TIMESTAMP') {
    if (TEXT_DATETIME_TABLES.has(table.name) || (hasText && !onlyIntegers && !TIMESTAMP_NAMES.test(lower))) {
      return { sql: 'timestamp without time zone', serial: false };
    }
    if (hasText && ![...(stats?.storageTypes ?? [])].includes('integer')) {
      return { sql: 'timestamp without time zone', serial: false };
    }
    return { sql: 'bigint', serial: false };
  }
  if (name === 'DATE') {
    // date_of_birth holds 'YYYY-MM-DD' text; pre-migration `timestamp DATE` columns hold epoch seconds.
    if (TIMESTAMP_NAMES.test(lower) && (onlyIntegers || !hasText)) return { sql: 'bigint', serial: false };
    return { sql: 'date', serial: false };
  }
  if (name.includes('CHAR') || name === 'CLOB') {
    if (name === 'VARCHAR' || name === 'CHARACTER VARYING' || name === 'NVARCHAR' || name === 'CHAR') {
      if (length === null) return { sql: 'character varying', serial: false };
      // SQLite never enforces a length; keep Open WebUI's varchar(n) unless the data is already longer.
      if (stats?.maxLength !== null && stats?.maxLength !== undefined && stats.maxLength > length) {
        return { sql: 'character varying', serial: false };
      }
      return { sql: `character varying(${length})`, serial: false };
    }
    return { sql: 'text', serial: false };
  }
  if (name === 'TEXT' || name === '') return { sql: 'text', serial: false };
  if (name === 'REAL' || name.includes('FLOA') || name.includes('DOUB'))
    return { sql: 'double precision', serial: false };
  if (name === 'NUMERIC' || name === 'DECIMAL') return { sql: 'numeric', serial: false };
  if (name === 'BLOB') return { sql: 'bytea', serial: false };
  return { sql: 'text', serial: false };
}

/** SQLite default expression → PostgreSQL default for a column of `pgType`, or null when it cannot be carried. */
export function mapDefault(sqliteDefault: string | null, pgType: string): string | null {
  if (sqliteDefault === null) return null;
  const d = sqliteDefault.trim();
  const unquoted = /^'(.*)'$/s.exec(d)?.[1]?.replaceAll("''", "'");
  const literal = unquoted ?? d;
  if (/^null$/i.test(d)) return null;
  if (/^current_timestamp$|^\(?\s*(now|current_timestamp)\s*\(?\)?\s*\)?$/i.test(d)) {
    return pgType.startsWith('timestamp') ? 'CURRENT_TIMESTAMP' : null;
  }
  if (pgType === 'boolean') {
    if (/^(1|true)$/i.test(literal)) return 'true';
    if (/^(0|false)$/i.test(literal)) return 'false';
    return null;
  }
  if (pgType === 'bigint' || pgType === 'integer' || pgType === 'smallint') {
    return /^-?\d+$/.test(literal) ? literal : null;
  }
  if (pgType === 'double precision' || pgType === 'numeric') {
    return /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(literal) ? literal : null;
  }
  if (unquoted === undefined && !/^-?\d+(\.\d+)?$/.test(d)) return null;
  if (literal.includes('\u0000')) return null;
  const quoted = `'${literal.replaceAll("'", "''")}'`;
  if (pgType === 'json') return `${quoted}::json`;
  return quoted;
}
