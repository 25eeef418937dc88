import { createHash } from 'node:crypto';
import { quoteIdent } from '@owui-sync/schema';
import { stripNul, toJsonText } from '../sync/value-codec.ts';

/**
 * The inverse of the sync's value mapping: PostgreSQL values (binary COPY fields) → the SQLite storage form Open
 * WebUI wrote — booleans 0/1, integers as BigInt (19-digit nanosecond timestamps stay exact), JSON text verbatim
 * (including the text 'null'), text datetimes as 'YYYY-MM-DD HH:MM:SS[.ffffff]'. Column affinity of the recreated
 * table then stores numbers found in JSON columns as INTEGER/REAL, exactly as SQLite did for the source.
 */
export type RestoreKind =
  'int8' | 'int4' | 'int2' | 'bool' | 'float8' | 'float4' | 'text' | 'json' | 'bytea' | 'timestamp' | 'as-text';

export type SqliteValue = bigint | number | string | Buffer | null;

export function restoreKindFor(pgType: string): RestoreKind {
  if (pgType === 'bigint') return 'int8';
  if (pgType === 'integer') return 'int4';
  if (pgType === 'smallint') return 'int2';
  if (pgType === 'boolean') return 'bool';
  if (pgType === 'double precision') return 'float8';
  if (pgType === 'real') return 'float4';
  if (pgType === 'text' || pgType.startsWith('character varying') || pgType.startsWith('character(')) return 'text';
  if (pgType === 'json') return 'json';
  if (pgType === 'bytea') return 'bytea';
  if (pgType.startsWith('timestamp')) return 'timestamp';
  return 'as-text';
}

/** SELECT expression for one column: types without a simple binary form are sent as text. */
export function selectExpression(alias: string, column: string, kind: RestoreKind): string {
  const c = `${alias}.${quoteIdent(column)}`;
  if (kind === 'timestamp' || kind === 'as-text') return `(${c})::text`;
  return c;
}

/** '2024-05-01 12:00:00.5' → '2024-05-01 12:00:00.500000' (SQLAlchemy/Peewee write six digits; none stays none). */
export function sqliteDatetimeText(pgText: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?$/.exec(pgText);
  if (!m) return pgText;
  return m[3] === undefined ? `${m[1]} ${m[2]}` : `${m[1]} ${m[2]}.${m[3].padEnd(6, '0')}`;
}

function canonicalTimestamp(s: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?$/.exec(s.trim());
  return m ? `${m[1]} ${m[2]}.${(m[3] ?? '').padEnd(6, '0')}` : s;
}

export function decodeField(kind: RestoreKind, b: Buffer | null): SqliteValue {
  if (b === null) return null;
  switch (kind) {
    case 'int8':
      return b.readBigInt64BE(0);
    case 'int4':
      return BigInt(b.readInt32BE(0));
    case 'int2':
      return BigInt(b.readInt16BE(0));
    case 'bool':
      return b[0] === 1 ? 1n : 0n;
    case 'float8':
      return b.readDoubleBE(0);
    case 'float4':
      return b.readFloatBE(0);
    case 'bytea':
      return Buffer.from(b);
    case 'timestamp':
      return sqliteDatetimeText(b.toString('utf8'));
    default:
      return b.toString('utf8');
  }
}

/**
 * One value in a comparable form, for either side (a source SQLite value as stored, or a restored value): the value
 * the backup column would hold. Used by verify so INTEGER 1 / BOOLEAN true, '…00.5' / '…00.500000' and a JSON
 * number stored as INTEGER compare equal, while any real difference does not.
 */
export function normalise(kind: RestoreKind, v: unknown): string | null {
  if (v === null || v === undefined) return null;
  switch (kind) {
    case 'int8':
    case 'int4':
    case 'int2': {
      if (typeof v === 'bigint') return v.toString();
      if (typeof v === 'number') return Number.isInteger(v) ? BigInt(v).toString() : String(v);
      const s = String(v).trim();
      return /^[-+]?\d+$/.test(s) ? BigInt(s).toString() : `?${s}`;
    }
    case 'bool': {
      const s = String(v).trim().toLowerCase();
      if (['1', 't', 'true'].includes(s)) return '1';
      if (['0', 'f', 'false'].includes(s)) return '0';
      return `?${s}`;
    }
    case 'float8':
    case 'float4':
      return String(typeof v === 'bigint' ? Number(v) : Number(v));
    case 'json':
      if (Buffer.isBuffer(v)) return blobMarker(v);
      return toJsonText('', typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v);
    case 'bytea':
      return Buffer.isBuffer(v) ? v.toString('hex') : Buffer.from(String(v), 'utf8').toString('hex');
    case 'timestamp':
      return canonicalTimestamp(typeof v === 'string' ? stripNul(v) : String(v));
    default:
      // A BLOB in a text column is never equal to text: the sync holds such a row back (it cannot be kept exactly).
      if (Buffer.isBuffer(v)) return blobMarker(v);
      return stripNul(typeof v === 'string' ? v : String(v));
  }
}

function blobMarker(v: Buffer): string {
  return `\u0001blob:${v.toString('hex')}`;
}

/** Content hash of a row after normalisation (hex, 16 bytes). */
export function rowHash(kinds: readonly RestoreKind[], values: readonly unknown[]): string {
  const h = createHash('md5');
  for (let i = 0; i < values.length; i += 1) {
    const n = normalise(kinds[i] as RestoreKind, values[i]);
    h.update(n === null ? '\u0000N' : `\u0000V${n.length}:${n}`);
  }
  return h.digest('hex');
}

/** Row key from its normalised key values (composite keys joined with U+001F, as the sync does). */
export function keyText(kinds: readonly RestoreKind[], values: readonly unknown[]): string {
  return values.map((v, i) => normalise(kinds[i] as RestoreKind, v) ?? '').join('\u001f');
}
