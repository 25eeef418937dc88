import {
  constants as fsConstants,
  copyFileSync,
  mkdtempSync,
  openSync,
  readSync,
  closeSync,
  fstatSync,
  lstatSync,
  realpathSync,
  rmSync,
  statSync,
  type Stats,
} from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AbortedError, SourceUnusableError, errorMessage } from '../errors.ts';
import { PageFile, readWalIndexHeader, type WalMark } from './sqlite-pages.ts';
import type { Btree } from './page-state.ts';
import { readSchema, type SqliteSchema } from './sqlite-schema.ts';

export {
  detectOpenWebUIVersion,
  isOpenWebUISchema,
  openWebUIRevision,
  readSchema,
  type SqliteColumn,
  type SqliteForeignKey,
  type SqliteIndex,
  type SqliteSchema,
  type SqliteTable,
} from './sqlite-schema.ts';

/**
 * Read-only access to a tenant's Open WebUI SQLite file. The file is never written, never checkpointed, and no lock
 * that blocks the Open WebUI process is held for more than a moment:
 * - WAL databases are read in one long read transaction (a WAL reader never blocks writers);
 * - rollback-journal databases are copied while a SHARED lock is held for the duration of the copy (a plain file
 *   copy, well under a second for hundreds of MB), and the copy is read instead;
 * - or, when the caller expects a short read (an incremental run), a rollback-journal database is read in place in
 *   one read transaction with a budget: its SHARED lock delays Open WebUI's commits, so once the budget is spent
 *   `checkHold()` throws LockHoldExceededError and the caller continues from a copy.
 * Either way the whole run sees one consistent snapshot.
 */

export type SnapshotOptions = {
  /** Total time to keep retrying a locked file (exponential backoff), default 10 s. */
  readonly lockRetryMs?: number;
  readonly signal?: AbortSignal;
  /** Rollback-journal files: read in place for at most this long (ms) instead of copying; 0 (default): copy. */
  readonly inPlaceBudgetMs?: number;
};

/** A rollback-journal file read in place has held its shared lock for the whole budget. */
export class LockHoldExceededError extends Error {
  constructor(budgetMs: number) {
    super(`the read of the rollback-journal file reached its ${budgetMs} ms lock budget`);
    this.name = 'LockHoldExceededError';
  }
}

/** One consistent, read-only view of a tenant database for the duration of a run. */
export class SqliteSnapshot {
  readonly db: Database.Database;
  readonly journalMode: string;
  readonly sourcePath: string;
  private readonly copyDir: string | undefined;
  /** Reading a rollback-journal file in place: until when its shared lock may be held (performance.now()). */
  private readonly holdUntil: number | null;
  private readonly holdBudgetMs: number;
  /** WAL files: where the read transaction ends in the WAL (null: no WAL frame is part of the snapshot). */
  readonly walMark: WalMark | null;
  /** The file whose pages are the snapshot (the source, or its copy). */
  private readonly pagesPath: string;

  private constructor(
    db: Database.Database,
    journalMode: string,
    sourcePath: string,
    copyDir?: string,
    holdBudgetMs = 0,
    walMark: WalMark | null = null,
    pagesPath = sourcePath,
  ) {
    this.walMark = walMark;
    this.pagesPath = pagesPath;
    this.db = db;
    this.journalMode = journalMode;
    this.sourcePath = sourcePath;
    this.copyDir = copyDir;
    this.holdBudgetMs = holdBudgetMs;
    this.holdUntil = holdBudgetMs > 0 ? performance.now() + holdBudgetMs : null;
  }

  /** True when a rollback-journal file is read in place (its shared lock is held until close). */
  get inPlace(): boolean {
    return this.holdUntil !== null;
  }

  /** True when an in-place read has used up its budget. */
  holdSpent(): boolean {
    return this.holdUntil !== null && performance.now() > this.holdUntil;
  }

  /** Throws LockHoldExceededError when an in-place read has used up its budget. */
  checkHold(): void {
    if (this.holdSpent()) throw new LockHoldExceededError(this.holdBudgetMs);
  }

  /** Opens the file read-only and pins a snapshot (retrying while it is locked). */
  static async open(filePath: string, options: SnapshotOptions = {}): Promise<SqliteSnapshot> {
    assertFileReadable(filePath);
    const deadline = Date.now() + (options.lockRetryMs ?? 10_000);
    let delay = 50;
    for (;;) {
      if (options.signal?.aborted) throw new AbortedError('sync aborted while opening the SQLite file');
      try {
        return SqliteSnapshot.tryOpen(filePath, options.inPlaceBudgetMs ?? 0);
      } catch (error) {
        if (!isBusy(error) || Date.now() + delay > deadline) throw toSourceError(filePath, error);
        await sleep(delay);
        delay = Math.min(delay * 2, 1_000);
      }
    }
  }

