/**
 * The sync engine: provisioning tenant schemas from a tenant's SQLite file, and running syncs into them.
 * See docs/engine.md for the type mapping, incremental cursors, tombstones, conflicts and exit codes.
 */
export {
  provisionTenant,
  upgradeTenantSchema,
  inspectSqliteSource,
  tenantSchemaName,
  SYNC_STATE_SCHEMA,
  type ProvisionResult,
  type TenantDdlOptions,
} from './tenant-ddl.ts';
export { runTenantSync, exitCodeFor, type SyncRunResult } from './job.ts';
export { DEFAULT_BATCH_SIZE, type SyncProgress, type RunTenantSyncOptions } from './run-options.ts';
export { resolveConflict, strategyFor, combine, mergeRow, compareValues } from './conflicts/index.ts';
export { purgeTombstones, notTombstonedSql } from './tombstones.ts';
export { sourceFingerprint, assertSourceFiles } from './sqlite-reader.ts';
export { assertRegisteredSource, assertSqliteFileUnclaimed, checkRegisteredSource, realPathOf } from './source-path.ts';
export { mapColumnType } from './type-map.ts';
export { stripNul, toJsonText, kindForType, CopyEncoder, copyHeader, copyTrailer } from './value-codec.ts';
export { keyExpression, rowKeyText } from './table-plan.ts';
export { readTargetSchema, parentsFirst, type TargetSchema, type TargetTable } from './target-schema.ts';
export { Lookahead } from './lookahead.ts';
