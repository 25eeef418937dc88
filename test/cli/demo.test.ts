import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { canConnect } from '@owui-sync/engine';
import { createTestDatabase } from '../support/db.ts';
import { removeDemoDirs } from '../support/demo.ts';

/**
 * `npm start` on a clean machine: no DATABASE_URL/ADMIN_URL, so the demo starts its own embedded PostgreSQL 17,
 * installs, generates a tenant, runs node-a, node-b and a worker, and syncs. Ports and data directory are private to
 * this test so it never clashes with a demo someone is running.
 */

const BIN = path.resolve('apps/cli/bin/syncctl.js');

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  server.close();
  return port;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function health(port: number): Promise<{ is_leader: boolean }> {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
  return (await res.json()) as { is_leader: boolean };
}

type DemoRun = { output: string; code: number | null };

/** Starts the demo, waits for it to be up with one leader and a first successful sync, then Ctrl-C's it. */
async function runDemo(
  env: Record<string, string | undefined>,
  ports: { a: number; b: number },
  adminUrl: string,
): Promise<DemoRun> {
  const child = spawn(process.execPath, [BIN, 'demo'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, HEARTBEAT_INTERVAL: '2', LEASE_DURATION: '6', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  let failure: unknown;
  try {
    await until('the demo to report it is up', async () => (output.includes('Demo is up') ? true : undefined), 150_000);
    const [a, b] = await Promise.all([health(ports.a), health(ports.b)]);
    expect([a.is_leader, b.is_leader].filter(Boolean)).toHaveLength(1);
    const job = await until(
      'a first successful sync',
      async () => {
        const client = new pg.Client({ connectionString: adminUrl });
        await client.connect();
        try {
          const r = await client.query<{ client_name: string; rows_synced: string }>(
            "SELECT client_name, rows_synced FROM sync_metadata.sync_jobs WHERE status = 'success' LIMIT 1",
          );
          return r.rows[0];
        } finally {
          await client.end();
        }
      },
      90_000,
    );
    expect(job.client_name).toBe('chat-test');
    // The live feed reports leadership and the finished sync.
    await until(
      'the feed to show the sync',
      async () => (/chat-test: full sync success/.test(output) ? true : undefined),
      15_000,
    );
    expect(output).toMatch(/👑 leader: node-[ab]@\S+ \(epoch \d+\)/);
    expect(Number(job.rows_synced)).toBeGreaterThan(0);
    expect(output).toMatch(/Dashboard: http:\/\/127\.0\.0\.1:\d+\//);
    expect(output).toMatch(/curl -s http:\/\/127\.0\.0\.1:\d+\/health/);
  } catch (error) {
    failure = error;
  }
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code] = await exited;
  clearTimeout(timer);
  if (failure) throw new Error(`${String(failure)}\n--- demo output ---\n${output}`);
  return { output, code };
}

describe('npm start (syncctl demo)', () => {
  it('on a clean machine: embedded PostgreSQL, two nodes with one leader, a worker, a sync, a clean stop', async () => {
    const dataDir = path.resolve('.tmp', `demo-test-${randomBytes(4).toString('hex')}`);
    mkdirSync(dataDir, { recursive: true });
    const [pgPort, portA, portB] = [await freePort(), await freePort(), await freePort()];
    const adminUrl = `postgres://postgres:postgres@127.0.0.1:${pgPort}/postgres`;
    let run: DemoRun;
    try {
      run = await runDemo(
        {
          DEMO_DATA_DIR: dataDir,
          DEMO_PG_PORT: String(pgPort),
          NODE_A_PORT: String(portA),
          NODE_B_PORT: String(portB),
        },
        { a: portA, b: portB },
        adminUrl,
      );
    } finally {
      removeDemoDirs(dataDir);
    }
    expect(run.output).toMatch(/Initialising embedded PostgreSQL 17/);
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/Stopped cleanly/);
    expect(run.output).not.toMatch(/exited with code/);
    // Everything is down: both APIs and the database.
    await expect(health(portA)).rejects.toThrow();
    await expect(health(portB)).rejects.toThrow();
    expect(await canConnect(adminUrl, 1000)).toBe(false);
  }, 300_000);

  it('with ADMIN_URL set it uses that server instead', async () => {
    const db = await createTestDatabase();
    const dataDir = path.resolve('.tmp', `demo-test-${randomBytes(4).toString('hex')}`);
    const [portA, portB] = [await freePort(), await freePort()];
    try {
      const run = await runDemo(
        {
          ADMIN_URL: db.adminUrl,
          SERVICE_ROLE: `owui_demo_${inject('pg').runId}`,
          CLUSTER_GROUP_ROLE: inject('pg').groupRole,
          DEMO_DATA_DIR: dataDir,
          NODE_A_PORT: String(portA),
          NODE_B_PORT: String(portB),
        },
        { a: portA, b: portB },
        db.adminUrl,
      );
      expect(run.output).toMatch(/Using the PostgreSQL server at postgres/);
      expect(run.output).not.toMatch(/embedded PostgreSQL/);
      expect(run.code, run.output).toBe(0);
      expect(run.output).toMatch(/Stopped cleanly/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      await db.drop();
    }
  }, 300_000);
});
