import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.ts';
import { jsonHeaders, seedCluster, tenantName, testApi, type SeededCluster, type TestApi } from './support.ts';

/**
 * Random malformed bodies, queries and paths: the API answers 4xx with a JSON message, never a 500, and a bad
 * request changes nothing. Seeded, so a failure replays.
 */

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('API fuzzing', () => {
  const db = useTestDatabase();
  let seed: SeededCluster;
  let api: TestApi;
  const rand = prng(Number(process.env.FUZZ_SEED ?? 20261123));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const int = (n: number) => Math.floor(rand() * n);

  const STRINGS = [
    '',
    ' ',
    'acme',
    'ACME',
    "x'; DROP TABLE sync_metadata.hosts; --",
    '../../etc/passwd',
    '\u0000',
    'a\u0000b',
    '😀',
    '\ud800',
    'x'.repeat(300),
    '%00',
    '${jndi:ldap://x}',
    '<script>alert(1)</script>',
    'deployment.',
    'deployment.ACME',
    'deployment.acme corp',
    '1e309',
    'null',
    'true',
  ];

  function value(depth = 0): unknown {
    switch (int(depth > 2 ? 6 : 9)) {
      case 0:
        return null;
      case 1:
        return rand() < 0.5;
      case 2:
        return pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, 31_536_001]);
      case 3:
      case 4:
        return pick(STRINGS);
      case 5:
        return int(10) - 5;
      case 6:
        return Array.from({ length: int(4) }, () => value(depth + 1));
      default: {
        const keys = [
          'client_name',
          'full_sync',
          'key',
          'value',
          'keep',
          'data',
          'status',
          'sync_interval',
          '__proto__',
        ];
        const o: Record<string, unknown> = {};
        for (let i = int(5); i > 0; i -= 1) o[pick(keys)] = value(depth + 1);
        return o;
      }
    }
  }

  function body(): string {
    switch (int(6)) {
      case 0:
        return pick(['{', '}', '[', '{"client_name":', 'null', '""', '\u0000', '{"a":1}{"b":2}', 'NaN', "{'a':1}"]);
      case 1:
        return Buffer.from(Array.from({ length: int(64) }, () => int(256))).toString('latin1');
      case 2:
        return JSON.stringify(value()).slice(0, int(40) + 1);
      default:
        return JSON.stringify(value());
    }
  }

  // A lone surrogate cannot be URI-encoded: send an invalid UTF-8 escape instead (the server must cope with both).
  const enc = (s: string) => {
    try {
      return encodeURIComponent(s);
    } catch {
      return '%ED%A0%80';
    }
  };

  function path(): { method: string; url: string } {
    const q = () =>
      pick(['limit', 'status', 'client_name', 'resolved', 'key', 'table', 'x']) +
      '=' +
      enc(pick([...STRINGS, '0', '-1', '1001', 'abc', '1.5', '50', 'all', 'failed']));
    const query = Array.from({ length: int(4) }, q).join('&');
    const id = pick(['0', '-1', 'abc', '1e3', '99999999999999999999', '1', '00', '%2e%2e', '']);
    const key =
      rand() < 0.5
        ? pick(['my-key', `deployment.${tenantName(seed, 'acme')}`, 'deployment.nobody'])
        : enc(pick(STRINGS)) || 'k';
    return pick([
      { method: 'POST', url: '/api/v1/sync/trigger' },
      { method: 'GET', url: `/api/v1/sync/jobs?${query}` },
      { method: 'GET', url: `/api/v1/conflicts?${query}` },
      { method: 'POST', url: `/api/v1/conflicts/${id}/resolve` },
      { method: 'GET', url: `/api/v1/state/${key}` },
      { method: 'GET', url: `/api/v1/state?${query}` },
      { method: 'PUT', url: `/api/v1/state/${key}` },
      { method: 'PUT', url: '/api/v1/state' },
      { method: pick(['DELETE', 'PATCH', 'OPTIONS']), url: '/api/v1/sync/trigger' },
    ]);
  }

  beforeAll(async () => {
    seed = await seedCluster(db.current, 'fuzz-c');
    api = testApi({ db: db.current, seed });
  });

  afterAll(async () => {
    await api?.pool.end();
  });

  it('600 random requests: never a 500, always a JSON error message for a 4xx', async () => {
    const statuses = new Map<number, number>();
    for (let i = 0; i < 600; i += 1) {
      const { method, url } = path();
      const headers: Record<string, string> = jsonHeaders();
      if (rand() < 0.15) headers['Content-Type'] = pick(['text/plain', 'application/x-www-form-urlencoded', '']);
      const res = await api.app.request(url, {
        method,
        headers,
        ...(method === 'GET' || method === 'OPTIONS' ? {} : { body: body() }),
      });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const text = await res.text();
      expect(res.status, `${method} ${url} → ${res.status} ${text.slice(0, 300)}`).toBeLessThan(500);
      if (res.status >= 400) {
        const parsed = JSON.parse(text) as { error?: string; message?: string };
        expect(typeof parsed.message, `${method} ${url}: ${text.slice(0, 200)}`).toBe('string');
      }
    }
    // The run exercised both rejections and accepted requests.
    expect(statuses.get(400) ?? 0).toBeGreaterThan(50);
    expect([...statuses.keys()].some((s) => s < 300)).toBe(true);
  });

  it('oversized bodies get 413, deep nesting and long keys 4xx, and bad input changes nothing', async () => {
    const acme = tenantName(seed, 'acme');
    const big = await api.app.request('/api/v1/state/big', {
      method: 'PUT',
      headers: jsonHeaders(),
      body: JSON.stringify({ value: 'x'.repeat(2 * 1024 * 1024) }),
    });
    expect(big.status).toBe(413);
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    const res = await api.app.request(`/api/v1/state/deployment.${acme}`, {
      method: 'PUT',
      headers: jsonHeaders(),
      body: `{"value": ${deep}}`,
    });
    expect(res.status).toBe(422);
    // Values PostgreSQL's jsonb cannot hold are refused up front with the reason.
    for (const raw of ['{"value":"a\\u0000b"}', '{"value":{"k\\u0000":1}}', '{"value":1e999}', '{"value":"\\ud800"}']) {
      const r = await api.app.request('/api/v1/state/fuzz-key', { method: 'PUT', headers: jsonHeaders(), body: raw });
      expect(r.status, raw).toBe(422);
      expect(((await r.json()) as { message: string }).message).toMatch(/cannot be stored/);
    }
    const nulName = await api.app.request(`/api/v1/state/deployment.${acme}`, {
      method: 'PUT',
      headers: jsonHeaders(),
      body: '{"value":{"container_name":"a\\u0000b"}}',
    });
    expect(nulName.status).toBe(422);
    const longKey = await api.app.request(`/api/v1/state/${'k'.repeat(300)}`);
    expect(longKey.status).toBe(400);
    const state = await api.app.request(`/api/v1/state/deployment.${acme}`, { headers: jsonHeaders() });
    expect(((await state.json()) as { value: { sync_interval: number; status: string } }).value).toMatchObject({
      sync_interval: 300,
      status: 'active',
    });
  });
});
