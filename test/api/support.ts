import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { createApp, type ApiDeps } from '@owui-sync/api';
import type { ApiAuthConfig } from '@owui-sync/api';
import { createPool, silentLogger, createMetrics } from '@owui-sync/engine';
import { quoteIdent } from '@owui-sync/schema';
import { withConnection, type TestDatabase } from '../support/db.ts';

/** A seeded cluster for API tests: two nodes (node-a leading), three tenants, jobs and a real conflict. */

export type SeededCluster = {
  cluster: string;
  hostA: string;
  hostB: string;
  tenants: Record<'acme' | 'globex' | 'paused', string>;
  conflictId: number;
};

export async function seedCluster(db: TestDatabase, cluster: string): Promise<SeededCluster> {
  return withConnection(db.adminUrl, async (c) => {
    const host = async (node: string) =>
      (
        await c.query<{ host_id: string }>(
          `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name, version)
           VALUES (sync_metadata.host_identity($1, 'api-host', $2), 'api-host', $1, $2, '0.1.0')
           ON CONFLICT (host_id) DO UPDATE SET last_heartbeat = now() RETURNING host_id::text`,
          [cluster, node],
        )
      ).rows[0]?.host_id as string;
    const hostA = await host('node-a');
    const hostB = await host('node-b');
    await c.query(
      `INSERT INTO sync_metadata.leader_election (cluster_name, leader_id, leader_host_id, epoch, expires_at)
       VALUES ($1, 'node-a@api-host', $2, 3, now() + interval '1 hour')`,
      [cluster, hostA],
    );
    const tenant = async (name: string, status: string, enabled: boolean) =>
      (
        await c.query<{ deployment_id: string }>(
          `INSERT INTO sync_metadata.client_deployments
             (client_name, host_id, schema_name, sqlite_path, sync_enabled, status, sync_interval, last_sync_at,
              last_sync_status)
           VALUES ($1, $2, $3, '/data/' || $1 || '/webui.db', $4, $5, 300, now() - interval '90 seconds', 'success')
           RETURNING deployment_id::text`,
          [name, hostA, `client_${name.replaceAll('-', '_')}`, enabled, status],
        )
      ).rows[0]?.deployment_id as string;
    const prefix = cluster.replace(/[^a-z0-9]/g, '').slice(0, 12);
    const tenants = {
      acme: await tenant(`${prefix}-acme`, 'active', true),
      globex: await tenant(`${prefix}-globex`, 'active', true),
      paused: await tenant(`${prefix}-paused`, 'paused', false),
    };
    for (const [i, status] of ['success', 'failed', 'success'].entries()) {
      await c.query(
        `INSERT INTO sync_metadata.sync_jobs (deployment_id, client_name, status, sync_type, triggered_by, rows_synced,
                                             duration_seconds, started_at, completed_at, error)
         VALUES ($1, $2, $3, 'incremental', 'scheduler', $4, 1.5, now() - make_interval(mins => $5),
                 now() - make_interval(mins => $5) + interval '2 seconds', $6)`,
        [
          i === 1 ? tenants.globex : tenants.acme,
          `${prefix}-${i === 1 ? 'globex' : 'acme'}`,
          status,
          100 * (i + 1),
          10 - i,
          status === 'failed' ? 'source database locked' : null,
        ],
      );
    }
    // A real tenant table with one row changed on both sides, for resolve.
    const schema = quoteIdent(`client_${prefix}_acme`);
    await c.query(`CREATE SCHEMA ${schema}`);
    await c.query(`CREATE TABLE ${schema}.chat (id text PRIMARY KEY, title text, updated_at bigint)`);
    await c.query(`INSERT INTO ${schema}.chat VALUES ('c1', 'Remote', 200), ('c2', 'Other', 100)`);
    const role = quoteIdent(db.serviceRole);
    await c.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
    await c.query(`GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
    await c.query(`GRANT USAGE ON SCHEMA sync_state TO ${role}`);
    await c.query(`GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA sync_state TO ${role}`);
    const conflict = await c.query<{ log_id: string }>(
      `INSERT INTO sync_metadata.conflict_log (client_id, deployment_id, table_name, row_key, conflict_type,
                                               source_data, target_data, resolution_strategy, resolution)
       VALUES ($1, $2, 'chat', '{"id": "c1"}', 'update_update', '{"id": "c1", "title": "Local", "updated_at": 300}',
               '{"id": "c1", "title": "Remote", "updated_at": 200}', 'manual', 'pending')
       RETURNING log_id::text`,
      [`${prefix}-acme`, tenants.acme],
    );
    return { cluster, hostA, hostB, tenants, conflictId: Number(conflict.rows[0]?.log_id) };
  });
}

export function tenantName(seed: SeededCluster, which: keyof SeededCluster['tenants']): string {
  return `${seed.cluster.replace(/[^a-z0-9]/g, '').slice(0, 12)}-${which}`;
}

export type TestApi = { app: ReturnType<typeof createApp>; deps: ApiDeps; pool: pg.Pool };

export function testApi(opts: {
  db: TestDatabase;
  seed: SeededCluster;
  boss?: PgBoss;
  auth?: ApiAuthConfig;
  node?: 'a' | 'b';
  pool?: pg.Pool;
  cacheTtlSeconds?: number;
  enableMetrics?: boolean;
}): TestApi {
  // createPool logs connection errors instead of throwing them (the test database is dropped WITH (FORCE)).
  const pool = opts.pool ?? createPool(opts.db.serviceUrl, { max: 4 });
  const deps: ApiDeps = {
    pool,
    ...(opts.boss ? { boss: opts.boss } : {}),
    cluster: opts.seed.cluster,
    nodeName: opts.node === 'b' ? 'node-b' : 'node-a',
    hostId: opts.node === 'b' ? opts.seed.hostB : opts.seed.hostA,
    logger: silentLogger(),
    metrics: createMetrics(),
    startedAt: new Date(Date.now() - 5000),
    config: {
      port: 0,
      cacheTtlSeconds: opts.cacheTtlSeconds ?? 300,
      enableMetrics: opts.enableMetrics ?? true,
      auth: opts.auth ?? { publicReads: true, apiToken: TEST_TOKEN },
    },
  };
  return { app: createApp(deps), deps, pool };
}

export const TEST_TOKEN = 'test-token-0123456789abcdef';
export const JWT_SECRET = 'jwt-secret-for-tests-0123456789abcdefghij';

export const bearer = (token = TEST_TOKEN) => ({ Authorization: `Bearer ${token}` });
export const jsonHeaders = (token: string | null = TEST_TOKEN) => ({
  'Content-Type': 'application/json',
  ...(token ? bearer(token) : {}),
});
