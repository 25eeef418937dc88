import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { readCredentialsFile } from '@owui-sync/engine';
import { useTestDatabase, withConnection, withUser } from '../support/db.ts';
import { seedTenant, syncctl } from './support.ts';

const exec = promisify(execFile);
const BIN = path.resolve('apps/cli/bin/syncctl.js');

describe('syncctl lifecycle commands against a real server', () => {
  const db = useTestDatabase();
  const dir = mkdtempSync(path.join(tmpdir(), 'syncctl-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const svc = () => ({ DATABASE_URL: db.current.serviceUrl, CLUSTER_NAME: 'c1' });
  const admin = () => ({ ADMIN_URL: db.current.adminUrl, CLUSTER_NAME: 'c1' });
  const q = async (sql: string, params: unknown[] = []) =>
    withConnection(db.current.adminUrl, async (c) => (await c.query(sql, params)).rows);

  it('init installs, writes .credentials with mode 600 and URL-encoded passwords, and is safe to re-run', async () => {
    const role = `owui_cli_${inject('pg').runId}`;
    const password = 'p@ss:w/rd#1 %x';
    const first = await syncctl(['init', '--service-role', role, '--service-password', password, '--json'], {
      env: { ADMIN_URL: db.current.adminUrl },
      cwd: dir,
    });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.json()).toMatchObject({ roleCreated: true, password: 'given', serviceRole: role });
    const file = path.join(dir, '.credentials');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const creds = readCredentialsFile(file);
    expect(creds.SYNC_SERVICE_PASSWORD).toBe(password);
    expect(creds.SYNC_URL).toContain('p%40ss%3aw%2frd%231%20%25x@');
    expect(decodeURIComponent(new URL(creds.SYNC_URL!).username)).toBe(role);
    expect(creds.ADMIN_URL).toBe(db.current.adminUrl);
    // The written service URL logs in as the restricted role.
    const who = await withConnection(creds.SYNC_URL!, async (c) => (await c.query('SELECT current_user AS u')).rows);
    expect(who[0].u).toBe(role);

    // Re-run with only the file: nothing applied again, the password is kept.
    // (the role comes from the SYNC_URL the first run recorded)
    const again = await syncctl(['init', '--json'], { env: {}, cwd: dir });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.json()).toMatchObject({ roleCreated: false, password: 'kept', migrationsApplied: [] });
    expect(readCredentialsFile(file).SYNC_SERVICE_PASSWORD).toBe(password);

    // A service URL that is really the admin login is refused.
    const bad = await syncctl(['init', '--service-role', role, '--sync-url', db.current.adminUrl], {
      env: {},
      cwd: dir,
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/logs in as the admin user/);

    // An existing role whose password is unknown here: says how to proceed instead of guessing.
    const other = mkdtempSync(path.join(tmpdir(), 'syncctl-'));
    const unknown = await syncctl(['init', '--service-role', role], {
      env: { ADMIN_URL: db.current.adminUrl },
      cwd: other,
    });
    rmSync(other, { recursive: true, force: true });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/--service-password.*--rotate-password/s);
  });

  it('start, pause, status, clients, interval and conflicts-config change exactly what they say', async () => {
    await seedTenant(db.current.adminUrl, { cluster: 'c1', client: 'acme-corp' });
    const start = await syncctl(['client', 'start', 'acme-corp'], { env: svc() });
    expect(start.code, start.stderr).toBe(0);
    expect(start.stdout).toMatch(/Sync enabled for "acme-corp"/);
    let row = (await q("SELECT * FROM sync_metadata.client_deployments WHERE client_name='acme-corp'"))[0];
    expect([row.sync_enabled, row.status]).toEqual([true, 'active']);

    const pause = await syncctl(['client', 'pause', 'acme-corp', '--json'], { env: svc() });
    expect(pause.json()).toEqual({ client_name: 'acme-corp', sync_enabled: false, status: 'paused', changed: true });
    row = (await q("SELECT * FROM sync_metadata.client_deployments WHERE client_name='acme-corp'"))[0];
    expect([row.sync_enabled, row.status]).toEqual([false, 'paused']);
    const pausedAgain = await syncctl(['client', 'pause', 'acme-corp'], { env: svc() });
    expect(pausedAgain.stdout).toMatch(/already paused/);

    const interval = await syncctl(['client', 'interval', 'acme-corp', '3600'], { env: svc() });
    expect(interval.code).toBe(0);
    expect(interval.stdout).toMatch(/every 3600s \(1h\) \(was 300s \(5m\)\)/);
    expect(
      (await q("SELECT sync_interval FROM sync_metadata.client_deployments WHERE client_name='acme-corp'"))[0],
    ).toEqual({ sync_interval: 3600 });
    const badInterval = await syncctl(['client', 'interval', 'acme-corp', '0'], { env: svc() });
    expect(badInterval.code).toBe(1);
    expect(badInterval.stderr).toMatch(/between 1 and 31536000/);

    const cfg = path.join(dir, 'conflicts.json');
    writeFileSync(
      cfg,
      JSON.stringify({
        conflict_resolution: {
          default_strategy: 'source_wins',
          table_strategies: { chat: { strategy: 'merge', merge_rules: { messages: 'append' } } },
        },
      }),
    );
    const setCfg = await syncctl(['client', 'conflicts-config', 'acme-corp', cfg], { env: svc() });
    expect(setCfg.code, setCfg.stderr).toBe(0);
    row = (await q("SELECT * FROM sync_metadata.client_deployments WHERE client_name='acme-corp'"))[0];
    expect(row.conflict_strategy).toBe('source_wins');
    expect(row.conflict_config.table_strategies.chat.merge_rules).toEqual({ messages: 'append' });
    writeFileSync(cfg, JSON.stringify({ default_strategy: 'merge_everything' }));
    const badCfg = await syncctl(['client', 'conflicts-config', 'acme-corp', cfg], { env: svc() });
    expect(badCfg.code).toBe(1);
    expect(badCfg.stderr).toMatch(/default_strategy/);

    const status = await syncctl(['client', 'status', 'acme-corp', '--json'], { env: svc() });
    expect(status.json()).toMatchObject({
      client_name: 'acme-corp',
      sync_enabled: false,
      status: 'paused',
      sync_interval: 3600,
      last_sync_at: null,
      unresolved_conflicts: 0,
    });
    const human = await syncctl(['client', 'status', 'acme-corp'], { env: svc() });
    expect(human.stdout).toMatch(/Sync Enabled: no\n\s+Status: paused\n\s+Interval: 3600s/);
    expect(human.stdout).toMatch(/Next Sync: not scheduled \(sync disabled\)/);

    await seedTenant(db.current.adminUrl, { cluster: 'c1', client: 'beta', enabled: true });
    await seedTenant(db.current.adminUrl, { cluster: 'other', client: 'elsewhere', enabled: true });
    const list = await syncctl(['clients', '--json'], { env: svc() });
    expect((list.json() as { clients: { client_name: string }[] }).clients.map((c) => c.client_name)).toEqual([
      'acme-corp',
      'beta',
    ]);
    const table = await syncctl(['clients'], { env: svc() });
    expect(table.stdout).toMatch(/CLIENT\s+ENABLED\s+STATUS\s+INTERVAL\s+LAST SYNC\s+LAST STATUS\s+LAG/);
    expect(table.stdout).toMatch(/beta\s+yes\s+active/);

    const asJson = await syncctl(['client', 'start', 'nobody', '--json'], { env: svc() });
    expect(asJson.code).toBe(1);
    expect(asJson.json()).toMatchObject({ error: { code: 'NOT_FOUND', message: expect.stringMatching(/nobody/) } });
    const missing = await syncctl(['client', 'start', 'nobody'], { env: svc() });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/not registered in cluster "c1".*syncctl clients/);
    const wrongCluster = await syncctl(['client', 'status', 'elsewhere'], { env: admin() });
    expect(wrongCluster.stderr).toMatch(/belongs to cluster "other".*--cluster other/);
    const hostile = await syncctl(['client', 'start', 'a"; drop schema x; --'], { env: svc() });
    expect(hostile.code).toBe(1);
    expect(hostile.stderr).toMatch(/not allowed/);
  });

  it('deregister keeps the data by default and deletes it only after confirmation with --drop-schema', async () => {
    await seedTenant(db.current.adminUrl, { cluster: 'c1', client: 'gone' });
    await q('CREATE SCHEMA client_gone; CREATE TABLE client_gone.chat (id text PRIMARY KEY)');
    const keep = await syncctl(['client', 'deregister', 'gone'], { env: admin() });
    expect(keep.code, keep.stderr).toBe(0);
    expect(keep.stdout).toMatch(/data kept in schema client_gone/);
    expect(await q("SELECT 1 FROM sync_metadata.client_deployments WHERE client_name='gone'")).toHaveLength(0);
    expect(await q("SELECT 1 FROM pg_namespace WHERE nspname='client_gone'")).toHaveLength(1);

    await seedTenant(db.current.adminUrl, { cluster: 'c1', client: 'gone' });
    // No terminal and no --yes: refuses and changes nothing.
    const refused = await syncctl(['client', 'deregister', 'gone', '--drop-schema'], { env: admin() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/cannot be undone/);
    expect(refused.stderr).toMatch(/--yes/);
    // Wrong name typed: cancelled.
    const wrong = await syncctl(['client', 'deregister', 'gone', '--drop-schema'], {
      env: admin(),
      input: 'gon\n',
      interactive: true,
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/Cancelled/);
    expect(await q("SELECT 1 FROM pg_namespace WHERE nspname='client_gone'")).toHaveLength(1);
    expect(await q("SELECT 1 FROM sync_metadata.client_deployments WHERE client_name='gone'")).toHaveLength(1);
    // The name typed: registration and schema gone.
    const typed = await syncctl(['client', 'deregister', 'gone', '--drop-schema'], {
      env: admin(),
      input: 'gone\n',
      interactive: true,
    });
    expect(typed.code, typed.stderr).toBe(0);
    expect(typed.stdout).toMatch(/Schema client_gone and all its data deleted/);
    expect(await q("SELECT 1 FROM pg_namespace WHERE nspname='client_gone'")).toHaveLength(0);
    expect(await q("SELECT 1 FROM sync_metadata.client_deployments WHERE client_name='gone'")).toHaveLength(0);

    // Service role only: deregistration needs the admin connection and says so.
    await seedTenant(db.current.adminUrl, { cluster: 'c1', client: 'gone' });
    const noAdmin = await syncctl(['client', 'deregister', 'gone', '--yes'], { env: svc(), cwd: dir + '/none' });
    expect(noAdmin.code).toBe(1);
    expect(noAdmin.stderr).toMatch(/ADMIN_URL not set/);
  });

  it('jobs and conflicts list what the seeds’ queries show, filtered by tenant', async () => {
    const { deploymentId } = await seedTenant(db.current.adminUrl, { cluster: 'c1', client: 'jobsy' });
    await q(
      `INSERT INTO sync_metadata.sync_jobs (deployment_id, client_name, status, sync_type, triggered_by, rows_synced,
                                             duration_seconds, started_at)
       SELECT $1, 'jobsy', 'success', 'full', 'manual-console', 100 + g, 1.5, now() - make_interval(mins => g)
         FROM generate_series(1, 12) g`,
      [deploymentId],
    );
    await q(
      `INSERT INTO sync_metadata.conflict_log (client_id, deployment_id, table_name, row_key, resolution_strategy, resolution)
       VALUES ('jobsy', $1, 'chat', '{"id":"c1"}', 'manual', 'pending')`,
      [deploymentId],
    );
    const jobs = await syncctl(['jobs'], { env: svc() });
    expect(jobs.code).toBe(0);
    expect(jobs.stdout).toMatch(/Client\s+Started\s+Status\s+Type\s+By\s+Rows\s+Duration/);
    expect(jobs.stdout).toMatch(/jobsy\s+\S+ \S+\s+success\s+full\s+manual-console\s+101\s+1\.5s/);
    expect(jobs.stdout.trim().split('\n')).toHaveLength(12); // header, rule, 10 rows
    const limited = await syncctl(['jobs', '--client', 'jobsy', '--limit', '3', '--json'], { env: svc() });
    expect((limited.json() as { jobs: unknown[] }).jobs).toHaveLength(3);
    const failedOnly = await syncctl(['jobs', '--status', 'failed'], { env: svc() });
    expect(failedOnly.stdout).toMatch(/No sync jobs yet/);
    const badStatus = await syncctl(['jobs', '--status', 'broken'], { env: svc() });
    expect(badStatus.stderr).toMatch(/--status "broken" is not one of pending, running, success, failed, conflict/);
    const none = await syncctl(['jobs', '--client', 'acme-corp'], { env: svc() });
    expect(none.stdout).toMatch(/No sync jobs yet/);

    const conflicts = await syncctl(['conflicts', '--client', 'jobsy'], { env: svc() });
    expect(conflicts.stdout).toMatch(/jobsy\s+chat\s+\{"id":"c1"\}\s+update_update\s+manual/);
    expect(conflicts.stdout).toMatch(/syncctl conflicts resolve ID --keep source\|target/);
  });

  it('cluster status shows nodes, leader and heartbeat age', async () => {
    const { hostId } = await seedTenant(db.current.adminUrl, { cluster: 'c2', client: 'c2-tenant', node: 'node-a' });
    await seedTenant(db.current.adminUrl, { cluster: 'c2', client: 'c2-other', node: 'node-b' });
    await q(
      `INSERT INTO sync_metadata.leader_election (cluster_name, leader_id, leader_host_id, epoch, expires_at)
       VALUES ('c2', 'node-a', $1, 3, now() + interval '60 seconds')`,
      [hostId],
    );
    const s = await syncctl(['cluster', 'status', '--cluster', 'c2'], { env: svc() });
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toMatch(/Leader: node-a \(epoch 3/);
    expect(s.stdout).toMatch(/node-a\s+h1\s+node\s+online\s+leader/);
    expect(s.stdout).toMatch(/node-b\s+h1\s+node\s+online\s+follower/);
    const j = (await syncctl(['cluster', 'status', '--cluster', 'c2', '--json'], { env: svc() })).json() as {
      leader: { leader_id: string; lease_valid: boolean };
      nodes: unknown[];
    };
    expect(j.leader).toMatchObject({ leader_id: 'node-a', lease_valid: true });
    expect(j.nodes).toHaveLength(2);
  });

  it('cluster deregister blocks on sync-enabled tenants, then deletes everything after confirmation', async () => {
    const cluster = 'doomed';
    const env = { ADMIN_URL: db.current.adminUrl, CLUSTER_NAME: cluster };
    const a = await seedTenant(db.current.adminUrl, { cluster, client: 'live-one', enabled: true });
    await seedTenant(db.current.adminUrl, { cluster, client: 'sleeper', status: 'paused' });
    await seedTenant(db.current.adminUrl, { cluster: 'survivor', client: 'survivor-tenant', enabled: true });
    await q(
      `INSERT INTO sync_metadata.leader_election (cluster_name, leader_id, leader_host_id, expires_at)
       VALUES ($1, 'node-a', $2, now() + interval '60 seconds')`,
      [cluster, a.hostId],
    );

    const blocked = await syncctl(['cluster', 'deregister', '--yes'], { env });
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toMatch(/CRITICAL WARNING: ACTIVE SYNC CLIENTS DETECTED/);
    expect(blocked.stderr).toMatch(/Cannot deregister cluster: 1 client\(s\) have sync ENABLED/);
    expect(blocked.stderr).toMatch(/│ live-one\s+│ openwebui-live-one\s+│ -\s+│ -\s+│/);
    expect(blocked.stderr).toMatch(/Option 1: Disable sync[\s\S]*Option 2: Migrate[\s\S]*Option 3: Decommission/);
    expect(blocked.stderr).toMatch(/Deregistration blocked due to active sync clients/);
    expect(await q('SELECT 1 FROM sync_metadata.hosts WHERE cluster_name = $1', [cluster])).toHaveLength(1);
    const blockedJson = await syncctl(['cluster', 'deregister', '--json'], { env });
    expect(blockedJson.json()).toMatchObject({ blocked: true, sync_enabled: [{ client_name: 'live-one' }] });

    expect((await syncctl(['client', 'pause', 'live-one'], { env })).code).toBe(0);
    // Interactive "no": nothing happens.
    const no = await syncctl(['cluster', 'deregister'], { env, input: 'no\n', interactive: true });
    expect(no.code).toBe(1);
    expect(no.stderr).toMatch(/Safety check passed/);
    expect(no.stderr).toMatch(/Found 2 client deployment\(s\) registered \(sync disabled\): live-one, sleeper/);
    expect(no.stderr).toMatch(/Client deployment records \(via CASCADE\) - 2 client\(s\)/);
    expect(no.stdout).toMatch(/Are you sure you want to deregister this cluster\? \(yes\/no\): Cancelled/);
    expect(await q('SELECT 1 FROM sync_metadata.hosts WHERE cluster_name = $1', [cluster])).toHaveLength(1);

    const yes = await syncctl(['cluster', 'deregister'], { env, input: 'yes\n', interactive: true });
    expect(yes.code, yes.stderr).toBe(0);
    expect(yes.stdout).toMatch(/1 host\(s\) and 2 client deployment\(s\) deleted/);
    expect(yes.stdout).toMatch(/Verified: no hosts/);
    expect(await q('SELECT 1 FROM sync_metadata.hosts WHERE cluster_name = $1', [cluster])).toHaveLength(0);
    expect(await q('SELECT 1 FROM sync_metadata.leader_election WHERE cluster_name = $1', [cluster])).toHaveLength(0);
    expect(
      await q("SELECT 1 FROM sync_metadata.client_deployments WHERE client_name IN ('live-one', 'sleeper')"),
    ).toHaveLength(0);
    // Another cluster is untouched.
    expect(
      await q("SELECT 1 FROM sync_metadata.client_deployments WHERE client_name = 'survivor-tenant'"),
    ).toHaveLength(1);
  });

  it('the installed bin prints help, exit codes and what to do when nothing is configured', async () => {
    const help = await exec(process.execPath, [BIN, 'client', 'deregister', '--help']);
    expect(help.stdout).toMatch(/--drop-schema/);
    // npm links the workspace bin, so `npx syncctl` works from the checkout.
    const viaNpx = await exec('npx', ['--no-install', 'syncctl', '--version']);
    expect(viaNpx.stdout).toMatch(/^syncctl \d+\.\d+\.\d+/);
    const failure = await exec(process.execPath, [BIN, 'clients'], {
      cwd: dir + '/..',
      env: { PATH: process.env.PATH ?? '' },
    }).catch((e: { code: number; stderr: string }) => e);
    expect(failure).toMatchObject({ code: 1 });
    expect((failure as { stderr: string }).stderr).toMatch(/DATABASE_URL not set: source \.credentials/);
    const badUrl = await syncctl(['clients', '--database-url', 'db.example.com'], { env: {} });
    expect(badUrl.stderr).toMatch(/DATABASE_URL is not a valid postgresql:\/\/ connection URL \(URL-encode/);
    // Service credentials through a URL with an encoded password work too.
    const enc = withUser(db.current.adminUrl, db.current.serviceRole, inject('pg').servicePassword);
    const ok = await exec(process.execPath, [BIN, 'clients', '--database-url', enc, '--cluster', 'nobody-here'], {
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'silent' },
    });
    expect(ok.stdout).toMatch(/No tenants registered in cluster "nobody-here"/);
    expect(readFileSync(BIN, 'utf8')).toMatch(/tsx\/esm\/api/);
  });
});