  private static tryOpen(filePath: string, inPlaceBudgetMs: number): SqliteSnapshot {
    const db = openReadOnly(filePath);
    try {
      const mode = String(db.pragma('journal_mode', { simple: true })).toLowerCase();
      if (mode === 'wal') {
        // SQLite keeps the WAL and its index beside the file a symlink points to.
        const walMark = beginWalSnapshot(db, realpathSync(filePath));
        const snap = new SqliteSnapshot(db, mode, filePath, undefined, 0, walMark, realpathSync(filePath));
        return snap;
      }
      if (inPlaceBudgetMs > 0) {
        db.exec('BEGIN');
        // The first read pins the snapshot (and, without WAL, takes the SHARED lock) for the rest of the transaction.
        db.prepare('SELECT count(*) FROM sqlite_master').pluck().get();
        return new SqliteSnapshot(db, mode, filePath, undefined, inPlaceBudgetMs);
      }
      // Rollback journal: a long read transaction would hold SHARED and block every commit of Open WebUI, so copy
      // the file under a short SHARED lock instead and read the copy.
      const dir = mkdtempSync(path.join(os.tmpdir(), 'owui-sync-snap-'));
      const copy = path.join(dir, 'snapshot.db');
      try {
        db.exec('BEGIN');
        db.prepare('SELECT count(*) FROM sqlite_master').pluck().get();
        copyFileSync(filePath, copy, fsConstants.COPYFILE_FICLONE);
        db.exec('COMMIT');
      } catch (error) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
      db.close();
      const snap = new Database(copy, { readonly: true, fileMustExist: true });
      snap.exec('BEGIN');
      return new SqliteSnapshot(snap, mode, filePath, dir, 0, null, copy);
    } catch (error) {
      if (db.open) db.close();
      throw error;
    }
  }

  /** Tables, columns, keys, indexes and foreign keys as SQLite declares them. */
  schema(): SqliteSchema {
    return readSchema(this.db);
  }

  /** The snapshot's raw pages (read while the snapshot is open; close it before the snapshot). */
  openPages(): PageFile {
    return PageFile.open(this.pagesPath, this.walMark);
  }

  /** Identity of the source file (device and inode): another file at the path is another database. */
  fileId(): string {
    const st = statSync(this.sourcePath, { bigint: true });
    return `${st.dev}:${st.ino}`;
  }

  /** Every b-tree of the schema (sqlite_master included) with the table it belongs to. */
  btrees(): Btree[] {
    const rows = this.db
      .prepare('SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master WHERE rootpage > 0')
      .all() as { type: string; name: string; tbl_name: string; rootpage: number; sql: string | null }[];
    const out: Btree[] = [{ root: 1, table: 'sqlite_master', rowidTable: true, isIndex: false }];
    for (const r of rows) {
      const isIndex = r.type === 'index';
      const withoutRowid = !isIndex && /\bWITHOUT\s+ROWID\b/i.test(r.sql ?? '');
      out.push({ root: r.rootpage, table: r.tbl_name, rowidTable: !isIndex && !withoutRowid, isIndex });
    }
    return out;
  }

  close(): void {
    try {
      if (this.db.open) {
        if (this.db.inTransaction) this.db.exec('COMMIT');
        this.db.close();
      }
    } finally {
      if (this.copyDir) rmSync(this.copyDir, { recursive: true, force: true });
    }
  }
}

/**
 * Begins the read transaction of a WAL file and returns where it ends in the WAL. The WAL-index header is read before
 * and after the transaction takes its snapshot; when both agree, that is the snapshot's end mark (a commit in
 * between changes it, and the transaction is begun again). A file that keeps committing throughout counts as busy.
 */
function beginWalSnapshot(db: Database.Database, filePath: string): WalMark {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const before = readWalIndexHeader(filePath);
    db.exec('BEGIN');
    db.prepare('SELECT count(*) FROM sqlite_master').pluck().get();
    const after = readWalIndexHeader(filePath);
    if (
      before &&
      after &&
      before.salt === after.salt &&
      before.mxFrame === after.mxFrame &&
      before.change === after.change
    ) {
      return after;
    }
    db.exec('COMMIT');
  }
  const error = new Error('the WAL index kept changing (or could not be read) while the snapshot was taken');
  (error as { code?: string }).code = 'SQLITE_BUSY';
  throw error;
}

function openReadOnly(filePath: string): Database.Database {
  const db = new Database(filePath, { readonly: true, fileMustExist: true });
  // Our own short waits; the caller retries with backoff beyond this.
  db.pragma('busy_timeout = 200');
  return db;
}

function assertFileReadable(filePath: string): void {
  assertSourceFiles(filePath);
}

/** Files SQLite opens beside a database. */
const COMPANION_SUFFIXES = ['-wal', '-shm', '-journal'] as const;

