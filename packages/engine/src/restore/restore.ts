// Stays whole (over 400 lines): restoreTenant is one transaction-scoped pass (checks, tables, copy, indexes, integrity) whose steps share its snapshot; values, history, schema and COPY decoding live in their own modules.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import type { Logger } from 'pino';
import { qualified, quoteIdent, quoteLiteral } from '@owui-sync/schema';
import { applyScope, type DbScope } from '../db.ts';
import { ConflictError, InvalidInputError } from '../errors.ts';
import { silentLogger } from '../logger.ts';
import { realPathOf } from '../sync/source-path.ts';
import { notTombstonedSql } from '../sync/tombstones.ts';
import { readTargetSchema, type TargetTable } from '../sync/target-schema.ts';
import { tenantSchemaName } from '../sync/tenant-ddl.ts';
import { binaryCopyTuples } from './copy-out.ts';
import { setSnapshotSql } from './snapshot.ts';
import { historyWindow, resolvePointInTime, rowsAtSql, schemaAt, type PointInTime } from './history.ts';
import { revisionWarnings, sqliteRevision } from './revision.ts';
import {
  findDeployment,
  loadSourceSchema,
  reconstructTableDdl,
  type TenantSource,
  type SourceObject,
} from './source-schema.ts';
import { decodeField, restoreKindFor, selectExpression, type RestoreKind, type SqliteValue } from './values.ts';

export type RestoreProgress = {
  table: string;
  rowsDone: number;
  rowsTotal: number | null;
  tableIndex: number;
  tableCount: number;
};

export type RestoreOptions = {
  /** Service (or admin) pool; reads the tenant schema and sync_state in one read-only snapshot. */
  pool: pg.Pool;
  clientName: string;
  /** The SQLite file to write; must not exist unless `force`. */
  to: string;
  scope?: DbScope;
  force?: boolean;
  /** Also restore rows deleted in the source since they were synced (tombstoned). */
  includeDeleted?: boolean;
  logger?: Logger;
  onProgress?: (p: RestoreProgress) => void;
  /** Rows per SQLite transaction (default 20000). */
  batchSize?: number;
  /** Restore the tenant as the last run completed at or before this time saw it (see history.ts). */
  at?: Date;
  /** Refuse (before writing anything) unless the restored database is at this Open WebUI revision. */
  expectRevision?: string;
  /** Read the backup in this exported snapshot (pg_export_snapshot of a transaction still open): see drill.ts. */
  snapshot?: string;
  /** Called with every row as it is written (the array is reused: read it before returning). */
  onRow?: (table: RestoredTable, values: readonly SqliteValue[]) => void;
};

/** A restored table as onRow sees it: its name and the columns written, with how each was decoded. */
export type RestoredTable = {
  readonly name: string;
  readonly columns: readonly string[];
  readonly kinds: readonly RestoreKind[];
};

export type RestoreResult = {
  clientName: string;
  path: string;
  tables: Record<string, number>;
  rowsRestored: number;
  /** Tombstoned rows left out (0 with includeDeleted). */
  rowsLeftOutDeleted: number;
  /** 'captured': the source's own DDL; 'reconstructed': rebuilt from PostgreSQL; 'mixed': some of each. */
  ddl: 'captured' | 'reconstructed' | 'mixed';
  openwebuiVersion: string | null;
  /** Open WebUI schema revision the restored file is at ('alembic:…', 'peewee:…'), if known. */
  openwebuiRevision: string | null;
  /** With `at`: the run whose state was restored. */
  pointInTime?: { requested: string; runFinishedAt: string; jobId: string };
  integrityCheck: string;
  /** Things the operator should know: an unfinished full sync, rows the sync could not write, a failed last sync. */
  warnings: string[];
  durationSeconds: number;
};

type TablePlanR = {
  name: string;
  table: TargetTable | null;
  columns: string[];
  kinds: RestoreKind[];
};

/**
 * Writes a tenant's backup back into an Open WebUI SQLite database at `to`: the source's schema (captured DDL,
 * else rebuilt from PostgreSQL), every live row converted to its SQLite storage form, then the indexes. The file
 * is built under a temporary name in the same directory, checked with PRAGMA integrity_check, and renamed into
 * place, so `to` is either the complete database or untouched. Memory stays bounded (rows are streamed).
 */
