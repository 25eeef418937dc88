import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import { withTransaction } from '../db.ts';
import { ConfigError, errorMessage } from '../errors.ts';
import type { SyncMetrics } from '../metrics.ts';

/**
 * Host registry: every process (full node, scheduler, extra worker, API-only process) has one row in
 * sync_metadata.hosts whose id is derived from (cluster, hostname, node name), so a restart lands on the same row.
 * The row's last_heartbeat is refreshed every HEARTBEAT_INTERVAL; the leader marks hosts silent for longer than
 * OFFLINE_AFTER_SECONDS as offline. A name held by a live process of another role is refused, not taken over:
 * two processes sharing one ROLE would otherwise share one host row (and its tenants and heartbeat).
 */

/** node: full node or scheduler (both take part in the election); worker: runs jobs only; api: serves the API only. */
export const HOST_ROLES = ['node', 'worker', 'api'] as const;
export type HostRole = (typeof HOST_ROLES)[number];

/** Hosts whose heartbeat is older than this are marked offline by the leader. */
export const OFFLINE_AFTER_SECONDS = 300;

export type HostIdentity = { readonly cluster: string; readonly hostname: string; readonly nodeName: string };

/** Same value as sync_metadata.host_identity(cluster, hostname, node): md5 of "cluster/hostname/node" as a uuid. */
export function hostIdentity(identity: HostIdentity): string {
  const hex = createHash('md5').update(`${identity.cluster}/${identity.hostname}/${identity.nodeName}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A host row whose heartbeat is this old may be taken over by a process of another role (default 90 s). */
export const TAKEOVER_AFTER_SECONDS = 90;

/**
 * Inserts or revives this process's host row (status online) and returns its id. Refuses (ConfigError) when the
 * same cluster, hostname and node name belong to a process of another role that is still alive (online, with a
 * heartbeat younger than `takeOverAfterSeconds`), and when the database's schema predates the role (init needed).
 */
export async function registerHost(
  pool: pg.Pool,
  identity: HostIdentity & { readonly role: HostRole; readonly version?: string },
  options: { readonly takeOverAfterSeconds?: number } = {},
): Promise<string> {
  const hostId = hostIdentity(identity);
  const holder = await withTransaction(
    pool,
    async (client) => {
      const res = await client.query<{ role: string }>(
        `WITH upsert AS (
           INSERT INTO sync_metadata.hosts AS h (host_id, hostname, cluster_name, node_name, role, status, version)
           VALUES ($1::uuid, $2::text, $3::text, $4::text, $5::text, 'online', $6::text)
           ON CONFLICT (host_id) DO UPDATE
              SET role = EXCLUDED.role, status = 'online', version = EXCLUDED.version,
                  last_heartbeat = now(), updated_at = now()
            WHERE h.role = EXCLUDED.role OR h.role = 'admin' OR h.status <> 'online'
               OR h.last_heartbeat < now() - make_interval(secs => $7::double precision)
           RETURNING h.role)
         SELECT role, true AS ours FROM upsert
         UNION ALL
         SELECT role, false FROM sync_metadata.hosts WHERE host_id = $1::uuid AND NOT EXISTS (SELECT 1 FROM upsert)`,
        [
          hostId,
          identity.hostname,
          identity.cluster,
          identity.nodeName,
          identity.role,
          identity.version ?? null,
          options.takeOverAfterSeconds ?? TAKEOVER_AFTER_SECONDS,
        ],
      );
      return res.rows[0] as { role: string; ours: boolean } | undefined;
    },
    { hostId },
  ).catch((error: unknown) => {
    const pgError = error as { code?: string; constraint?: string };
    if (pgError.code === '23514' && pgError.constraint === 'hosts_role_check') {
      throw new ConfigError([
        `this database's schema has no host role "${identity.role}" yet: run syncctl init with the admin URL ` +
          '(ADMIN_DATABASE_URL) to apply the pending migrations, then start this process again',
      ]);
    }
    throw error;
  });
  if (holder && !holder.ours) {
    throw new ConfigError([
      `${identity.nodeName}@${identity.hostname} in cluster "${identity.cluster}" is registered to a running ` +
        `${holder.role} process (its heartbeat is recent): give this ${identity.role} process its own name (ROLE), ` +
        'or stop the other one first',
    ]);
  }
  return hostId;
}

