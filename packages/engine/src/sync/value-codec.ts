import { isUtf8 } from 'node:buffer';

/**
 * SQLite values → PostgreSQL binary COPY fields, exactly:
 * - integers arrive as BigInt (better-sqlite3 safeIntegers), so 19-digit nanosecond timestamps never pass through
 *   a JS number;
 * - JSON text is sent verbatim (PostgreSQL's json type keeps it byte for byte); numbers stored in JSON-declared
 *   columns (SQLite NUMERIC affinity) are re-serialised as JSON numbers; the text 'null' stays JSON null, distinct
 *   from SQL NULL;
 * - U+0000 cannot be stored in PostgreSQL text: it is removed from text values, and written as the escape \u0000
 *   inside JSON values (which json accepts). See docs/engine.md.
 * Binary COPY needs no escaping of text at all, which is what makes large JSON bodies cheap.
 */

/** How a target column's values are encoded. `text-cast` columns are staged as text and cast by PostgreSQL. */
export type ValueKind =
  'int8' | 'int4' | 'int2' | 'bool' | 'float8' | 'float4' | 'text' | 'json' | 'bytea' | 'text-cast';

export function kindForType(pgType: string): ValueKind {
  if (pgType === 'bigint') return 'int8';
  if (pgType === 'integer') return 'int4';
  if (pgType === 'smallint') return 'int2';
  if (pgType === 'boolean') return 'bool';
  if (pgType === 'double precision') return 'float8';
  if (pgType === 'real') return 'float4';
  if (pgType === 'text' || pgType.startsWith('character varying') || pgType === 'name') return 'text';
  if (pgType === 'json') return 'json';
  if (pgType === 'bytea') return 'bytea';
  return 'text-cast';
}

/** A value that cannot be represented in its target column; the row is recorded as failed, never dropped silently. */
export class ValueError extends Error {
  readonly column: string;
  constructor(column: string, message: string) {
    super(`column "${column}": ${message}`);
    this.column = column;
  }
}

const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;
const INT_RANGE: Record<'int4' | 'int2', [bigint, bigint]> = {
  int4: [-(2n ** 31n), 2n ** 31n - 1n],
  int2: [-(2n ** 15n), 2n ** 15n - 1n],
};

export const COPY_SIGNATURE = Buffer.from([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00]);

/** Header of a binary COPY stream (signature, flags, header extension length). */
export function copyHeader(): Buffer {
  const b = Buffer.alloc(19);
  COPY_SIGNATURE.copy(b, 0);
  b.writeInt32BE(0, 11);
  b.writeInt32BE(0, 15);
  return b;
}

export function copyTrailer(): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(-1, 0);
  return b;
}

function toBigInt(column: string, v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') {
    // A REAL: kept only when it is a whole number an integer column holds exactly (never rounded).
    if (!Number.isSafeInteger(v)) {
      throw new ValueError(column, `the REAL value ${v} cannot be stored exactly in an integer column`);
    }
    return BigInt(v);
  }
  if (typeof v === 'string') {
    const s = v.trim();
    if (/^[-+]?\d+$/.test(s)) return BigInt(s);
    throw new ValueError(column, `text ${JSON.stringify(s.slice(0, 40))} is not an integer`);
  }
  if (typeof v === 'boolean') return v ? 1n : 0n;
  throw new ValueError(column, 'a binary value is not an integer');
}

function toBool(column: string, v: unknown): boolean {
  if (typeof v === 'bigint') {
    if (v === 0n || v === 1n) return v === 1n;
  } else if (typeof v === 'number') {
    if (v === 0 || v === 1) return v === 1;
  } else if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (['1', 't', 'true', 'yes', 'y', 'on'].includes(s)) return true;
    if (['0', 'f', 'false', 'no', 'n', 'off'].includes(s)) return false;
  } else if (typeof v === 'boolean') return v;
  throw new ValueError(column, `${String(v).slice(0, 40)} is not a boolean (0/1)`);
}

function toFloat(column: string, v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  throw new ValueError(column, `${String(v).slice(0, 40)} is not a number`);
}

/** Removes U+0000, which PostgreSQL text cannot hold. */
export function stripNul(s: string): string {
  return s.includes('\u0000') ? s.replaceAll('\u0000', '') : s;
}

function toText(v: unknown): string {
  if (typeof v === 'string') return stripNul(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return String(v);
  if (Buffer.isBuffer(v)) return stripNul(v.toString('utf8'));
  return stripNul(String(v));
}

/** JSON column text: verbatim, numbers re-serialised, raw U+0000 escaped. */
export function toJsonText(column: string, v: unknown): string {
  if (typeof v === 'string') return v.includes('\u0000') ? v.replaceAll('\u0000', '\\u0000') : v;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ValueError(column, `${v} is not valid JSON`);
    return String(v);
  }
  if (Buffer.isBuffer(v)) return toJsonText(column, v.toString('utf8'));
  return String(v);
}

/** Encodes rows of one table into binary COPY tuples, growing one buffer and handing out filled slices. */
export class CopyEncoder {
  private buf: Buffer;
  private pos = 0;
  readonly kinds: readonly ValueKind[];
  readonly columns: readonly string[];
  nulStripped = 0;

