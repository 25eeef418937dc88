import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTestDatabase, withConnection } from '../support/db.ts';
import { makeTenantDb, syncctl } from './support.ts';

const BIN = path.resolve('apps/cli/bin/syncctl.js');

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  server.close();
  return port;
}

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** syncctl as a long-running process (node, worker, api), its stdout and stderr collected. */
function startSyncctl(args: string[], env: Record<string, string | undefined>) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (d: Buffer) => (output += d.toString());
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return {
    get output() {
      return output;
    },
    /** Runs `body` while the process runs (a failure carries its output), then SIGTERMs it: its exit code. */
    async during(body: () => Promise<void>): Promise<number | null> {
      try {
        await body();
      } catch (error) {
        throw new Error(`${String(error)}\n${output}`);
      } finally {
        child.kill('SIGTERM');
      }
      return exited;
    },
  };
}

describe('syncctl node', () => {
  const db = useTestDatabase();

  it('runs a full node that leads, answers /health and hands leadership back on SIGTERM', async () => {
    const port = await freePort();
    const cluster = 'proc-test';
    const proc = startSyncctl(['node', '--role', 'node-a', '--port', String(port)], {
      DATABASE_URL: db.current.serviceUrl,
      CLUSTER_NAME: cluster,
      WORKER_CONCURRENCY: '0',
      HEARTBEAT_INTERVAL: '1',
      LEASE_DURATION: '5',
      API_HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    });
    const code = await proc.during(async () => {
      const health = await until(async () => {
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        const body = (await res.json()) as { is_leader: boolean };
        return body.is_leader ? body : undefined;
      }, 30_000);
      expect(health).toMatchObject({ is_leader: true });
      const status = await syncctl(['cluster', 'status', '--json'], {
        env: { DATABASE_URL: db.current.serviceUrl, CLUSTER_NAME: cluster },
      });
      expect(status.json()).toMatchObject({
        leader: { leader_id: expect.stringMatching(/^node-a@/), lease_valid: true },
      });
    });
    expect(code, proc.output).toBe(0);
    const lease = await withConnection(
      db.current.adminUrl,
      async (c) =>
        (
          await c.query<{ valid: boolean }>(
            'SELECT expires_at > now() AS valid FROM sync_metadata.leader_election WHERE cluster_name = $1',
            [cluster],
          )
        ).rows,
    );
    expect(lease.every((l) => !l.valid)).toBe(true);
  });

  it('syncctl worker runs the syncs queued with client sync --via-queue', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'syncctl-worker-'));
    const cluster = 'worker-test';
    const env = { ADMIN_URL: db.current.adminUrl, DATABASE_URL: db.current.serviceUrl, CLUSTER_NAME: cluster };
    const proc = startSyncctl(['worker', '--role', 'worker-t', '--concurrency', '1'], {
      ...env,
      HEARTBEAT_INTERVAL: '1',
      LEASE_DURATION: '5',
      LOG_LEVEL: 'warn',
    });
    try {
      const code = await proc.during(async () => {
        const file = path.join(dir, 'webui.db');
        makeTenantDb(file, 4);
        const reg = await syncctl(['client', 'register', 'queued', '--sqlite', file], { env });
        expect(reg.code, reg.stderr).toBe(0);
        const q = await syncctl(['client', 'sync', 'queued', '--via-queue', '--full', '--triggered-by', 'ops'], {
          env,
        });
        expect(q.code, q.stderr).toBe(0);
        const job = await until(async () => {
          const rows = await withConnection(
            db.current.adminUrl,
            async (c) =>
              (
                await c.query<{ status: string; worker_id: string; triggered_by: string }>(
                  "SELECT status, worker_id, triggered_by FROM sync_metadata.sync_jobs WHERE client_name = 'queued' AND status = 'success'",
                )
              ).rows,
          );
          return rows[0];
        }, 30_000);
        expect(job.triggered_by).toBe('ops');
        expect(job.worker_id).toMatch(/^worker-t/);
        const status = await syncctl(['cluster', 'status', '--json'], { env });
        expect((status.json() as { nodes: { node_name: string; role: string }[] }).nodes).toContainEqual(
          expect.objectContaining({ node_name: 'worker-t', role: 'worker' }),
        );
      });
      expect(code, proc.output).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start without a service URL and says where it comes from', async () => {
    const r = await syncctl(['node'], { env: { CLUSTER_NAME: 'x' }, cwd: path.resolve('test') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/DATABASE_URL/);
  });

  it('syncctl api serves the API as host role api, never leads, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const cluster = 'api-test';
    const proc = startSyncctl(['api', '--role', 'api-t', '--port', String(port)], {
      DATABASE_URL: db.current.serviceUrl,
      CLUSTER_NAME: cluster,
      HEARTBEAT_INTERVAL: '1',
      LEASE_DURATION: '5',
      API_HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    });
    const code = await proc.during(async () => {
      const health = await until(async () => {
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        return (await res.json()) as Record<string, unknown>;
      }, 30_000);
      expect(health).toMatchObject({ status: 'healthy', node_id: 'api-t', role: 'api', is_leader: false });
      const status = await syncctl(['cluster', 'status', '--json'], {
        env: { DATABASE_URL: db.current.serviceUrl, CLUSTER_NAME: cluster },
      });
      expect(status.json()).toMatchObject({ leader: null, nodes: [{ node_name: 'api-t', role: 'api' }] });
    });
    expect(code, proc.output).toBe(0);
  });
});
