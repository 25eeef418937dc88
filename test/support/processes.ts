import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import type pg from 'pg';
import { provisionTenant, tenantSchemaName } from '@owui-sync/engine/sync';
import { makeMiniOpenWebUI } from '../engine/helpers.ts';

/**
 * Real node/worker processes for cluster tests: `node --import tsx apps/<app>/src/main.ts` (one OS process, so
 * kill -9, SIGSTOP and SIGCONT reach the process that holds the lease). Logs (pino JSON lines) are kept for
 * assertions; every process started here is killed by killAllProcesses().
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const live = new Set<AppProcess>();

export type LogLine = { level?: number; msg?: string; [key: string]: unknown };

export class AppProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly raw: string[] = [];
  readonly exited: Promise<number | null>;
  #buffer = '';

  constructor(
    readonly name: string,
    readonly app: 'node' | 'worker' | 'scheduler' | 'api',
    env: Record<string, string>,
  ) {
    this.child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, `apps/${app}/src/main.ts`)], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(this);
    const onData = (chunk: Buffer) => {
      this.#buffer += chunk.toString();
      let nl: number;
      while ((nl = this.#buffer.indexOf('\n')) >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        this.raw.push(line);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ msg: line });
        }
      }
    };
    this.child.stdout?.on('data', onData);
    this.child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        live.delete(this);
        resolve(code ?? (signal ? -1 : null));
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** Resolves with the first log line matching `pattern` (already seen or future). */
  async waitForLog(pattern: RegExp, timeoutMs = 20_000, from = 0): Promise<LogLine> {
    const started = Date.now();
    for (;;) {
      const hit = this.lines.slice(from).find((l) => pattern.test(String(l.msg ?? '')));
      if (hit) return hit;
      if (!this.running) throw new Error(`${this.name} exited before logging ${pattern}:\n${this.tail()}`);
      if (Date.now() - started > timeoutMs) throw new Error(`${this.name} did not log ${pattern}:\n${this.tail()}`);
      await sleep(50);
    }
  }

  tail(n = 30): string {
    return this.raw.slice(-n).join('\n');
  }
}

export function startApp(
  name: string,
  app: 'node' | 'worker' | 'scheduler' | 'api',
  env: Record<string, string>,
): AppProcess {
  return new AppProcess(name, app, env);
}

/** SIGKILLs every process still running (afterAll). SIGSTOPped ones are continued first so they can die. */
export async function killAllProcesses(): Promise<void> {
  const all = [...live];
  for (const p of all) {
    p.signal('SIGCONT');
    p.signal('SIGKILL');
  }
  await Promise.all(all.map((p) => p.exited));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export async function freePort(): Promise<number> {
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

/**
 * A provisioned tenant `clientName` (a small generated Open WebUI file at `file`, hourly interval, enabled) held by
 * node-a of `cluster` on host `e2e-host`: a node row with a fresh heartbeat, as a live node leaves it. For the
 * single-process tests that start a scheduler, an API or a worker next to that node.
 */
export async function seedTenantOnNode(opts: {
  readonly adminPool: pg.Pool;
  readonly serviceRole: string;
  readonly cluster: string;
  readonly clientName: string;
  readonly file: string;
}): Promise<void> {
  const { adminPool, cluster, clientName, file } = opts;
  makeMiniOpenWebUI(file, { chats: 3 });
  await provisionTenant({ adminPool, clientName, sqlitePath: file, serviceRole: opts.serviceRole });
  await adminPool.query(
    `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
     VALUES (sync_metadata.host_identity($1, 'e2e-host', 'node-a'), 'e2e-host', $1, 'node-a')`,
    [cluster],
  );
  await adminPool.query(
    `INSERT INTO sync_metadata.client_deployments
       (client_name, host_id, sqlite_path, schema_name, sync_enabled, status, sync_interval)
     VALUES ($2, sync_metadata.host_identity($1, 'e2e-host', 'node-a'), $3, $4, true, 'active', 3600)`,
    [cluster, clientName, file, tenantSchemaName(clientName)],
  );
}