export async function restoreTenant(opts: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const logger = opts.logger ?? silentLogger();
  tenantSchemaName(opts.clientName);
  const to = path.resolve(opts.to);
  if (opts.at && opts.includeDeleted) {
    throw new InvalidInputError(
      '--include-deleted cannot be combined with --at: a point-in-time restore gives the rows that existed then',
    );
  }
  const dir = path.dirname(to);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new InvalidInputError(`directory ${dir} does not exist; create it first or choose another --to path`);
  }
  // lstat: a symbolic link is an existing path even when it points nowhere (the rename would replace it).
  const existing = lstatOrNull(to);
  if (existing && !opts.force) {
    const what = existing.isSymbolicLink()
      ? ` (a symbolic link${fs.existsSync(to) ? '' : ' that points nowhere'})`
      : '';
    throw new ConflictError(
      `${to} already exists${what}; restore never overwrites a path unless asked: add --force (stop Open WebUI first if it uses that file)`,
    );
  }
  if (existing && fs.existsSync(to) && fs.statSync(to).isDirectory()) {
    throw new InvalidInputError(`${to} is a directory; --to must name a file, e.g. ${path.join(to, 'webui.db')}`);
  }
  const tmp = path.join(dir, `.${path.basename(to)}.restore-${process.pid}-${Date.now()}.tmp`);
  const client = await opts.pool.connect();
  let sqlite: Database.Database | null = null;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    if (opts.snapshot) await client.query(setSnapshotSql(opts.snapshot));
    await applyScope(client, opts.scope ?? {});
    await client.query("SELECT set_config('DateStyle', 'ISO, YMD', true), set_config('TimeZone', 'UTC', true)");
    const dep = await findDeployment(client, opts.clientName);
    await assertNotLiveTarget(client, dep, to, Boolean(opts.force));
    const pit = opts.at ? await resolvePointInTime(client, opts.clientName, opts.at) : null;
    const window = await historyWindow(client, opts.clientName);
    const versioned = pit ? await schemaAt(client, pit) : null;
    const latest = await loadSourceSchema(client, dep.deploymentId);
    const captured = versioned
      ? { objects: versioned.objects, openwebuiVersion: versioned.openwebuiVersion }
      : latest && { objects: latest.objects, openwebuiVersion: latest.openwebuiVersion };
    // The revision the restored rows carry: that of the run restored to, else of the latest run, else of the capture.
    const revision = pit ? pit.revision : (window.latestRevision ?? captured?.openwebuiVersion ?? null);
    if (opts.expectRevision !== undefined && opts.expectRevision !== revision) {
      throw new ConflictError(
        `the backup${pit ? ` at ${pit.runFinishedAt.toISOString()}` : ''} is at Open WebUI revision ${revision ?? 'unknown'}, ` +
          `not ${opts.expectRevision}; nothing was written (restore without --expect-revision, or choose another time)`,
        { revision },
      );
    }
    const replacedRevision = existing && existing.isFile() ? sqliteRevision(to) : undefined;
    const target = await readTargetSchema(client, dep.schemaName);
    if (target.tables.size === 0) {
      throw new ConflictError(
        `tenant "${opts.clientName}" has no backup tables in schema ${dep.schemaName}; run a sync first: syncctl client sync ${opts.clientName}`,
      );
    }

    // The database holds password hashes: only its owner may read it, from the moment it exists.
    fs.closeSync(fs.openSync(tmp, 'wx', 0o600));
    fs.chmodSync(tmp, 0o600);
    sqlite = new Database(tmp);
    sqlite.pragma('foreign_keys = OFF'); // as Open WebUI runs; parents' unique indexes come after the rows
    sqlite.pragma('journal_mode = OFF');
    sqlite.pragma('synchronous = OFF');
    sqlite.pragma('locking_mode = EXCLUSIVE');
    sqlite.pragma('cache_size = -16384'); // 16 MB page cache: memory stays flat whatever the tenant's size

    const { plans, indexes, usedCaptured, usedReconstructed } = await createTables(
      client,
      sqlite,
      dep,
      captured?.objects ?? null,
      target.tables,
      logger,
      // A DDL version recorded by a run (or a capture) is exactly the schema of its time: no table is rebuilt.
      versioned !== null && versioned.origin !== 'legacy',
    );

    const tombstones = await tombstoneCounts(client, dep.deploymentId);
    const warnings = pit ? [] : await backupWarnings(client, dep.deploymentId, opts.clientName);
    warnings.push(...revisionWarnings({ revision, latestRevision: window.latestRevision, pit, to, replacedRevision }));
    for (const w of warnings) logger.warn({ client: opts.clientName }, w);
    const result: Record<string, number> = {};
    let rowsRestored = 0;
    let leftOut = 0;
    const batchSize = opts.batchSize ?? 20_000;
    for (const [i, plan] of plans.entries()) {
      if (!plan.table || plan.columns.length === 0) {
        result[plan.name] = 0;
        continue;
      }
      const n = await copyTable(client, sqlite, dep, plan, {
        pit,
        includeDeleted: Boolean(opts.includeDeleted),
        batchSize,
        onRow: opts.onRow,
        progress: opts.onProgress
          ? (rowsDone, rowsTotal) =>
              opts.onProgress?.({ table: plan.name, rowsDone, rowsTotal, tableIndex: i, tableCount: plans.length })
          : undefined,
      });
      result[plan.name] = n;
      rowsRestored += n;
      if (!opts.includeDeleted && !pit) leftOut += tombstones.get(plan.name) ?? 0;
    }
    await client.query('COMMIT');

    for (const o of indexes) sqlite.exec(o.sql);
    sqlite.pragma('locking_mode = NORMAL');
    sqlite.pragma('journal_mode = DELETE');
    const integrity = String(sqlite.pragma('integrity_check', { simple: true }));
    if (integrity !== 'ok') throw new Error(`restored database failed PRAGMA integrity_check: ${integrity}`);
    sqlite.close();
    sqlite = null;
    const fd = fs.openSync(tmp, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    // A stale WAL or journal next to the old file would be applied to the new one.
    for (const suffix of ['-wal', '-shm', '-journal']) fs.rmSync(to + suffix, { force: true });
    fs.renameSync(tmp, to);
    const ddl = usedCaptured && usedReconstructed ? 'mixed' : usedCaptured ? 'captured' : 'reconstructed';
    logger.info(
      { client: opts.clientName, path: to, rows: rowsRestored, ddl, revision, at: pit?.runFinishedAt },
      `restored ${opts.clientName}`,
    );
    return {
      clientName: opts.clientName,
      path: to,
      tables: result,
      rowsRestored,
      rowsLeftOutDeleted: leftOut,
      ddl,
      openwebuiVersion: captured?.openwebuiVersion ?? null,
      openwebuiRevision: revision,
      ...(pit
        ? {
            pointInTime: {
              requested: pit.requested.toISOString(),
              runFinishedAt: pit.runFinishedAt.toISOString(),
              jobId: pit.jobId,
            },
          }
        : {}),
      integrityCheck: integrity,
      warnings,
      durationSeconds: (performance.now() - started) / 1000,
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
    if (sqlite?.open) sqlite.close();
    for (const suffix of ['', '-journal', '-wal', '-shm']) fs.rmSync(tmp + suffix, { force: true });
  }
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch {
    return null;
  }
}

