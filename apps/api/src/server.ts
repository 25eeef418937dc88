import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { withTransaction } from '../../../packages/engine/src/db.ts';
import { errorMessage } from '../../../packages/engine/src/errors.ts';
import type { SyncMetrics } from '../../../packages/engine/src/metrics.ts';

/** HTTP settings of the API served by every node. */
export type ApiConfig = {
  /** Port to listen on (node-a 9443, node-b 9444; 0 picks a free one). */
  readonly port: number;
  /** Interface to bind (default 0.0.0.0). */
  readonly host?: string;
  readonly enableMetrics?: boolean;
};

export type ApiDeps = {
  /** Service-role pool. */
  readonly pool: pg.Pool;
  readonly boss?: PgBoss;
  readonly cluster: string;
  readonly nodeName: string;
  readonly hostId: string;
  readonly logger: Logger;
  readonly metrics: SyncMetrics;
  readonly startedAt: Date;
  readonly config: ApiConfig;
};

type HealthRow = { is_leader: boolean; leader_id: string | null; epoch: string | null; last_sync: Date | null };

/** The API as a Hono app (use app.request() in tests). */
export function createApp(deps: ApiDeps): Hono {
  const app = new Hono();

  // Leadership is read from the lease row: the database is the source of truth, not this process's memory.
  app.get('/health', async (c) => {
    const uptime = Math.round((Date.now() - deps.startedAt.getTime()) / 1000);
    try {
      const row = await withTransaction(
        deps.pool,
        async (client) => {
          const res = await client.query<HealthRow>(
            `SELECT (le.leader_host_id = $2::uuid AND le.expires_at > now()) IS TRUE AS is_leader,
                    CASE WHEN le.expires_at > now() THEN le.leader_id END AS leader_id,
                    le.epoch::text AS epoch,
                    (SELECT max(d.last_sync_at) FROM sync_metadata.client_deployments d) AS last_sync
               FROM (SELECT 1) one
               LEFT JOIN sync_metadata.leader_election le ON le.cluster_name = $1::text`,
            [deps.cluster, deps.hostId],
          );
          return res.rows[0];
        },
        { hostId: deps.hostId, cluster: deps.cluster },
      );
      return c.json({
        status: 'healthy',
        node_id: deps.nodeName,
        role: row?.is_leader ? 'leader' : 'follower',
        is_leader: row?.is_leader ?? false,
        leader_id: row?.leader_id ?? null,
        leader_epoch: row?.epoch === null || row?.epoch === undefined ? null : Number(row.epoch),
        cluster_name: deps.cluster,
        uptime_seconds: uptime,
        last_sync: row?.last_sync ? row.last_sync.toISOString() : null,
      });
    } catch (error) {
      deps.logger.warn({ err: error }, `health check: database unreachable: ${errorMessage(error)}`);
      return c.json(
        {
          status: 'unhealthy',
          node_id: deps.nodeName,
          role: 'unknown',
          is_leader: false,
          leader_id: null,
          cluster_name: deps.cluster,
          uptime_seconds: uptime,
          last_sync: null,
          error: 'database unreachable',
        },
        503,
      );
    }
  });

  return app;
}

/** Serves createApp(deps) on deps.config.port; resolves once listening. */
export async function startApiServer(deps: ApiDeps): Promise<{ port: number; close(): Promise<void> }> {
  const app = createApp(deps);
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch: app.fetch, port: deps.config.port, hostname: deps.config.host ?? '0.0.0.0' },
      (info) => {
        deps.logger.info({ port: info.port }, `API listening on port ${info.port}`);
        resolve({
          port: info.port,
          close: () =>
            new Promise<void>((done) => {
              server.close(() => done());
              (server as { closeAllConnections?: () => void }).closeAllConnections?.();
            }),
        });
      },
    );
    server.once('error', reject);
  });
}
