/**
 * Conflicts: rows changed on both sides since the last sync. The tenant's configuration (config.ts) names a strategy
 * per table; during a run each conflicting row is decided (decide.ts, merge.ts), written (apply.ts) and recorded
 * (log.ts), all driven by settle.ts; a conflict left for a person is settled later by resolveConflict (manual.ts).
 */
export { compareFieldFor, parseConflictConfig, strategyFor } from './config.ts';
export { RESOLUTIONS, compareValues, decide, type Resolution } from './decide.ts';
export { combine, mergeRow, mergeTargetsFor, type MergeTarget } from './merge.ts';
export { resolveChunkConflicts } from './settle.ts';
export { resolveConflict } from './manual.ts';
export type { ConflictTally } from '../run-context.ts';
