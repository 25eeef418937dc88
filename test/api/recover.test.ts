import Database from 'better-sqlite3';
import { sign } from 'hono/jwt';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '@owui-sync/engine';
import { useTestDatabase } from '../support/db.ts';
import { backUp, makeMiniOpenWebUI, scratchDir, sync } from '../restore/helpers.ts';
import { importAsOpenWebUI } from '../restore/openwebui-import.ts';
import { JWT_SECRET, TEST_TOKEN, bearer, jsonHeaders, testApi, type SeededCluster, type TestApi } from './support.ts';

/**
 * The recovery endpoints against a real backup: listing deleted chats needs `read`, the export needs the `recover`
 * scope; the export is Open WebUI's import format; bad bodies and parameters are 4xx with a JSON error.
 */
describe('API: deleted rows and chat recovery', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-api-recover-');
  let admin: pg.Pool;
  let service: pg.Pool;
  let api: TestApi;
  const now = () => Math.floor(Date.now() / 1000);
  const jwtFor = (scope: string) => sign({ sub: 'ops@example.com', scope, exp: now() + 600 }, JWT_SECRET, 'HS256');

  beforeAll(async () => {
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 4 });
    const file = scratch.file('acme.db');
    makeMiniOpenWebUI(file, { chats: 6 }); // even chats Ada's (u1), odd Bob's (u2)
    const pools = { admin, service, serviceRole: db.current.serviceRole, adminUrl: db.current.adminUrl };
    const { hostId } = await backUp(pools, 'acme', file);
    const d = new Database(file);
    d.exec("DELETE FROM chat WHERE id IN ('chat-00000', 'chat-00001')");
    d.close();
    await sync(service, 'acme', hostId);
    // registerTenant puts the tenant on host-1 of cluster "test": the API serves that cluster.
    const seed = { cluster: 'test', hostA: hostId, hostB: hostId } as SeededCluster;
    api = testApi({
      db: db.current,
      seed,
      pool: service,
      auth: { apiToken: TEST_TOKEN, publicReads: true, jwtSecret: JWT_SECRET, trustLoopback: false },
    });
  });
  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  const call = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
    api.app.request(path, {
      method,
      headers,
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });

  it('GET deleted: needs a token even with public reads; lists the deleted chats, per user', async () => {
    expect((await call('GET', '/api/v1/tenants/acme/deleted')).status).toBe(401);
    const res = await call('GET', '/api/v1/tenants/acme/deleted', bearer(await jwtFor('read')));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { rows: { key: string; email: string; title: string }[]; counts: unknown[] };
    expect(body.rows.map((r) => r.key).sort()).toEqual(['chat-00000', 'chat-00001']);
    expect(body.counts).toEqual(expect.arrayContaining([{ table: 'chat', deleted: 2 }]));
    const bob = await call('GET', '/api/v1/tenants/acme/deleted?user=BOB%40example.com', bearer());
    expect(await bob.json()).toMatchObject({
      user: { id: 'u2', email: 'bob@example.com', deleted_at: null },
      rows: [{ key: 'chat-00001', title: 'Chat 1', email: 'bob@example.com', user_id: 'u2' }],
    });
  });

  it('POST recover: 403 without the recover scope; the export imports into Open WebUI', async () => {
    const body = { user: 'ada@example.com', deleted_only: true };
    expect(
      (await call('POST', '/api/v1/tenants/acme/recover', { 'Content-Type': 'application/json' }, body)).status,
    ).toBe(401);
    const denied = await call(
      'POST',
      '/api/v1/tenants/acme/recover',
      jsonHeaders(await jwtFor('read sync:trigger')),
      body,
    );
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({
      error: 'forbidden',
      message: expect.stringMatching(/scope "recover"/),
    });

    const res = await call('POST', '/api/v1/tenants/acme/recover', jsonHeaders(await jwtFor('recover')), body);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toMatch(
      /^attachment; filename="acme-ada@example\.com-chats-\d{8}T\d{6}Z\.json"$/,
    );
    expect(res.headers.get('x-recovered-chats')).toBe('1');
    expect(res.headers.get('x-openwebui-revision')).toBe('c440947495f3');
    const text = await res.text();
    expect(importAsOpenWebUI(text).map((c) => c.title)).toEqual(['Chat 0']);
    expect(text).not.toMatch(/u2|bob/i);

    const chosen = await call('POST', '/api/v1/tenants/acme/recover', jsonHeaders(), {
      user: 'u1',
      chat_ids: ['chat-00002', 'chat-00004'],
    });
    expect(chosen.status).toBe(200);
    expect(importAsOpenWebUI(await chosen.text()).map((c) => c.title)).toEqual(['Chat 4', 'Chat 2']);
  });

  it('bad input is a 4xx with a JSON error, never a 500', async () => {
    const cases: [string, string, unknown, number, RegExp][] = [
      ['POST', '/api/v1/tenants/acme/recover', '{not json', 400, /./],
      ['POST', '/api/v1/tenants/acme/recover', {}, 400, /user/],
      ['POST', '/api/v1/tenants/acme/recover', { user: '' }, 400, /user/],
      ['POST', '/api/v1/tenants/acme/recover', { user: 'u1', extra: 1 }, 400, /extra|unrecognized/i],
      ['POST', '/api/v1/tenants/acme/recover', { user: 'u1', deleted_only: 'yes' }, 400, /deleted_only/],
      ['POST', '/api/v1/tenants/acme/recover', { user: 'u1', chat_ids: 'chat-00002' }, 400, /chat_ids/],
      ['POST', '/api/v1/tenants/acme/recover', { user: 'nobody@example.com' }, 404, /no user with id or e-mail/],
      [
        'POST',
        '/api/v1/tenants/acme/recover',
        { user: 'u1', chat_ids: ['chat-00001'] },
        404,
        /no chat "chat-00001" of user/,
      ],
      ['POST', '/api/v1/tenants/acme/recover', { user: 'u1', at: '-2h' }, 409, /oldest restorable time/],
      ['POST', '/api/v1/tenants/acme/recover', { user: 'u1', at: 'last tuesday' }, 422, /"last tuesday" is not a time/],
      ['POST', '/api/v1/tenants/ghost/recover', { user: 'u1' }, 404, /not registered/],
      ['POST', '/api/v1/tenants/Bad%20Name/recover', { user: 'u1' }, 400, /name/],
      ['POST', '/api/v1/tenants/acme/recover', { user: 'a\u0000b' }, 400, /user/],
      ['POST', '/api/v1/tenants/acme/recover', { user: 'u1', chat_ids: ['c\u0000'] }, 400, /chat_ids/],
      ['GET', '/api/v1/tenants/acme/deleted?user=a%00b', undefined, 400, /user/],
      ['GET', '/api/v1/tenants/acme/deleted?limit=0', undefined, 400, /limit/],
      ['GET', '/api/v1/tenants/acme/deleted?limit=abc', undefined, 400, /limit/],
      ['GET', '/api/v1/tenants/acme/deleted?table=x%3Bdrop', undefined, 400, /table/],
      ['GET', '/api/v1/tenants/acme/deleted?table=nope', undefined, 404, /has no table "nope"/],
      ['GET', '/api/v1/tenants/acme/deleted?user=nobody', undefined, 404, /no user/],
      ['GET', '/api/v1/tenants/acme/deleted?table=config&user=u1', undefined, 422, /no user_id column/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const res = await call(method, path, jsonHeaders(), body);
      const what = `${method} ${path} ${JSON.stringify(body)}`;
      expect(res.status, what).toBe(status);
      const err = (await res.json()) as { error: string; message: string };
      expect(err.message, what).toMatch(message);
    }
  });

  it('random malformed bodies and parameters: always 4xx with a JSON message, never a 500', async () => {
    let state = 20261202;
    const rand = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const weird = [
      '',
      ' ',
      'null',
      '\u0000',
      "u1' OR '1'='1",
      '"; DROP TABLE chat; --',
      'x'.repeat(400),
      '-2h',
      '-99999999d',
      '2026-99-99',
      'now',
      '%',
      '\\',
      'ада@пример.рф',
      '💥',
      'u1\u001fu2',
    ];
    const values: unknown[] = [...weird, 0, -1, 1e308, true, null, [], {}, ['u1'], [1, 2], { user: 'u1' }];
    for (let i = 0; i < 300; i += 1) {
      let res: Response;
      if (rand() < 0.5) {
        const body: Record<string, unknown> = {};
        for (const k of ['user', 'at', 'deleted_only', 'chat_ids', pick(['extra', 'user', 'at'])]) {
          if (rand() < 0.7) body[k] = pick(values);
        }
        res = await call('POST', '/api/v1/tenants/acme/recover', jsonHeaders(), rand() < 0.1 ? pick(weird) : body);
      } else {
        const q = ['user', 'table', 'limit']
          .filter(() => rand() < 0.7)
          .map((k) => `${k}=${encodeURIComponent(String(pick(values)))}`)
          .join('&');
        res = await call(
          'GET',
          `/api/v1/tenants/${encodeURIComponent(pick(['acme', ...weird]))}/deleted?${q}`,
          jsonHeaders(),
        );
      }
      const text = await res.text();
      if (res.status === 200) continue;
      expect(res.status, text).toBeGreaterThanOrEqual(400);
      expect(res.status, text).toBeLessThan(500);
      expect((JSON.parse(text) as { message: string }).message, text).toBeTruthy();
    }
  });

  it('the OpenAPI document describes both routes and the recover scope', async () => {
    const doc = (await (await call('GET', '/openapi.json')).json()) as {
      paths: Record<string, unknown>;
      components: { securitySchemes: { bearer: { description: string } } };
    };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/api/v1/tenants/{name}/deleted', '/api/v1/tenants/{name}/recover']),
    );
    expect(doc.components.securitySchemes.bearer.description).toMatch(/recover/);
  });
});