/**
 * Restoring onto the tenant's own registered file replaces the database Open WebUI and the sync read: refused unless
 * the tenant is paused (sync disabled, no sync running) and `force` is given.
 */
async function assertNotLiveTarget(
  client: pg.ClientBase,
  dep: TenantSource,
  to: string,
  force: boolean,
): Promise<void> {
  const res = await client.query<{ sync_enabled: boolean; sqlite_realpath: string | null; claim_live: boolean }>(
    `SELECT sync_enabled, sqlite_realpath, coalesce(sync_claim_expires_at > now(), false) AS claim_live
       FROM sync_metadata.client_deployments WHERE deployment_id = $1::uuid`,
    [dep.deploymentId],
  );
  const row = res.rows[0];
  if (!row || !dep.sqlitePath) return;
  const live = new Set(
    [path.resolve(dep.sqlitePath), realPathOf(dep.sqlitePath), row.sqlite_realpath].filter((p): p is string => !!p),
  );
  const dirReal = realPathOf(path.dirname(to));
  const targets = [to, realPathOf(to), dirReal ? path.join(dirReal, path.basename(to)) : null];
  if (!targets.some((t) => t !== null && live.has(t))) return;
  const name = dep.clientName;
  if (row.sync_enabled) {
    throw new ConflictError(
      `${to} is the registered live SQLite file of tenant "${name}"; restoring onto it needs the tenant paused ` +
        `(syncctl client pause ${name}), Open WebUI stopped, and --force — or restore to another path ` +
        '(see docs/restore.md)',
    );
  }
  if (row.claim_live) {
    throw new ConflictError(`a sync of tenant "${name}" is running; wait for it to finish, then restore onto ${to}`);
  }
  if (!force) {
    throw new ConflictError(
      `${to} is the registered live SQLite file of tenant "${name}"; add --force to replace it (stop Open WebUI first)`,
    );
  }
}

