import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import type { Logger } from 'pino';
import { applyScope, withTransaction, type DbScope } from '../db.ts';
import { silentLogger } from '../logger.ts';
import type { SyncMetrics } from '../metrics.ts';
import { SqliteSnapshot, toSourceError } from '../sync/sqlite-reader.ts';
import { checkRegisteredSource } from '../sync/source-path.ts';
import { readTargetSchema } from '../sync/target-schema.ts';
import { tenantSchemaName } from '../sync/tenant-ddl.ts';
import { binaryCopyTuples } from './copy-out.ts';
import { setSnapshotSql } from './snapshot.ts';
import { copyOutSql } from './restore.ts';
import { findDeployment } from './source-schema.ts';
import { decodeField, keyText, restoreKindFor, rowHash, type RestoreKind } from './values.ts';

export type VerifyTableReport = {
  table: string;
  /** 'ok' | 'differs' | 'missing-table' (not in the backup) | 'extra-table' (not in the source) */
  status: 'ok' | 'differs' | 'missing-table' | 'extra-table';
  sourceRows: number;
  backupRows: number;
  /** In the source, not (live) in the backup. */
  missing: number;
  /** Live in the backup, not in the source. */
  extra: number;
  /** Same key, different content. */
  differing: number;
  /** Rows kept in the backup but marked deleted in the source (not a mismatch). */
  tombstoned: number;
  /** Up to 10 keys of each kind, composite keys joined with U+001F. */
  examples: { missing: string[]; extra: string[]; differing: string[] };
};

export type VerifyResult = {
  clientName: string;
  sqlitePath: string;
  match: boolean;
  tables: VerifyTableReport[];
  totals: {
    missing: number;
    extra: number;
    differing: number;
    tombstoned: number;
    sourceRows: number;
    backupRows: number;
  };
  checkedAt: string;
  durationSeconds: number;
};

export type VerifyOptions = {
  pool: pg.Pool;
  clientName: string;
  scope?: DbScope;
  /** Compare with this file instead of the tenant's registered sqlite_path. */
  sqlitePath?: string;
  metrics?: SyncMetrics;
  logger?: Logger;
  /** Store the result as the tenant's last verification (sync_state.verify_results); ignored with sqlitePath. */
  record?: boolean;
  /** Read the backup in this exported snapshot (pg_export_snapshot of a transaction still open): see drill.ts. */
  snapshot?: string;
};

const EXAMPLES = 10;

/**
 * Compares a tenant's live source SQLite with its backup, table by table: row counts, key sets and a content hash
 * per row after type normalisation (the value each side would have in the backup column). Both sides are read in
 * one snapshot each. With `record`, the result becomes the tenant's last verification, which every node's /metrics
 * reports as sync_verify_ok{client}; `metrics` also sets that gauge in the caller's own registry.
 */
