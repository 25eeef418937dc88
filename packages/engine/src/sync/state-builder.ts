import { leafCells, type CellEntry } from './leaf-cells.ts';
import { PageState, btreeSignature, chunkOf, pageHash, HASH_BYTES, LEAF_MARK, type Btree } from './page-state.ts';
import {
  PAGE_TYPE,
  btreeHeader,
  cellOffsets,
  childPages,
  overflowChain,
  parseCell,
  type PageFile,
  type WalMark,
} from './sqlite-pages.ts';

/** The input a whole page state is built from. */
export type BuildInput = {
  readonly file: PageFile;
  readonly walMark: WalMark | null;
  readonly fileId: string;
  readonly btrees: readonly Btree[];
  /** Called between slices of whole-file work (lock budgets, aborts). */
  readonly checkpoint?: () => void;
};

export function forEachPage(
  file: PageFile,
  checkpoint: (() => void) | undefined,
  fn: (pgno: number, page: Buffer) => void,
) {
  const per = Math.max(1, Math.floor((1 << 20) / file.pageSize));
  const block = Buffer.alloc(per * file.pageSize);
  for (let first = 1; first <= file.pageCount; first += per) {
    checkpoint?.();
    const last = Math.min(file.pageCount, first + per - 1);
    const buf = file.readRange(first, last, block);
    for (let p = first; p <= last; p += 1) {
      fn(p, buf.subarray((p - first) * file.pageSize, (p - first + 1) * file.pageSize));
    }
  }
}

/** What a page holding b-tree cells says of itself: its cells' entry (table leaves) and overflow chain heads. */
type PageCells = {
  type: number;
  entry: CellEntry | null;
  heads: [rowid: bigint, first: number, count: number][];
};

function readPageCells(page: Buffer, pgno: number, usable: number, withCells: boolean): PageCells | null {
  const info = btreeHeader(page, pgno);
  if (!info || info.type === PAGE_TYPE.interiorTable) return null;
  const heads: PageCells['heads'] = [];
  if (info.type === PAGE_TYPE.leafTable) {
    const { cells, entry } = leafCells(page, info, usable, withCells);
    for (const c of cells) if (c.firstOverflow > 0) heads.push([c.rowid ?? 0n, c.firstOverflow, c.overflowPages]);
    return { type: info.type, entry: withCells ? entry : null, heads };
  }
  for (const offset of cellOffsets(page, info)) {
    const c = parseCell(page, offset, info.type, usable);
    if (c.firstOverflow > 0) heads.push([-1n, c.firstOverflow, c.overflowPages]);
  }
  return { type: info.type, entry: null, heads };
}

/**
 * The whole state of a snapshot: every page's hash, the cells of every table leaf and the owner of every overflow
 * page. Built in steps (one block of pages each, cells parsed while the block is in memory) so a full sync does it
 * while it waits for PostgreSQL; `finish` then only walks the b-trees' interior pages to know which page is whose.
 */
export class StateBuilder {
  readonly state: PageState;
  private readonly input: BuildInput;
  private readonly next: Uint32Array;
  private readonly block: Buffer;
  private readonly perBlock: number;
  private readonly pageCells = new Map<number, PageCells>();
  private first = 1;
  /** Record the cells of table leaves too (a full sync leaves them to its first incremental run). */
  private readonly withCells: boolean;
  /** Hash every page (a full sync of a WAL file leaves that to its first incremental run too). */
  private readonly withHashes: boolean;

  constructor(input: BuildInput, withCells = true, withHashes = true) {
    const { file } = input;
    this.input = input;
    this.withCells = withCells;
    this.withHashes = withHashes;
    this.state = new PageState({
      pageSize: file.pageSize,
      pageCount: file.pageCount,
      walSalt: input.walMark?.salt ?? null,
      walFrame: input.walMark?.mxFrame ?? 0,
      walChange: input.walMark?.change ?? 0,
      fileId: input.fileId,
      btrees: btreeSignature(input.btrees),
      cellsRecorded: withCells,
      hashesRecorded: withHashes,
    });
    this.next = new Uint32Array(file.pageCount + 1);
    this.perBlock = Math.max(1, Math.floor((1 << 20) / file.pageSize));
    this.block = Buffer.alloc(this.perBlock * file.pageSize);
  }

  /** Hashes (and parses the cells of) the next block of pages; false once every page is done. */
  step(): boolean {
    const { file } = this.input;
    if (this.first > file.pageCount) return false;
    this.input.checkpoint?.();
    const last = Math.min(file.pageCount, this.first + this.perBlock - 1);
    const buf = file.readRange(this.first, last, this.block);
    for (let p = this.first; p <= last; p += 1) {
      const page = buf.subarray((p - this.first) * file.pageSize, (p - this.first + 1) * file.pageSize);
      if (this.withHashes) pageHash(page).copy(this.state.hashes, p * HASH_BYTES, 0, HASH_BYTES);
      this.next[p] = page.readUInt32BE(0);
      const type = page[p === 1 ? 100 : 0];
      if (type === PAGE_TYPE.leafTable || type === PAGE_TYPE.leafIndex || type === PAGE_TYPE.interiorIndex) {
        try {
          const cells = readPageCells(page, p, file.usable, this.withCells);
          if (cells) this.pageCells.set(p, cells);
        } catch {
          // Not a b-tree page after all (finish reads the real ones again if need be).
        }
      }
    }
    this.first = last + 1;
    return this.first <= file.pageCount;
  }

  /** Does what is left and records which page is whose. */
  finish(): PageState {
    while (this.step()) {
      // every remaining block
    }
    const { file } = this.input;
    const { state, next } = this;
    const buf = Buffer.alloc(file.pageSize);
    for (const b of this.input.btrees) {
      const stack = [b.root];
      const seen = new Set<number>();
      while (stack.length > 0) {
        const p = stack.pop() as number;
        if (p <= 0 || p > file.pageCount || seen.has(p)) continue;
        seen.add(p);
        let cells = this.pageCells.get(p);
        if (!cells || cells.type === PAGE_TYPE.interiorIndex) {
          // Interior pages are read again for their children (there are few); pages a block did not parse too.
          const page = file.read(p, buf);
          const info = btreeHeader(page, p);
          if (!info) continue;
          if (info.type === PAGE_TYPE.interiorTable || info.type === PAGE_TYPE.interiorIndex) {
            stack.push(...childPages(page, info));
          }
          if (info.type === PAGE_TYPE.interiorTable) continue;
          cells ??= readPageCells(page, p, file.usable, this.withCells) ?? undefined;
        }
        if (!cells) continue;
        if (cells.type === PAGE_TYPE.leafTable && b.rowidTable) {
          if (cells.entry) state.cells.set(p, cells.entry);
          state.roots[p] = b.root;
          state.rowids[p] = LEAF_MARK;
        }
        for (const [rowid, first, count] of cells.heads) {
          const owner = b.rowidTable ? rowid : -1n;
          for (const op of overflowChain(file, first, count, (x) => next[x] ?? 0)) {
            state.roots[op] = b.root;
            state.rowids[op] = owner;
          }
        }
      }
    }
    this.pageCells.clear();
    for (let c = 0; c <= chunkOf(file.pageCount); c += 1) {
      state.loaded.add(c);
      state.dirty.add(c);
    }
    state.cells.markAllDirty();
    return state;
  }
}

/** The whole state of a snapshot at once (see StateBuilder). */
export function buildState(input: BuildInput) {
  return new StateBuilder(input).finish();
}
