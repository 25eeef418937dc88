// Stays whole (over 400 lines): `npm start` is one start-up and shutdown sequence of child processes that share their handles; the live feed is in demo-activity.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import {
  createPool,
  ConfigError,
  errorMessage,
  redactUrl,
  ROOT_RUNTIME_DIR,
  startLocalPostgres,
  type LocalPostgres,
} from '@owui-sync/engine';
import { tenantExists } from '@owui-sync/engine/tenants';
import { DEFAULT_SERVICE_ROLE } from '@owui-sync/schema';
import { DEMO_SCALE, generateOpenWebUIDatabase } from '@owui-sync/fixtures';
import type { Command } from './command.ts';
import type { CliContext } from './context.ts';
import { initialize } from './ops/init.ts';
import { registerTenant } from './ops/register.ts';
import { setSyncEnabled } from './ops/tenants.ts';
import { appendChat, liveFeed } from './demo-activity.ts';

/**
 * `npm start`: the whole system on one machine. PostgreSQL (embedded unless ADMIN_URL/DATABASE_URL is set), init,
 * a generated Open WebUI tenant registered and enabled, node-a, node-b and one extra worker as child processes,
 * and a live feed of leadership and sync jobs. Ctrl-C stops everything in order.
 */

const BIN = fileURLToPath(new URL('../bin/syncctl.js', import.meta.url));

type DemoSettings = {
  readonly dataDir: string;
  readonly pgDir: string;
  readonly pgPort: number;
  readonly portA: number;
  readonly portB: number;
  readonly tenant: string;
  readonly cluster: string;
  readonly activity: boolean;
};

function settings(ctx: CliContext, values: Readonly<Record<string, string | boolean | undefined>>): DemoSettings {
  const env = ctx.io.env;
  const port = (flag: string, name: string, fallback: number) => {
    const raw = (values[flag] as string | undefined) ?? env[name];
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 65_535)
      throw new ConfigError([`${name} (--${flag}) "${raw}" is not a port`]);
    return n;
  };
  return {
    dataDir: path.resolve(ctx.io.cwd, env.DEMO_DATA_DIR ?? '.data/demo'),
    pgDir: path.resolve(
      ctx.io.cwd,
      env.DEMO_PG_DIR ?? (env.DEMO_DATA_DIR ? path.join(env.DEMO_DATA_DIR, 'postgres') : '.data/demo-postgres'),
    ),
    pgPort: port('pg-port', 'DEMO_PG_PORT', 54330),
    portA: port('port-a', 'NODE_A_PORT', 9443),
    portB: port('port-b', 'NODE_B_PORT', 9444),
    tenant: (values.tenant as string | undefined) ?? env.DEMO_TENANT ?? 'chat-test',
    cluster: ctx.cluster,
    activity: !values['no-activity'],
  };
}

async function assertPortFree(port: number, what: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', () =>
      reject(
        new ConfigError([
          `port ${port} (${what}) is in use: stop what runs there or choose another port (see syncctl demo --help)`,
        ]),
      ),
    );
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  stopped: () => boolean,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline && !stopped()) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(
    `${what} did not happen within ${Math.round(timeoutMs / 1000)} s${last ? ` (${errorMessage(last)})` : ''}`,
  );
}

async function health(port: number): Promise<{ is_leader: boolean; status: string } | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) return undefined;
  return (await res.json()) as { is_leader: boolean; status: string };
}

type Child = { name: string; proc: ChildProcess; log: string; exited: Promise<number | null> };

