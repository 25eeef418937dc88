import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase, withConnection } from '../support/db.ts';
import { freePort, killAllProcesses, startApp, waitUntil } from '../support/processes.ts';

/**
 * The design documents' curl examples, verbatim except for the port, against a real node process in its default
 * configuration (no tokens configured: callers on the same machine may act).
 */

const run = promisify(execFile);
const CLUSTER = 'default-cluster';

describe("the design documents' curl examples", () => {
  const db = useTestDatabase();
  let port: number;

  async function sh(script: string): Promise<string> {
    const { stdout } = await run('bash', ['-c', script.replaceAll('localhost:9443', `localhost:${port}`)], {
      timeout: 20_000,
    });
    return stdout;
  }
  const json = async (script: string) => JSON.parse(await sh(script)) as Record<string, unknown>;

  beforeAll(async () => {
    await withConnection(db.current.adminUrl, async (c) => {
      const host = await c.query<{ host_id: string }>(
        `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name, role)
         VALUES (sync_metadata.host_identity($1, 'seed-host', 'registrar'), 'seed-host', $1, 'registrar', 'admin')
         RETURNING host_id`,
        [CLUSTER],
      );
      for (const name of ['chat-test', 'acme-corp']) {
        await c.query(
          `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sync_enabled, status)
           VALUES ($1, $2, $3, true, 'active')`,
          [name, host.rows[0]?.host_id, `client_${name.replace('-', '_')}`],
        );
      }
    });
    port = await freePort();
    const node = startApp('node-a', 'node', {
      DATABASE_URL: db.current.serviceUrl,
      DATABASE_POOLER: 'none',
      CLUSTER_NAME: CLUSTER,
      ROLE: 'node-a',
      HOST_NAME: 'seed-host',
      LEASE_DURATION: '3',
      HEARTBEAT_INTERVAL: '1',
      WORKER_CONCURRENCY: '0',
      API_PORT: String(port),
      API_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    });
    await node.waitForLog(/API listening/, 30_000);
    await waitUntil(
      'node-a to lead',
      async () => (await json('curl -s http://localhost:9443/health')).is_leader,
      10_000,
    );
  });

  afterAll(async () => {
    await killAllProcesses();
  });

  it('health, cluster status and leadership', async () => {
    const health = await json('curl -s http://localhost:9443/health | jq');
    expect(health).toMatchObject({
      status: 'healthy',
      node_id: 'node-a',
      is_leader: true,
      cluster_name: CLUSTER,
      leader_id: expect.stringMatching(/^node-a/),
    });
    expect(typeof health.uptime_seconds).toBe('number');
    expect((await sh("curl http://localhost:9443/health | jq '.is_leader'")).trim()).toBe('true');
    const status = await json('curl -s http://localhost:9443/api/v1/cluster/status | jq');
    expect(status.cluster_name).toBe(CLUSTER);
    expect(status.nodes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ hostname: 'seed-host', node_name: 'node-a', status: 'healthy', is_leader: true }),
      ]),
    );
  });

  it('trigger a manual sync (curl and the shell-script example with its status check)', async () => {
    const queued = await json(`curl -X POST http://localhost:9443/api/v1/sync/trigger \\
  -H "Content-Type: application/json" \\
  -d '{"client_name": "chat-test", "full_sync": false}'`);
    expect(queued).toMatchObject({ status: 'queued', client: 'chat-test', full_sync: false });
    expect(Date.parse(queued.queued_at as string)).not.toBeNaN();

    const out = await sh(`#!/bin/bash
# Trigger sync via API with error handling

SYNC_API="http://localhost:9443/api/v1/sync/trigger"
CLIENT_NAME="acme-corp"

response=$(curl -s -w "\\n%{http_code}" -X POST "$SYNC_API" \\
  -H "Content-Type: application/json" \\
  -d "{\\"client_name\\": \\"$CLIENT_NAME\\", \\"full_sync\\": false}")

http_code=$(echo "$response" | tail -1)
body=$(echo "$response" | head -1)

if [ "$http_code" = "200" ]; then
  echo "✅ Sync queued: $body"
else
  echo "❌ Error ($http_code): $body"
  exit 1
fi`);
    expect(out).toMatch(/^✅ Sync queued: \{"status":"queued","client":"acme-corp"/);
  });

  it('state: put and get by path, by query and with {key, value}; conflicts listing; metrics', async () => {
    expect((await json('curl -s http://localhost:9443/api/v1/state/my-key | jq')).error).toBe('not_found');
    await sh(`curl -s -X PUT http://localhost:9443/api/v1/state/my-key \\
  -H "Content-Type: application/json" \\
  -d '{"key": "my-key", "value": {"data": "value"}}'`);
    expect(await json('curl -s http://localhost:9443/api/v1/state/my-key | jq')).toMatchObject({
      key: 'my-key',
      value: { data: 'value' },
    });

    const put = await json(`curl -X PUT http://localhost:9443/api/v1/state \\
     -H "Content-Type: application/json" \\
     -d '{"key":"deployment.acme-corp","value":{"sync_interval":900}}'`);
    expect(put).toMatchObject({ success: true, updated_at: expect.any(String) });
    const state = await json("curl -s 'http://localhost:9443/api/v1/state?key=deployment.acme-corp'");
    expect(state).toMatchObject({
      key: 'deployment.acme-corp',
      value: { status: 'active', sync_enabled: true, sync_interval: 900 },
      cached: false,
    });

    const conflicts = await json('curl -s "http://localhost:9443/api/v1/conflicts?client_name=chat-test" | jq');
    expect(conflicts).toEqual({ conflicts: [], count: 0 });
    expect(await sh('curl -s http://localhost:9443/metrics')).toMatch(/# TYPE sync_is_leader gauge\nsync_is_leader 1/);
  });
});
