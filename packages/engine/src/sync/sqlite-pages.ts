import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/**
 * The pages of a SQLite database exactly as one read transaction sees them, read from the files themselves: the
 * database file overlaid with the WAL frames up to the transaction's end mark (what Litestream reads). Plus the few
 * pieces of the file format change capture needs: the WAL-index header (`-shm`), b-tree page headers and cells,
 * overflow chains and the freelist (https://www.sqlite.org/fileformat2.html).
 *
 * The caller holds the SQLite read transaction for as long as it reads pages: SQLite then never overwrites a database
 * page that the snapshot still needs, and never restarts the WAL under it.
 */

/** Where a WAL read transaction ends: the WAL generation (its salts) and the last frame it sees. */
export type WalMark = {
  /** Hex of the 8 salt bytes shared by the WAL header and its frames; changes whenever the WAL restarts. */
  readonly salt: string;
  readonly mxFrame: number;
  /** Database size in pages after the last frame's commit (0 when there is no frame). */
  readonly nPage: number;
  /** WAL-index change counter (differs after any commit). */
  readonly change: number;
};

/**
 * The WAL-index header from `-shm` (both copies must agree, as SQLite's own readers require), or null when there is
 * no initialised WAL index. Its fields are in the machine's byte order; the salts are copied verbatim from the WAL.
 */
export function readWalIndexHeader(dbPath: string): WalMark | null {
  const buf = readAt(`${dbPath}-shm`, 0, 96);
  if (!buf || buf.length < 96) return null;
  const a = buf.subarray(0, 48);
  const b = buf.subarray(48, 96);
  if (!a.equals(b) || a[12] !== 1) return null;
  const le = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  const u32 = (o: number) => (le ? a.readUInt32LE(o) : a.readUInt32BE(o));
  return { change: u32(8), mxFrame: u32(16), nPage: u32(20), salt: a.subarray(32, 40).toString('hex') };
}

