import { execFileSync, spawn } from 'node:child_process';
import { renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, SourceUnusableError } from '@owui-sync/engine';
import { verifyTenant } from '@owui-sync/engine/restore';
import { inspectSqliteSource, provisionTenant, runTenantSync, sourceFingerprint } from '@owui-sync/engine/sync';
import { useTestDatabase } from '../support/db.ts';
import { makeMiniOpenWebUI, registerTenant, scratchDir } from './helpers.ts';

/** Runs `fn` while measuring the longest stall of the event loop (a blocking open would stall it for good). */
async function withLoopWatch<T>(fn: () => Promise<T>): Promise<{ value: T; maxStallMs: number; ms: number }> {
  let last = performance.now();
  let maxStallMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxStallMs = Math.max(maxStallMs, now - last);
    last = now;
  }, 10);
  const t0 = performance.now();
  try {
    const value = await fn();
    return { value, maxStallMs, ms: performance.now() - t0 };
  } finally {
    clearInterval(timer);
  }
}

/**
 * A FIFO, plus a process that opens it for writing after 6 s: should a regression block a reader on it, the reader
 * is released and the test fails on its timing instead of hanging the test run.
 */
function mkfifo(p: string): () => void {
  execFileSync('mkfifo', [p]);
  const rescuer = spawn('timeout', ['10', 'sh', '-c', 'sleep 6; : > "$0"', p], { stdio: 'ignore' });
  return () => rescuer.kill();
}
/** A character device (the same as /dev/null). */
const mknod = (p: string): void => void execFileSync('mknod', [p, 'c', '1', '3']);

async function listenUnixSocket(p: string): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(p, resolve));
  return server;
}

