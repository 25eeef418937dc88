import { hash } from 'node:crypto';
import { cellOffsets, parseCell, type BtreePageInfo, type Cell } from './sqlite-pages.ts';

/**
 * The cells of every table leaf page as the last successful run saw them: rowid and an 8-byte hash of the cell's
 * bytes (header, local payload, overflow pointer). A changed leaf page usually holds a few changed rows among
 * unchanged ones (and SQLite's rebalancing rewrites whole sibling pages): a cell whose rowid and hash are those the
 * page — or another changed page of the same table — held last time is the same row, unchanged, unless one of its
 * overflow pages changed (those name their row themselves). So only changed cells are read again.
 *
 * An entry is trusted only for a page that was a leaf of the same table at the last state (recorded with the page
 * owners), so a freed page's old entry never speaks for the page reused later.
 */

export type CellEntry = {
  readonly rowids: BigInt64Array;
  readonly hashes: Buffer;
  /** 8 bytes of md5 of each row's key text as the bookkeeping writes it (zeros when it could not be read). */
  readonly keys: Buffer;
};

/** Reads a row's key text from its cell (the record's local part), or null when it cannot be read there. */
export type KeyReader = (record: Buffer, rowid: bigint) => string | null;

const HASH = 8;
const NO_KEY = Buffer.alloc(HASH);
const EMPTY = Buffer.alloc(0);

/** Parses the cells of a table leaf page: each cell and its rowid/hash. */
export function leafCells(
  page: Buffer,
  info: BtreePageInfo,
  usable: number,
  withHashes = true,
  keyOf?: KeyReader,
): { cells: Cell[]; entry: CellEntry } {
  const offsets = cellOffsets(page, info);
  const rowids = new BigInt64Array(withHashes ? offsets.length : 0);
  const hashes = withHashes ? Buffer.alloc(offsets.length * HASH) : EMPTY;
  const keys = withHashes ? Buffer.alloc(offsets.length * HASH) : EMPTY;
  const cells: Cell[] = [];
  for (const [i, offset] of offsets.entries()) {
    const cell = parseCell(page, offset, info.type, usable);
    cells.push(cell);
    if (!withHashes) continue;
    rowids[i] = cell.rowid ?? 0n;
    hash('sha1', page.subarray(offset, offset + cell.length), 'buffer').copy(hashes, i * HASH, 0, HASH);
    const end = offset + cell.length - (cell.firstOverflow > 0 ? 4 : 0);
    const text = keyOf?.(page.subarray(offset + cell.recordOffset, end), cell.rowid ?? 0n) ?? null;
    (text === null ? NO_KEY : keyHash(text)).copy(keys, i * HASH, 0, HASH);
  }
  return { cells, entry: { rowids, hashes, keys } };
}

/** 8 bytes of md5 of a row key's text; PostgreSQL computes the same with md5(row_key). */
export function keyHash(text: string): Buffer {
  return hash('md5', text, 'buffer').subarray(0, HASH);
}

/**
 * A KeyReader for a table whose key columns are at `positions` of its SQLite column order (`rowidAlias` marks the
 * INTEGER PRIMARY KEY column, stored as NULL in the record): integers as decimal text, text as is, composite keys
 * joined with U+001F, as the bookkeeping writes row keys. Anything else (a REAL, a BLOB, text with U+0000, a value
 * past the cell's local part) gives null.
 */
export function recordKeyReader(positions: readonly number[], rowidAlias: number): KeyReader {
  return (record, rowid) => {
    const head = readSize(record, 0);
    if (!head) return null;
    const types: number[] = [];
    let o = head.length;
    while (o < head.value && o < record.length) {
      const t = readSize(record, o);
      if (!t) return null;
      types.push(t.value);
      o += t.length;
    }
    const parts: string[] = [];
    for (const pos of positions) {
      if (pos === rowidAlias) {
        parts.push(rowid.toString());
        continue;
      }
      if (pos >= types.length) return null;
      let at = head.value;
      for (let i = 0; i < pos; i += 1) at += serialSize(types[i] as number);
      const t = types[pos] as number;
      const size = serialSize(t);
      if (at + size > record.length) return null;
      if (t >= 1 && t <= 6) {
        let v = BigInt.asIntN(8, BigInt(record[at] ?? 0));
        for (let i = 1; i < size; i += 1) v = (v << 8n) | BigInt(record[at + i] ?? 0);
        parts.push(BigInt.asIntN(size * 8, v).toString());
      } else if (t === 8 || t === 9) {
        parts.push(t === 8 ? '0' : '1');
      } else if (t >= 13 && t % 2 === 1) {
        const text = record.toString('utf8', at, at + size);
        if (text.includes('\u0000')) return null;
        parts.push(text);
      } else {
        return null;
      }
    }
    return parts.join('\u001f');
  };
}

