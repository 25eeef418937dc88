import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';

/**
 * TEST_POOLER=pgbouncer re-runs the cluster suite with every service-role connection going through a real
 * pgbouncer in transaction mode (one pgbouncer per test file, started on first use). Without it, URLs pass through.
 */

export type ClusterUrl = { readonly url: string; readonly pooled: boolean };

const PGBOUNCER_CANDIDATES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'];

let bouncer:
  { proc: ChildProcess; port: number; dir: string; upstream: string; users: ReadonlyMap<string, string> } | undefined;

export function poolerRequested(): boolean {
  return process.env.TEST_POOLER === 'pgbouncer';
}

/**
 * The URL service connections should use in this run: direct, or through pgbouncer (transaction mode). pgbouncer
 * knows the run's service role and the login of every URL passed here; a new login restarts it, so a file passes
 * all its roles' URLs before it opens connections.
 */
export async function clusterUrl(serviceUrl: string): Promise<ClusterUrl> {
  if (!poolerRequested()) return { url: serviceUrl, pooled: false };
  const target = new URL(serviceUrl);
  const upstream = `${target.hostname}:${target.port || '5432'}`;
  const user = decodeURIComponent(target.username);
  const password = decodeURIComponent(target.password);
  if (!bouncer || bouncer.upstream !== upstream || bouncer.users.get(user) !== password) {
    const same = bouncer?.upstream === upstream ? bouncer : undefined;
    const users = new Map(same?.users ?? []);
    users.set(user, password);
    stopPooler();
    // Same port, so URLs handed out before stay valid.
    bouncer = await startPgbouncer(target, users, same?.port);
  }
  const pooled = new URL(serviceUrl);
  pooled.hostname = '127.0.0.1';
  pooled.port = String(bouncer.port);
  return { url: pooled.toString(), pooled: true };
}

/** Stops this file's pgbouncer (also done at process exit). */
export function stopPooler(): void {
  if (!bouncer) return;
  bouncer.proc.kill('SIGKILL');
  rmSync(bouncer.dir, { recursive: true, force: true });
  bouncer = undefined;
}

process.on('exit', stopPooler);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function startPgbouncer(target: URL, extraUsers: ReadonlyMap<string, string>, reusePort?: number) {
  const binary = PGBOUNCER_CANDIDATES.find((p) => existsSync(p));
  if (!binary)
    throw new Error('TEST_POOLER=pgbouncer but pgbouncer is not installed; run: apt-get install -y pgbouncer');
  const context = inject('pg');
  const port = reusePort ?? (await freePort());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'owui-pgbouncer-'));
  const all = new Map([[context.serviceRole, context.servicePassword], ...extraUsers]);
  const users = [...all];
  const ini = [
    '[databases]',
    `* = host=${target.hostname} port=${target.port || '5432'}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    `unix_socket_dir =`,
    'auth_type = scram-sha-256',
    `auth_file = ${path.join(dir, 'users.txt')}`,
    'pool_mode = transaction',
    'max_client_conn = 500',
    'default_pool_size = 40',
    'server_lifetime = 3600',
    'ignore_startup_parameters = extra_float_digits,options',
    `logfile = ${path.join(dir, 'pgbouncer.log')}`,
    `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
    'server_login_retry = 1',
  ].join('\n');
  writeFileSync(path.join(dir, 'pgbouncer.ini'), `${ini}\n`, { mode: 0o644 });
  writeFileSync(path.join(dir, 'users.txt'), users.map(([u, p]) => `"${u}" "${p}"`).join('\n') + '\n', {
    mode: 0o644,
  });
  const args = [path.join(dir, 'pgbouncer.ini')];
  // pgbouncer refuses to run as root; drop to an unprivileged user that can read the files.
  if (process.getuid?.() === 0) {
    const nobody = 65534;
    for (const f of ['', 'pgbouncer.ini', 'users.txt']) chownSync(path.join(dir, f), nobody, nobody);
    args.unshift('-u', 'nobody');
  }
  const proc = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`pgbouncer exited (${proc.exitCode}): ${stderr}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`pgbouncer did not listen on ${port}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, port, dir, upstream: `${target.hostname}:${target.port || '5432'}`, users: all };
}