/** Refreshes last_heartbeat (and status online, in case the leader marked this host offline during a pause). */
export async function heartbeatHost(pool: pg.Pool, hostId: string): Promise<boolean> {
  return withTransaction(
    pool,
    async (client) => {
      const res = await client.query(
        `UPDATE sync_metadata.hosts SET last_heartbeat = now(), status = 'online', updated_at = now()
          WHERE host_id = $1::uuid`,
        [hostId],
      );
      return (res.rowCount ?? 0) > 0;
    },
    { hostId },
  );
}

/** Marks this host stopped (graceful shutdown). */
export async function markHostStopped(pool: pg.Pool, hostId: string): Promise<void> {
  await withTransaction(
    pool,
    async (client) => {
      await client.query(
        `UPDATE sync_metadata.hosts SET status = 'stopped', updated_at = now() WHERE host_id = $1::uuid`,
        [hostId],
      );
    },
    { hostId },
  );
}

/**
 * Marks the cluster's hosts silent for more than `afterSeconds` as offline and returns their node names. Must run
 * inside the caller's transaction (the leader runs it in a fenced one) with the cluster scope applied.
 */
export async function markSilentHostsOffline(
  client: Pick<pg.ClientBase, 'query'>,
  cluster: string,
  afterSeconds: number = OFFLINE_AFTER_SECONDS,
): Promise<string[]> {
  const res = await client.query<{ node_name: string; hostname: string }>(
    `UPDATE sync_metadata.hosts SET status = 'offline', updated_at = now()
      WHERE cluster_name = $1::text AND status = 'online'
        AND last_heartbeat < now() - make_interval(secs => $2::double precision)
      RETURNING node_name, hostname`,
    [cluster, afterSeconds],
  );
  return res.rows.map((r) => `${r.node_name}@${r.hostname}`);
}

export type HostHeartbeat = {
  readonly hostId: string;
  /** Stops the heartbeat and marks the host stopped (best effort). */
  stop(options?: { markStopped?: boolean }): Promise<void>;
};

/**
 * Registers the host (retrying until the database answers or `signal` aborts) and heartbeats it every
 * `intervalSeconds`. Errors are logged and counted, never thrown from the timer.
 */
export async function startHostHeartbeat(opts: {
  pool: pg.Pool;
  identity: HostIdentity & { readonly role: HostRole; readonly version?: string };
  intervalSeconds: number;
  logger: Logger;
  metrics?: SyncMetrics;
}): Promise<HostHeartbeat> {
  // A restart of another role's process under this name waits out three of its missed heartbeats.
  const takeOver = { takeOverAfterSeconds: Math.max(TAKEOVER_AFTER_SECONDS, 3 * opts.intervalSeconds) };
  const hostId = await registerHost(opts.pool, opts.identity, takeOver);
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();
  const beat = async () => {
    try {
      const found = await heartbeatHost(opts.pool, hostId);
      // The row can vanish if an operator deregistered the cluster; re-register so the process stays visible.
      if (!found && !stopped) await registerHost(opts.pool, opts.identity, takeOver);
    } catch (error) {
      opts.metrics?.loopErrors.inc({ loop: 'host_heartbeat' });
      opts.logger.warn({ err: error }, `host heartbeat failed: ${errorMessage(error)}; retrying`);
    }
  };
  const timer = setInterval(() => {
    if (!stopped) running = beat();
  }, opts.intervalSeconds * 1000);
  timer.unref();
  return {
    hostId,
    async stop(options = {}) {
      stopped = true;
      clearInterval(timer);
      await running;
      if (options.markStopped !== false) {
        await markHostStopped(opts.pool, hostId).catch((error) => {
          opts.logger.warn({ err: error }, `could not mark host stopped: ${errorMessage(error)}`);
        });
      }
    },
  };
}