/** The part that does the work; runs in its own process group so a terminal Ctrl-C reaches only the front. */
async function runDemo(ctx: CliContext, s: DemoSettings): Promise<number> {
  const say = (line: string) => ctx.out(line);
  let stopping = false;
  let resolveStop: () => void = () => undefined;
  const stopSignal = new Promise<void>((r) => (resolveStop = r));
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    resolveStop();
  };
  for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
  // If the front process is killed outright (kill -9), stop too rather than leave the cluster running unseen.
  const parent = process.ppid;
  const orphanCheck = setInterval(() => {
    if (process.ppid !== parent) onSignal();
  }, 1000);
  orphanCheck.unref();

  const children: Child[] = [];
  let local: LocalPostgres | undefined;
  let pool: pg.Pool | undefined;
  let timer: NodeJS.Timeout | undefined;
  let code = 0;
  try {
    mkdirSync(path.join(s.dataDir, 'logs'), { recursive: true });
    await assertPortFree(s.portA, 'node-a');
    await assertPortFree(s.portB, 'node-b');

    let adminUrl = ctx.io.env.ADMIN_URL ?? ctx.io.env.DATABASE_URL;
    if (adminUrl) {
      say(`▶ Using the PostgreSQL server at ${redactUrl(adminUrl)} (ADMIN_URL/DATABASE_URL is set)`);
    } else {
      await assertPortFree(s.pgPort, 'embedded PostgreSQL');
      const first = !existsSync(path.join(s.pgDir, 'PG_VERSION'));
      say(
        `▶ ${first ? 'Initialising' : 'Starting'} embedded PostgreSQL 17 on 127.0.0.1:${s.pgPort} (data: ${path.relative(ctx.io.cwd, s.pgDir) || s.pgDir})`,
      );
      const pgLog = createWriteStream(path.join(s.dataDir, 'logs', 'postgres.log'), { flags: 'a' });
      local = await startLocalPostgres({ dataDir: s.pgDir, port: s.pgPort, onLog: (line) => pgLog.write(`${line}\n`) });
      adminUrl = local.adminUrl;
      if (local.user) {
        say(
          `  PostgreSQL does not run as root: it runs as the "${local.user}" user` +
            (local.dataDir !== s.pgDir
              ? `, with its data in ${local.dataDir} (linked from ${path.relative(ctx.io.cwd, s.pgDir) || s.pgDir})`
              : ''),
        );
      }
    }
    if (stopping) return 0;

    const credentialsFile = path.join(s.dataDir, '.credentials');
    say('▶ syncctl init');
    const init = await initialize({
      adminUrl,
      serviceRole: ctx.io.env.SERVICE_ROLE ?? DEFAULT_SERVICE_ROLE,
      servicePassword: undefined,
      // The demo's own server: if its credentials file was removed, give the service role a new password rather
      // than stopping. A server named by ADMIN_URL is never changed that way.
      rotatePassword: local !== undefined && !existsSync(credentialsFile),
      credentialsFile,
      groupRole: ctx.io.env.CLUSTER_GROUP_ROLE,
    });
    say(
      `  sync_metadata ready, service role "${init.serviceRole}" ${init.roleCreated ? 'created' : 'kept'}; credentials in ${credentialsFile}`,
    );
    pool = createPool(adminUrl, { max: 3, applicationName: 'syncctl-demo' });

    const sqlitePath = path.join(s.dataDir, 'tenants', s.tenant, 'webui.db');
    if (!existsSync(sqlitePath)) {
      mkdirSync(path.dirname(sqlitePath), { recursive: true });
      // The current Open WebUI layout (0.11.0), in WAL mode as Open WebUI runs it.
      const gen = generateOpenWebUIDatabase({ path: sqlitePath, era: '0.11.0', scale: DEMO_SCALE, journalMode: 'wal' });
      const rows = Object.values(gen.rowCounts).reduce((a, b) => a + b, 0);
      say(
        `▶ Generated an Open WebUI 0.11.0 database for tenant "${s.tenant}": ${gen.tables.length} tables, ${rows} ` +
          `rows (${sqlitePath})`,
      );
    } else {
      say(`▶ Reusing tenant database ${sqlitePath}`);
    }

    const base: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(ctx.io.env)) {
      if (!['DATABASE_URL', 'ADMIN_URL', 'SYNC_URL', 'CREDENTIALS_FILE'].includes(k)) base[k] = v;
    }
    Object.assign(base, {
      DATABASE_URL: init.syncUrlPlain,
      CREDENTIALS_FILE: credentialsFile,
      CLUSTER_NAME: s.cluster,
      HEARTBEAT_INTERVAL: ctx.io.env.HEARTBEAT_INTERVAL ?? '5',
      LEASE_DURATION: ctx.io.env.LEASE_DURATION ?? '15',
      SCHEDULER_INTERVAL: ctx.io.env.SCHEDULER_INTERVAL ?? '2',
      LOG_LEVEL: ctx.io.env.LOG_LEVEL && ctx.io.env.LOG_LEVEL !== 'silent' ? ctx.io.env.LOG_LEVEL : 'info',
      LOG_FORMAT: 'json',
      API_HOST: '127.0.0.1',
    });
    let ready = false;
    const start = (name: string, args: string[], env: Record<string, string>): void => {
      const log = path.join(s.dataDir, 'logs', `${name}.log`);
      const out = createWriteStream(log, { flags: 'a' });
      const proc = spawn(process.execPath, [BIN, ...args], {
        cwd: ctx.io.cwd,
        env: { ...base, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      proc.stdout?.pipe(out);
      proc.stderr?.pipe(out);
      // A process that cannot be spawned at all counts as exited at once (its log says why).
      proc.once('error', (error) => {
        out.write(`could not start ${name}: ${errorMessage(error)}\n`);
        if (proc.pid === undefined) proc.emit('exit', null, null);
      });
      const exited = new Promise<number | null>((resolve) =>
        proc.once('exit', (c) => {
          resolve(c);
          if (stopping) return;
          // After start-up, a process that stops (e.g. the leader killed to watch a failover) comes back as a
          // follower a few seconds later, as a container with restart: unless-stopped would.
          say(`${time()} ⚠️  ${name} exited (code ${c})${ready ? '; restarting it in 5 s' : ''} — log: ${log}`);
          if (ready) {
            setTimeout(() => {
              if (stopping) return;
              const i = children.findIndex((x) => x.proc === proc);
              if (i >= 0) children.splice(i, 1);
              start(name, args, env);
              say(`${time()} ▶ ${name} restarted (pid ${children.at(-1)?.proc.pid ?? '?'})`);
            }, 5000).unref();
          }
        }),
      );
      children.push({ name, proc, log, exited });
    };
    say(`▶ Starting node-a (:${s.portA}), node-b (:${s.portB}) and worker-1 (logs in ${path.join(s.dataDir, 'logs')})`);
    start('node-a', ['node'], { ROLE: 'node-a', API_PORT: String(s.portA) });
    start('node-b', ['node'], { ROLE: 'node-b', API_PORT: String(s.portB) });
    start('worker-1', ['worker'], { ROLE: 'worker-1', ENABLE_API: 'false' });

    const alive = () => stopping || children.every((c) => c.proc.exitCode === null);
    const leaderPort = await waitFor(
      'node-a and node-b answering /health with exactly one leader',
      90_000,
      async () => {
        if (!alive()) throw new Error('a process exited during start-up');
        const [a, b] = await Promise.all([health(s.portA), health(s.portB)]);
        if (!a || !b) return undefined;
        const leaders = [a.is_leader, b.is_leader].filter(Boolean).length;
        return leaders === 1 ? (a.is_leader ? s.portA : s.portB) : undefined;
      },
      () => stopping,
    );
    if (stopping) return 0;
    say(
      `✅ Cluster up: leader is ${leaderPort === s.portA ? 'node-a' : 'node-b'} ` +
        `(pids: ${children.map((c) => `${c.name} ${c.proc.pid ?? '?'}`).join(', ')})`,
    );

    if (!(await tenantExists(pool, s.tenant))) {
      say(`▶ syncctl client register ${s.tenant} --enable --interval 30`);
      await registerTenant({
        adminPool: pool,
        cluster: s.cluster,
        name: s.tenant,
        sqlitePath,
        intervalSeconds: 30,
        enable: true,
        checkContainer: false,
        serviceRole: init.serviceRole,
        env: ctx.io.env,
        say: (line) => say(`  ${line}`),
      });
    } else {
      await setSyncEnabled(pool, s.cluster, s.tenant, true);
      say(`▶ Tenant "${s.tenant}" already registered; sync enabled`);
    }

    say(
      [
        '',
        '══════════════════════════════════════════════════════════════════════',
        ` Demo is up. Dashboard: http://127.0.0.1:${s.portA}/   (node-b: http://127.0.0.1:${s.portB}/)`,
        '══════════════════════════════════════════════════════════════════════',
        'Try:',
        `  curl -s http://127.0.0.1:${s.portA}/health`,
        `  curl -s http://127.0.0.1:${s.portB}/api/v1/cluster/status`,
        `  curl -s http://127.0.0.1:${s.portA}/metrics | grep ^sync_`,
        `  curl -s -X POST http://127.0.0.1:${s.portA}/api/v1/sync/trigger -H 'Content-Type: application/json' \\`,
        `       -d '{"client_name": "${s.tenant}", "full_sync": true}'`,
        `  export CREDENTIALS_FILE=${credentialsFile}${s.cluster !== 'owui-sync' ? ` CLUSTER_NAME=${s.cluster}` : ''}`,
        `  npx syncctl clients        npx syncctl jobs        npx syncctl cluster status`,
        `  npx syncctl client sync ${s.tenant} --full        npx syncctl menu`,
        s.activity ? `New chats are written to the tenant's SQLite every 10 s, so incremental syncs have work.` : '',
        'Ctrl-C stops everything.',
        '',
      ]
        .filter((l) => l !== '')
        .join('\n'),
    );

    ready = true;
    // Live feed: leadership changes and finished sync jobs (and, optionally, new chats in the tenant).
    const poll = liveFeed({
      pool,
      cluster: s.cluster,
      say,
      onTick: s.activity ? (tick) => tick % 5 === 0 && appendChat(sqlitePath) : undefined,
      quiet: () => stopping,
    });
    await poll();
    timer = setInterval(() => void poll(), 2000);
    await stopSignal;
  } catch (error) {
    if (!stopping) {
      const problems = error instanceof ConfigError ? error.problems : [errorMessage(error)];
      for (const problem of problems) ctx.err(`❌ ERROR: ${problem}`);
      for (const c of children) ctx.err(`   ${c.name} log: ${c.log}`);
      code = 1;
    }
  } finally {
    if (timer) clearInterval(timer);
    const started = children.length > 0 || local !== undefined;
    if (started) say('▶ Stopping: nodes and worker first (leadership is released at once), then PostgreSQL …');
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGTERM');
    await Promise.all(
      children.map(async (c) => {
        const killer = setTimeout(() => c.proc.kill('SIGKILL'), 30_000);
        const exitCode = await c.exited;
        clearTimeout(killer);
        if (exitCode !== 0 && exitCode !== null) say(`  ${c.name} exited with code ${exitCode} (log: ${c.log})`);
      }),
    );
    await pool?.end().catch(() => undefined);
    await local?.stop().catch(() => undefined);
    for (const sig of STOP_SIGNALS) process.off(sig, onSignal);
    clearInterval(orphanCheck);
    if (started) say(code === 0 ? '✅ Stopped cleanly.' : 'Stopped.');
  }
  return code;
}

const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

function time(): string {
  return new Date().toISOString().slice(11, 19);
}

export const demoCommand: Command = {
  path: ['demo'],
  summary: 'the whole system on this machine (what npm start runs)',
  description:
    'Starts an embedded PostgreSQL 17 (data in .data/demo-postgres, reused across runs) unless ADMIN_URL or\n' +
    'DATABASE_URL names a server (an admin login: init needs it), runs init, generates an Open WebUI tenant\n' +
    'database, starts node-a, node-b and a worker, registers and enables the tenant and prints where to look.\n' +
    'Started as root, PostgreSQL runs as the postgres system user (created when missing) from a copy of its\n' +
    `binaries under ${ROOT_RUNTIME_DIR};\n` +
    'if that user cannot reach .data/demo-postgres, the data lives there too and .data/demo-postgres links to it.\n' +
    'Environment: DEMO_DATA_DIR (.data/demo), DEMO_PG_DIR, DEMO_PG_PORT (54330), NODE_A_PORT, NODE_B_PORT, DEMO_TENANT.',
  options: {
    'port-a': { type: 'string', placeholder: 'PORT', description: 'node-a API port (default 9443)' },
    'port-b': { type: 'string', placeholder: 'PORT', description: 'node-b API port (default 9444)' },
    'pg-port': { type: 'string', placeholder: 'PORT', description: 'embedded PostgreSQL port (default 54330)' },
    tenant: { type: 'string', placeholder: 'NAME', description: 'demo tenant name (default chat-test)' },
    'no-activity': { type: 'boolean', description: 'do not write new chats into the tenant database' },
    child: { type: 'boolean', description: '(internal) run the demo in this process' },
  },
  examples: ['npm start', 'NODE_A_PORT=19443 NODE_B_PORT=19444 npx syncctl demo'],
  async run(ctx, { values }) {
    const s = settings(ctx, values);
    if (values.child) return runDemo(ctx, s);
    // Front process: the demo runs in its own process group so a terminal Ctrl-C does not hit PostgreSQL and the
    // nodes all at once; the front turns it into one orderly stop.
    const demoArgs = ['demo', '--child', '--cluster', ctx.cluster];
    for (const flag of ['port-a', 'port-b', 'pg-port', 'tenant']) {
      if (typeof values[flag] === 'string') demoArgs.push(`--${flag}`, values[flag]);
    }
    if (values['no-activity']) demoArgs.push('--no-activity');
    const child = spawn(process.execPath, [BIN, ...demoArgs], {
      cwd: ctx.io.cwd,
      env: { ...ctx.io.env },
      stdio: 'inherit',
      detached: true,
    });
    const forward = () => {
      if (child.exitCode === null) child.kill('SIGTERM');
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    try {
      return await new Promise<number>((resolve) => {
        child.once('exit', (c) => resolve(c ?? 1));
        child.once('error', (error) => {
          if (child.pid !== undefined) return;
          ctx.err(`❌ ERROR: could not start the demo process (${errorMessage(error)})`);
          resolve(1);
        });
      });
    } finally {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
    }
  },
};
