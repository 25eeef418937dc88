import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { sign } from 'hono/jwt';
import type pg from 'pg';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer } from '@owui-sync/api';
import { createPool } from '@owui-sync/engine';
import { useTestDatabase } from '../support/db.ts';
import { backUp, makeMiniOpenWebUI, scratchDir, sync } from '../restore/helpers.ts';
import { importAsOpenWebUI } from '../restore/openwebui-import.ts';
import { JWT_SECRET, TEST_TOKEN, testApi, type SeededCluster } from './support.ts';

/**
 * The dashboard's "Deleted chats" view in headless Chromium against a real API server and backup: it lists the
 * deleted chats of a tenant grouped by user, and "download export" saves a file Open WebUI imports; a token without
 * the recover scope is told so. A screenshot is left in artifacts/ (not in git).
 */

const ARTIFACTS = path.resolve(import.meta.dirname, '../../artifacts');

describe('dashboard: deleted chats and their export, in a browser', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-dash-recover-');
  let admin: pg.Pool;
  let service: pg.Pool;
  let server: { port: number; close(): Promise<void> };
  let browser: Browser;

  beforeAll(async () => {
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 4 });
    const file = scratch.file('webui.db');
    makeMiniOpenWebUI(file, { chats: 6 }); // even chats Ada's (u1), odd Bob's (u2)
    const pools = { admin, service, serviceRole: db.current.serviceRole, adminUrl: db.current.adminUrl };
    const { hostId } = await backUp(pools, 'acme', file);
    const d = new Database(file);
    d.exec("DELETE FROM chat WHERE id IN ('chat-00000', 'chat-00002', 'chat-00003')");
    d.close();
    await sync(service, 'acme', hostId);
    const seed = { cluster: 'test', hostA: hostId, hostB: hostId } as SeededCluster;
    const api = testApi({
      db: db.current,
      seed,
      pool: service,
      auth: { apiToken: TEST_TOKEN, jwtSecret: JWT_SECRET, trustLoopback: false },
    });
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
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  it('lists deleted chats per user; download export gives an importable file; recover scope enforced', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1200 }, acceptDownloads: true });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${server.port}/`);
    await page.fill('#token', TEST_TOKEN);
    await page.click('#save-token');
    await page.locator('#deleted-tenant option', { hasText: 'acme' }).waitFor({ state: 'attached', timeout: 10_000 });
    await page.selectOption('#deleted-tenant', 'acme');
    await page.click('#deleted-show');

    const ada = page.locator('#deleted tr.deleted-user', { hasText: 'ada@example.com' });
    await ada.waitFor({ timeout: 10_000 });
    expect(await ada.innerText()).toMatch(/ada@example\.com · 2 deleted chats/);
    expect(await page.locator('#deleted tr.deleted-user', { hasText: 'bob@example.com' }).innerText()).toMatch(
      /1 deleted chat\b/,
    );
    // Cell texts joined with " | " (innerText's tabs between cells are not guaranteed before layout).
    const cells = await page
      .locator('#deleted tr.deleted-chat')
      .evaluateAll((trs) =>
        trs.map((tr) =>
          Array.from(tr.children as ArrayLike<{ textContent: string | null }>, (td) =>
            (td.textContent ?? '').trim(),
          ).join(' | '),
        ),
      );
    expect(cells).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/chat-00000 \| Chat 0 \| \d+ s ago/),
        expect.stringMatching(/chat-00002 \| Chat 2 \|/),
        expect.stringMatching(/chat-00003 \| Chat 3 \|/),
      ]),
    );

    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 10_000 }),
      ada.locator('button', { hasText: 'download export' }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/^acme-ada@example\.com-chats-\d{8}T\d{6}Z\.json$/);
    const saved = await download.path();
    const text = fs.readFileSync(saved, 'utf8');
    expect(
      importAsOpenWebUI(text)
        .map((c) => c.title)
        .sort(),
    ).toEqual(['Chat 0', 'Chat 2']);
    expect(text).not.toMatch(/bob|u2/i);
    await page
      .locator('#msg', { hasText: 'downloaded 2 deleted chats of ada@example.com' })
      .waitFor({ timeout: 10_000 });

    // Filter by user.
    await page.fill('#deleted-user', 'BOB@example.com');
    await page.click('#deleted-show');
    await page.locator('#deleted tr.deleted-user', { hasText: 'bob@example.com' }).waitFor();
    await expect.poll(() => page.locator('#deleted tr.deleted-user').count()).toBe(1);

    mkdirArtifacts();
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-deleted-chats.png'), fullPage: true });

    // A token that may read but not recover: the listing works, the download is refused with the reason.
    const readOnly = await sign({ sub: 'viewer', scope: 'read', exp: Math.floor(Date.now() / 1000) + 600 }, JWT_SECRET);
    await page.fill('#token', readOnly);
    await page.click('#save-token');
    await page.click('#deleted-show');
    const bob = page.locator('#deleted tr.deleted-user', { hasText: 'bob@example.com' });
    await bob.locator('button', { hasText: 'download export' }).click();
    await page
      .locator('#msg', { hasText: 'export failed: the token lacks scope "recover"' })
      .waitFor({ timeout: 10_000 });
    expect(errors).toEqual([]);
    await page.close();
  });
});

function mkdirArtifacts(): void {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
}