function readAt(p: string, offset: number, length: number): Buffer | null {
  let fd: number | undefined;
  try {
    fd = openSync(p, 'r');
    const buf = Buffer.alloc(length);
    const n = readSync(fd, buf, 0, length, offset);
    return buf.subarray(0, n);
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export const PAGE_TYPE = {
  interiorIndex: 0x02,
  interiorTable: 0x05,
  leafIndex: 0x0a,
  leafTable: 0x0d,
} as const;

/** Raw pages of one snapshot. */
export class PageFile {
  readonly pageSize: number;
  /** Usable bytes per page (page size minus the reserved bytes at the end of each page). */
  readonly usable: number;
  readonly pageCount: number;
  /** WAL frame holding each page's latest version at the mark (pages absent here come from the database file). */
  private readonly frameOf = new Map<number, number>();
  /** Page number of every frame 1..mxFrame (index 0 unused). */
  private readonly framePages: Uint32Array;
  /** Commit frames among 1..mxFrame (one per transaction). */
  readonly commitFrames: number = 0;
  /** Size of the WAL file in bytes (0 without one). */
  readonly walSize: number = 0;
  private readonly dbFd: number;
  private readonly walFd: number | undefined;
  private readonly header: Buffer;

  private constructor(dbFd: number, walFd: number | undefined, mark: WalMark | null) {
    this.dbFd = dbFd;
    this.walFd = walFd;
    const dbSize = fstatSync(dbFd).size;
    let pageSize = 0;
    const head = Buffer.alloc(100);
    const n = readSync(dbFd, head, 0, 100, 0);
    if (n === 100) pageSize = decodePageSize(head.readUInt16BE(16));
    const frames = mark?.mxFrame ?? 0;
    let walHeader: Buffer | undefined;
    if (walFd !== undefined && frames > 0) {
      walHeader = Buffer.alloc(32);
      readSync(walFd, walHeader, 0, 32, 0);
      const walPageSize = walHeader.readUInt32BE(8);
      if (pageSize === 0) pageSize = walPageSize;
      if (walPageSize !== pageSize) throw new Error(`WAL page size ${walPageSize} differs from ${pageSize}`);
      if (walHeader.subarray(16, 24).toString('hex') !== mark?.salt) {
        throw new Error('the WAL header does not belong to the WAL index read at the start of the transaction');
      }
    }
    if (pageSize === 0) throw new Error('not a SQLite database (no page size in its header)');
    this.pageSize = pageSize;
    this.framePages = new Uint32Array(frames + 1);
    if (walFd !== undefined) this.walSize = fstatSync(walFd).size;
    if (walFd !== undefined && frames > 0) {
      const fh = Buffer.alloc(24);
      let commits = 0;
      for (let i = 1; i <= frames; i += 1) {
        readSync(walFd, fh, 0, 24, 32 + (i - 1) * (24 + pageSize));
        const pgno = fh.readUInt32BE(0);
        if (fh.readUInt32BE(4) !== 0) commits += 1;
        this.framePages[i] = pgno;
        this.frameOf.set(pgno, i);
      }
      this.commitFrames = commits;
    }
    this.pageCount = frames > 0 && mark ? mark.nPage : Math.floor(dbSize / pageSize);
    this.header = this.pageCount > 0 ? this.read(1).subarray(0, 100) : head;
    this.usable = pageSize - (this.header[20] ?? 0);
  }

  /** Opens the files of `dbPath` (`walMark` null: no WAL frames are part of the snapshot). */
  static open(dbPath: string, walMark: WalMark | null): PageFile {
    const dbFd = openSync(dbPath, 'r');
    let walFd: number | undefined;
    try {
      if (walMark) {
        try {
          walFd = openSync(`${dbPath}-wal`, 'r');
        } catch (error) {
          if (walMark.mxFrame > 0 || (error as { code?: unknown }).code !== 'ENOENT') throw error;
        }
      }
      return new PageFile(dbFd, walFd, walMark);
    } catch (error) {
      closeSync(dbFd);
      if (walFd !== undefined) closeSync(walFd);
      throw error;
    }
  }

  /** Page numbers written by frames after `fromFrame` (exclusive) up to the mark. */
  pagesWrittenAfter(fromFrame: number): Set<number> {
    const out = new Set<number>();
    for (let i = fromFrame + 1; i < this.framePages.length; i += 1) out.add(this.framePages[i] as number);
    return out;
  }

  /**
   * Frames of an earlier WAL generation (salt `salt`) still in the file from position `from` on, where the current
   * generation has not overwritten them: their pages and how many of them end a transaction. Stops at the first
   * frame of another generation or the end of the file.
   */
  earlierFrames(from: number, salt: string): { pages: Set<number>; commits: number } {
    const pages = new Set<number>();
    let commits = 0;
    if (this.walFd === undefined) return { pages, commits };
    const fh = Buffer.alloc(24);
    for (let i = from; ; i += 1) {
      const offset = 32 + (i - 1) * (24 + this.pageSize);
      if (offset + 24 + this.pageSize > this.walSize) break;
      readSync(this.walFd, fh, 0, 24, offset);
      if (fh.subarray(8, 16).toString('hex') !== salt) break;
      pages.add(fh.readUInt32BE(0));
      if (fh.readUInt32BE(4) !== 0) commits += 1;
    }
    return { pages, commits };
  }

  get frames(): number {
    return this.framePages.length - 1;
  }

  /** One page as the snapshot sees it (a fresh buffer, or `into`). */
  read(pgno: number, into?: Buffer): Buffer {
    const buf = into ?? Buffer.alloc(this.pageSize);
    const frame = this.frameOf.get(pgno);
    if (frame !== undefined && this.walFd !== undefined) {
      readSync(this.walFd, buf, 0, this.pageSize, 32 + (frame - 1) * (24 + this.pageSize) + 24);
    } else {
      const n = readSync(this.dbFd, buf, 0, this.pageSize, (pgno - 1) * this.pageSize);
      if (n < this.pageSize) buf.fill(0, n);
    }
    return buf;
  }

  /**
   * Reads pages first..last (inclusive) into one buffer: one read of the database file, then the WAL's newer
   * versions on top. Used by whole-file passes.
   */
  readRange(first: number, last: number, into: Buffer): Buffer {
    const count = last - first + 1;
    const buf = into.subarray(0, count * this.pageSize);
    const n = readSync(this.dbFd, buf, 0, buf.length, (first - 1) * this.pageSize);
    if (n < buf.length) buf.fill(0, n);
    if (this.walFd !== undefined && this.frameOf.size > 0) {
      for (let p = first; p <= last; p += 1) {
        const frame = this.frameOf.get(p);
        if (frame === undefined) continue;
        readSync(
          this.walFd,
          buf,
          (p - first) * this.pageSize,
          this.pageSize,
          32 + (frame - 1) * (24 + this.pageSize) + 24,
        );
      }
    }
    return buf;
  }

  /** Database header field (big-endian u32 at `offset` of page 1). */
  headerU32(offset: number): number {
    return this.header.readUInt32BE(offset);
  }

  close(): void {
    closeSync(this.dbFd);
    if (this.walFd !== undefined) closeSync(this.walFd);
  }
}

function decodePageSize(v: number): number {
  return v === 1 ? 65536 : v;
}

/** A SQLite varint at `offset`: its value and its length. */
export function readVarint(buf: Buffer, offset: number): { value: bigint; length: number } {
  // Up to 7 bytes (49 bits) fit a number exactly; only longer ones need BigInt arithmetic.
  let n = 0;
  for (let i = 0; i < 7; i += 1) {
    const byte = buf[offset + i] ?? 0;
    n = n * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) return { value: BigInt(n), length: i + 1 };
  }
  let v = BigInt(n);
  const b7 = buf[offset + 7] ?? 0;
  v = (v << 7n) | BigInt(b7 & 0x7f);
  if ((b7 & 0x80) === 0) return { value: v, length: 8 };
  v = (v << 8n) | BigInt(buf[offset + 8] ?? 0);
  return { value: BigInt.asIntN(64, v), length: 9 };
}

/** A varint known to be small (a payload size): a number and its length. */
function readSmallVarint(buf: Buffer, offset: number): { value: number; length: number } {
  let n = 0;
  for (let i = 0; i < 7; i += 1) {
    const byte = buf[offset + i] ?? 0;
    n = n * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) return { value: n, length: i + 1 };
  }
  const { value, length } = readVarint(buf, offset);
  return { value: Number(value), length };
}

