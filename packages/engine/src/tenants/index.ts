/**
 * Tenants: the questions asked of sync_metadata.client_deployments in many places, each answered in one module —
 * finding and listing tenants, registering and removing them, their settings, whether one may be synced now,
 * starting and pausing, the scheduler's claim on due tenants, a sync run's claim on its tenant, and the cluster's
 * job history, conflict log and last sync (rows that are the cluster's through their tenant's host). The API,
 * syncctl and the state cache all call these; none of them writes its own SQL on the table.
 */
export {
  findTenant,
  readSyncSwitch,
  tenantClusterOf,
  tenantExists,
  tenantSource,
  type Tenant,
  type TenantSource,
} from './find.ts';
export {
  listTenants,
  clusterDeploymentIds,
  tenantStatuses,
  type ListTenantsFilter,
  type TenantSummary,
  type TenantStatusFilter,
  type TenantStatusRow,
  type TenantDrillColumns,
} from './list.ts';
export {
  canSyncNow,
  schedulableSql,
  SYNC_REFUSALS,
  UNSCHEDULED_STATUSES,
  type SyncRefusal,
  type SyncRefusalReason,
  type SyncRequest,
  type SyncSwitch,
} from './can-sync-now.ts';
export { applySyncSwitch, nextSyncSwitch, syncSwitchChanged, type SyncSwitchPatch } from './sync-switch.ts';
export {
  claimDueTenants,
  claimDueDrills,
  forgetDrillSlots,
  ISOLATED_FAILURES,
  type DueTenant,
  type DrillSlot,
} from './claim-due.ts';
export {
  claimTenant,
  renewClaim,
  reapStaleSyncJobs,
  SyncAlreadyRunningError,
  SyncGroupFullError,
  STOPPED_WORKER_ERROR,
  type ClaimGroup,
  type ClaimedTenant,
  type ClaimResult,
} from './claim.ts';
export {
  hostForRegistration,
  schemaOwner,
  insertTenant,
  deleteTenant,
  clusterHistoryCounts,
  orphanTenantCount,
  type NewTenant,
  type RegistrationHost,
} from './registration.ts';
export {
  readTenantRow,
  updateTenantSettings,
  tenantRowVersions,
  type TenantRow,
  type TenantSettingsPatch,
} from './settings.ts';
export { LAST_SYNC_AT_SQL } from './last-sync.ts';
export { listSyncJobs, type JobHistoryFilter, type SyncJobRow } from './job-history.ts';
export {
  listConflictLog,
  findConflict,
  type ConflictLogFilter,
  type ConflictLogRow,
  type ConflictOwner,
} from './conflict-log.ts';
