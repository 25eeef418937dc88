import type { Queryable } from '../db.ts';
import type { SyncSwitch } from './can-sync-now.ts';

/**
 * Starting and pausing a tenant: sync_enabled and status move together (start → enabled and `active`, pause →
 * disabled and `paused`), whether the change comes from `syncctl client start|pause` or from
 * PUT /api/v1/state/deployment.<client>. The leader's scheduler picks the change up on its next tick.
 */

/** A change to the switch: either field, or both (then they must agree, see deploymentStatePatchSchema). */
export type SyncSwitchPatch = { readonly status?: string | undefined; readonly sync_enabled?: boolean | undefined };

/** The switch after applying `patch` to `current`: setting one of the two fields sets the other to match. */
export function nextSyncSwitch(current: SyncSwitch, patch: SyncSwitchPatch): SyncSwitch {
  let status = patch.status ?? current.status;
  let enabled = patch.sync_enabled ?? current.sync_enabled;
  if (patch.sync_enabled !== undefined && patch.status === undefined) status = enabled ? 'active' : 'paused';
  if (patch.status === 'active') enabled = true;
  if (patch.status === 'paused') enabled = false;
  return { status, sync_enabled: enabled };
}

/** Whether two switches differ. */
export function syncSwitchChanged(a: SyncSwitch, b: SyncSwitch): boolean {
  return a.status !== b.status || a.sync_enabled !== b.sync_enabled;
}

const WRITE_SWITCH_SQL = `
  UPDATE sync_metadata.client_deployments
     SET sync_enabled = $2::boolean, status = $3::text, updated_at = now()
   WHERE deployment_id = $1::uuid`;

/**
 * Writes the switch of one tenant when it changes (the only statement that writes sync_enabled and status of a
 * registered tenant). Run it in the transaction that read `current`, with the row locked or in the cluster's scope.
 * Returns the new switch and whether anything changed.
 */
export async function applySyncSwitch(
  db: Queryable,
  tenant: SyncSwitch & { readonly deployment_id: string },
  patch: SyncSwitchPatch,
): Promise<SyncSwitch & { changed: boolean }> {
  const next = nextSyncSwitch(tenant, patch);
  const changed = syncSwitchChanged(tenant, next);
  if (changed) await db.query(WRITE_SWITCH_SQL, [tenant.deployment_id, next.sync_enabled, next.status]);
  return { ...next, changed };
}
