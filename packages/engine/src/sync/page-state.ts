import { hash } from 'node:crypto';
import { LeafCells } from './leaf-cells.ts';

/**
 * What a run saw of a tenant's SQLite file, page by page, for change capture (see change-capture.ts): an 8-byte hash
 * of every page, and for every page the b-tree root it belongs to with a rowid — the row owning an overflow page,
 * LEAF_MARK for a table leaf page — plus the cells of the table leaf pages. Stored in chunks of CHUNK_PAGES pages.
 */

export type Btree = {
  readonly root: number;
  /** Table the b-tree stores or indexes. */
  readonly table: string;
  /** A table's rows keyed by rowid (false for indexes and WITHOUT ROWID tables). */
  readonly rowidTable: boolean;
  readonly isIndex: boolean;
};

/** Per page: 8 bytes of its content hash, then the b-tree root and rowid owning it when it is an overflow page. */
export const HASH_BYTES = 8;
export const CHUNK_PAGES = 256;
/** Recorded as the "rowid" of a page that is a leaf of the table whose root is recorded with it. */
export const LEAF_MARK = -2n;

/** The header of a page state: which file, its geometry, where the WAL stood, what was recorded. */
export type PageHeader = {
  pageSize: number;
  pageCount: number;
  walSalt: string | null;
  walFrame: number;
  walChange: number;
  fileId: string;
  btrees: string;
  cellsRecorded: boolean;
  /** Every page's hash is recorded (a full sync of a WAL file leaves them to its first incremental run). */
  hashesRecorded: boolean;
};

/** What the last successful run saw, page by page (the part of it that was loaded). */
export class PageState {
  pageSize: number;
  pageCount: number;
  walSalt: string | null;
  walFrame: number;
  /** The WAL index's change counter at the mark (one more per committed transaction). */
  walChange: number;
  fileId: string;
  /** Which root page holds which table or index (owners are recorded by root page). */
  btrees: string;
  /** The cells of every table leaf are recorded (else the next run records them). */
  cellsRecorded: boolean;
  /** Every page's hash is recorded (else the next run records them, and cannot compare pages by hash). */
  hashesRecorded: boolean;
  hashes: Buffer;
  roots: Uint32Array;
  rowids: BigInt64Array;
  /** Cells of the table leaf pages (the chunks loaded of them). */
  readonly cells = new LeafCells(CHUNK_PAGES);
  /** Chunks present in memory (all of them for a state built here). */
  readonly loaded = new Set<number>();
  /** Chunks changed since they were loaded. */
  readonly dirty = new Set<number>();

  constructor(init: PageHeader) {
    this.walChange = init.walChange;
    this.cellsRecorded = init.cellsRecorded;
    this.hashesRecorded = init.hashesRecorded;
    this.btrees = init.btrees;
    this.pageSize = init.pageSize;
    this.pageCount = init.pageCount;
    this.walSalt = init.walSalt;
    this.walFrame = init.walFrame;
    this.fileId = init.fileId;
    this.hashes = Buffer.alloc((init.pageCount + 1) * HASH_BYTES);
    this.roots = new Uint32Array(init.pageCount + 1);
    this.rowids = new BigInt64Array(init.pageCount + 1);
  }

  /** Grows or shrinks the arrays to `pageCount` pages (new pages have no hash and no owner). */
  resize(pageCount: number): void {
    if (pageCount === this.pageCount) return;
    const hashes = Buffer.alloc((pageCount + 1) * HASH_BYTES);
    this.hashes.copy(hashes, 0, 0, Math.min(this.hashes.length, hashes.length));
    const roots = new Uint32Array(pageCount + 1);
    roots.set(this.roots.subarray(0, Math.min(this.roots.length, pageCount + 1)));
    const rowids = new BigInt64Array(pageCount + 1);
    rowids.set(this.rowids.subarray(0, Math.min(this.rowids.length, pageCount + 1)));
    const old = this.pageCount;
    this.hashes = hashes;
    this.roots = roots;
    this.rowids = rowids;
    this.pageCount = pageCount;
    for (let c = chunkOf(Math.min(old, pageCount) + 1); c <= chunkOf(Math.max(old, pageCount)); c += 1) {
      this.loaded.add(c);
      this.dirty.add(c);
    }
  }

  setHash(pgno: number, page: Buffer): void {
    const h = pageHash(page);
    const at = pgno * HASH_BYTES;
    if (this.hashes.compare(h, 0, HASH_BYTES, at, at + HASH_BYTES) !== 0) {
      h.copy(this.hashes, at, 0, HASH_BYTES);
      this.dirty.add(chunkOf(pgno));
    }
  }

  hashEquals(pgno: number, h: Buffer): boolean {
    const at = pgno * HASH_BYTES;
    return this.hashes.compare(h, 0, HASH_BYTES, at, at + HASH_BYTES) === 0;
  }

  setOwner(pgno: number, root: number, rowid: bigint): void {
    if (pgno <= 0 || pgno > this.pageCount) return;
    if (this.roots[pgno] === root && this.rowids[pgno] === rowid) return;
    this.roots[pgno] = root;
    this.rowids[pgno] = rowid;
    this.dirty.add(chunkOf(pgno));
  }

  /** The chunk's bytes: hashes, then roots (u32 BE), then rowids (i64 BE) of its pages. */
  encodeChunk(chunk: number): Buffer {
    const first = chunk * CHUNK_PAGES;
    const last = Math.min(this.pageCount, first + CHUNK_PAGES - 1);
    const n = Math.max(0, last - first + 1);
    const out = Buffer.alloc(n * (HASH_BYTES + 12));
    for (let i = 0; i < n; i += 1) {
      const p = first + i;
      this.hashes.copy(out, i * HASH_BYTES, p * HASH_BYTES, (p + 1) * HASH_BYTES);
      out.writeUInt32BE(this.roots[p] ?? 0, n * HASH_BYTES + i * 4);
      out.writeBigInt64BE(this.rowids[p] ?? 0n, n * (HASH_BYTES + 4) + i * 8);
    }
    return out;
  }

  decodeChunk(chunk: number, data: Buffer): void {
    const first = chunk * CHUNK_PAGES;
    const n = Math.floor(data.length / (HASH_BYTES + 12));
    for (let i = 0; i < n; i += 1) {
      const p = first + i;
      if (p > this.pageCount) break;
      data.copy(this.hashes, p * HASH_BYTES, i * HASH_BYTES, (i + 1) * HASH_BYTES);
      this.roots[p] = data.readUInt32BE(n * HASH_BYTES + i * 4);
      this.rowids[p] = data.readBigInt64BE(n * (HASH_BYTES + 4) + i * 8);
    }
    this.loaded.add(chunk);
  }
}

/** A digest of which root page holds which b-tree. */
export function btreeSignature(btrees: readonly Btree[]): string {
  const text = [...btrees]
    .sort((a, b) => a.root - b.root)
    .map((b) => `${b.root}:${b.isIndex ? 'i' : b.rowidTable ? 't' : 'w'}:${b.table}`)
    .join('\n');
  return hash('sha1', text, 'hex');
}

export function chunkOf(pgno: number): number {
  return Math.floor(pgno / CHUNK_PAGES);
}

export function pageHash(page: Buffer): Buffer {
  return hash('sha1', page, 'buffer');
}
