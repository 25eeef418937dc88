/**
 * Restore and verification of tenant backups: a tenant's PostgreSQL schema back into an Open WebUI SQLite file,
 * and a table-by-table comparison of the live source with its backup. See docs/restore.md.
 */
export { restoreTenant, type RestoreOptions, type RestoreProgress, type RestoreResult } from './restore.ts';
export {
  verifyTenant,
  lastVerifications,
  type LastVerification,
  type VerifyOptions,
  type VerifyResult,
  type VerifyTableReport,
} from './verify.ts';
export {
  captureSourceSchema,
  loadSourceSchema,
  reconstructTableDdl,
  readSqliteMaster,
  type SourceObject,
  type SourceSchemaRecord,
} from './source-schema.ts';
export { normalise, rowHash, sqliteDatetimeText, restoreKindFor, type RestoreKind } from './values.ts';
export {
  historyWindow,
  parseRestoreTime,
  readRowsAt,
  resolvePointInTime,
  rowsAtSql,
  schemaAt,
  parseRetentionDays,
  setHistoryRetention,
  MAX_RETENTION_DAYS,
  type HistoryWindow,
  type PointInTime,
} from './history.ts';
export { sqliteRevision } from './revision.ts';
