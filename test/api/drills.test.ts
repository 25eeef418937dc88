import { sign } from 'hono/jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, useTestDatabase } from '../support/db.ts';
import {
  JWT_SECRET,
  TEST_TOKEN,
  bearer,
  seedCluster,
  tenantName,
  testApi,
  type SeededCluster,
  type TestApi,
} from './support.ts';

/**
 * GET /api/v1/tenants/{name}/drills against a real database: newest first with every check, limit, read scope
 * (401 without a token, 403 without "read"), 404 for an unknown tenant or one of another cluster, 400 for a bad
 * name or limit; the tenants list carries the last drill, and /metrics the drill figures.
 */
describe('restore drills API', () => {
  const db = useTestDatabase();
  let seed: SeededCluster;
  let api: TestApi;
  let acme: string;

  beforeAll(async () => {
    seed = await seedCluster(db.current, 'drills-c');
    await seedCluster(db.current, 'drills-other');
    acme = tenantName(seed, 'acme');
    api = testApi({
      db: db.current,
      seed,
      auth: { apiToken: TEST_TOKEN, apiTokenScopes: ['read'], jwtSecret: JWT_SECRET },
    });
    const drill = `INSERT INTO sync_state.restore_drills (drill_id, deployment_id, passed, failure, triggered_by,
                     run_by, started_at, finished_at, duration_seconds, restore_seconds, rows_restored, revision, checks)
                   SELECT gen_random_uuid(), deployment_id, $2, $3, 'scheduler', 'worker-1@api-host',
                          now() - $4::interval, now() - $4::interval + interval '2 seconds', 2.25, 1.1, 600,
                          'alembic:c440947495f3', $5::jsonb
                     FROM sync_metadata.client_deployments WHERE client_name = $1`;
    const checks = (ok: boolean) =>
      JSON.stringify({
        restore: { ok: true, rows: 600 },
        integrity: { ok: true, result: 'ok' },
        compare: { ok: true, missing: 0, extra: 0, differing: 0, tables: [] },
        bookkeeping: { ok, unbooked: 0, lost: 0, damaged: ok ? 0 : 1, summary: ok ? 'ok' : 'chat: 1 row(s) changed' },
        openwebui: { ok: true, revision: 'alembic:c440947495f3', problems: [] },
      });
    await adminQuery(db.current.adminUrl, drill, [acme, true, null, '2 days', checks(true)]);
    await adminQuery(db.current.adminUrl, drill, [acme, false, 'chat: 1 row(s) changed', '1 hour', checks(false)]);
    await adminQuery(db.current.adminUrl, drill, [
      tenantName({ ...seed, cluster: 'drills-other' }, 'acme'),
      true,
      null,
      '1 hour',
      checks(true),
    ]);
  });

  afterAll(async () => {
    await api?.pool.end();
  });

  const get = async (path: string, headers: Record<string, string> = bearer()) => {
    const res = await api.app.request(path, { headers });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('lists the drills newest first with their checks', async () => {
    const { status, body } = await get(`/api/v1/tenants/${acme}/drills`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ client_name: acme, count: 2 });
    const drills = body.drills as Record<string, unknown>[];
    expect(drills.map((d) => d.passed)).toEqual([false, true]);
    expect(drills[0]).toMatchObject({
      failure: 'chat: 1 row(s) changed',
      triggered_by: 'scheduler',
      run_by: 'worker-1@api-host',
      duration_seconds: 2.25,
      restore_seconds: 1.1,
      rows_restored: 600,
      revision: 'alembic:c440947495f3',
      checks: { bookkeeping: { ok: false, damaged: 1 } },
    });
    expect(body.last_passed_at).toBe(drills[1]?.started_at);
    const one = await get(`/api/v1/tenants/${acme}/drills?limit=1`);
    expect(one.body).toMatchObject({ count: 1, last_passed_at: null });
  });

  it('a tenant never drilled has an empty list', async () => {
    const { status, body } = await get(`/api/v1/tenants/${tenantName(seed, 'globex')}/drills`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ count: 0, drills: [], last_passed_at: null });
  });

  it('unknown tenants, tenants of other clusters, bad names and limits are refused clearly', async () => {
    const unknown = await get('/api/v1/tenants/nobody/drills');
    expect(unknown).toMatchObject({ status: 404, body: { error: 'not_found' } });
    expect(String(unknown.body.message)).toContain('tenant "nobody" is not registered in cluster "drills-c"');
    const other = await get(`/api/v1/tenants/drillsother-acme/drills`);
    expect(other.status).toBe(404);
    expect((await get('/api/v1/tenants/Bad%20Name/drills')).status).toBe(400);
    expect((await get(`/api/v1/tenants/${acme}/drills?limit=0`)).status).toBe(400);
    expect((await get(`/api/v1/tenants/${acme}/drills?limit=abc`)).status).toBe(400);
  });

  it('needs a token with the read scope', async () => {
    expect((await get(`/api/v1/tenants/${acme}/drills`, {})).status).toBe(401);
    const now = Math.floor(Date.now() / 1000);
    const trigger = await sign({ sub: 'ops', scope: 'sync:trigger', exp: now + 600 }, JWT_SECRET, 'HS256');
    expect((await get(`/api/v1/tenants/${acme}/drills`, { Authorization: `Bearer ${trigger}` })).status).toBe(403);
    const reader = await sign({ sub: 'ops', scope: 'read', exp: now + 600 }, JWT_SECRET, 'HS256');
    expect((await get(`/api/v1/tenants/${acme}/drills`, { Authorization: `Bearer ${reader}` })).status).toBe(200);
  });

  it('the tenants list carries the last drill; the OpenAPI document describes the endpoint', async () => {
    const { body } = await get('/api/v1/tenants');
    const row = (body.tenants as Record<string, unknown>[]).find((t) => t.client_name === acme);
    expect(row).toMatchObject({ last_drill_passed: false, last_drill_failure: 'chat: 1 row(s) changed' });
    expect(Date.parse(String(row?.last_passed_drill_at))).toBeLessThan(Date.parse(String(row?.last_drill_at)));
    const doc = (await get('/openapi.json')).body as { paths: Record<string, { get?: { responses: object } }> };
    expect(Object.keys(doc.paths['/api/v1/tenants/{name}/drills']?.get?.responses ?? {})).toEqual(
      expect.arrayContaining(['200', '401', '403', '404']),
    );
  });

  it('/metrics counts overdue and failing tenants and gives the most overdue a series', async () => {
    // acme's drills began three days ago; its last passed drill is two days old: overdue (default 48 h), failing.
    await adminQuery(
      db.current.adminUrl,
      `UPDATE sync_metadata.client_deployments SET drills_since = now() - interval '3 days', last_sync_at = now()
        WHERE client_name = $1`,
      [acme],
    );
    const res = await api.app.request('/metrics', { headers: bearer() });
    const text = await res.text();
    expect(text).toMatch(/^sync_tenants_drill_overdue 1$/m);
    expect(text).toMatch(/^sync_tenants_drill_failing 1$/m);
    expect(text).toMatch(/^sync_drill_max_age_seconds 172800$/m);
    const series = new RegExp(
      `^sync_drill_last_success_timestamp_seconds\\{client="${acme}"\\} (\\d+(\\.\\d+)?)$`,
      'm',
    );
    const at = Number(series.exec(text)?.[1]);
    expect(Math.abs(at - (Date.now() / 1000 - 2 * 86_400))).toBeLessThan(120);
  });
});
