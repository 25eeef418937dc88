// Stays whole (over 400 lines): finding changed pages and attributing them to rows is one algorithm over shared page-state invariants.
import {
  HASH_BYTES,
  LEAF_MARK,
  PageState,
  btreeSignature,
  chunkOf,
  pageHash,
  type Btree,
  type PageHeader,
} from './page-state.ts';
import { cellHashAt, cellIndex, keyHashAt, leafCells, type CellEntry, type KeyReader } from './leaf-cells.ts';
import {
  PAGE_TYPE,
  btreeHeader,
  cellOffsets,
  childPages,
  freelistPages,
  overflowChain,
  parseCell,
  readVarint,
  structuralPages,
  type Cell,
  type PageFile,
  type WalMark,
} from './sqlite-pages.ts';

/**
 * Change capture that does not trust the application. Open WebUI changes many rows without touching `updated_at`
 * and deletes hard, so a run finds what changed from the database file itself: every page the snapshot sees is
 * compared with the previous run's snapshot, and changed pages are mapped to the rows on them.
 *
 * - WAL files: the pages written since the last run are exactly the pages of the WAL frames after the last run's end
 *   mark, as long as the WAL has not restarted (same salts). Cost: the frame headers, nothing else.
 * - Otherwise (a rollback-journal file, or a WAL that restarted after a checkpoint): every page is hashed and compared
 *   with the hashes recorded by the last run. Cost: one sequential read of the file.
 * - A changed table leaf page names its rows (rowids); a changed overflow page names the row it belongs to (recorded
 *   for every overflow page, because SQLite rewrites a same-size value in place, touching only its overflow pages);
 *   a changed interior page means rows moved between pages (deletes are then looked for by count).
 * - No previous state (first run, another file at the path, another page size): every table is compared in full.
 *
 * The result over-approximates (a changed page names all its rows, changed or not; the row comparison in
 * PostgreSQL drops the unchanged ones), never under-approximates: a page that cannot be accounted for makes every
 * table be compared in full.
 */

import { buildState, forEachPage } from './state-builder.ts';

/**
 * Rows to read again per table: a set of rowids, or every row; and the key hashes of rows that left the table's
 * changed pages (deleted, or re-keyed), or null when they are not all known.
 */
export type TableChanges = { readonly rowids: Set<bigint>; all: boolean; removed: string[] | null };

export type Capture = {
  /** How the changed pages were found. */
  readonly mode: 'baseline' | 'wal' | 'wal-restart' | 'pages';
  /** Tables whose b-tree changed, with the rows to read again (an empty set: only check for deletes). */
  readonly tables: Map<string, TableChanges>;
  readonly changedPages: number;
  /** Changed pages no b-tree, freelist or known overflow chain accounts for (then every table is compared). */
  readonly unknownPages: number;
  /** The state to record once the run has applied everything. */
  readonly state: PageState;
};

export type CaptureInput = {
  readonly file: PageFile;
  readonly walMark: WalMark | null;
  readonly fileId: string;
  readonly btrees: readonly Btree[];
  /** The last successful run's state header, or null. */
  readonly previous: PageHeader | null;
  /** Loads the given chunks of the previous state into `state`. */
  readonly loadChunks: (state: PageState, chunks: number[]) => Promise<void>;
  /** Loads the given chunks of the previous state's leaf cells into `state.cells`. */
  readonly loadCellChunks: (state: PageState, chunks: number[]) => Promise<void>;
  /** Called between slices of whole-file work (lock budgets, aborts). */
  readonly checkpoint?: () => void;
  /** Reads a row's key from its cell, per table b-tree root (tables without one have no key hashes). */
  readonly keyReaders?: ReadonlyMap<number, KeyReader>;
};

