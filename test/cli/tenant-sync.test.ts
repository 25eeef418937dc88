import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase, withConnection } from '../support/db.ts';
import { makeTenantDb, syncctl } from './support.ts';

/** register / --enable / sync / conflicts resolve / --via-queue / --drop-schema against the real engine. */
describe('syncctl tenant registration and manual syncs', () => {
  const db = useTestDatabase();
  const scratchRoot = mkdtempSync(path.join(tmpdir(), 'syncctl-tenant-'));
  const scratch = { file: (name: string) => path.join(scratchRoot, name) };
  afterAll(() => rmSync(scratchRoot, { recursive: true, force: true }));
  const cluster = 'tenants';
  const env = () => ({
    ADMIN_URL: db.current.adminUrl,
    DATABASE_URL: db.current.serviceUrl,
    CLUSTER_NAME: cluster,
    DOCKER_HOST: 'unix:///nonexistent/docker.sock',
  });
  const q = async (sql: string, params: unknown[] = []) =>
    withConnection(db.current.adminUrl, async (c) => (await c.query(sql, params)).rows);

  it('register creates schema and tables, records the tenant disabled, and refuses it twice', async () => {
    const file = scratch.file('acme.db');
    makeTenantDb(file, 5);
    const r = await syncctl(['client', 'register', 'acme', '--sqlite', file, '--interval', '120'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/is an Open WebUI database/);
    expect(r.stderr).toMatch(/Created schema client_acme/);
    expect(r.stdout).toMatch(/new admin host row for this machine/);
    const dep = (await q("SELECT * FROM sync_metadata.client_deployments WHERE client_name = 'acme'"))[0];
    expect(dep).toMatchObject({ sync_enabled: false, status: 'registered', sync_interval: 120, sqlite_path: file });
    const host = (
      await q('SELECT role, node_name, cluster_name FROM sync_metadata.hosts WHERE host_id = $1', [dep.host_id])
    )[0];
    expect(host).toEqual({ role: 'admin', node_name: 'syncctl', cluster_name: cluster });
    const tables = await q("SELECT tablename FROM pg_tables WHERE schemaname = 'client_acme' ORDER BY 1");
    expect(tables.map((t) => t.tablename)).toEqual(expect.arrayContaining(['auth', 'chat', 'user']));

    const again = await syncctl(['client', 'register', 'acme', '--sqlite', file], { env: env() });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/Client already registered: "acme".*syncctl client start acme/s);

    const notOwui = scratch.file('other.db');
    const other = new Database(notOwui);
    other.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY)');
    other.close();
    const bad = await syncctl(['client', 'register', 'notes', '--sqlite', notOwui], { env: env() });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/not an Open WebUI one/);
    const missing = await syncctl(['client', 'register', 'ghost', '--sqlite', scratch.file('nope.db')], { env: env() });
    expect(missing.code).toBe(1);
    expect(await q("SELECT 1 FROM sync_metadata.client_deployments WHERE client_name IN ('notes', 'ghost')")).toEqual(
      [],
    );
  });

  it('manual sync copies the rows, records who triggered it, and exit code 2 flags manual conflicts', async () => {
    const file = scratch.file('acme.db');
    const full = await syncctl(['client', 'sync', 'acme', '--full', '--json'], { env: env() });
    expect(full.code, full.stdout + full.stderr).toBe(0);
    expect(full.json()).toMatchObject({ client: 'acme', status: 'success', syncType: 'full', exitCode: 0 });
    expect((await q('SELECT count(*)::int AS n FROM client_acme.chat'))[0].n).toBe(5);
    const human = await syncctl(['client', 'sync', 'acme', 'alice'], { env: env() });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/incremental sync of "acme" success: \d+ rows synced/);
    const jobs = await q(
      "SELECT triggered_by, sync_type, status FROM sync_metadata.sync_jobs WHERE client_name = 'acme' ORDER BY started_at",
    );
    expect(jobs).toEqual([
      { triggered_by: 'manual', sync_type: 'full', status: 'success' },
      { triggered_by: 'alice', sync_type: 'incremental', status: 'success' },
    ]);

    // Both sides change the same chat; with the manual strategy it waits for a person.
    const cfg = scratch.file('manual.json');
    writeFileSync(cfg, JSON.stringify({ default_strategy: 'manual' }));
    expect((await syncctl(['client', 'conflicts-config', 'acme', cfg], { env: env() })).code).toBe(0);
    const chatId = (await q('SELECT id FROM client_acme.chat ORDER BY id LIMIT 1'))[0].id as string;
    await q("UPDATE client_acme.chat SET title = 'edited in postgres' WHERE id = $1", [chatId]);
    const sqlite = new Database(file);
    sqlite
      .prepare("UPDATE chat SET title = 'edited in sqlite', updated_at = updated_at + 1000 WHERE id = ?")
      .run(chatId);
    sqlite.close();
    const conflicted = await syncctl(['client', 'sync', 'acme'], { env: env() });
    expect(conflicted.code, conflicted.stdout + conflicted.stderr).toBe(2);
    expect(conflicted.stdout).toMatch(/1 unresolved/);
    expect(conflicted.stdout).toMatch(/syncctl conflicts resolve ID/);

    const list = await syncctl(['conflicts', '--client', 'acme', '--json'], { env: env() });
    const conflicts = (list.json() as { conflicts: { log_id: number; table_name: string }[] }).conflicts;
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]?.table_name).toBe('chat');
    const id = String(conflicts[0]?.log_id);
    const noKeep = await syncctl(['conflicts', 'resolve', id], { env: env() });
    expect(noKeep.code).toBe(1);
    expect(noKeep.stderr).toMatch(/--keep source .* or --keep target/);
    const resolved = await syncctl(['conflicts', 'resolve', id, '--keep', 'source', '--by', 'ops-alice'], {
      env: env(),
    });
    expect(resolved.code, resolved.stderr).toBe(0);
    expect(resolved.stdout).toMatch(/resolved: kept source/);
    expect((await q('SELECT title FROM client_acme.chat WHERE id = $1', [chatId]))[0].title).toBe('edited in sqlite');
    expect((await q('SELECT resolved_by FROM sync_metadata.conflict_log WHERE log_id = $1', [id]))[0].resolved_by).toBe(
      'ops-alice',
    );
    const twice = await syncctl(['conflicts', 'resolve', id, '--keep', 'target'], { env: env() });
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/already resolved/);
  });

  it('a paused tenant is not synced by hand unless forced; --via-queue enqueues and coalesces', async () => {
    expect((await syncctl(['client', 'pause', 'acme'], { env: env() })).code).toBe(0);
    const refused = await syncctl(['client', 'sync', 'acme'], { env: env() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/has sync paused; run: syncctl client start acme/);
    expect((await syncctl(['client', 'start', 'acme'], { env: env() })).code).toBe(0);
    const first = await syncctl(['client', 'sync', 'acme', '--via-queue', '--full', '--json'], { env: env() });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const a = first.json() as { status: string; job_id: string; coalesced: boolean };
    expect(a).toMatchObject({ status: 'queued', coalesced: false });
    const second = await syncctl(['client', 'sync', 'acme', '--via-queue'], { env: env() });
    expect(second.stdout).toMatch(new RegExp(`already queued \\(job ${a.job_id}\\)`));
    const queued = await q(
      "SELECT data->>'triggered_by' AS by FROM pgboss.job WHERE name = 'owui-sync' AND singleton_key = 'acme'",
    );
    expect(queued).toEqual([{ by: 'manual' }]);
  });

  it('register --enable needs a live leader, keeps an existing schema’s data, then enables sync', async () => {
    const file = scratch.file('beta.db');
    makeTenantDb(file, 3);
    await q(
      'CREATE SCHEMA client_beta; CREATE TABLE client_beta.keepme (id int); INSERT INTO client_beta.keepme VALUES (7)',
    );
    const noLeader = await syncctl(['client', 'register', 'beta', '--sqlite', file, '--enable'], { env: env() });
    expect(noLeader.code).toBe(1);
    expect(noLeader.stderr).toMatch(/has no live leader.*syncctl cluster status/s);
    const host = (await q('SELECT host_id FROM sync_metadata.hosts WHERE cluster_name = $1', [cluster]))[0].host_id;
    await q(
      `INSERT INTO sync_metadata.leader_election (cluster_name, leader_id, leader_host_id, expires_at)
       VALUES ($1, 'node-a@h', $2, now() + interval '60 seconds')`,
      [cluster, host],
    );
    // With a Docker socket, the container must be running.
    const socketPath = scratch.file('docker.sock');
    const docker = http.createServer((req, res) => {
      if (req.url === '/containers/openwebui-beta/json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ State: { Running: false, Status: 'exited' } }));
      } else {
        res.writeHead(404).end('{"message":"No such container"}');
      }
    });
    await new Promise<void>((resolve) => docker.listen(socketPath, resolve));
    try {
      const stopped = await syncctl(['client', 'register', 'beta', '--sqlite', file, '--enable'], {
        env: { ...env(), DOCKER_HOST: `unix://${socketPath}` },
      });
      expect(stopped.code).toBe(1);
      expect(stopped.stderr).toMatch(
        /container openwebui-beta is not running \(exited\); start it \(docker start openwebui-beta\)/,
      );
      const absent = await syncctl(
        ['client', 'register', 'beta', '--sqlite', file, '--enable', '--container', 'gone'],
        {
          env: { ...env(), DOCKER_HOST: `unix://${socketPath}` },
        },
      );
      expect(absent.stderr).toMatch(/container gone is not found/);
    } finally {
      docker.close();
    }
    const ok = await syncctl(['client', 'register', 'beta', '--sqlite', file, '--enable'], { env: env() });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/live leader/);
    expect(ok.stderr).toMatch(/Container check skipped \(no Docker socket/);
    expect(ok.stderr).toMatch(
      /Schema client_beta already exists with 1 tables: existing tables and data are left untouched/,
    );
    expect((await q('SELECT id FROM client_beta.keepme'))[0].id).toBe(7);
    expect(
      (await q("SELECT sync_enabled, status FROM sync_metadata.client_deployments WHERE client_name = 'beta'"))[0],
    ).toEqual({
      sync_enabled: true,
      status: 'active',
    });
  });

  it('the console menu works through a terminal: status, pause, start, jobs, manual sync, remove', async () => {
    const gamma = scratch.file('gamma.db');
    makeTenantDb(gamma, 2);
    const steps: [string, string][] = [
      ['Select option (1-9): ', '1\n'],
      ['Enter client name: ', 'gamma\n'],
      ['Container name [openwebui-gamma]: ', '\n'],
      ['SQLite path [', `${gamma}\n`],
      ['Press Enter to continue...', '\n'],
      ['Select option (1-9): ', '6\n'],
      ['Enter client name: ', 'beta\n'],
      ['Press Enter to continue...', '\n'],
      ['Select option (1-9): ', '3\n'],
      ['Enter client name: ', 'beta\n'],
      ['Press Enter to continue...', '\n'],
      ['Select option (1-9): ', '5\n'],
      ['Enter client name: ', 'acme\n'],
      ['Press Enter to continue...', '\n'],
      ['Select option (1-9): ', '4\n'],
      ['Enter client name: ', 'acme\n'],
      ['Press Enter to continue...', '\n'],
      ['Select option (1-9): ', '7\n'],
      ['Press Enter to continue...', '\n'],
      ['Select option (1-9): ', '2\n'],
      ['Enter client name: ', 'nobody\n'],
      ['Press Enter to continue...', '\n'],
      ['Select option (1-9): ', '8\n'],
      ['Enter client name: ', 'beta\n'],
      ['Delete schema and data? (y/N): ', 'y\n'],
      ['to confirm: ', 'beta\n'],
      ['Press Enter to continue...', '\n'],
      ['Select option (1-9): ', '0\n'],
      ['Invalid option', ''],
      ['Select option (1-9): ', '9\n'],
    ];
    const { execFile } = await import('node:child_process');
    const transcript = await new Promise<string>((resolve, reject) => {
      execFile(
        'python3',
        [
          path.resolve('test/cli/pty-driver.py'),
          JSON.stringify(steps),
          '--',
          process.execPath,
          path.resolve('apps/cli/bin/syncctl.js'),
          'menu',
        ],
        { env: { ...process.env, ...env(), LOG_LEVEL: 'silent' }, timeout: 120_000 },
        (error, stdout) => (error ? reject(new Error(`${error.message}\n${stdout}`)) : resolve(stdout)),
      );
    });
    expect(transcript).toMatch(/Sync Client Management Console/);
    expect(transcript).toMatch(/Registered "gamma" \(schema client_gamma\); sync enabled/);
    expect(
      await q("SELECT container_name, sync_enabled FROM sync_metadata.client_deployments WHERE client_name = 'gamma'"),
    ).toEqual([{ container_name: 'openwebui-gamma', sync_enabled: true }]);
    expect(transcript).toMatch(/Client: beta\r?\n\s+Sync Enabled: yes\r?\n\s+Status: active/);
    expect(transcript).toMatch(/Sync paused for "beta"/);
    expect(transcript).toMatch(/incremental sync of "acme" success/);
    // On a terminal a manual sync draws a progress bar per table.
    expect(transcript).toMatch(/\[\s*\d+\/\d+\] chat\s+[█░]+/);
    expect(transcript).toMatch(/full sync of "acme" success/);
    expect(transcript).toMatch(/Client\s+Started\s+Status\s+Type\s+By\s+Rows\s+Duration/);
    expect(transcript).toMatch(/acme\s+\S+ \S+\s+success\s+incremental\s+manual-console/);
    expect(transcript).toMatch(/ERROR: client "nobody" is not registered/);
    expect(transcript).toMatch(/"beta" removed; schema client_beta and its data deleted/);
    expect(transcript).toMatch(/Goodbye!/);
    expect(await q("SELECT 1 FROM sync_metadata.client_deployments WHERE client_name = 'beta'")).toEqual([]);
    expect(await q("SELECT 1 FROM pg_namespace WHERE nspname = 'client_beta'")).toEqual([]);
    expect(
      await q("SELECT 1 FROM sync_metadata.sync_jobs WHERE client_name = 'acme' AND triggered_by = 'manual-console'"),
    ).toHaveLength(2);
  });

  it('deregister --drop-schema --yes removes the tenant and its data', async () => {
    const r = await syncctl(['client', 'deregister', 'acme', '--drop-schema', '--yes'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/DELETES ALL DATA/);
    expect(r.stdout).toMatch(/1 queued sync cancelled/);
    expect(
      await q("SELECT 1 FROM pgboss.job WHERE name = 'owui-sync' AND singleton_key = 'acme' AND state = 'created'"),
    ).toEqual([]);
    expect(await q("SELECT 1 FROM pg_namespace WHERE nspname = 'client_acme'")).toEqual([]);
    expect(await q("SELECT 1 FROM sync_metadata.client_deployments WHERE client_name = 'acme'")).toEqual([]);
  });
});
