import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scratchDir } from '../engine/helpers.ts';
import { useTestDatabase } from '../support/db.ts';
import { clusterUrl } from '../support/pooler.ts';
import { freePort, killAllProcesses, startApp, waitUntil, type AppProcess } from '../support/processes.ts';

/**
 * The shipped monitoring: compose/prometheus/alerts.yml passes its promtool unit tests (and a weakened copy does
 * not), the Grafana dashboard only queries metrics a node exposes, and a real Prometheus scraping a real node loads
 * the rules, evaluates every dashboard query, and fires SyncRpoBreached once a tenant falls behind.
 */

const RULES = path.resolve('compose/prometheus/alerts.yml');
const RULE_TESTS = path.resolve('compose/prometheus/alerts.test.yml');
const DASHBOARD = path.resolve('compose/grafana/owui-sync-dashboard.json');

function tool(name: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
  if (!found) throw new Error(`${name} not found: install Debian's prometheus package (apt-get install prometheus)`);
  return found;
}

function promtool(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync(tool('promtool'), args, { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

type Dashboard = {
  uid: string;
  panels: { id: number; type: string; title: string; targets?: { expr: string; refId: string }[] }[];
};
const dashboard = (): Dashboard => JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const dashboardExprs = () =>
  dashboard().panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
/** The dashboard's template variables as Grafana substitutes them with "All" selected. */
const concrete = (expr: string) => expr.replaceAll('$job', '.*').replaceAll('$__rate_interval', '1m');

describe('alerting rules (promtool)', () => {
  const scratch = scratchDir('owui-promtool-');
  afterAll(() => scratch.cleanup());

  it('the rules are valid and pass their unit tests', () => {
    const check = promtool('check', 'rules', RULES);
    expect(check.output).toContain('SUCCESS: 9 rules found');
    expect(check.status).toBe(0);
    const test = promtool('test', 'rules', RULE_TESTS);
    expect(test.output).toContain('SUCCESS');
    expect(test.status).toBe(0);
  });

  it('the unit tests catch a weakened rule', () => {
    const original = readFileSync(RULES, 'utf8');
    for (const [from, to] of [
      ['(sync_cluster_runs_recent{status="failed"}) > 5', '(sync_cluster_runs_recent{status="failed"}) > 6'],
      ['sum without (instance) (sync_is_leader) != 1', 'sum without (instance) (sync_is_leader) > 1'],
      ['(sync_tenants_rpo_breached) > 0', '(sync_tenants_rpo_breached) > 3'],
      ['(sync_tenants_lag_max_seconds) > 600', '(sync_tenants_lag_max_seconds) > 700'],
      ['[10m]))) > 60', '[10m]))) > 120'],
      ['(sync_tenants_drill_overdue) > 0', '(sync_tenants_drill_overdue) > 1'],
    ] as const) {
      expect(original).toContain(from);
      const dir = scratch.file(`mutant-${from.length}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'alerts.yml'), original.replace(from, to));
      copyFileSync(RULE_TESTS, path.join(dir, 'alerts.test.yml'));
      const result = promtool('test', 'rules', path.join(dir, 'alerts.test.yml'));
      expect(result.status, `${to} should fail the unit tests`).not.toBe(0);
      expect(result.output).toContain('FAILED');
    }
  });
});

describe('Grafana dashboard', () => {
  it('is valid JSON with unique panel ids and a query for every figure of the fleet', () => {
    const d = dashboard();
    expect(d.uid).toBe('owui-sync-fleet');
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of d.panels.filter((x) => x.type !== 'row')) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
    const all = dashboardExprs()
      .map((e) => e.expr)
      .join('\n');
    for (const name of [
      'sync_is_leader',
      'sync_cluster_leader_epoch',
      'sync_tenants{',
      'sync_tenants_rpo_breached',
      'sync_tenants_lag_max_seconds',
      'sync_cluster_runs_recent',
      'sync_operation_duration_seconds_bucket',
      'sync_queue_jobs',
      'sync_queue_oldest_waiting_seconds',
      'sync_tenants_verify',
      'sync_tenants_drill_overdue',
    ]) {
      expect(all).toContain(name);
    }
  });
});

describe('a real Prometheus scraping a real node', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-prometheus-');
  const cluster = 'prom-c';
  let adminPool: pg.Pool;
  let node: AppProcess;
  let nodePort: number;
  let promPort: number;
  let prometheus: ChildProcess | undefined;
  let promLog = '';

  const api = async <T>(pathAndQuery: string): Promise<T> => {
    const res = await fetch(`http://127.0.0.1:${promPort}${pathAndQuery}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${pathAndQuery}: ${body.error ?? res.status}`);
    return body.data;
  };
  type Rule = { name: string; type: string; health: string; state?: string; lastError?: string };
  const rules = async () =>
    (await api<{ groups: { name: string; rules: Rule[] }[] }>('/api/v1/rules')).groups.flatMap((g) => g.rules);
  const alertState = async (name: string) => (await rules()).find((r) => r.name === name)?.state;

  beforeAll(async () => {
    const url = await clusterUrl(db.current.serviceUrl);
    adminPool = new pg.Pool({ connectionString: db.current.adminUrl, max: 2 });
    nodePort = await freePort();
    node = startApp('node-a', 'node', {
      DATABASE_URL: url.url,
      DATABASE_POOLER: url.pooled ? 'transaction' : 'none',
      CLUSTER_NAME: cluster,
      ROLE: 'node-a',
      HOST_NAME: 'prom-host',
      LEASE_DURATION: '3',
      HEARTBEAT_INTERVAL: '1',
      SCHEDULER_INTERVAL: '1',
      QUEUE_SUPERVISE_INTERVAL: '1',
      API_PORT: String(nodePort),
      API_HOST: '127.0.0.1',
      METRICS_TENANT_LABELS: 'top-5',
      LOG_LEVEL: 'info',
    });
    await node.waitForLog(/API listening/, 30_000);

    // The shipped rules with every `for:` shortened, so a breach fires within seconds instead of minutes.
    const dir = scratch.file('prom');
    mkdirSync(path.join(dir, 'data'), { recursive: true });
    writeFileSync(path.join(dir, 'alerts.yml'), readFileSync(RULES, 'utf8').replace(/for: \S+/g, 'for: 1s'));
    writeFileSync(
      path.join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: ['${path.join(dir, 'alerts.yml')}']`,
        'scrape_configs:',
        "  - job_name: 'sync-cluster'",
        `    static_configs: [{ targets: ['127.0.0.1:${nodePort}'] }]`,
        '',
      ].join('\n'),
    );
    expect(promtool('check', 'config', path.join(dir, 'prometheus.yml')).status).toBe(0);
    promPort = await freePort();
    prometheus = spawn(
      tool('prometheus'),
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout?.on('data', (c: Buffer) => (promLog += c.toString()));
    prometheus.stderr?.on('data', (c: Buffer) => (promLog += c.toString()));
    await waitUntil(
      'Prometheus to become ready',
      async () => {
        if (prometheus?.exitCode !== null) throw new Error(`prometheus exited:\n${promLog.slice(-2000)}`);
        return fetch(`http://127.0.0.1:${promPort}/-/ready`).then(
          (r) => r.ok,
          () => false,
        );
      },
      30_000,
      200,
    );
  });

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus?.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await killAllProcesses();
    await adminPool?.end();
    scratch.cleanup();
  });

  it('loads the rules, scrapes the node and fires SyncRpoBreached once a tenant falls behind', async () => {
    // The node is up and scraped: every rule evaluated without error; one leader, no tenant behind.
    await waitUntil(
      'the node to be scraped and every rule evaluated',
      async () => {
        const up = await api<{ result: { value: [number, string] }[] }>('/api/v1/query?query=up');
        const all = await rules();
        return up.result[0]?.value[1] === '1' && all.length === 9 && all.every((r) => r.health === 'ok');
      },
      30_000,
      500,
    );
    expect((await rules()).map((r) => r.name).sort()).toEqual(
      [
        'SyncFailuresHigh',
        'SyncNoNodeReporting',
        'SyncNoSuccessfulDrill',
        'SyncNotExactlyOneLeader',
        'SyncQueueBacklog',
        'SyncRpoBreached',
        'SyncSlowRuns',
        'SyncStateLagHigh',
        'SyncVerifyMismatch',
      ].sort(),
    );
    await waitUntil(
      'the node to lead',
      async () => {
        const r = await api<{ result: { value: [number, string] }[] }>(
          `/api/v1/query?query=${encodeURIComponent('sum without (instance) (sync_is_leader)')}`,
        );
        return r.result[0]?.value[1] === '1';
      },
      30_000,
      500,
    );
    expect(await alertState('SyncNotExactlyOneLeader')).toBe('inactive');
    expect(await alertState('SyncRpoBreached')).toBe('inactive');
    expect(await alertState('SyncNoSuccessfulDrill')).toBe('inactive');

    // A tenant synced every second whose file does not exist: every run fails, its lag passes 2 intervals.
    await adminPool.query(
      `INSERT INTO sync_metadata.client_deployments
         (client_name, host_id, sqlite_path, schema_name, sync_enabled, status, sync_interval)
       VALUES ('prom-lost', sync_metadata.host_identity($1, 'prom-host', 'node-a'), $2, 'client_prom_lost',
               true, 'active', 1)`,
      [cluster, scratch.file('missing/webui.db')],
    );
    await waitUntil(
      'SyncRpoBreached to fire',
      async () => (await alertState('SyncRpoBreached')) === 'firing',
      45_000,
      500,
    );
    const alerts = await api<{ alerts: { labels: Record<string, string>; state: string; value: string }[] }>(
      '/api/v1/alerts',
    );
    const rpo = alerts.alerts.find((a) => a.labels.alertname === 'SyncRpoBreached');
    expect(rpo).toMatchObject({ state: 'firing', labels: { job: 'sync-cluster', severity: 'critical' } });
    expect(Number(rpo?.value)).toBe(1);
    expect(await alertState('SyncNotExactlyOneLeader')).toBe('inactive');

    // The per-tenant series reached Prometheus under the tenant's name.
    const lag = await api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
      `/api/v1/query?query=${encodeURIComponent('sync_tenant_lag_seconds')}`,
    );
    expect(lag.result.map((r) => r.metric.client)).toEqual(['prom-lost']);
  });

  it('every dashboard query is valid PromQL over metrics the node exposes', async () => {
    const text = await (await fetch(`http://127.0.0.1:${nodePort}/metrics`)).text();
    const exposed = new Set<string>();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      const [, name, type] = m as unknown as [string, string, string];
      exposed.add(name);
      if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exposed.add(name + s);
    }
    for (const { panel, expr } of dashboardExprs()) {
      for (const [name] of expr.matchAll(/\bsync_[a-z_]+\b/g)) {
        expect(exposed.has(name), `${panel}: ${name} is not exposed by the node`).toBe(true);
      }
      await expect(
        api(`/api/v1/query?query=${encodeURIComponent(concrete(expr))}`),
        `${panel}: ${expr}`,
      ).resolves.toBeDefined();
    }
    // The fleet panels have data as soon as the node is scraped.
    for (const expr of [
      'max without (instance) (sync_tenants{job=~".*"})',
      'max without (instance) (sync_cluster_leader_epoch{job=~".*"})',
      'max without (instance) (sync_queue_oldest_waiting_seconds{job=~".*"})',
      'max without (instance) (sync_tenants_verify{job=~".*"})',
    ]) {
      const r = await api<{ result: unknown[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      expect(r.result.length, expr).toBeGreaterThan(0);
    }
  });
});