async function tombstoneCounts(client: pg.ClientBase, deploymentId: string): Promise<Map<string, number>> {
  const res = await client.query<{ table_name: string; n: string }>(
    `SELECT table_name, count(*) AS n FROM sync_state.row_state
      WHERE deployment_id = $1::uuid AND deleted_at IS NOT NULL GROUP BY table_name`,
    [deploymentId],
  );
  return new Map(res.rows.map((r) => [r.table_name, Number(r.n)]));
}

async function backupWarnings(client: pg.ClientBase, deploymentId: string, name: string): Promise<string[]> {
  const res = await client.query<{
    pending: string[] | null;
    failed: string;
    status: string | null;
    last: Date | null;
  }>(
    `SELECT (SELECT array_agg(table_name ORDER BY table_name) FROM sync_metadata.sync_progress
              WHERE deployment_id = $1::uuid AND full_sync_pending) AS pending,
            (SELECT count(*) FROM sync_state.failed_rows WHERE deployment_id = $1::uuid AND resolved_at IS NULL) AS failed,
            d.last_sync_status AS status, d.last_sync_at AS last
       FROM sync_metadata.client_deployments d WHERE d.deployment_id = $1::uuid`,
    [deploymentId],
  );
  const r = res.rows[0];
  const warnings: string[] = [];
  if (!r) return warnings;
  if (r.last === null) warnings.push(`tenant "${name}" has never completed a sync; the backup may be empty`);
  if (r.pending?.length) {
    warnings.push(
      `a full sync of "${name}" is unfinished (tables: ${r.pending.join(', ')}); those tables may be incomplete — finish it with: syncctl client sync ${name} --full`,
    );
  }
  if (Number(r.failed) > 0) {
    warnings.push(
      `${r.failed} source rows could not be written to the backup (sync_state.failed_rows) and are not in the restored file; see: syncctl jobs --client ${name} --status failed`,
    );
  }
  if (r.status === 'failed') warnings.push(`the last sync of "${name}" failed; the backup is from before it`);
  return warnings;
}

function tableColumns(db: Database.Database, table: string): string[] {
  return (db.prepare(`PRAGMA table_info(${quoteIdent(table)})`).all() as { name: string }[]).map((c) => c.name);
}

async function createTables(
  client: pg.ClientBase,
  db: Database.Database,
  dep: TenantSource,
  captured: SourceObject[] | null,
  targets: ReadonlyMap<string, TargetTable>,
  logger: Logger,
  exact = false,
): Promise<{ plans: TablePlanR[]; indexes: SourceObject[]; usedCaptured: boolean; usedReconstructed: boolean }> {
  const plans: TablePlanR[] = [];
  const later: SourceObject[] = [];
  let usedCaptured = false;
  let usedReconstructed = false;
  const capturedTables = (captured ?? []).filter((o) => o.type === 'table');
  const done = new Set<string>();
  for (const o of capturedTables) {
    db.exec(o.sql);
    const t = targets.get(o.name) ?? null;
    const cols = tableColumns(db, o.name);
    const missing = t ? t.columns.filter((c) => !cols.includes(c.name)).map((c) => c.name) : [];
    if (missing.length > 0 && !exact) {
      // The backup gained columns after the DDL was captured (schema upgrade): rebuild this table from PostgreSQL.
      logger.warn({ table: o.name, missing }, 'captured DDL is older than the backup table; rebuilt from PostgreSQL');
      db.exec(`DROP TABLE ${quoteIdent(o.name)}`);
      continue;
    }
    if (!t) logger.warn({ table: o.name }, 'table of the source has no backup table; restored empty');
    usedCaptured = true;
    done.add(o.name);
    plans.push(planFor(o.name, t, cols));
    later.push(...(captured ?? []).filter((x) => x.type !== 'table' && x.tbl_name === o.name));
  }
  for (const [name, t] of targets) {
    // Tables created after the DDL of that time (a later schema upgrade) did not exist then.
    if (done.has(name) || (exact && capturedTables.length > 0)) continue;
    const objects = await reconstructTableDdl(client, dep.schemaName, name);
    usedReconstructed = true;
    for (const o of objects.filter((x) => x.type === 'table')) db.exec(o.sql);
    plans.push(planFor(name, t, tableColumns(db, name)));
    later.push(...objects.filter((x) => x.type !== 'table'));
  }
  // Triggers and views after indexes (a view may refer to several tables).
  later.sort((a, b) => rank(a.type) - rank(b.type));
  return { plans, indexes: later, usedCaptured, usedReconstructed };
}

