import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { sign } from 'hono/jwt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadApiConfig, firstUnsafeInteger, startApiServer } from '@owui-sync/api';
import { nodeConfigSchema } from '@owui-sync/node';
import { loadConfig, ConfigError, resolveFileSecrets } from '@owui-sync/engine';
import { adminQuery, useTestDatabase } from '../support/db.ts';
import { syncctl } from '../cli/support.ts';
import { JWT_SECRET, bearer, jsonHeaders, seedCluster, tenantName, testApi, type SeededCluster } from './support.ts';

/** The API-only process's configuration needs a service URL (nothing connects to it here). */
const SERVICE_URL = 'postgresql://sync_service@127.0.0.1:5432/none';

/** A raw HTTP request, so the Host header can be anything a browser could send. */
function rawGet(port: number, urlPath: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, headers: { Host: host } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function configProblems(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.join('\n');
  }
  throw new Error('expected a configuration error');
}

describe('API edges: empty secrets, open loopback, JWT lifetimes, bad merges, large integers', () => {
  const db = useTestDatabase();
  let seed: SeededCluster;
  let acme: string;
  const scratch = mkdtempSync(path.join(tmpdir(), 'owui-api-edges-'));
  const now = () => Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    seed = await seedCluster(db.current, 'edges-c');
    acme = tenantName(seed, 'acme');
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('an empty or whitespace API_TOKEN / API_TOKEN_FILE refuses to start instead of meaning “no token”', async () => {
    for (const value of ['', '   ', '\t\n']) {
      expect(configProblems(() => loadApiConfig({ env: { DATABASE_URL: SERVICE_URL, API_TOKEN: value } }))).toMatch(
        /API_TOKEN: is set but empty \(or only whitespace\)/,
      );
      expect(configProblems(() => loadApiConfig({ env: { DATABASE_URL: SERVICE_URL, JWT_SECRET: value } }))).toMatch(
        /JWT_SECRET: is set but empty/,
      );
      expect(
        configProblems(() =>
          loadConfig(nodeConfigSchema, { env: { DATABASE_URL: db.current.serviceUrl, API_TOKEN: value } }),
        ),
      ).toMatch(/API_TOKEN: is set but empty/);
    }
    expect(configProblems(() => loadApiConfig({ env: { DATABASE_URL: SERVICE_URL, API_TOKEN: '  short  ' } }))).toMatch(
      /API_TOKEN: must be at least 16 characters/,
    );
    const spaced = loadApiConfig({ env: { DATABASE_URL: SERVICE_URL, API_TOKEN: '  a-token-of-enough-length  ' } });
    expect(spaced.auth?.apiToken).toBe('a-token-of-enough-length');

    const empty = path.join(scratch, 'api_token');
    writeFileSync(empty, '  \n');
    expect(configProblems(() => resolveFileSecrets({ API_TOKEN_FILE: empty }))).toMatch(
      /API_TOKEN_FILE .*api_token is empty \(or only whitespace\)/,
    );
    expect(configProblems(() => resolveFileSecrets({ API_TOKEN_FILE: ' ' }))).toMatch(
      /API_TOKEN_FILE is set but empty/,
    );
    expect(configProblems(() => resolveFileSecrets({ JWT_SECRET_FILE: empty }))).toMatch(/JWT_SECRET_FILE/);

    // The node itself refuses to start (it never reaches the database).
    const node = await syncctl(['node'], {
      env: { DATABASE_URL: db.current.serviceUrl, ROLE: 'node-a', API_TOKEN_FILE: empty, API_PORT: '0' },
    });
    expect(node.code).not.toBe(0);
    expect(node.stderr).toMatch(/API_TOKEN_FILE .*is empty/);
    const blankEnv = await syncctl(['node'], {
      env: { DATABASE_URL: db.current.serviceUrl, ROLE: 'node-a', API_TOKEN: '', API_PORT: '0' },
    });
    expect(blankEnv.code).not.toBe(0);
    expect(blankEnv.stderr).toMatch(/API_TOKEN: is set but empty/);
  });

  it('an open API warns at start-up and in /health, and trusts only loopback Host names', async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    const open = testApi({ db: db.current, seed, auth: {} });
    const server = await startApiServer({
      ...open.deps,
      logger,
      config: { ...open.deps.config, port: 0, host: '127.0.0.1' },
    });
    try {
      expect(lines.join('')).toMatch(/SECURITY WARNING: no API_TOKEN or JWT_SECRET is configured/);
      const health = await rawGet(server.port, '/health', `localhost:${server.port}`);
      expect(health.status).toBe(200);
      expect(JSON.parse(health.body).warning).toMatch(/no API_TOKEN or JWT_SECRET is configured/);
      for (const host of [`localhost:${server.port}`, `127.0.0.1:${server.port}`, '127.1.2.3', 'api.localhost:1']) {
        expect((await rawGet(server.port, '/api/v1/cluster/status', host)).status, host).toBe(200);
      }
      // A web page that rebinds its own domain (or 0.0.0.0) to this machine sends that name as Host.
      for (const host of [`evil.example:${server.port}`, '0.0.0.0', 'localhost.evil.example', '127.0.0.1.nip.io']) {
        const res = await rawGet(server.port, '/api/v1/cluster/status', host);
        expect(res.status, host).toBe(401);
        expect(JSON.parse(res.body).message, host).toMatch(/trusted only when they address this machine as localhost/);
      }
    } finally {
      await server.close();
      await open.pool.end();
    }

    const secured = testApi({ db: db.current, seed, auth: { apiToken: 'a-token-of-enough-length' } });
    try {
      const res = await secured.app.request('/health');
      expect(await res.json()).not.toHaveProperty('warning');
    } finally {
      await secured.pool.end();
    }
  });

  it('JWTs without exp are refused unless allowed; JWT_MAX_LIFETIME caps how long one may live', async () => {
    const jwt = (claims: Record<string, unknown>) =>
      sign({ sub: 'ops', scope: 'read', ...claims }, JWT_SECRET, 'HS256');
    const strict = testApi({
      db: db.current,
      seed,
      auth: loadApiConfig({ env: { DATABASE_URL: SERVICE_URL, JWT_SECRET } }).auth ?? {},
    });
    const lax = testApi({
      db: db.current,
      seed,
      pool: strict.pool,
      auth: loadApiConfig({ env: { DATABASE_URL: SERVICE_URL, JWT_SECRET, JWT_REQUIRE_EXP: 'false' } }).auth ?? {},
    });
    const capped = testApi({
      db: db.current,
      seed,
      pool: strict.pool,
      auth: loadApiConfig({ env: { DATABASE_URL: SERVICE_URL, JWT_SECRET, JWT_MAX_LIFETIME: '3600' } }).auth ?? {},
    });
    const status = async (api: typeof strict, token: string) => {
      const res = await api.app.request('/api/v1/cluster/status', { headers: bearer(token) });
      return { status: res.status, message: ((await res.json()) as { message?: string }).message ?? '' };
    };
    try {
      const noExp = await jwt({});
      expect(await status(strict, noExp)).toEqual({
        status: 401,
        message: expect.stringMatching(/has no exp \(expiry\) claim.*JWT_REQUIRE_EXP=false/),
      });
      expect((await status(lax, noExp)).status).toBe(200);
      expect((await status(strict, await jwt({ exp: now() + 600 }))).status).toBe(200);
      expect((await status(strict, await jwt({ exp: now() - 10 }))).status).toBe(401);

      expect((await status(capped, await jwt({ iat: now(), exp: now() + 600 }))).status).toBe(200);
      expect(await status(capped, await jwt({ iat: now(), exp: now() + 30 * 86_400 }))).toEqual({
        status: 401,
        message: expect.stringMatching(/longer than JWT_MAX_LIFETIME \(3600 s\)/),
      });
      // Without iat the lifetime counts from now.
      expect((await status(capped, await jwt({ exp: now() + 7200 }))).status).toBe(401);
      expect((await status(capped, noExp)).status).toBe(401);
    } finally {
      await strict.pool.end();
    }
  });

  it('a merge naming a column the table does not have is 422; the conflict stays open and nothing is written', async () => {
    const api = testApi({ db: db.current, seed });
    const resolve = async (body: unknown) => {
      const res = await api.app.request(`/api/v1/conflicts/${seed.conflictId}/resolve`, {
        method: 'POST',
        headers: jsonHeaders(),
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const schema = `client_${acme.replaceAll('-', '_')}`;
    const row = async () =>
      (await adminQuery(db.current.adminUrl, `SELECT * FROM ${schema}.chat WHERE id = 'c1'`)).rows;
    const open = async () =>
      (
        await adminQuery(
          db.current.adminUrl,
          'SELECT resolved_at, resolution FROM sync_metadata.conflict_log WHERE log_id = $1',
          [seed.conflictId],
        )
      ).rows[0];
    try {
      const before = await row();
      const bad = await resolve({ data: { titel: 'Merged', colour: 'red' } });
      expect(bad.status).toBe(422);
      expect(bad.body.message).toMatch(/table chat has no column "titel", "colour"; conflict \d+ was left open/);
      expect(bad.body.message).toMatch(/columns: id, title, updated_at/);
      const mixed = await resolve({ data: { title: 'Merged', titel: 'typo' } });
      expect(mixed.status).toBe(422);
      const otherRow = await resolve({ data: { id: 'c2', title: 'Merged' } });
      expect(otherRow.status).toBe(422);
      expect(otherRow.body.message).toMatch(/names another row than conflict \d+ \(id "c2" instead of "c1"\)/);
      const keyOnly = await resolve({ data: { id: 'c1' } });
      expect(keyOnly.status).toBe(422);
      expect(keyOnly.body.message).toMatch(/sets no column besides the key/);
      const tooBig = await resolve('{"data": {"title": "Merged", "updated_at": 1732000000123456789}}');
      expect(tooBig.status).toBe(422);
      expect(tooBig.body.message).toMatch(/1732000000123456789 .* cannot be kept exactly; send it as a string/);
      expect(await row()).toEqual(before);
      expect(await open()).toMatchObject({ resolved_at: null, resolution: 'pending' });

      const good = await resolve({ data: { title: 'Merged', updated_at: '1732000000123456789' } });
      expect(good.status, JSON.stringify(good.body)).toBe(200);
      expect(good.body).toMatchObject({ resolution: 'merged' });
      expect(
        (
          await adminQuery(
            db.current.adminUrl,
            `SELECT title, updated_at::text AS u FROM ${schema}.chat WHERE id = 'c1'`,
          )
        ).rows,
      ).toEqual([{ title: 'Merged', u: '1732000000123456789' }]);
    } finally {
      await api.pool.end();
    }
  });

  it('state values keep large integers exactly or refuse them with 422', async () => {
    const api = testApi({ db: db.current, seed });
    const put = async (key: string, text: string) => {
      const res = await api.app.request(`/api/v1/state/${key}`, { method: 'PUT', headers: jsonHeaders(), body: text });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    try {
      const big = await put('custom.counter', '{"value": {"n": 9007199254740993, "ok": 1}}');
      expect(big.status).toBe(422);
      expect(big.body.message).toMatch(/9007199254740993 in the request body is larger than 9007199254740991/);
      expect((await api.app.request('/api/v1/state/custom.counter', { headers: bearer() })).status).toBe(404);
      const viaBody = await api.app.request('/api/v1/state', {
        method: 'PUT',
        headers: jsonHeaders(),
        body: '{"key": "custom.counter", "value": [-12345678901234567890]}',
      });
      expect(viaBody.status).toBe(422);

      // Within range, in strings, or as fractions: written as sent.
      const fine = await put(
        'custom.counter',
        '{"value": {"n": 9007199254740991, "s": "9007199254740993 \\" 12345678901234567890", "f": 1.5e300}}',
      );
      expect(fine.status, JSON.stringify(fine.body)).toBe(200);
      const back = await api.app.request('/api/v1/state/custom.counter', { headers: bearer() });
      expect(((await back.json()) as { value: unknown }).value).toEqual({
        n: 9007199254740991,
        s: '9007199254740993 " 12345678901234567890',
        f: 1.5e300,
      });
    } finally {
      await api.pool.end();
    }
  });

  it('finds unsafe integers only outside strings', () => {
    expect(firstUnsafeInteger('{"a": 1, "b": [2, -3.5e10]}')).toBeNull();
    expect(firstUnsafeInteger('{"a": "99999999999999999999", "b\\"": 1}')).toBeNull();
    expect(firstUnsafeInteger('[1, 99999999999999999999]')).toBe('99999999999999999999');
    expect(firstUnsafeInteger('{"x":-9007199254740992}')).toBe('-9007199254740992');
    expect(firstUnsafeInteger('[12345678901234567890.5, 1e400]')).toBeNull();
  });
});