export type BtreePageInfo = {
  readonly type: number;
  /** Offset of the page header (100 on page 1). */
  readonly headerOffset: number;
  readonly cellCount: number;
  /** Right-most child of an interior page. */
  readonly rightChild: number;
};

/** The b-tree page header of `page` (page number `pgno`), or null when the page is not a b-tree page. */
export function btreeHeader(page: Buffer, pgno: number): BtreePageInfo | null {
  const h = pgno === 1 ? 100 : 0;
  const type = page[h] ?? 0;
  if (
    type !== PAGE_TYPE.interiorIndex &&
    type !== PAGE_TYPE.interiorTable &&
    type !== PAGE_TYPE.leafIndex &&
    type !== PAGE_TYPE.leafTable
  ) {
    return null;
  }
  const interior = type === PAGE_TYPE.interiorIndex || type === PAGE_TYPE.interiorTable;
  return {
    type,
    headerOffset: h,
    cellCount: page.readUInt16BE(h + 3),
    rightChild: interior ? page.readUInt32BE(h + 8) : 0,
  };
}

/** Offsets of the cells of a b-tree page. */
export function cellOffsets(page: Buffer, info: BtreePageInfo): number[] {
  const interior = info.type === PAGE_TYPE.interiorIndex || info.type === PAGE_TYPE.interiorTable;
  const start = info.headerOffset + (interior ? 12 : 8);
  const out: number[] = [];
  for (let i = 0; i < info.cellCount; i += 1) out.push(page.readUInt16BE(start + 2 * i));
  return out;
}

