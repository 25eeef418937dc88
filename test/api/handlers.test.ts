import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBoss } from '@owui-sync/engine/cluster';
import { SYNC_QUEUE } from '@owui-sync/schema';
import { createPool } from '@owui-sync/engine';
import { adminQuery, useTestDatabase } from '../support/db.ts';
import { clusterUrl } from '../support/pooler.ts';
import { jsonHeaders, seedCluster, tenantName, testApi, type SeededCluster, type TestApi } from './support.ts';

/** Every endpoint through app.request() against a real database and a real pg-boss queue. */
describe('API handlers', () => {
  const db = useTestDatabase();
  let seed: SeededCluster;
  let boss: PgBoss;
  let api: TestApi;
  let acme: string;

  beforeAll(async () => {
    seed = await seedCluster(db.current, 'handlers-c');
    acme = tenantName(seed, 'acme');
    // TEST_POOLER=pgbouncer runs the API's connections through pgbouncer in transaction mode.
    const url = await clusterUrl(db.current.serviceUrl);
    boss = createBoss({ connectionString: url.url, pooled: url.pooled, max: 2 });
    await boss.start();
    api = testApi({ db: db.current, seed, boss, pool: createPool(url.url, { max: 4 }) });
  });

  afterAll(async () => {
    await boss?.stop({ graceful: false });
    await api?.pool.end();
  });

  const get = async (path: string) => {
    const res = await api.app.request(path);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const send = async (method: string, path: string, body: unknown) => {
    const res = await api.app.request(path, { method, headers: jsonHeaders(), body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('GET /health reads leadership from the lease row', async () => {
    const { status, body } = await get('/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      status: 'healthy',
      node_id: 'node-a',
      role: 'leader',
      is_leader: true,
      leader_id: 'node-a@api-host',
      cluster_name: 'handlers-c',
    });
    expect(body.uptime_seconds).toBeGreaterThanOrEqual(5);
    expect(typeof body.last_sync).toBe('string');

    // The lease moves to node-b in the database: node-a's answer follows without any in-process signal.
    await adminQuery(
      db.current.adminUrl,
      `UPDATE sync_metadata.leader_election SET leader_id = 'node-b@api-host', leader_host_id = $1, epoch = 4
        WHERE cluster_name = 'handlers-c'`,
      [seed.hostB],
    );
    const after = await get('/health');
    expect(after.body).toMatchObject({ is_leader: false, role: 'follower', leader_id: 'node-b@api-host' });
    await adminQuery(
      db.current.adminUrl,
      `UPDATE sync_metadata.leader_election SET leader_id = 'node-a@api-host', leader_host_id = $1, epoch = 5
        WHERE cluster_name = 'handlers-c'`,
      [seed.hostA],
    );
  });

  it('GET /api/v1/cluster/status lists every node with heartbeat and leadership', async () => {
    const { status, body } = await get('/api/v1/cluster/status');
    expect(status).toBe(200);
    expect(body.cluster_name).toBe('handlers-c');
    const nodes = body.nodes as { node_name: string; is_leader: boolean; status: string; host_id: string }[];
    expect(nodes.map((n) => n.node_name).sort()).toEqual(['node-a', 'node-b']);
    expect(nodes.find((n) => n.is_leader)?.host_id).toBe(seed.hostA);
    expect(nodes.every((n) => n.status === 'healthy')).toBe(true);
    expect(body.leader).toMatchObject({ leader_id: 'node-a@api-host', lease_valid: true });
  });

  it('POST /api/v1/sync/trigger queues a job with triggered_by api and coalesces a second trigger', async () => {
    const first = await send('POST', '/api/v1/sync/trigger', { client_name: acme, full_sync: false });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ status: 'queued', client: acme, full_sync: false, coalesced: false });
    expect(Date.parse(first.body.queued_at as string)).not.toBeNaN();
    const job = await boss.getJobById(SYNC_QUEUE, first.body.job_id as string);
    expect(job?.data).toMatchObject({ client_name: acme, triggered_by: 'api', deployment_id: seed.tenants.acme });

    const second = await send('POST', '/api/v1/sync/trigger', { client_name: acme, full_sync: true });
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ status: 'queued', coalesced: true, job_id: first.body.job_id });
    expect(second.body.message).toMatch(/already queued/);

    // Another cluster's job in the same queue is neither counted nor listed here.
    await boss.send(SYNC_QUEUE, {
      deployment_id: '00000000-0000-4000-8000-000000000001',
      client_name: 'elsewhere',
      full_sync: false,
      triggered_by: 'api',
    });
    const queue = await get('/api/v1/queue');
    expect(queue.body.cluster_name).toBe('handlers-c');
    const sync = (queue.body.queues as { queue: string; states: Record<string, number> }[]).find(
      (q) => q.queue === SYNC_QUEUE,
    );
    expect(sync?.states.created).toBe(1);
    expect((queue.body.recent as { client_name: string; state: string }[])[0]).toMatchObject({
      client_name: acme,
      state: 'created',
      triggered_by: 'api',
    });
  });

  it('trigger: unknown tenant 404, paused tenant 409 with the command to resume it', async () => {
    const unknown = await send('POST', '/api/v1/sync/trigger', { client_name: 'nobody-here' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toMatch(/not registered.*syncctl client register nobody-here/);
    const paused = tenantName(seed, 'paused');
    const res = await send('POST', '/api/v1/sync/trigger', { client_name: paused });
    expect(res.status).toBe(409);
    expect(res.body.message).toContain(`syncctl client start ${paused}`);
  });

  it('GET /api/v1/sync/jobs filters by tenant and status, newest first, within the limit', async () => {
    const all = await get('/api/v1/sync/jobs');
    const jobs = all.body.jobs as { client_name: string; status: string; started_at: string; rows_synced: number }[];
    expect(jobs).toHaveLength(3);
    expect([...jobs].sort((a, b) => b.started_at.localeCompare(a.started_at))).toEqual(jobs);
    expect(typeof jobs[0]?.rows_synced).toBe('number');
    const failed = await get(`/api/v1/sync/jobs?status=failed`);
    expect((failed.body.jobs as { error: string }[]).map((j) => j.error)).toEqual(['source database locked']);
    const mine = await get(`/api/v1/sync/jobs?client_name=${acme}&limit=1`);
    expect(mine.body.count).toBe(1);
    expect((mine.body.jobs as { client_name: string }[])[0]?.client_name).toBe(acme);
  });

  it('GET /api/v1/tenants shows status, interval, last sync and lag', async () => {
    const { body } = await get('/api/v1/tenants');
    const tenants = body.tenants as { client_name: string; status: string; lag_seconds: number }[];
    expect(tenants.map((t) => t.status).sort()).toEqual(['active', 'active', 'paused']);
    expect(tenants[0]?.lag_seconds).toBeGreaterThanOrEqual(89);
  });

  it('conflicts: listed unresolved by default, resolved by hand with resolved_by, then listed as resolved', async () => {
    const list = await get(`/api/v1/conflicts?client_name=${acme}`);
    expect(list.status).toBe(200);
    const conflicts = list.body.conflicts as { log_id: number; table_name: string; resolved_at: string | null }[];
    expect(conflicts).toEqual([expect.objectContaining({ log_id: seed.conflictId, table_name: 'chat' })]);

    const res = await send('POST', `/api/v1/conflicts/${seed.conflictId}/resolve`, { keep: 'source' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ log_id: seed.conflictId, resolution: 'source', resolved_by: 'api:api-token' });
    const row = await adminQuery(db.current.adminUrl, `SELECT title FROM client_handlersc_acme.chat WHERE id = 'c1'`);
    expect(row.rows[0]?.title).toBe('Local');

    expect((await get(`/api/v1/conflicts?client_name=${acme}`)).body.count).toBe(0);
    const resolved = await get(`/api/v1/conflicts?client_name=${acme}&resolved=true`);
    expect(resolved.body.conflicts).toEqual([
      expect.objectContaining({ log_id: seed.conflictId, resolved_by: 'api:api-token', resolution: 'source' }),
    ]);
    const again = await send('POST', `/api/v1/conflicts/${seed.conflictId}/resolve`, { keep: 'target' });
    expect(again.status).toBe(409);
    expect(again.body.message).toMatch(/already resolved/);
    expect((await send('POST', '/api/v1/conflicts/999999/resolve', { keep: 'target' })).status).toBe(404);
  });

  it('state: deployment.<client> reads the tenant row, writes it, and says when it came from the cache', async () => {
    const first = await get(`/api/v1/state/deployment.${acme}`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ key: `deployment.${acme}`, cached: false });
    expect(first.body.value).toMatchObject({ status: 'active', sync_enabled: true, sync_interval: 300 });
    const second = await get(`/api/v1/state?key=deployment.${acme}`);
    expect(second.body.cached).toBe(true);

    // The design documents' form: PUT /api/v1/state with {key, value}.
    const put = await send('PUT', '/api/v1/state', { key: `deployment.${acme}`, value: { sync_interval: 900 } });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ success: true, value: { sync_interval: 900 } });
    const row = await adminQuery(
      db.current.adminUrl,
      'SELECT sync_interval FROM sync_metadata.client_deployments WHERE client_name = $1',
      [acme],
    );
    expect(row.rows[0]?.sync_interval).toBe(900);
    const events = await adminQuery(
      db.current.adminUrl,
      'SELECT host_id::text AS host_id FROM sync_metadata.cache_events WHERE cache_key = $1',
      [`deployment.${acme}`],
    );
    expect(events.rows).toEqual([{ host_id: seed.hostA }]);
    const after = await get(`/api/v1/state/deployment.${acme}`);
    expect(after.body).toMatchObject({ cached: false, value: { sync_interval: 900 } });

    // Pausing through state behaves like pause-sync: status and sync_enabled move together.
    const pause = await send('PUT', `/api/v1/state/deployment.${acme}`, { value: { sync_enabled: false } });
    expect(pause.body.value).toMatchObject({ status: 'paused', sync_enabled: false });
    const resume = await send('PUT', `/api/v1/state/deployment.${acme}`, { value: { status: 'active' } });
    expect(resume.body.value).toMatchObject({ status: 'active', sync_enabled: true });

    const bad = await send('PUT', `/api/v1/state/deployment.${acme}`, { value: { sync_interval: 0, colour: 'red' } });
    expect(bad.status).toBe(422);
    expect(bad.body.message).toMatch(/sync_interval/);
    expect((await get('/api/v1/state/deployment.nobody')).status).toBe(404);
  });

  it('state: free-form keys store any JSON value per cluster', async () => {
    expect((await get('/api/v1/state/my-key')).status).toBe(404);
    const put = await send('PUT', '/api/v1/state/my-key', { key: 'my-key', value: { data: 'value' } });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ success: true, version: 1 });
    const read = await get('/api/v1/state/my-key');
    expect(read.body).toMatchObject({ key: 'my-key', value: { data: 'value' }, cached: false });
    const mismatch = await send('PUT', '/api/v1/state/my-key', { key: 'other', value: 1 });
    expect(mismatch.status).toBe(422);
    const v2 = await send('PUT', '/api/v1/state/my-key', { value: [1, 2, 3] });
    expect(v2.body).toMatchObject({ version: 2, value: [1, 2, 3] });
  });

  it('GET /metrics exposes every metric named in the design documents plus queue depth and tenant lag', async () => {
    const res = await api.app.request('/metrics');
    expect(res.status).toBe(200);
    const text = await res.text();
    for (const name of [
      'sync_leader_election_attempts_total',
      'sync_leader_election_successes_total',
      'sync_leader_election_failures_total',
      'sync_is_leader',
      'sync_operations_total',
      'sync_operation_duration_seconds',
      'sync_rows_synced_total',
      'sync_conflicts_detected_total',
      'sync_conflicts_resolved_total',
      'sync_cache_hits_total',
      'sync_cache_misses_total',
      'sync_cache_evictions_total',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).toMatch(/sync_queue_jobs\{queue="owui-sync",state="created"\} \d/);
    expect(text).toMatch(new RegExp(`sync_tenant_lag_seconds\\{client="${acme}"\\} \\d+`));
    expect(text).toMatch(/sync_cache_hits_total [1-9]/);
    expect(text).toContain('sync_conflicts_resolved_total{strategy="manual"} 1');

    const off = testApi({ db: db.current, seed, pool: api.pool, enableMetrics: false });
    expect((await off.app.request('/metrics')).status).toBe(404);
  });

  it('serves /openapi.json generated from the request schemas, a docs page and the dashboard', async () => {
    const doc = (await (await api.app.request('/openapi.json')).json()) as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>>;
      components: { schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }> };
    };
    for (const path of [
      '/health',
      '/metrics',
      '/api/v1/cluster/status',
      '/api/v1/sync/trigger',
      '/api/v1/sync/jobs',
      '/api/v1/queue',
      '/api/v1/queue/jobs',
      '/api/v1/conflicts',
      '/api/v1/conflicts/{id}/resolve',
      '/api/v1/state/{key}',
      '/api/v1/state',
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
    expect(JSON.stringify(doc.paths['/api/v1/sync/trigger']?.post?.requestBody)).toContain('SyncTriggerRequest');
    expect(doc.components.schemas.SyncTriggerRequest?.required).toEqual(['client_name']);
    expect(Object.keys(doc.components.schemas.SyncTriggerRequest?.properties ?? {})).toEqual([
      'client_name',
      'full_sync',
    ]);
    expect(await (await api.app.request('/docs')).text()).toContain('openapi.json');
    const dash = await api.app.request('/');
    expect(dash.headers.get('content-type')).toMatch(/text\/html/);
    expect(await dash.text()).toContain('handlers-c');
    expect((await api.app.request('/nope')).status).toBe(404);
  });
});