export async function verifyTenant(opts: VerifyOptions): Promise<VerifyResult> {
  const started = performance.now();
  const logger = opts.logger ?? silentLogger();
  tenantSchemaName(opts.clientName);
  const client = await opts.pool.connect();
  let snap: SqliteSnapshot | null = null;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    if (opts.snapshot) await client.query(setSnapshotSql(opts.snapshot));
    await applyScope(client, opts.scope ?? {});
    await client.query("SELECT set_config('DateStyle', 'ISO, YMD', true), set_config('TimeZone', 'UTC', true)");
    const dep = await findDeployment(client, opts.clientName);
    const sqlitePath = opts.sqlitePath ?? dep.sqlitePath;
    // The registered file is compared only while it still resolves where it did at registration.
    if (!opts.sqlitePath) await checkRegisteredSource(client, dep);
    snap = await SqliteSnapshot.open(sqlitePath);
    let sourceTables: { name: string; columns: string[] }[];
    try {
      sourceTables = snap.schema().tables.map((t) => ({ name: t.name, columns: t.columns.map((c) => c.name) }));
    } catch (error) {
      throw toSourceError(sqlitePath, error);
    }
    const target = await readTargetSchema(client, dep.schemaName);
    const names = [...new Set([...sourceTables.map((t) => t.name), ...target.tables.keys()])].sort();
    const reports: VerifyTableReport[] = [];
    for (const name of names) {
      const src = sourceTables.find((t) => t.name === name);
      const tgt = target.tables.get(name) ?? null;
      const report: VerifyTableReport = {
        table: name,
        status: 'ok',
        sourceRows: 0,
        backupRows: 0,
        missing: 0,
        extra: 0,
        differing: 0,
        tombstoned: 0,
        examples: { missing: [], extra: [], differing: [] },
      };
      const sq = (n: string) => `"${n.replaceAll('"', '""')}"`;
      if (!tgt) {
        report.status = 'missing-table';
        report.sourceRows = Number(
          snap.db
            .prepare(`SELECT count(*) FROM ${sq(name)}`)
            .pluck()
            .get(),
        );
        report.missing = report.sourceRows;
        reports.push(report);
        continue;
      }
      const columns = tgt.columns.filter((c) => !src || src.columns.includes(c.name));
      const kinds = columns.map((c) => restoreKindFor(c.type));
      const key = tgt.key.length > 0 ? [...tgt.key] : columns.map((c) => c.name);
      const keyIdx = key.map((k) => columns.findIndex((c) => c.name === k));
      const keyKinds = keyIdx.map((i) => kinds[i] as RestoreKind);
      // Backup side: key → content hash of live rows (multiset counts for keyless duplicates).
      const backup = new Map<string, string>();
      const tombstoned = new Set<string>();
      const plan = { name, table: tgt, columns: columns.map((c) => c.name), kinds };
      const stream = client.query(
        copyStreams.to(
          copyOutSql(dep.schemaName, dep.deploymentId, plan, { includeDeleted: true, tombstoneFlag: true }),
        ),
      );
      for await (const fields of binaryCopyTuples(stream)) {
        const values = kinds.map((k, i) => decodeField(k, fields[i] ?? null));
        const k = keyText(
          keyKinds,
          keyIdx.map((i) => values[i]),
        );
        if (fields[kinds.length]?.[0] === 1) {
          tombstoned.add(k);
          continue;
        }
        backup.set(k, rowHash(kinds, values));
      }
      report.backupRows = backup.size;
      report.tombstoned = tombstoned.size;
      if (!src) {
        report.status = 'extra-table';
        report.extra = backup.size;
        report.examples.extra = [...backup.keys()].slice(0, EXAMPLES);
        reports.push(report);
        continue;
      }
      const stmt = snap.db
        .prepare(`SELECT ${columns.map((c) => sq(c.name)).join(', ')} FROM ${sq(name)}`)
        .raw(true)
        .safeIntegers(true);
      for (const values of stmt.iterate() as Iterable<unknown[]>) {
        report.sourceRows += 1;
        const k = keyText(
          keyKinds,
          keyIdx.map((i) => values[i]),
        );
        const h = backup.get(k);
        if (h === undefined) {
          report.missing += 1;
          if (report.examples.missing.length < EXAMPLES) report.examples.missing.push(k);
          continue;
        }
        backup.delete(k);
        if (h !== rowHash(kinds, values)) {
          report.differing += 1;
          if (report.examples.differing.length < EXAMPLES) report.examples.differing.push(k);
        }
      }
      report.extra = backup.size;
      report.examples.extra = [...backup.keys()].slice(0, EXAMPLES);
      if (report.missing + report.extra + report.differing > 0) report.status = 'differs';
      reports.push(report);
    }
    const sum = (f: (r: VerifyTableReport) => number) => reports.reduce((a, r) => a + f(r), 0);
    const totals = {
      missing: sum((r) => r.missing),
      extra: sum((r) => r.extra),
      differing: sum((r) => r.differing),
      tombstoned: sum((r) => r.tombstoned),
      sourceRows: sum((r) => r.sourceRows),
      backupRows: sum((r) => r.backupRows),
    };
    const match = reports.every((r) => r.status === 'ok');
    const checkedAt = new Date().toISOString();
    const durationSeconds = (performance.now() - started) / 1000;
    await client.query('COMMIT');
    if (opts.record && !opts.sqlitePath) {
      await recordVerification(opts.pool, opts.scope ?? {}, dep.deploymentId, {
        match,
        sqlitePath,
        totals,
        tables: reports,
        checkedAt,
        durationSeconds,
      });
    }
    opts.metrics?.verifyResult.set({ client: opts.clientName }, match ? 1 : 0);
    logger.info({ client: opts.clientName, match, ...totals }, `verified ${opts.clientName}`);
    return {
      clientName: opts.clientName,
      sqlitePath,
      match,
      tables: reports,
      totals,
      checkedAt,
      durationSeconds,
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    snap?.close();
    client.release();
  }
}

async function recordVerification(
  pool: pg.Pool,
  scope: DbScope,
  deploymentId: string,
  v: Pick<VerifyResult, 'match' | 'sqlitePath' | 'totals' | 'tables' | 'checkedAt' | 'durationSeconds'>,
): Promise<void> {
  await withTransaction(
    pool,
    async (client) => {
      await client.query(
        `INSERT INTO sync_state.verify_results
           (deployment_id, match, sqlite_path, totals, report, checked_at, duration_seconds)
         VALUES ($1::uuid, $2::boolean, $3::text, $4::jsonb, $5::jsonb, $6::timestamptz, $7::numeric)
         ON CONFLICT (deployment_id) DO UPDATE SET match = EXCLUDED.match, sqlite_path = EXCLUDED.sqlite_path,
           totals = EXCLUDED.totals, report = EXCLUDED.report, checked_at = EXCLUDED.checked_at,
           duration_seconds = EXCLUDED.duration_seconds`,
        [
          deploymentId,
          v.match,
          v.sqlitePath,
          JSON.stringify(v.totals),
          JSON.stringify(v.tables),
          v.checkedAt,
          v.durationSeconds.toFixed(3),
        ],
      );
    },
    scope,
  );
}
