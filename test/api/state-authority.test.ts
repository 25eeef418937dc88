import { afterAll, describe, expect, it } from 'vitest';
import { adminQuery, useTestDatabase, withConnection } from '../support/db.ts';
import { freePort, killAllProcesses, startApp, waitUntil, type AppProcess } from '../support/processes.ts';

/**
 * The design documents' "state authority" test with two real node processes on one database: PUT on node-a, read
 * on node-b (which had the old value cached) → the new value within a poll interval, PostgreSQL updated first; then
 * node-a is killed with SIGKILL and node-b still serves, and accepts, the authoritative state.
 */

const TOKEN = 'state-authority-token-0123456789';
const CLUSTER = 'state-auth';

type StateBody = { key: string; value: Record<string, unknown>; cached: boolean };

describe('state authority across two node processes', () => {
  const db = useTestDatabase();

  afterAll(async () => {
    await killAllProcesses();
  });

  async function node(role: string, port: number): Promise<AppProcess> {
    const p = startApp(role, 'node', {
      DATABASE_URL: db.current.serviceUrl,
      DATABASE_POOLER: 'none',
      CLUSTER_NAME: CLUSTER,
      ROLE: role,
      HOST_NAME: 'state-host',
      LEASE_DURATION: '3',
      HEARTBEAT_INTERVAL: '1',
      WORKER_CONCURRENCY: '0',
      API_PORT: String(port),
      API_HOST: '127.0.0.1',
      API_TOKEN: TOKEN,
      CACHE_TTL: '300',
      STATE_POLL_INTERVAL_MS: '200',
      LOG_LEVEL: 'info',
    });
    await p.waitForLog(/API listening/, 30_000);
    return p;
  }

  const auth = { Authorization: `Bearer ${TOKEN}` };
  async function getState(port: number, key: string): Promise<StateBody> {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/state/${key}`, { headers: auth });
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as StateBody;
  }
  async function putState(port: number, key: string, value: unknown): Promise<Response> {
    // The design documents' form: PUT /api/v1/state with {key, value}.
    return fetch(`http://127.0.0.1:${port}/api/v1/state`, {
      method: 'PUT',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ key, value }),
    });
  }

  it('PUT on node-a is read on node-b at once; after node-a is killed node-b keeps serving the authority', async () => {
    await withConnection(db.current.adminUrl, async (c) => {
      const host = await c.query<{ host_id: string }>(
        `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name, role)
         VALUES (sync_metadata.host_identity($1, 'state-host', 'registrar'), 'state-host', $1, 'registrar', 'admin')
         RETURNING host_id`,
        [CLUSTER],
      );
      await c.query(
        `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sync_enabled, status)
         VALUES ('test', $1, 'client_test', true, 'active')`,
        [host.rows[0]?.host_id],
      );
    });
    const ports = { a: await freePort(), b: await freePort() };
    const a = await node('node-a', ports.a);
    await node('node-b', ports.b);

    // node-b reads and caches the current state.
    expect((await getState(ports.b, 'deployment.test')).value).toMatchObject({ status: 'active', sync_interval: 300 });
    expect((await getState(ports.b, 'deployment.test')).cached).toBe(true);

    const put = await putState(ports.a, 'deployment.test', { status: 'paused', sync_interval: 900 });
    expect(put.status, await put.clone().text()).toBe(200);
    // PostgreSQL holds the new value as soon as the PUT has answered.
    const row = await adminQuery(
      db.current.adminUrl,
      "SELECT status, sync_enabled, sync_interval FROM sync_metadata.client_deployments WHERE client_name = 'test'",
    );
    expect(row.rows[0]).toEqual({ status: 'paused', sync_enabled: false, sync_interval: 900 });

    // node-b drops its cached copy on node-a's invalidation event (well before the 300 s TTL).
    const started = Date.now();
    const seen = await waitUntil(
      'node-b to serve the new value',
      async () => {
        const s = await getState(ports.b, 'deployment.test');
        return s.value.status === 'paused' ? s : undefined;
      },
      3000,
      50,
    );
    expect(seen.value).toMatchObject({ status: 'paused', sync_enabled: false, sync_interval: 900 });
    expect(Date.now() - started).toBeLessThan(2000);

    // Free-form keys follow the same path.
    await getState(ports.a, 'deployment.test');
    expect((await putState(ports.b, 'release-note', { text: 'v1' })).status).toBe(200);
    expect((await getState(ports.a, 'release-note')).value).toEqual({ text: 'v1' });
    expect((await putState(ports.a, 'release-note', { text: 'v2' })).status).toBe(200);
    await waitUntil(
      'node-b to see v2',
      async () => (await getState(ports.b, 'release-note')).value.text === 'v2',
      3000,
      50,
    );

    // Kill node-a: node-b still answers with the authoritative state, and takes writes.
    a.signal('SIGKILL');
    await a.exited;
    expect((await getState(ports.b, 'deployment.test')).value).toMatchObject({ status: 'paused', sync_interval: 900 });
    expect((await putState(ports.b, 'deployment.test', { status: 'active' })).status).toBe(200);
    const after = await getState(ports.b, 'deployment.test');
    expect(after).toMatchObject({ cached: false, value: { status: 'active', sync_enabled: true, sync_interval: 900 } });
    // And node-b leads once node-a's lease has run out.
    await waitUntil(
      'node-b to lead',
      async () => {
        const res = await fetch(`http://127.0.0.1:${ports.b}/health`);
        return ((await res.json()) as { is_leader: boolean }).is_leader;
      },
      10_000,
      200,
    );
  });
});
