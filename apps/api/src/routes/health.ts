import { createRoute } from '@hono/zod-openapi';
import { errorMessage } from '@owui-sync/engine';
import { queueProblem, readClusterStatus } from '@owui-sync/engine/cluster';
import { LAST_SYNC_AT_SQL } from '@owui-sync/engine/tenants';
import { iso, reply, type ApiApp, type RouteContext } from '../context.ts';
import { clusterStatusSchema, errorSchema, healthSchema } from '../schemas.ts';
import { json } from './openapi.ts';

/** GET /health, GET /api/v1/cluster/status (GET /metrics: metrics.ts). */

type HealthRow = { is_leader: boolean; leader_id: string | null; epoch: string | null; last_sync: Date | null };

/** Seconds of heartbeat silence after which an online node is shown as stale. */
const STALE_AFTER_SECONDS = 90;

export function registerHealthRoutes(app: ApiApp, ctx: RouteContext): void {
  const { deps, auth } = ctx;
  const authz = deps.config.auth ?? {};

  app.openapi(
    createRoute({
      method: 'get',
      path: '/health',
      tags: ['health'],
      summary: 'Node health and leadership (read from the lease row)',
      middleware: [auth.require('read', { public: authz.publicHealth ?? true })] as const,
      responses: {
        200: {
          description: 'healthy, or degraded (the node runs but its job queue is missing or failing: see error)',
          content: json(healthSchema),
        },
        503: { description: 'the database cannot be reached', content: json(healthSchema) },
      },
    }),
    async (c) => {
      const uptime = Math.round((Date.now() - deps.startedAt.getTime()) / 100) / 10;
      try {
        // Leadership comes from the lease row (the database is the source of truth), and counts only when the row
        // carries the epoch this process holds: a node restarted under the same name shares its host id with the
        // previous process, whose lease stays valid until it expires.
        const held = deps.heldEpoch ? deps.heldEpoch() : undefined;
        const row = await ctx.shared(`health:${held ?? 'any'}`, () =>
          ctx.inCluster(async (client) => {
            const res = await client.query<HealthRow>(
              `SELECT (le.leader_host_id = $2::uuid AND le.expires_at > now()
                       AND ($3::boolean OR le.epoch = $4::bigint)) IS TRUE AS is_leader,
                    CASE WHEN le.expires_at > now() THEN le.leader_id END AS leader_id,
                    le.epoch::text AS epoch,
                    ${LAST_SYNC_AT_SQL} AS last_sync
               FROM (SELECT 1) one
               LEFT JOIN sync_metadata.leader_election le ON le.cluster_name = $1::text`,
              [deps.cluster, deps.hostId, held === undefined, held ?? null],
            );
            return res.rows[0];
          }),
        );
        // Without its queue a node can neither run nor accept syncs: still up, but not healthy.
        const queue = deps.boss ? await ctx.shared('health-queue', () => queueProblem(deps.boss!)) : null;
        return reply(c, {
          status: queue ? 'degraded' : 'healthy',
          ...(queue ? { error: queue } : {}),
          node_id: deps.nodeName,
          role: deps.apiOnly ? 'api' : row?.is_leader ? 'leader' : 'follower',
          is_leader: !deps.apiOnly && (row?.is_leader ?? false),
          leader_id: row?.leader_id ?? null,
          leader_epoch: row?.epoch === null || row?.epoch === undefined ? null : Number(row.epoch),
          cluster_name: deps.cluster,
          uptime_seconds: uptime,
          last_sync: iso(row?.last_sync),
          ...(auth.warning ? { warning: auth.warning } : {}),
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
            error: 'database unreachable: this node cannot read the lease; check DATABASE_URL and the database',
            ...(auth.warning ? { warning: auth.warning } : {}),
          } as never,
          503,
        ) as never;
      }
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/cluster/status',
      tags: ['cluster'],
      summary: 'The cluster, its lease and every registered node',
      security: [{ bearer: [] }],
      middleware: [auth.require('read', { public: authz.publicReads ?? false })] as const,
      responses: {
        200: { description: 'cluster status', content: json(clusterStatusSchema) },
        401: { description: 'no token', content: json(errorSchema) },
      },
    }),
    async (c) => {
      const result = await ctx.inCluster((client) => readClusterStatus(client, deps.cluster, { order: 'leaderFirst' }));
      return reply(c, {
        cluster_name: deps.cluster,
        leader: result.leader ? { ...result.leader, expires_at: result.leader.expires_at.toISOString() } : null,
        nodes: result.nodes.map((n) => ({
          host_id: n.host_id,
          hostname: n.hostname,
          node_name: n.node_name,
          cluster_name: n.cluster_name,
          role: n.role,
          last_heartbeat: n.last_heartbeat.toISOString(),
          seconds_since_heartbeat: n.seconds_since_heartbeat,
          status:
            n.status !== 'online' ? n.status : n.seconds_since_heartbeat > STALE_AFTER_SECONDS ? 'stale' : 'healthy',
          host_status: n.status,
          is_leader: n.is_leader,
          version: n.version,
        })),
      });
    },
  );
}