/** Finds what changed since the last run (see the module comment). */
export async function captureChanges(input: CaptureInput): Promise<Capture> {
  const { file, previous } = input;
  const walSalt = input.walMark?.salt ?? null;
  const walFrame = input.walMark?.mxFrame ?? 0;
  const walChange = input.walMark?.change ?? 0;
  const btrees = btreeSignature(input.btrees);
  // Another file, another page size, or b-trees at other root pages (VACUUM, new tables or indexes): the recorded
  // owners no longer mean the same rows.
  if (
    !previous ||
    previous.pageSize !== file.pageSize ||
    previous.fileId !== input.fileId ||
    previous.btrees !== btrees
  ) {
    return baseline(input);
  }
  const state = new PageState({
    ...previous,
    walSalt,
    walFrame,
    walChange,
    btrees,
    cellsRecorded: true,
    hashesRecorded: true,
  });
  // The whole previous state is loaded (20 bytes a page): overflow owners anywhere in the file may change.
  const all: number[] = [];
  for (let c = 0; c <= chunkOf(previous.pageCount); c += 1) all.push(c);
  await input.loadChunks(state, all);
  const oldCount = previous.pageCount;
  state.resize(file.pageCount);
  let changed: Set<number> | null = null;
  let mode: Capture['mode'] = 'pages';
  // The WAL names every page written since the last run when it is the same WAL generation: same salts (SQLite
  // draws new ones at every restart and for every new WAL file; all zeros is the empty index of a file no connection
  // had open, which a deleted WAL returns to) and not shorter.
  const known = previous.walSalt !== null && previous.walSalt !== EMPTY_SALT;
  if (known && previous.walSalt === walSalt && previous.walFrame <= walFrame) {
    mode = 'wal';
    changed = file.pagesWrittenAfter(previous.walFrame);
  } else if (known && walSalt !== null && restartedOnce(previous.walSalt as string, walSalt)) {
    changed = afterOneRestart(file, previous.walSalt as string, previous.walFrame, walChange - previous.walChange);
    if (changed) mode = 'wal-restart';
  }
  if (changed && !previous.hashesRecorded) {
    // The first run after a full sync of a WAL file: the WAL says what changed; every page's hash is recorded now.
    for (const p of changed) if (p > file.pageCount) changed.delete(p);
    forEachPage(file, input.checkpoint, (p, page) => state.setHash(p, page));
  } else if (changed) {
    for (const p of changed) if (p > file.pageCount) changed.delete(p);
    const buf = Buffer.alloc(file.pageSize);
    for (const p of changed) state.setHash(p, file.read(p, buf));
  } else if (!previous.hashesRecorded) {
    // No page hashes to compare with and no WAL to say what changed: every table is compared, once.
    return baseline(input);
  } else {
    const all = new Set<number>();
    changed = all;
    forEachPage(file, input.checkpoint, (p, page) => {
      const h = pageHash(page);
      if (p > oldCount || !state.hashEquals(p, h)) {
        all.add(p);
        h.copy(state.hashes, p * HASH_BYTES, 0, HASH_BYTES);
        state.dirty.add(chunkOf(p));
      }
    });
  }
  const attributed = await attribute(input, state, changed);
  return { mode, ...attributed, changedPages: changed.size, state };
}

/** Every table compared in full, and the whole state of this snapshot recorded. */
function baseline(input: CaptureInput): Capture {
  const state = buildState(input);
  const tables = new Map<string, TableChanges>();
  for (const b of input.btrees) if (!b.isIndex) tables.set(b.table, { rowids: new Set(), all: true, removed: null });
  return { mode: 'baseline', tables, changedPages: input.file.pageCount, unknownPages: 0, state };
}

/** The salts of an empty WAL index (a file no connection had open): a mark there names no WAL generation. */
export const EMPTY_SALT = '0000000000000000';

/** Whether the next run can learn from the WAL what changed since `mark` (else it compares page hashes). */
export function walMarkUsable(mark: WalMark | null): boolean {
  return mark !== null && mark.salt !== EMPTY_SALT;
}