function serialSize(t: number): number {
  if (t <= 4) return t === 0 ? 0 : t;
  if (t === 5) return 6;
  if (t === 6 || t === 7) return 8;
  if (t < 12) return 0;
  return Math.floor((t - (t % 2 === 0 ? 12 : 13)) / 2);
}

function readSize(buf: Buffer, offset: number): { value: number; length: number } | null {
  let n = 0;
  for (let i = 0; i < 5; i += 1) {
    const byte = buf[offset + i];
    if (byte === undefined) return null;
    n = n * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) return { value: n, length: i + 1 };
  }
  return null;
}

/** Leaf entries by page number, stored in chunks of `chunkPages` pages. */
export class LeafCells {
  private readonly entries = new Map<number, CellEntry>();
  readonly dirty = new Set<number>();

  constructor(private readonly chunkPages: number) {}

  get(pgno: number): CellEntry | undefined {
    return this.entries.get(pgno);
  }

  set(pgno: number, entry: CellEntry): void {
    this.entries.set(pgno, entry);
    this.dirty.add(Math.floor(pgno / this.chunkPages));
  }

  /** The chunk's bytes: per page with an entry, page number (u32), cell count (u16), rowids (i64), hashes, keys. */
  encodeChunk(chunk: number, pageCount: number): Buffer {
    const parts: Buffer[] = [];
    const first = chunk * this.chunkPages;
    for (let p = first; p < first + this.chunkPages && p <= pageCount; p += 1) {
      const e = this.entries.get(p);
      if (!e) continue;
      const head = Buffer.alloc(6);
      head.writeUInt32BE(p, 0);
      head.writeUInt16BE(e.rowids.length, 4);
      const ids = Buffer.alloc(e.rowids.length * 8);
      for (let i = 0; i < e.rowids.length; i += 1) ids.writeBigInt64BE(e.rowids[i] ?? 0n, i * 8);
      parts.push(head, ids, e.hashes, e.keys);
    }
    return Buffer.concat(parts);
  }

  decodeChunk(data: Buffer): void {
    let o = 0;
    while (o + 6 <= data.length) {
      const p = data.readUInt32BE(o);
      const n = data.readUInt16BE(o + 4);
      o += 6;
      const rowids = new BigInt64Array(n);
      for (let i = 0; i < n; i += 1) rowids[i] = data.readBigInt64BE(o + i * 8);
      o += n * 8;
      const hashes = Buffer.from(data.subarray(o, o + n * HASH));
      o += n * HASH;
      const keys = Buffer.from(data.subarray(o, o + n * HASH));
      o += n * HASH;
      this.entries.set(p, { rowids, hashes, keys });
    }
  }

  /** Every chunk that holds an entry (a state built from scratch writes them all). */
  markAllDirty(): void {
    for (const p of this.entries.keys()) this.dirty.add(Math.floor(p / this.chunkPages));
  }
}

/** rowid → cell hash (hex) over the given entries. */
export function cellIndex(entries: readonly CellEntry[]): Map<bigint, string> {
  const out = new Map<bigint, string>();
  for (const e of entries) {
    for (let i = 0; i < e.rowids.length; i += 1) {
      out.set(e.rowids[i] ?? 0n, e.hashes.subarray(i * HASH, (i + 1) * HASH).toString('hex'));
    }
  }
  return out;
}

/** The key hash of cell `i` (hex), or null when it could not be read. */
export function keyHashAt(entry: CellEntry, i: number): string | null {
  const k = entry.keys.subarray(i * HASH, (i + 1) * HASH);
  return k.equals(NO_KEY) ? null : k.toString('hex');
}

export function cellHashAt(entry: CellEntry, i: number): string {
  return entry.hashes.subarray(i * HASH, (i + 1) * HASH).toString('hex');
}
