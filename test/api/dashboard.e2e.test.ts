import { mkdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer } from '@owui-sync/api';
import { createBoss } from '@owui-sync/engine/cluster';
import { SYNC_QUEUE } from '@owui-sync/schema';
import { provisionTenant } from '@owui-sync/engine/sync';
import { useTestDatabase, withConnection } from '../support/db.ts';
import { makeMiniOpenWebUI, scratchDir } from '../engine/helpers.ts';
import { freePort, killAllProcesses, startApp } from '../support/processes.ts';
import { TEST_TOKEN, seedCluster, tenantName, testApi, type SeededCluster, type TestApi } from './support.ts';

/**
 * The dashboard in headless Chromium against a real API server, database and queue: it asks for the token, then
 * shows the nodes and seeded tenants; "sync now" queues a real job that appears in the queue table; "keep target"
 * resolves a conflict. A screenshot is left in artifacts/ (not in git).
 */

const ARTIFACTS = path.resolve(import.meta.dirname, '../../artifacts');

describe('dashboard in a browser', () => {
  const db = useTestDatabase();
  let seed: SeededCluster;
  let boss: PgBoss;
  let api: TestApi;
  let server: { port: number; close(): Promise<void> };
  let browser: Browser;

  beforeAll(async () => {
    seed = await seedCluster(db.current, 'dash-c');
    boss = createBoss({ connectionString: db.current.serviceUrl, max: 2 });
    await boss.start();
    api = testApi({ db: db.current, seed, boss, auth: { apiToken: TEST_TOKEN } });
    server = await startApiServer({ ...api.deps, config: { ...api.deps.config, port: 0, host: '127.0.0.1' } });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });

  afterAll(async () => {
    await killAllProcesses();
    await browser?.close();
    await server?.close();
    await boss?.stop({ graceful: false });
    await api?.pool.end();
  });

  it('load, see the seeded tenants, trigger a sync, see the job appear, resolve a conflict', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // Restore drills: acme's last one passed 3 hours ago; globex's failed after one that passed two days ago.
    await withConnection(db.current.adminUrl, async (c) => {
      const drill = `INSERT INTO sync_state.restore_drills (drill_id, deployment_id, passed, failure, triggered_by,
                       started_at, finished_at, duration_seconds, checks)
                     SELECT gen_random_uuid(), deployment_id, $2, $3, 'scheduler', now() - $4::interval,
                            now() - $4::interval, 1.5, '{"restore":{"ok":true}}'
                       FROM sync_metadata.client_deployments WHERE client_name = $1`;
      await c.query(drill, [tenantName(seed, 'acme'), true, null, '3 hours']);
      await c.query(drill, [tenantName(seed, 'globex'), true, null, '2 days']);
      await c.query(drill, [tenantName(seed, 'globex'), false, 'chat: 1 row(s) changed since their sync', '1 hour']);
    });
    await page.goto(`http://127.0.0.1:${server.port}/`);

    // Without a token the API refuses, and the page says so.
    await page.locator('#msg', { hasText: 'bearer token' }).waitFor({ timeout: 10_000 });
    await page.fill('#token', TEST_TOKEN);
    await page.click('#save-token');

    const acme = tenantName(seed, 'acme');
    const rows = page.locator('#tenants tbody tr[data-client]');
    await rows.first().waitFor({ timeout: 10_000 });
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-client')))).toEqual([
      acme,
      tenantName(seed, 'globex'),
      tenantName(seed, 'paused'),
    ]);
    const acmeRow = page.locator(`#tenants tr[data-client="${acme}"]`);
    expect(await acmeRow.innerText()).toMatch(/active[\s\S]*5 min[\s\S]*success\s+passed 3 h ago/);
    const globexDrill = page.locator(`#tenants tr[data-client="${tenantName(seed, 'globex')}"] td.drill`);
    expect(await globexDrill.innerText()).toBe('failed 60 min ago (passed 2 d ago)');
    expect(await globexDrill.getAttribute('title')).toBe('chat: 1 row(s) changed since their sync');
    expect(await page.locator(`#tenants tr[data-client="${tenantName(seed, 'paused')}"] td.drill`).innerText()).toBe(
      'never',
    );
    await page.locator('#nodes tbody tr', { hasText: 'node-a' }).waitFor();
    expect(await page.locator('#nodes').innerText()).toMatch(/node-a[\s\S]*healthy[\s\S]*leader/);
    await page.locator('#leader', { hasText: 'node-a@api-host' }).waitFor();
    expect(await page.locator('#jobs tbody tr').count()).toBe(3);

    // Trigger: the real queue holds a job from the API, and the page shows it.
    await acmeRow.locator('button', { hasText: 'sync now' }).click();
    await page.locator('#msg', { hasText: `sync of ${acme} queued` }).waitFor({ timeout: 10_000 });
    const queued = page.locator('#queued tbody tr', { hasText: acme });
    await queued.waitFor({ timeout: 10_000 });
    expect(await queued.innerText()).toMatch(/created[\s\S]*incremental[\s\S]*api/);
    const jobs = await boss.findJobs(SYNC_QUEUE, { key: acme, queued: true });
    expect(jobs).toHaveLength(1);
    await page.locator('#queue tbody tr', { hasText: SYNC_QUEUE }).first().waitFor();
    expect(await page.locator('#queue tbody tr').first().innerText()).toMatch(new RegExp(`^${SYNC_QUEUE}\\s+1\\s`));

    // Paused tenant: the refusal and the command to resume it are shown.
    const paused = tenantName(seed, 'paused');
    await page.locator(`#tenants tr[data-client="${paused}"] button`, { hasText: 'sync now' }).click();
    await page.locator('#msg', { hasText: `syncctl client start ${paused}` }).waitFor({ timeout: 10_000 });

    // Resolve the seeded conflict from the page.
    const conflict = page.locator('#conflicts tbody tr', { hasText: 'chat' });
    await conflict.waitFor();
    await conflict.locator('button', { hasText: 'keep target' }).click();
    await page.locator('#msg', { hasText: `conflict ${seed.conflictId} resolved: kept target` }).waitFor();
    await page.locator('#conflicts tbody', { hasText: 'no unresolved conflicts' }).waitFor({ timeout: 10_000 });

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });

    // The docs page renders the OpenAPI document.
    await page.click('a[href="/docs"]');
    await page.locator('#ops tbody tr', { hasText: '/api/v1/sync/trigger' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#ops tbody tr', { hasText: '/api/v1/sync/trigger' }).innerText()).toMatch(
      /post[\s\S]*client_name/i,
    );
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a sync triggered on the page runs on a real node and shows up as a successful api job', async () => {
    // A real tenant: an Open WebUI SQLite file, its schema provisioned, registered and enabled.
    const scratch = scratchDir('owui-dash-');
    const sqlite = scratch.file('webui.db');
    makeMiniOpenWebUI(sqlite, { chats: 5 });
    const adminPool = new pg.Pool({ connectionString: db.current.adminUrl, max: 2 });
    try {
      await provisionTenant({
        adminPool,
        clientName: 'chat-test',
        sqlitePath: sqlite,
        serviceRole: db.current.serviceRole,
      });
    } finally {
      await adminPool.end();
    }
    await withConnection(db.current.adminUrl, async (c) => {
      const host = await c.query<{ host_id: string }>(
        `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name, role)
         VALUES (sync_metadata.host_identity('dash-live', 'dash-host', 'registrar'), 'dash-host', 'dash-live',
                 'registrar', 'admin') RETURNING host_id`,
      );
      // A long interval: the only sync of this test is the one triggered from the page.
      await c.query(
        `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sqlite_path, sync_enabled,
                                                        status, sync_interval, last_sync_at)
         VALUES ('chat-test', $1, 'client_chat_test', $2, true, 'active', 86400, now())`,
        [host.rows[0]?.host_id, sqlite],
      );
    });
    const port = await freePort();
    const node = startApp('node-a', 'node', {
      DATABASE_URL: db.current.serviceUrl,
      DATABASE_POOLER: 'none',
      CLUSTER_NAME: 'dash-live',
      ROLE: 'node-a',
      HOST_NAME: 'dash-host',
      LEASE_DURATION: '3',
      HEARTBEAT_INTERVAL: '1',
      WORKER_CONCURRENCY: '1',
      API_PORT: String(port),
      API_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    });
    try {
      await node.waitForLog(/API listening/, 30_000);
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.goto(`http://127.0.0.1:${port}/`);
      const row = page.locator('#tenants tr[data-client="chat-test"]');
      await row.waitFor({ timeout: 10_000 });
      await page.locator('#leader', { hasText: 'node-a' }).waitFor({ timeout: 10_000 });
      await row.locator('button', { hasText: 'full' }).click();
      await page.locator('#msg', { hasText: 'sync of chat-test queued' }).waitFor({ timeout: 10_000 });
      const job = page.locator('#jobs tbody tr', { hasText: 'chat-test' });
      await job.filter({ hasText: 'success' }).waitFor({ timeout: 30_000 });
      expect(await job.first().innerText()).toMatch(/success\s+full\s+api\s+[1-9]\d*/);
      const synced = await withConnection(db.current.adminUrl, (c) =>
        c.query<{ n: number }>('SELECT count(*)::int AS n FROM client_chat_test.chat'),
      );
      expect(synced.rows[0]?.n).toBe(5);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-live.png'), fullPage: true });
      await page.close();
    } finally {
      node.signal('SIGTERM');
      await node.exited;
      scratch.cleanup();
    }
  });
});
