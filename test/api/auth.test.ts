import { sign } from 'hono/jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadApiConfig, startApiServer } from '@owui-sync/api';
import { ConfigError } from '@owui-sync/engine';
import { adminQuery, useTestDatabase } from '../support/db.ts';
import {
  JWT_SECRET,
  TEST_TOKEN,
  bearer,
  jsonHeaders,
  seedCluster,
  tenantName,
  testApi,
  type SeededCluster,
  type TestApi,
} from './support.ts';

/** 401 without a token, 403 with a token lacking the scope; JWTs and the static token; public probes. */
describe('API authorisation', () => {
  const db = useTestDatabase();
  let seed: SeededCluster;
  let api: TestApi;
  let acme: string;
  const now = () => Math.floor(Date.now() / 1000);
  const jwtFor = (scope: string, extra: Record<string, unknown> = {}, secret = JWT_SECRET) =>
    sign({ sub: 'ops@example.com', scope, exp: now() + 600, ...extra }, secret, 'HS256');

  beforeAll(async () => {
    seed = await seedCluster(db.current, 'auth-c');
    acme = tenantName(seed, 'acme');
    api = testApi({
      db: db.current,
      seed,
      auth: { apiToken: TEST_TOKEN, apiTokenScopes: ['read'], jwtSecret: JWT_SECRET },
    });
  });

  afterAll(async () => {
    await api?.pool.end();
  });

  const call = async (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) => {
    const res = await api.app.request(path, {
      method,
      headers: body === undefined ? headers : { 'Content-Type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return {
      status: res.status,
      headers: res.headers,
      body: (await res.json().catch(() => null)) as Record<string, string>,
    };
  };

  it('probes stay open: /health and /metrics answer without a token', async () => {
    expect((await call('GET', '/health')).status).toBe(200);
    expect((await api.app.request('/metrics')).status).toBe(200);
  });

  it('reads and changes need a token: 401 with a Bearer challenge, even for a malformed body', async () => {
    const read = await call('GET', '/api/v1/sync/jobs');
    expect(read.status).toBe(401);
    expect(read.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(read.body.message).toMatch(/bearer token/);
    const trigger = await call('POST', '/api/v1/sync/trigger', {}, '{not json');
    expect(trigger.status).toBe(401);
    expect((await call('PUT', '/api/v1/state/my-key', {}, { value: 1 })).status).toBe(401);
    expect((await call('POST', '/api/v1/conflicts/1/resolve', {}, { keep: 'source' })).status).toBe(401);
  });

  it('refuses wrong, expired, forged and malformed tokens with 401', async () => {
    expect((await call('GET', '/api/v1/sync/jobs', bearer('not-the-token-at-all'))).status).toBe(401);
    expect((await call('GET', '/api/v1/sync/jobs', bearer(await jwtFor('read', { exp: now() - 10 })))).status).toBe(
      401,
    );
    const forged = await jwtFor('read', {}, 'another-secret-of-sufficient-length-123456');
    expect((await call('GET', '/api/v1/sync/jobs', bearer(forged))).status).toBe(401);
    expect((await call('GET', '/api/v1/sync/jobs', { Authorization: 'Basic dXNlcjpwYXNz' })).status).toBe(401);
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ scope: '*', exp: now() + 60 })).toString('base64url');
    expect((await call('GET', '/api/v1/sync/jobs', bearer(`${none}.${payload}.`))).status).toBe(401);
  });

  it('a JWT acts within its scopes: read-only gets 403 on changes, sync:trigger may trigger', async () => {
    const reader = bearer(await jwtFor('read'));
    expect((await call('GET', '/api/v1/sync/jobs', reader)).status).toBe(200);
    const denied = await call('POST', '/api/v1/sync/trigger', reader, { client_name: acme });
    expect(denied.status).toBe(403);
    expect(denied.body.message).toMatch(/scope "sync:trigger"/);
    expect((await call('PUT', '/api/v1/state/my-key', reader, { value: 1 })).status).toBe(403);

    const operator = bearer(await jwtFor('read sync:trigger state:write'));
    // No queue in this app: passing authorisation shows as the tenant check and then 503 for the missing queue.
    expect((await call('POST', '/api/v1/sync/trigger', operator, { client_name: 'nobody' })).status).toBe(404);
    expect((await call('POST', '/api/v1/sync/trigger', operator, { client_name: acme })).status).toBe(503);
    const put = await call('PUT', '/api/v1/state/ops-note', operator, { value: 'hello' });
    expect(put.status).toBe(200);
    const row = await adminQuery(
      db.current.adminUrl,
      "SELECT updated_by FROM sync_api.state_entries WHERE key = 'ops-note'",
    );
    expect(row.rows).toEqual([{ updated_by: 'api:ops@example.com' }]);
    expect((await call('POST', '/api/v1/conflicts/1/resolve', operator, { keep: 'source' })).status).toBe(403);
    const arrayScopes = bearer(await sign({ scopes: ['conflicts:resolve'], exp: now() + 60 }, JWT_SECRET, 'HS256'));
    expect((await call('POST', '/api/v1/conflicts/999999/resolve', arrayScopes, { keep: 'source' })).status).toBe(404);
  });

  it('the static token grants API_TOKEN_SCOPES only', async () => {
    expect((await call('GET', '/api/v1/cluster/status', bearer())).status).toBe(200);
    expect((await call('PUT', '/api/v1/state/my-key', jsonHeaders(), { value: 1 })).status).toBe(403);
  });

  it('public reads and closed probes are configurable', async () => {
    const open = testApi({ db: db.current, seed, pool: api.pool, auth: { apiToken: TEST_TOKEN, publicReads: true } });
    expect((await open.app.request('/api/v1/sync/jobs')).status).toBe(200);
    expect((await open.app.request('/api/v1/sync/trigger', { method: 'POST' })).status).toBe(401);
    const closed = testApi({
      db: db.current,
      seed,
      pool: api.pool,
      auth: { apiToken: TEST_TOKEN, publicHealth: false, publicMetrics: false },
    });
    expect((await closed.app.request('/health')).status).toBe(401);
    expect((await closed.app.request('/metrics')).status).toBe(401);
    expect((await closed.app.request('/health', { headers: bearer() })).status).toBe(200);
  });

  it('without configured credentials only callers on this machine may act (the seeds’ curl examples)', async () => {
    const base = testApi({ db: db.current, seed, pool: api.pool, auth: {} }).deps;
    const server = await startApiServer({ ...base, config: { ...base.config, port: 0, host: '127.0.0.1' } });
    try {
      const url = `http://127.0.0.1:${server.port}`;
      const res = await fetch(`${url}/api/v1/sync/trigger`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ client_name: 'chat-test', full_sync: false }),
      });
      expect(res.status).toBe(404); // authorised; the tenant simply does not exist here
      expect((await fetch(`${url}/api/v1/cluster/status`)).status).toBe(200);
      const proxied = await fetch(`${url}/api/v1/cluster/status`, { headers: { 'X-Forwarded-For': '203.0.113.9' } });
      expect(proxied.status).toBe(401);
    } finally {
      await server.close();
    }
    const secured = testApi({ db: db.current, seed, pool: api.pool, auth: { apiToken: TEST_TOKEN } }).deps;
    const server2 = await startApiServer({ ...secured, config: { ...secured.config, port: 0, host: '127.0.0.1' } });
    try {
      expect((await fetch(`http://127.0.0.1:${server2.port}/api/v1/cluster/status`)).status).toBe(401);
    } finally {
      await server2.close();
    }
  });

  it('configuration problems are all listed at once', () => {
    let error: unknown;
    try {
      loadApiConfig({ env: { JWT_SECRET: 'short', API_TOKEN_SCOPES: 'read,root', API_PUBLIC_READS: 'maybe' } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = (error as ConfigError).problems.join('\n');
    expect(text).toMatch(/JWT_SECRET/);
    expect(text).toMatch(/API_TOKEN_SCOPES.*root/);
    expect(text).toMatch(/API_PUBLIC_READS/);
    const ok = loadApiConfig({
      env: {
        DATABASE_URL: 'postgresql://sync_service@127.0.0.1:5432/none',
        API_TOKEN: TEST_TOKEN,
        API_TOKEN_SCOPES: 'read sync:trigger',
        API_PORT: '9444',
      },
    });
    expect(ok.port).toBe(9444);
    expect(ok.auth?.apiTokenScopes).toEqual(['read', 'sync:trigger']);
  });
});