  constructor(columns: readonly string[], kinds: readonly ValueKind[], initialSize = 1 << 20) {
    this.columns = columns;
    this.kinds = kinds;
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  get size(): number {
    return this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /**
   * Appends one row; on a ValueError nothing is appended. Returns the encoded size in bytes. A trailing extra value
   * is the row's BLOB mask (one character per column, '1' where SQLite stores a BLOB); without it, a Buffer in a text
   * column is a BLOB.
   */
  encode(values: readonly unknown[]): number {
    const start = this.pos;
    const n = this.columns.length;
    const mask = values.length > n ? String(values[n]) : null;
    try {
      this.ensure(2);
      this.buf.writeInt16BE(n, this.pos);
      this.pos += 2;
      for (let i = 0; i < n; i += 1) {
        const v = values[i];
        if (Buffer.isBuffer(v) && (mask === null || mask[i] === '1') && this.textLike(i)) {
          throw new ValueError(
            this.columns[i] as string,
            `a BLOB of ${v.length} bytes cannot be stored exactly in a text column (it would become text)`,
          );
        }
        this.field(i, v);
      }
    } catch (error) {
      this.pos = start;
      throw error;
    }
    return this.pos - start;
  }

  private textLike(i: number): boolean {
    const k = this.kinds[i];
    return k === 'text' || k === 'json' || k === 'text-cast';
  }

  private field(i: number, v: unknown): void {
    const kind = this.kinds[i] as ValueKind;
    const column = this.columns[i] as string;
    if (v === null || v === undefined) {
      this.ensure(4);
      this.buf.writeInt32BE(-1, this.pos);
      this.pos += 4;
      return;
    }
    switch (kind) {
      case 'int8': {
        const n = toBigInt(column, v);
        if (n < INT8_MIN || n > INT8_MAX) throw new ValueError(column, `${n} does not fit in bigint`);
        this.ensure(12);
        this.buf.writeInt32BE(8, this.pos);
        this.buf.writeBigInt64BE(n, this.pos + 4);
        this.pos += 12;
        return;
      }
      case 'int4':
      case 'int2': {
        const n = toBigInt(column, v);
        const [lo, hi] = INT_RANGE[kind];
        if (n < lo || n > hi)
          throw new ValueError(column, `${n} does not fit in ${kind === 'int4' ? 'integer' : 'smallint'}`);
        const width = kind === 'int4' ? 4 : 2;
        this.ensure(4 + width);
        this.buf.writeInt32BE(width, this.pos);
        if (width === 4) this.buf.writeInt32BE(Number(n), this.pos + 4);
        else this.buf.writeInt16BE(Number(n), this.pos + 4);
        this.pos += 4 + width;
        return;
      }
      case 'bool': {
        this.ensure(5);
        this.buf.writeInt32BE(1, this.pos);
        this.buf[this.pos + 4] = toBool(column, v) ? 1 : 0;
        this.pos += 5;
        return;
      }
      case 'float8':
      case 'float4': {
        const f = toFloat(column, v);
        const width = kind === 'float8' ? 8 : 4;
        this.ensure(4 + width);
        this.buf.writeInt32BE(width, this.pos);
        if (width === 8) this.buf.writeDoubleBE(f, this.pos + 4);
        else this.buf.writeFloatBE(f, this.pos + 4);
        this.pos += 4 + width;
        return;
      }
      case 'bytea': {
        const b = Buffer.isBuffer(v) ? v : Buffer.from(toText(v), 'utf8');
        this.ensure(4 + b.length);
        this.buf.writeInt32BE(b.length, this.pos);
        b.copy(this.buf, this.pos + 4);
        this.pos += 4 + b.length;
        return;
      }
      case 'json': {
        if (Buffer.isBuffer(v) && this.writeUtf8(v)) return;
        this.writeString(toJsonText(column, v));
        return;
      }
      default: {
        if (Buffer.isBuffer(v) && this.writeUtf8(v)) return;
        const s = typeof v === 'string' ? v : toText(v);
        if (s.includes('\u0000')) {
          this.nulStripped += 1;
          this.writeString(stripNul(s));
        } else {
          this.writeString(s);
        }
      }
    }
  }

  /**
   * Text read from SQLite as bytes: copied as is when it is valid UTF-8 without U+0000 (then it is exactly what
   * decoding and re-encoding would give); otherwise false, and the caller takes the string path with its rules.
   */
  private writeUtf8(b: Buffer): boolean {
    if (b.indexOf(0) !== -1 || !isUtf8(b)) return false;
    this.ensure(4 + b.length);
    this.buf.writeInt32BE(b.length, this.pos);
    b.copy(this.buf, this.pos + 4);
    this.pos += 4 + b.length;
    return true;
  }

  private writeString(s: string): void {
    // Worst case 3 bytes per UTF-16 unit; exact length is written after encoding.
    const max = s.length * 3;
    this.ensure(4 + max);
    const n = this.buf.write(s, this.pos + 4, 'utf8');
    this.buf.writeInt32BE(n, this.pos);
    this.pos += 4 + n;
  }

  /** The bytes encoded since the last take (a copy-free view valid until the next encode). */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.pos));
    this.pos = 0;
    return out;
  }

  /**
   * Hands over the encoded bytes without copying (a view of the current buffer) and continues in `next` when it is
   * given (a buffer whose earlier contents are no longer needed), else in a fresh one.
   */
  detach(next?: Buffer): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.buf = next ?? Buffer.allocUnsafe(Math.max(1 << 16, Math.min(this.buf.length, 4 << 20)));
    this.pos = 0;
    return out;
  }

  /** The buffer rows are being encoded into (to recycle once a detached view of it is no longer in use). */
  get current(): Buffer {
    return this.buf;
  }

  reset(): void {
    this.pos = 0;
  }
}
