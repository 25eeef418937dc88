import type { Queryable } from '../db.ts';
import { schedulableSql } from './can-sync-now.ts';

/**
 * The leader's claim on due tenants: each scheduler pass locks the tenants whose slot has come (SKIP LOCKED, so two
 * passes never take the same tenant), moves each one's next slot on, and returns them to be enqueued, all inside
 * the pass's fenced transaction. Restore drills are claimed the same way with their own slots. (A sync run's own
 * claim on its tenant, the one that keeps two runs apart, is a different thing: see claimTenant in
 * ./claim.ts.)
 *
 * Slots: a tenant with interval I and offset o (derived from its deployment id, 0 ≤ o < I) is due at the instants
 * t with (t − o) mod I = 0, so tenants sharing an interval spread evenly over it and every leader agrees on them. A
 * tenant never scheduled is due at once if it never synced, else one interval after its last sync.
 */

/**
 * Failing tenants are capped only while few fail: at most this many, or this share of the cluster's scheduled
 * tenants. When more fail at once the cause is shared (storage, network, the database) and a cap would only slow
 * the whole fleet's recovery down to one slot, so their jobs then run ungrouped.
 */
export const ISOLATED_FAILURES = { count: 10, share: 0.05 } as const;

// The recorded size is one primary-key look-up per due tenant (sync_state.source_pages); the failing count is one
// pass over the cluster's deployments per scheduler pass.
const CLAIM_DUE_SQL = `
  WITH fleet AS (
    SELECT count(*) FILTER (WHERE d.last_sync_status = 'failed') <= greatest(
             ${ISOLATED_FAILURES.count}, count(*) * ${ISOLATED_FAILURES.share}) AS isolated
      FROM sync_metadata.client_deployments d
      JOIN sync_metadata.hosts h ON h.host_id = d.host_id
     WHERE h.cluster_name = $1::text AND ${schedulableSql('d')}
  ),
  due AS (
    SELECT d.deployment_id,
           (hashtext(d.deployment_id::text)::bigint & 2147483647) % d.sync_interval AS slot_offset,
           coalesce(sp.page_size::bigint * sp.page_count >= $3::bigint, false) AS large,
           coalesce(d.last_sync_status = 'failed' AND (SELECT isolated FROM fleet), false) AS failing
      FROM sync_metadata.client_deployments d
      JOIN sync_metadata.hosts h ON h.host_id = d.host_id
      LEFT JOIN sync_state.source_pages sp ON sp.deployment_id = d.deployment_id
     WHERE h.cluster_name = $1::text
       AND ${schedulableSql('d')}
       AND coalesce(d.next_sync_at, d.last_sync_at + make_interval(secs => d.sync_interval), '-infinity')
           <= now()
     ORDER BY coalesce(d.next_sync_at, d.last_sync_at + make_interval(secs => d.sync_interval), '-infinity')
     LIMIT $2::integer
     FOR UPDATE OF d SKIP LOCKED
  )
  UPDATE sync_metadata.client_deployments d
     SET next_sync_at = to_timestamp(
           (floor((extract(epoch FROM now()) + d.sync_interval / 2.0 - due.slot_offset) / d.sync_interval) + 1)
             * d.sync_interval + due.slot_offset)
    FROM due
   WHERE d.deployment_id = due.deployment_id
  RETURNING d.deployment_id::text AS deployment_id, d.client_name, due.large, due.failing`;

export type DueTenant = {
  deployment_id: string;
  client_name: string;
  /** Its SQLite file had at least `largeBytes` at its last run. */
  large: boolean;
  /** Its last run failed, and few of the cluster's tenants fail (ISOLATED_FAILURES). */
  failing: boolean;
};

/**
 * Claims up to `batchSize` schedulable tenants of the cluster whose sync slot has come and moves their next slot
 * on. Call it inside the scheduler's fenced transaction: the claim holds only if the transaction commits.
 */
export async function claimDueTenants(
  db: Queryable,
  opts: { readonly cluster: string; readonly batchSize: number; readonly largeBytes: number },
): Promise<DueTenant[]> {
  const res = await db.query<DueTenant>(CLAIM_DUE_SQL, [opts.cluster, opts.batchSize, opts.largeBytes]);
  return res.rows;
}

const CLAIM_DRILLS_SQL = `
  WITH due AS (
    SELECT d.deployment_id, d.next_drill_at,
           (hashtext('drill:' || d.deployment_id::text)::bigint & 2147483647) % $3::integer AS slot_offset
      FROM sync_metadata.client_deployments d
      JOIN sync_metadata.hosts h ON h.host_id = d.host_id
     WHERE h.cluster_name = $1::text
       AND d.status <> 'deregistered'
       AND d.last_sync_at IS NOT NULL
       AND (d.next_drill_at IS NULL OR d.next_drill_at <= now())
     ORDER BY d.next_drill_at NULLS FIRST
     LIMIT $2::integer
     FOR UPDATE OF d SKIP LOCKED
  )
  UPDATE sync_metadata.client_deployments d
     SET next_drill_at = to_timestamp(
           (floor((extract(epoch FROM now()) - due.slot_offset) / $3::integer) + 1) * $3::integer + due.slot_offset),
         drills_since = coalesce(d.drills_since, now())
    FROM due
   WHERE d.deployment_id = due.deployment_id
  RETURNING d.deployment_id::text AS deployment_id, d.client_name, due.next_drill_at IS NOT NULL AS due`;

export type DrillSlot = {
  deployment_id: string;
  client_name: string;
  /** The slot had come (false: the tenant was seen for the first time and only got its first slot). */
  due: boolean;
};

/**
 * Claims up to `batchSize` tenants with a backup (synced once, not deregistered) whose drill slot has come, or
 * that have none yet, and moves their next drill slot on (`intervalSeconds` apart).
 */
export async function claimDueDrills(
  db: Queryable,
  opts: { readonly cluster: string; readonly batchSize: number; readonly intervalSeconds: number },
): Promise<DrillSlot[]> {
  const res = await db.query<DrillSlot>(CLAIM_DRILLS_SQL, [opts.cluster, opts.batchSize, opts.intervalSeconds]);
  return res.rows;
}

const FORGET_DRILLS_SQL = `
  UPDATE sync_metadata.client_deployments d SET next_drill_at = NULL, drills_since = NULL
    FROM sync_metadata.hosts h
   WHERE h.host_id = d.host_id AND h.cluster_name = $1::text AND d.drills_since IS NOT NULL`;

/** With drills off, the cluster's tenants lose their drill slots (and so their drills_since: none is overdue). */
export async function forgetDrillSlots(db: Queryable, cluster: string): Promise<void> {
  await db.query(FORGET_DRILLS_SQL, [cluster]);
}
