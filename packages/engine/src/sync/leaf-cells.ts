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

export type CellEntry = { readonly rowids: BigInt64Array; readonly hashes: Buffer };

const HASH = 8;
const EMPTY = Buffer.alloc(0);

/** Parses the cells of a table leaf page: each cell and its rowid/hash. */
export function leafCells(
  page: Buffer,
  info: BtreePageInfo,
  usable: number,
  withHashes = true,
): { cells: Cell[]; entry: CellEntry } {
  const offsets = cellOffsets(page, info);
  const rowids = new BigInt64Array(withHashes ? offsets.length : 0);
  const hashes = withHashes ? Buffer.alloc(offsets.length * HASH) : EMPTY;
  const cells: Cell[] = [];
  for (const [i, offset] of offsets.entries()) {
    const cell = parseCell(page, offset, info.type, usable);
    cells.push(cell);
    if (!withHashes) continue;
    rowids[i] = cell.rowid ?? 0n;
    hash('sha1', page.subarray(offset, offset + cell.length), 'buffer').copy(hashes, i * HASH, 0, HASH);
  }
  return { cells, entry: { rowids, hashes } };
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

  /** The chunk's bytes: per page with an entry, page number (u32), cell count (u16), rowids (i64), hashes. */
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
      parts.push(head, ids, e.hashes);
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
      this.entries.set(p, { rowids, hashes });
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

export function cellHashAt(entry: CellEntry, i: number): string {
  return entry.hashes.subarray(i * HASH, (i + 1) * HASH).toString('hex');
}