/** True when the WAL restarted exactly once between the two marks (SQLite adds one to the first salt each time). */
function restartedOnce(previous: string, current: string): boolean {
  const a = Buffer.from(previous, 'hex');
  const b = Buffer.from(current, 'hex');
  return a.length === 8 && b.length === 8 && (a.readUInt32BE(0) + 1) >>> 0 === b.readUInt32BE(0);
}

/**
 * The pages written since the last run when the WAL restarted once in between: those of the current generation's
 * frames, plus those of the earlier generation's frames after the last run's mark. The WAL index counts committed
 * transactions across the restart, so the earlier generation's late frames are known to be none, or found intact
 * past the current generation's end (their transactions counted); otherwise null (the pages are compared instead).
 */
function afterOneRestart(
  file: PageFile,
  earlierSalt: string,
  earlierMark: number,
  commitsSince: number,
): Set<number> | null {
  const since = commitsSince >>> 0;
  if (since < file.commitFrames) return null;
  const late = since - file.commitFrames;
  const pages = file.pagesWrittenAfter(0);
  if (late === 0) return pages;
  if (file.frames > earlierMark) return null;
  const earlier = file.earlierFrames(earlierMark + 1, earlierSalt);
  if (earlier.commits !== late) return null;
  for (const p of earlier.pages) pages.add(p);
  return pages;
}