describe('hostile files at a tenant path never hang a node and never mix tenants', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-hostile-');
  let admin: pg.Pool;
  let service: pg.Pool;
  let scope: { hostId: string };

  beforeAll(async () => {
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 4 });
  });

  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  async function tenant(name: string, file: string): Promise<void> {
    scope = { hostId: (await registerTenant(db.current.adminUrl, name, file)).hostId };
    await provisionTenant({
      adminPool: admin,
      clientName: name,
      sqlitePath: file,
      serviceRole: db.current.serviceRole,
    });
  }

  const sync = (name: string, fullSync = false) =>
    runTenantSync({ pool: service, clientName: name, scope, triggeredBy: 'test', fullSync, lockRetryMs: 200 });

  const chatCount = async (schema: string) =>
    (await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.chat`)).rows[0]?.n;

  it('a FIFO, socket or device at the database path fails the run at once with a clear error', async () => {
    const file = scratch.file('fifo-main.db');
    makeMiniOpenWebUI(file, { chats: 3 });
    await tenant('fifo-main', file);
    expect(await sync('fifo-main')).toMatchObject({ status: 'success' });
    const kept = scratch.file('fifo-main.kept');
    renameSync(file, kept);
    const cases: [string, () => Promise<(() => void) | void>, RegExp, RegExp?][] = [
      ['fifo', async () => mkfifo(file), /is a FIFO \(named pipe\), not a regular file/],
      [
        'socket',
        async () => {
          const server = await listenUnixSocket(file);
          return () => server.close();
        },
        /is a socket, not a regular file/,
      ],
      ['device', async () => mknod(file), /is a character device, not a regular file/],
      // The run sees first that the registered path no longer resolves to the registered file.
      [
        'symlink to a device',
        async () => symlinkSync('/dev/zero', file),
        /is a character device/,
        /now resolves to \/dev\/zero, not to/,
      ],
    ];
    for (const [label, make, message, runMessage] of cases) {
      const undo = await make();
      const run = await withLoopWatch(() => sync('fifo-main'));
      expect(run.value, label).toMatchObject({ status: 'failed', exitCode: 1, rowsSynced: 0 });
      expect(run.value.error, label).toMatch(runMessage ?? message);
      expect(run.ms, label).toBeLessThan(5_000);
      expect(run.maxStallMs, label).toBeLessThan(1_000);
      expect(() => sourceFingerprint(file), label).toThrow(SourceUnusableError);
      await expect(inspectSqliteSource(file), label).rejects.toThrow(message);
      undo?.();
      rmSync(file, { force: true });
    }
    const jobs = await admin.query<{ status: string; error: string }>(
      `SELECT j.status, j.error FROM sync_metadata.sync_jobs j JOIN sync_metadata.client_deployments d USING (deployment_id)
        WHERE d.client_name = 'fifo-main' ORDER BY j.started_at`,
    );
    expect(jobs.rows.map((r) => r.status)).toEqual(['success', 'failed', 'failed', 'failed', 'failed']);
    renameSync(kept, file);
    expect(await sync('fifo-main')).toMatchObject({ status: 'success' });
    expect(await chatCount('client_fifo_main')).toBe(3);
  });

  for (const suffix of ['-wal', '-shm', '-journal']) {
    it(`a FIFO, device or symlink at ${suffix} fails the run, the fingerprint, verify and inspection at once`, async () => {
      const name = `companion${suffix.replace('-', '_')}`;
      const file = scratch.file(`${name}.db`);
      makeMiniOpenWebUI(file, { chats: 4, journalMode: suffix === '-journal' ? 'delete' : 'wal' });
      await tenant(name, file);
      const companion = file + suffix;
      const other = scratch.file(`${name}-other.db`);
      makeMiniOpenWebUI(other, { chats: 1 });
      const cases: [string, () => (() => void) | void, RegExp][] = [
        ['fifo', () => mkfifo(companion), /is a FIFO \(named pipe\), not a regular file, so SQLite must not open it/],
        ['device', () => mknod(companion), /is a character device/],
        ['symlink', () => symlinkSync(other, companion), /is a symbolic link/],
      ];
      for (const [label, make, message] of cases) {
        rmSync(companion, { force: true });
        const undo = make();
        const run = await withLoopWatch(() => sync(name, true));
        expect(run.value, label).toMatchObject({ status: 'failed', rowsSynced: 0 });
        expect(run.value.error, label).toMatch(message);
        expect(run.value.error, label).toContain(companion);
        expect(run.ms, label).toBeLessThan(5_000);
        expect(run.maxStallMs, label).toBeLessThan(1_000);
        expect(() => sourceFingerprint(file), label).toThrow(message);
        await expect(inspectSqliteSource(file), label).rejects.toThrow(message);
        await expect(verifyTenant({ pool: service, scope, clientName: name }), label).rejects.toThrow(message);
        undo?.();
        unlinkSync(companion);
      }
      expect(await chatCount(`client_${name}`)).toBe(0);
      expect(await sync(name, true)).toMatchObject({ status: 'success' });
      expect(await chatCount(`client_${name}`)).toBe(4);
    });
  }

  it('a WAL database registered through a symlink: commits still in its WAL are seen by the next run', async () => {
    const file = scratch.file('wal-target.db');
    makeMiniOpenWebUI(file, { chats: 2, journalMode: 'wal' });
    const link = scratch.file('wal-link.db');
    symlinkSync(file, link);
    await tenant('wal-link', link);
    expect(await sync('wal-link')).toMatchObject({ status: 'success' });
    expect(await chatCount('client_wal_link')).toBe(2);
    // Open WebUI commits; the WAL is not checkpointed while its connection stays open.
    const writer = new Database(file);
    try {
      writer.pragma('wal_autocheckpoint = 0');
      writer
        .prepare(
          `INSERT INTO chat (id, user_id, title, archived, created_at, updated_at, chat, meta)
           SELECT 'chat-new', user_id, 'New', 0, created_at, updated_at + 10, chat, meta FROM chat LIMIT 1`,
        )
        .run();
      const r = await sync('wal-link');
      expect(r, r.error).toMatchObject({ status: 'success', rowsSynced: 1 });
      expect(await chatCount('client_wal_link')).toBe(3);
    } finally {
      writer.close();
    }
  });

  it('a run refuses a registered path that now resolves elsewhere, above all into another tenant’s file', async () => {
    const fileA = scratch.file('tenant-a.db');
    const fileB = scratch.file('tenant-b.db');
    const fileC = scratch.file('unrelated.db');
    makeMiniOpenWebUI(fileA, { chats: 2 });
    makeMiniOpenWebUI(fileB, { chats: 7 });
    makeMiniOpenWebUI(fileC, { chats: 5 });
    const linkA = scratch.file('a-link.db');
    symlinkSync(fileA, linkA);
    await tenant('link-a', linkA);
    await tenant('link-b', fileB);
    // Registered before real paths were recorded: the first run records where the path resolves.
    expect(await sync('link-a')).toMatchObject({ status: 'success' });
    expect(await sync('link-b')).toMatchObject({ status: 'success' });
    const recorded = await admin.query<{ client_name: string; sqlite_realpath: string }>(
      `SELECT client_name, sqlite_realpath FROM sync_metadata.client_deployments
        WHERE client_name IN ('link-a', 'link-b') ORDER BY 1`,
    );
    expect(recorded.rows).toEqual([
      { client_name: 'link-a', sqlite_realpath: fileA },
      { client_name: 'link-b', sqlite_realpath: fileB },
    ]);
    expect(await chatCount('client_link_a')).toBe(2);

    // The link now points at tenant B's file: refused, nothing of B lands in A's backup.
    unlinkSync(linkA);
    symlinkSync(fileB, linkA);
    const crossed = await sync('link-a', true);
    expect(crossed).toMatchObject({ status: 'failed', exitCode: 1, rowsSynced: 0 });
    expect(crossed.error).toContain(`${linkA} now resolves to ${fileB}, the registered SQLite file of tenant "link-b"`);
    expect(await chatCount('client_link_a')).toBe(2);
    await expect(verifyTenant({ pool: service, scope, clientName: 'link-a' })).rejects.toThrow(
      /the registered SQLite file of tenant "link-b"/,
    );

    // The link now points at some other file: refused as well.
    unlinkSync(linkA);
    symlinkSync(fileC, linkA);
    const moved = await sync('link-a', true);
    expect(moved).toMatchObject({ status: 'failed', rowsSynced: 0 });
    expect(moved.error).toContain(`${linkA} now resolves to ${fileC}, not to ${fileA} as when tenant "link-a"`);
    expect(await chatCount('client_link_a')).toBe(2);
    const job = await admin.query('SELECT status, error FROM sync_metadata.sync_jobs WHERE job_id = $1', [moved.jobId]);
    expect(job.rows[0]).toMatchObject({ status: 'failed', error: expect.stringContaining('not to') });

    // Pointed back at its own file, the tenant syncs again.
    unlinkSync(linkA);
    symlinkSync(fileA, linkA);
    expect(await sync('link-a')).toMatchObject({ status: 'success' });
  });
});