const rank = (type: string) => (type === 'index' ? 0 : type === 'trigger' ? 1 : 2);

function planFor(name: string, t: TargetTable | null, sqliteColumns: string[]): TablePlanR {
  if (!t) return { name, table: null, columns: [], kinds: [] };
  const cols = t.columns.filter((c) => sqliteColumns.includes(c.name));
  return { name, table: t, columns: cols.map((c) => c.name), kinds: cols.map((c) => restoreKindFor(c.type)) };
}

/** COPY (SELECT …) of one table, binary, keeping tombstoned rows out unless asked. */
export function copyOutSql(
  schemaName: string,
  deploymentId: string,
  plan: { name: string; table: TargetTable | null; columns: readonly string[]; kinds: readonly RestoreKind[] },
  opts: { includeDeleted: boolean; tombstoneFlag?: boolean },
): string {
  const key = plan.table?.key ?? [];
  const exprs = plan.columns.map((c, i) => selectExpression('t', c, plan.kinds[i] as RestoreKind));
  const live = key.length > 0 ? notTombstonedSql('t', key, `${quoteLiteral(deploymentId)}::uuid`, plan.name) : 'true';
  if (opts.tombstoneFlag) exprs.push(`NOT (${live}) AS owui_tombstoned`);
  const where = opts.includeDeleted || opts.tombstoneFlag ? '' : ` WHERE ${live}`;
  return `COPY (SELECT ${exprs.join(', ')} FROM ${qualified(schemaName, plan.name)} t${where}) TO STDOUT (FORMAT binary)`;
}

async function copyTable(
  client: pg.ClientBase,
  db: Database.Database,
  dep: TenantSource,
  plan: TablePlanR,
  opts: {
    pit: PointInTime | null;
    includeDeleted: boolean;
    batchSize: number;
    progress: ((done: number, total: number | null) => void) | undefined;
    onRow?: RestoreOptions['onRow'];
  },
): Promise<number> {
  let total: number | null = null;
  if (opts.progress) {
    const est = await client.query<{ n: string }>(
      `SELECT c.reltuples::bigint AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1::text AND c.relname = $2::text`,
      [dep.schemaName, plan.name],
    );
    const n = Number(est.rows[0]?.n ?? -1);
    total = n >= 0 ? n : null;
    opts.progress(0, total);
  }
  const insert = db.prepare(
    `INSERT INTO ${quoteIdent(plan.name)} (${plan.columns.map(quoteIdent).join(', ')}) VALUES (${plan.columns
      .map(() => '?')
      .join(', ')})`,
  );
  const sql =
    opts.pit && plan.table && plan.table.key.length > 0
      ? `COPY (SELECT ${plan.columns
          .map((c, i) => selectExpression('t', c, plan.kinds[i] as RestoreKind))
          .join(', ')} FROM (${rowsAtSql(opts.pit, plan.table, plan.columns)}) t) TO STDOUT (FORMAT binary)`
      : copyOutSql(dep.schemaName, dep.deploymentId, plan, opts);
  const stream = client.query(copyStreams.to(sql));
  const kinds = plan.kinds;
  const values: SqliteValue[] = new Array<SqliteValue>(kinds.length);
  let n = 0;
  let inTx = false;
  let lastReport = performance.now();
  try {
    for await (const fields of binaryCopyTuples(stream)) {
      if (!inTx) {
        db.exec('BEGIN');
        inTx = true;
      }
      for (let i = 0; i < kinds.length; i += 1) values[i] = decodeField(kinds[i] as RestoreKind, fields[i] ?? null);
      insert.run(values);
      opts.onRow?.(plan, values);
      n += 1;
      if (n % opts.batchSize === 0) {
        db.exec('COMMIT');
        inTx = false;
        const now = performance.now();
        if (opts.progress && now - lastReport > 200) {
          lastReport = now;
          opts.progress(n, total !== null ? Math.max(total, n) : null);
        }
      }
    }
    if (inTx) db.exec('COMMIT');
  } catch (error) {
    if (inTx && db.inTransaction) db.exec('ROLLBACK');
    stream.destroy();
    throw error;
  }
  opts.progress?.(n, n);
  return n;
}
