/**
 * Restore and verification of tenant backups: a tenant's PostgreSQL schema back into an Open WebUI SQLite file,
 * and a table-by-table comparison of the live source with its backup. See docs/restore.md.
 */
export { restoreTenant, type RestoreOptions, type RestoreProgress, type RestoreResult } from './restore.ts';
export { verifyTenant, type VerifyOptions, type VerifyResult, type VerifyTableReport } from './verify.ts';
export {
  captureSourceSchema,
  loadSourceSchema,
  reconstructTableDdl,
  readSqliteMaster,
  type SourceObject,
  type SourceSchemaRecord,
} from './source-schema.ts';
export { recoverUserChats, findUser, type RecoverOptions, type RecoverResult, type RecoveredUser } from './recover.ts';
export { listDeleted, type DeletedListing, type DeletedRow } from './recover-deleted.ts';
export {
  isCurrentBackup,
  selectTenantRows,
  openRecoverSource,
  type RecoverSource,
  type RowFilter,
  type TenantRows,
} from './recover-rows.ts';
export { chatExportFile, chatExportItem, type ChatExportItem } from './chat-export.ts';
export { exportFileName } from './recover-files.ts';
export { USER_TABLES } from './recover-sqlite.ts';
export { decodeField, normalise, rowHash, sqliteDatetimeText, restoreKindFor, type RestoreKind } from './values.ts';
export { binaryCopyTuples } from './copy-out.ts';
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
