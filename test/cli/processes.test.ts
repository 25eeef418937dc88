import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTestDatabase, withConnection } from '../support/db.ts';
import { syncctl } from './support.ts';

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

describe('syncctl node', () => {
  const db = useTestDatabase();

  it('runs a full node that leads, answers /health and hands leadership back on SIGTERM', async () => {
    const port = await freePort();
    const cluster = 'proc-test';
    const child = spawn(process.execPath, [BIN, 'node', '--role', 'node-a', '--port', String(port)], {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: db.current.serviceUrl,
        CLUSTER_NAME: cluster,
        WORKER_CONCURRENCY: '0',
        HEARTBEAT_INTERVAL: '1',
        LEASE_DURATION: '5',
        API_HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    try {
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
    } catch (error) {
      throw new Error(`${String(error)}\n${output}`);
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code, output).toBe(0);
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

  it('refuses to start without a service URL and says where it comes from', async () => {
    const r = await syncctl(['node'], { env: { CLUSTER_NAME: 'x' }, cwd: path.resolve('test') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/DATABASE_URL/);
  });
});