/** Child page numbers of an interior page (left children in order, then the right-most one). */
export function childPages(page: Buffer, info: BtreePageInfo): number[] {
  const out = cellOffsets(page, info).map((o) => page.readUInt32BE(o));
  out.push(info.rightChild);
  return out;
}

export type Cell = {
  /** Rowid of a table leaf cell (null for index cells). */
  readonly rowid: bigint | null;
  /** First overflow page (0: the payload fits on the page). */
  readonly firstOverflow: number;
  /** Number of overflow pages of the payload. */
  readonly overflowPages: number;
  /** Bytes the cell takes on its page (header, local payload, overflow pointer). */
  readonly length: number;
  /** Where the record (the payload) starts within the cell. */
  readonly recordOffset: number;
};

/**
 * Parses the cell at `offset` of a leaf table, leaf index or interior index page: its rowid (tables) and where its
 * payload overflows to. Interior table cells have no payload and are not passed here.
 */
export function parseCell(page: Buffer, offset: number, type: number, usable: number): Cell {
  let o = offset;
  if (type === PAGE_TYPE.interiorIndex) o += 4;
  const size = readSmallVarint(page, o);
  o += size.length;
  let rowid: bigint | null = null;
  if (type === PAGE_TYPE.leafTable) {
    const r = readVarint(page, o);
    rowid = r.value;
    o += r.length;
  }
  const payload = size.value;
  const maxLocal = type === PAGE_TYPE.leafTable ? usable - 35 : Math.floor(((usable - 12) * 64) / 255) - 23;
  if (payload <= maxLocal) {
    return { rowid, firstOverflow: 0, overflowPages: 0, length: o - offset + payload, recordOffset: o - offset };
  }
  const minLocal = Math.floor(((usable - 12) * 32) / 255) - 23;
  const k = minLocal + ((payload - minLocal) % (usable - 4));
  const local = k <= maxLocal ? k : minLocal;
  return {
    rowid,
    firstOverflow: page.readUInt32BE(o + local),
    overflowPages: Math.ceil((payload - local) / (usable - 4)),
    length: o - offset + local + 4,
    recordOffset: o - offset,
  };
}

/** Page numbers of an overflow chain (following each page's next pointer, at most `count` pages). */
export function overflowChain(file: PageFile, first: number, count: number, next?: (pgno: number) => number): number[] {
  const out: number[] = [];
  const head = Buffer.alloc(4);
  let p = first;
  while (p > 0 && p <= file.pageCount && out.length < count) {
    out.push(p);
    if (next) p = next(p);
    else {
      file.read(p, undefined).copy(head, 0, 0, 4);
      p = head.readUInt32BE(0);
    }
  }
  return out;
}

/** Every page on the freelist (trunk and leaf pages). */
export function freelistPages(file: PageFile): Set<number> {
  const out = new Set<number>();
  let trunk = file.headerU32(32);
  const total = file.headerU32(36);
  while (trunk > 0 && trunk <= file.pageCount && out.size <= total && !out.has(trunk)) {
    out.add(trunk);
    const page = file.read(trunk);
    const n = Math.min(page.readUInt32BE(4), (file.usable - 8) / 4);
    for (let i = 0; i < n; i += 1) out.add(page.readUInt32BE(8 + 4 * i));
    trunk = page.readUInt32BE(0);
  }
  return out;
}

/** Pages that hold no b-tree content: pointer-map pages (auto-vacuum files) and the lock-byte page. */
export function structuralPages(file: PageFile): Set<number> {
  const out = new Set<number>();
  const lockByte = Math.floor(0x40000000 / file.pageSize) + 1;
  if (lockByte <= file.pageCount) out.add(lockByte);
  if (file.headerU32(52) !== 0) {
    const step = Math.floor(file.usable / 5) + 1;
    for (let base = 2; base <= file.pageCount; base += step) out.add(base === lockByte ? base + 1 : base);
  }
  return out;
}
