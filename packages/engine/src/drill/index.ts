/**
 * Restore drills: scheduled proof that each tenant's backup restores into a working Open WebUI database. See
 * docs/restore.md, "Restore drills".
 */
export { runDrill, failureOf, type DrillOptions } from './drill.ts';
export type { DrillCheckName, DrillChecks, DrillResult } from './drill-result.ts';
export { listDrills, recordDrill, type DrillRecord } from './drill-store.ts';
export { defaultDrillDir, processDrillDir, sweepStaleDrillDirs } from './drill-files.ts';
export type { BookkeepingCheck, BookkeepingTable } from './bookkeeping-check.ts';
