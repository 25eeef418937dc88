import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { PgBoss } from 'pg-boss';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer } from '../../apps/api/src/server.ts';
import { createBoss } from '../../packages/engine/src/cluster/queue.ts';
import { SYNC_QUEUE } from '../../packages/schema/src/queues.ts';
import { useTestDatabase } from '../support/db.ts';
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
    await browser?.close();
    await server?.close();
    await boss?.stop({ graceful: false });
    await api?.pool.end();
  });

  it('load, see the seeded tenants, trigger a sync, see the job appear, resolve a conflict', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
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
    expect(await acmeRow.innerText()).toMatch(/active[\s\S]*5 min[\s\S]*success/);
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
    expect(errors).toEqual([]);
    await page.close();
  });
});