/** Maps changed pages to tables and rows, updating the overflow owners of the rows on changed pages. */
async function attribute(
  input: CaptureInput,
  state: PageState,
  changed: Set<number>,
): Promise<{ tables: Map<string, TableChanges>; unknownPages: number }> {
  const { file } = input;
  const tables = new Map<string, TableChanges>();
  const byRoot = new Map(input.btrees.map((b) => [b.root, b]));
  const touch = (table: string): TableChanges => {
    let t = tables.get(table);
    if (!t) {
      t = { rowids: new Set(), all: false, removed: [] };
      tables.set(table, t);
    }
    return t;
  };
  if (changed.size === 0) return { tables, unknownPages: 0 };
  // Which b-tree each leaf and interior page belongs to, from the interior pages of every b-tree alone (a small
  // fraction of the file): all leaves of a b-tree are at the same depth, so the children of its lowest interior
  // level are its leaves, and they are not read.
  const ownerOf = new Int32Array(file.pageCount + 1);
  const leafOf = new Uint8Array(file.pageCount + 1);
  const buf = Buffer.alloc(file.pageSize);
  for (const [bi, b] of input.btrees.entries()) {
    if (b.root <= 0 || b.root > file.pageCount) continue;
    let height = 0;
    for (let p = b.root; height < 64 && p > 0 && p <= file.pageCount; height += 1) {
      const page = file.read(p, buf);
      const info = btreeHeader(page, p);
      if (!info || info.type === PAGE_TYPE.leafTable || info.type === PAGE_TYPE.leafIndex) break;
      p = childPages(page, info)[0] ?? 0;
    }
    const stack: [number, number][] = [[b.root, 0]];
    while (stack.length > 0) {
      const [p, depth] = stack.pop() as [number, number];
      if (p <= 0 || p > file.pageCount || ownerOf[p] !== 0) continue;
      ownerOf[p] = bi + 1;
      if (depth >= height) {
        leafOf[p] = 1;
        continue;
      }
      const page = file.read(p, buf);
      const info = btreeHeader(page, p);
      if (!info || info.type === PAGE_TYPE.leafTable || info.type === PAGE_TYPE.leafIndex) continue;
      for (const child of childPages(page, info)) stack.push([child, depth + 1]);
    }
  }
  const owner = (p: number) => {
    const bi = p > 0 && p <= file.pageCount ? (ownerOf[p] ?? 0) : 0;
    return bi > 0 ? { btree: input.btrees[bi - 1] as Btree } : undefined;
  };
  // What each changed page was at the last state, before anything is updated: a leaf of which table.
  const wasLeafOf = new Map<number, number>();
  for (const p of changed) if (state.rowids[p] === LEAF_MARK) wasLeafOf.set(p, state.roots[p] ?? 0);
  // Every changed page's chunk: its entry may be written (a chunk is stored whole).
  const cellChunks = new Set<number>();
  for (const p of changed) cellChunks.add(chunkOf(p));
  await input.loadCellChunks(state, [...cellChunks]);
  // rowid → cell hash per table, over every changed page that was one of its leaves: a row that stayed or moved
  // between them unchanged is found here (a row leaving a page changes that page).
  const before = new Map<number, CellEntry[]>();
  // Tables with a changed page whose old cells are not known: what left them is not known either.
  const unknownBefore = new Set<number>();
  for (const [p, root] of wasLeafOf) {
    const e = state.cells.get(p);
    if (!e || !input.previous?.cellsRecorded) unknownBefore.add(root);
    if (!e) continue;
    const list = before.get(root) ?? [];
    list.push(e);
    before.set(root, list);
  }
  const indexes = new Map<number, Map<bigint, string>>();
  const previousCells = (root: number) => {
    let ix = indexes.get(root);
    if (!ix) {
      ix = cellIndex(before.get(root) ?? []);
      indexes.set(root, ix);
    }
    return ix;
  };
  // rowid → key hash of the rows now on each table's changed leaves.
  const now = new Map<number, Map<bigint, string | null>>();
  const nowOn = (root: number) => {
    let m = now.get(root);
    if (!m) {
      m = new Map();
      now.set(root, m);
    }
    return m;
  };
  const leftover: number[] = [];
  for (const p of changed) {
    const o = owner(p);
    if (!o) {
      leftover.push(p);
      continue;
    }
    const { btree } = o;
    if (!btree.rowidTable && !btree.isIndex) {
      touch(btree.table).all = true;
      continue;
    }
    const page = file.read(p, buf);
    const info = btreeHeader(page, p);
    if (!info) continue;
    if (info.type === PAGE_TYPE.interiorTable) {
      if (btree.rowidTable) touch(btree.table);
      continue;
    }
    if (info.type === PAGE_TYPE.leafTable && btree.rowidTable) {
      const rows = touch(btree.table).rowids;
      const { cells, entry } = leafCells(page, info, file.usable, true, input.keyReaders?.get(btree.root));
      const old = previousCells(btree.root);
      for (const [i, cell] of cells.entries()) nowOn(btree.root).set(cell.rowid ?? 0n, keyHashAt(entry, i));
      for (const [i, cell] of cells.entries()) {
        const rowid = cell.rowid ?? 0n;
        // Same rowid, same bytes: the same row, its overflow chain where it was (a changed overflow page names
        // its row below).
        if (old.get(rowid) === cellHashAt(entry, i)) continue;
        rows.add(rowid);
        if (cell.firstOverflow > 0) {
          for (const op of overflowChain(file, cell.firstOverflow, cell.overflowPages)) {
            state.setOwner(op, btree.root, rowid);
          }
        }
      }
      state.cells.set(p, entry);
      state.setOwner(p, btree.root, LEAF_MARK);
      continue;
    }
    for (const offset of cellOffsets(page, info)) {
      const cell = parseCell(page, offset, info.type, file.usable);
      if (cell.firstOverflow > 0) {
        for (const op of overflowChain(file, cell.firstOverflow, cell.overflowPages)) {
          state.setOwner(op, btree.root, -1n);
        }
      }
    }
  }
  // Rows that were on a changed leaf and are on none now (or under another key) left the table: their key hashes
  // let the delete check find them without comparing every key. Unknown when a page's cells were not recorded.
  for (const b of input.btrees) {
    if (!b.rowidTable) continue;
    const t = tables.get(b.table);
    if (!t || t.removed === null) continue;
    if (unknownBefore.has(b.root)) {
      t.removed = null;
      continue;
    }
    const current = now.get(b.root) ?? new Map<bigint, string | null>();
    const removed: string[] = [];
    let known = true;
    for (const e of before.get(b.root) ?? []) {
      for (let i = 0; i < e.rowids.length && known; i += 1) {
        const rowid = e.rowids[i] ?? 0n;
        const key = keyHashAt(e, i);
        if (current.has(rowid) && current.get(rowid) === key) continue;
        if (key === null) known = false;
        else removed.push(key);
      }
    }
    t.removed = known ? removed : null;
  }
  // After a full sync the cells are recorded here, for every table leaf the loop above did not record.
  if (!input.previous?.cellsRecorded) {
    for (let p = 1; p <= file.pageCount; p += 1) {
      const b = leafOf[p] === 1 ? owner(p)?.btree : undefined;
      if (!b?.rowidTable || changed.has(p)) continue;
      const page = file.read(p, buf);
      const info = btreeHeader(page, p);
      if (info?.type === PAGE_TYPE.leafTable) {
        state.cells.set(p, leafCells(page, info, file.usable, true, input.keyReaders?.get(b.root)).entry);
      }
    }
  }
  // A page stops being a leaf without being written (freed): its mark goes, so its old cells are never trusted.
  for (let p = 1; p <= file.pageCount; p += 1) {
    if (state.rowids[p] === LEAF_MARK && !(leafOf[p] === 1 && state.roots[p] === owner(p)?.btree.root)) {
      state.setOwner(p, 0, 0n);
    }
  }
  let unknownPages = 0;
  if (leftover.length > 0) {
    const free = freelistPages(file);
    const structural = structuralPages(file);
    // Rows reached through one of their overflow pages: their chain may have moved past that page, so it is walked
    // again from the row's cell (the owners must stay exact for the next run).
    const rewalk = new Map<Btree, Set<bigint>>();
    for (const p of leftover) {
      if (free.has(p) || structural.has(p)) continue;
      const b = state.rowids[p] === LEAF_MARK ? undefined : byRoot.get(state.roots[p] ?? 0);
      if (!b) {
        unknownPages += 1;
        continue;
      }
      if (b.rowidTable) {
        const rowid = state.rowids[p] ?? 0n;
        touch(b.table).rowids.add(rowid);
        const set = rewalk.get(b) ?? new Set<bigint>();
        set.add(rowid);
        rewalk.set(b, set);
      } else if (!b.isIndex) touch(b.table).all = true;
      // An index's overflow page changes only with the index cell, i.e. with the rows it indexes.
    }
    for (const [b, rowids] of rewalk) {
      for (const rowid of rowids) {
        const cell = findRowCell(file, b.root, rowid);
        if (!cell || cell.firstOverflow === 0) continue;
        for (const op of overflowChain(file, cell.firstOverflow, cell.overflowPages)) state.setOwner(op, b.root, rowid);
      }
    }
  }
  if (unknownPages > 0) {
    for (const b of input.btrees) if (!b.isIndex) touch(b.table).all = true;
  }
  return { tables, unknownPages };
}

/** The cell of `rowid` in the table b-tree rooted at `root`, found by descending its interior pages. */
function findRowCell(file: PageFile, root: number, rowid: bigint): Cell | null {
  let p = root;
  for (let depth = 0; depth < 64 && p > 0 && p <= file.pageCount; depth += 1) {
    const page = file.read(p);
    const info = btreeHeader(page, p);
    if (!info) return null;
    if (info.type === PAGE_TYPE.leafTable) {
      for (const offset of cellOffsets(page, info)) {
        const cell = parseCell(page, offset, info.type, file.usable);
        if (cell.rowid === rowid) return cell;
      }
      return null;
    }
    if (info.type !== PAGE_TYPE.interiorTable) return null;
    let next = info.rightChild;
    for (const offset of cellOffsets(page, info)) {
      if (rowid <= readVarint(page, offset + 4).value) {
        next = page.readUInt32BE(offset);
        break;
      }
    }
    p = next;
  }
  return null;
}

/** Calls `fn` for every page of the snapshot in order, reading the file in large blocks. */
