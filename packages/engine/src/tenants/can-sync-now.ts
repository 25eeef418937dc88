/**
 * May this tenant be synced now? One rule for every place that asks: the scheduler claiming due tenants (in SQL,
 * through schedulableSql), the worker about to run a job, POST /api/v1/sync/trigger and `syncctl client sync`.
 *
 * - A tenant that is not registered, or whose status is `deregistered`, is never synced.
 * - The scheduler syncs a tenant only while its sync switch is on and it is not paused.
 * - A sync asked for by hand (API, CLI, a queued job someone triggered) is refused while the tenant is paused,
 *   unless forced: pausing is how an operator freezes a tenant. A job already queued by hand was checked when it
 *   was queued, so the worker runs it as forced.
 */

/** The columns of a tenant's row the decision reads. */
export type SyncSwitch = { readonly status: string; readonly sync_enabled: boolean };

/** Statuses the scheduler never syncs, whatever the switch says. */
export const UNSCHEDULED_STATUSES = ['paused', 'deregistered'] as const;

export const SYNC_REFUSALS = {
  notRegistered: 'not_registered',
  deregistered: 'deregistered',
  paused: 'paused',
} as const;
export type SyncRefusalReason = (typeof SYNC_REFUSALS)[keyof typeof SYNC_REFUSALS];

export type SyncRefusal = {
  readonly reason: SyncRefusalReason;
  /** `tenant "acme" has sync paused` — callers add the way out that fits them (a command, an API call). */
  readonly message: string;
};

export type SyncRequest = {
  /** The tenant's name, for the message. */
  readonly clientName: string;
  /** The scheduler's own run (triggered_by "scheduler"), as opposed to one asked for by hand. */
  readonly scheduled: boolean;
  /** Sync by hand even though the tenant is paused (ignored for scheduled runs). */
  readonly force?: boolean;
};

/** Why the tenant may not be synced now, or null when it may (see the module comment). */
export function canSyncNow(tenant: SyncSwitch | undefined, request: SyncRequest): SyncRefusal | null {
  const name = request.clientName;
  if (!tenant) return { reason: SYNC_REFUSALS.notRegistered, message: `tenant "${name}" is not registered` };
  if (tenant.status === 'deregistered') {
    return { reason: SYNC_REFUSALS.deregistered, message: `tenant "${name}" is deregistered` };
  }
  const paused = tenant.status === 'paused';
  if (request.scheduled ? paused || !tenant.sync_enabled : paused && !request.force) {
    return { reason: SYNC_REFUSALS.paused, message: `tenant "${name}" has sync paused` };
  }
  return null;
}

/**
 * canSyncNow for a scheduled run as an SQL condition on the client_deployments row aliased `alias`, for queries
 * that pick or count schedulable tenants in bulk (the scheduler's claim, the fleet metrics).
 */
export function schedulableSql(alias: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(alias)) throw new Error(`not a table alias: ${alias}`);
  const statuses = UNSCHEDULED_STATUSES.map((s) => `'${s}'`).join(', ');
  return `(${alias}.sync_enabled AND ${alias}.status NOT IN (${statuses}))`;
}