/** What a non-regular file is, for error messages. */
function fileKind(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/**
 * Checks a tenant's SQLite file and the -wal, -shm and -journal files beside it without opening any of them (stat
 * and lstat never block): the database must be a regular file, and each companion absent or a regular file that is
 * not a symbolic link. Opening a FIFO blocks until something writes to it, and a device or socket is never a
 * database, so a hostile file fails the run at once instead of hanging the node. Returns the database's real path.
 */
export function assertSourceFiles(filePath: string): string {
  let st: Stats;
  try {
    st = statSync(filePath);
  } catch {
    throw new SourceUnusableError(
      `SQLite file ${filePath} does not exist or cannot be read; check the tenant's sqlite_path`,
    );
  }
  if (!st.isFile()) {
    throw new SourceUnusableError(`SQLite path ${filePath} is ${fileKind(st)}, not a regular file; nothing was read`);
  }
  let real: string;
  try {
    real = realpathSync(filePath);
  } catch (error) {
    throw new SourceUnusableError(`cannot resolve SQLite path ${filePath} (${errorMessage(error)}); nothing was read`);
  }
  // SQLite opens the companions beside the resolved file; a link's own companions are refused as well.
  for (const base of new Set([filePath, real])) {
    for (const suffix of COMPANION_SUFFIXES) {
      const companion = base + suffix;
      let cst: Stats;
      try {
        cst = lstatSync(companion);
      } catch (error) {
        if ((error as { code?: unknown }).code === 'ENOENT') continue;
        throw new SourceUnusableError(`cannot check ${companion} (${errorMessage(error)}); nothing was read`);
      }
      if (!cst.isFile()) {
        throw new SourceUnusableError(
          `${companion} is ${fileKind(cst)}, not a regular file, so SQLite must not open it; nothing was read — ` +
            'remove it (Open WebUI recreates it) and the next run goes ahead',
        );
      }
    }
  }
  return real;
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code === 'SQLITE_BUSY_RECOVERY';
}

/** Maps SQLite errors to a SourceUnusableError that says what is wrong with the file. */
export function toSourceError(filePath: string, error: unknown): Error {
  if (error instanceof SourceUnusableError || error instanceof AbortedError) return error;
  const code = String((error as { code?: unknown } | null)?.code ?? '');
  const msg = errorMessage(error);
  if (code === 'SQLITE_NOTADB') {
    return new SourceUnusableError(`${filePath} is not a SQLite database (${msg})`, { cause: error });
  }
  if (code.startsWith('SQLITE_CORRUPT')) {
    return new SourceUnusableError(`SQLite file ${filePath} is corrupt (${msg}); restore it or repair it`, {
      cause: error,
    });
  }
  if (isBusy(error)) {
    return new SourceUnusableError(
      `SQLite file ${filePath} stayed locked by another process (${msg}); the next run retries`,
      { cause: error },
    );
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_READONLY') {
    return new SourceUnusableError(`SQLite file ${filePath} cannot be opened read-only (${msg})`, { cause: error });
  }
  return new SourceUnusableError(`SQLite file ${filePath} cannot be read (${msg})`, { cause: error });
}

/**
 * A cheap fingerprint of the file's committed state: size and mtime of the database and its WAL, the database
 * header's change counter (bumped by every commit in rollback-journal mode) and the WAL-index header (bumped by
 * every commit in WAL mode). Equal fingerprints mean no transaction committed in between.
 */
export function sourceFingerprint(filePath: string): string {
  // SQLite keeps the WAL and its index beside the resolved file, not beside a symbolic link to it.
  const real = assertSourceFiles(filePath);
  const hash = createHash('sha256');
  for (const suffix of ['', '-wal', '-shm']) {
    const p = real + suffix;
    let st;
    try {
      st = statSync(p, { bigint: true });
    } catch {
      hash.update(`${suffix}:absent;`);
      continue;
    }
    // Readers write their read marks into -shm, so only its first WAL-index header copy (which changes on every
    // commit and nothing else) counts, not its size or mtime.
    if (suffix !== '-shm') hash.update(`${suffix}:${st.size}:${st.mtimeNs}:${st.ino};`);
    const headerBytes = suffix === '' ? [24, 4] : suffix === '-shm' ? [0, 48] : [0, 32];
    hash.update(readBytes(p, headerBytes[0] ?? 0, headerBytes[1] ?? 0));
  }
  return hash.digest('hex');
}

function readBytes(p: string, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let fd: number | undefined;
  try {
    // Non-blocking, and only regular files are read: a FIFO swapped in after the check must not hang the node.
    fd = openSync(p, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    if (!fstatSync(fd).isFile()) return Buffer.alloc(0);
    const n = readSync(fd, buf, 0, length, offset);
    return buf.subarray(0, n);
  } catch {
    return Buffer.alloc(0);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
