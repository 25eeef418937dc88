/**
 * The capacity benchmark's fleet: its database, role and SQLite files, provisioned fast and optionally kept for the
 * next run (`--reuse`), and swept when a killed run left them behind.
 *
 * Provisioning the real way (provisionTenant: each tenant's 43 tables, indexes and grants in one transaction, with
 * a read of the target schema first) costs 0.25–0.6 s a tenant and slows as the catalog grows. The benchmark runs
 * it once per kind of tenant, takes that schema's DDL with pg_dump, and creates every other tenant of the kind from
 * it with the schema name replaced: a batch of tenants per transaction, one round trip each.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { provisionTenant, tenantSchemaName } from '../packages/engine/src/sync/index.ts';
import { quoteIdent } from '../packages/schema/src/index.ts';

export type TenantKind = 'small' | 'big' | 'failing';
export type Tenant = { readonly name: string; readonly file: string; readonly kind: TenantKind };

/** Names a run's disposable objects carry: the pid tells a later run whether their owner is still alive. */
export const DB_PREFIX = 'owui_bench_capacity_';
export const ROLE_PREFIX = 'owui_bench_svc_';
export const DIR_PREFIX = 'owui-bench-capacity-';

export function withDb(url: string, db: string, user?: { name: string; password: string }): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  if (user) {
    u.username = user.name;
    u.password = user.password;
  }
  return u.toString();
}

export async function admin(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

/**
 * Processes (the node and worker processes a killed run started) whose DATABASE_URL points at `database`: they
 * outlive their parent and keep retrying a database that is about to go.
 */
function processesOf(database: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      const url = env.find((v) => v.startsWith('DATABASE_URL='));
      if (url && new URL(url.slice('DATABASE_URL='.length)).pathname === `/${database}`) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/**
 * Drops databases and roles and removes directories of earlier runs whose process is gone (killed before it
 * cleaned up), after stopping the node and worker processes such a run left running. Kept (`--reuse`) fleets are
 * named without a pid and never swept. Returns what was removed.
 */
export async function sweepStale(adminUrl: string): Promise<string[]> {
  const removed: string[] = [];
  const owner = (name: string, prefix: string) => {
    const m = new RegExp(`^${prefix}(\\d+)_`).exec(name);
    return m ? Number(m[1]) : null;
  };
  const dbs = await admin(adminUrl, 'SELECT datname FROM pg_database WHERE datname LIKE $1', [`${DB_PREFIX}%`]);
  for (const { datname } of dbs.rows as { datname: string }[]) {
    const pid = owner(datname, DB_PREFIX);
    if (pid === null || alive(pid)) continue;
    for (const orphan of processesOf(datname)) {
      process.kill(orphan, 'SIGKILL');
      removed.push(`process ${orphan} of ${datname}`);
    }
    await admin(adminUrl, `DROP DATABASE IF EXISTS ${quoteIdent(datname)} WITH (FORCE)`);
    removed.push(`database ${datname}`);
  }
  const roles = await admin(adminUrl, 'SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [`${ROLE_PREFIX}%`]);
  for (const { rolname } of roles.rows as { rolname: string }[]) {
    const pid = owner(rolname, ROLE_PREFIX);
    if (pid === null || alive(pid)) continue;
    // A role still owning objects in another database cannot go; leave it for the next sweep.
    await admin(adminUrl, `DROP ROLE IF EXISTS ${quoteIdent(rolname)}`).then(
      () => removed.push(`role ${rolname}`),
      () => undefined,
    );
  }
  for (const entry of readdirSync(os.tmpdir())) {
    const m = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(entry);
    if (!m || alive(Number(m[1]))) continue;
    rmSync(path.join(os.tmpdir(), entry), { recursive: true, force: true });
    removed.push(`directory ${entry}`);
  }
  return removed;
}

/** Where a fleet lives: fresh (removed at the end) or kept for `--reuse` runs of the same size. */
export type FleetPlace = {
  readonly dbName: string;
  readonly role: { name: string; password: string };
  readonly dir: string;
  readonly reuse: boolean;
};

type KeptState = { password: string; tenants: number; big: number; failing: number; ready: boolean };

export function fleetPlace(opts: { tenants: number; big: number; failing: number; reuse: boolean }): FleetPlace & {
  /** True when a kept fleet of this shape exists and finished its warm-up. */
  readonly kept: boolean;
} {
  if (!opts.reuse) {
    const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
    const dir = path.join(os.tmpdir(), `${DIR_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`);
    mkdirSync(dir);
    return {
      dbName: `${DB_PREFIX}${suffix}`,
      role: { name: `${ROLE_PREFIX}${suffix}`, password: randomBytes(12).toString('hex') },
      dir,
      reuse: false,
      kept: false,
    };
  }
  const tag = `reuse_${opts.tenants}_${opts.big}_${opts.failing}`;
  const dir = path.join(os.tmpdir(), `${DIR_PREFIX}${tag}`);
  const stateFile = path.join(dir, 'state.json');
  let state: KeptState | undefined;
  if (existsSync(stateFile)) state = JSON.parse(readFileSync(stateFile, 'utf8')) as KeptState;
  if (!state?.ready) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    state = { password: randomBytes(12).toString('hex'), ...opts, ready: false };
    writeFileSync(stateFile, JSON.stringify(state));
  }
  return {
    dbName: `${DB_PREFIX}${tag}`,
    role: { name: `${ROLE_PREFIX}${tag}`, password: state.password },
    dir,
    reuse: true,
    kept: state.ready,
  };
}

/** Marks a kept fleet as warmed up, so the next `--reuse` run starts from it. */
export function markKeptReady(place: FleetPlace): void {
  const stateFile = path.join(place.dir, 'state.json');
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as KeptState;
  writeFileSync(stateFile, JSON.stringify({ ...state, ready: true }));
}

/** The tenants of a fleet of this shape (the same names and files every time). */
export function fleetTenants(dir: string, tenants: number, big: number, failing: number): Tenant[] {
  const all: Tenant[] = [];
  for (let i = 1; i <= tenants; i += 1) {
    const kind: TenantKind = i <= big ? 'big' : i <= big + failing ? 'failing' : 'small';
    const name = `${kind === 'small' ? 't' : kind}${i}`;
    all.push({ name, file: path.join(dir, `${name}.db`), kind });
  }
  return all;
}

/** The statements pg_dump gives for one tenant's schema (tables, keys, indexes, foreign keys, grants). */
function schemaDdl(adminUrl: string, schemaName: string): string {
  const ddl = execFileSync('pg_dump', ['--schema-only', '--no-owner', '-n', schemaName, adminUrl], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  // Session settings of the dump (search_path '' etc.) would leak into the pooled connection: keep only DDL.
  return ddl
    .split('\n')
    .filter((l) => !/^(SET |SELECT pg_catalog\.set_config|--|\\)/.test(l))
    .join('\n');
}

export type ProvisionFigures = { readonly seconds: number; readonly batches: number };

/**
 * Copies each kind's template file for every tenant, provisions one tenant per kind with provisionTenant and the
 * rest from its dumped DDL (`batch` tenants per transaction, `concurrency` transactions at once), and registers them
 * all with sync interval `interval`.
 */
export async function provisionFleet(opts: {
  adminUrl: string;
  adminPool: pg.Pool;
  serviceRole: string;
  tenants: readonly Tenant[];
  templates: Record<TenantKind, string>;
  cluster: string;
  host: string;
  interval: number;
  batch: number;
  concurrency: number;
  progress?: (done: number) => void;
}): Promise<ProvisionFigures> {
  const started = performance.now();
  for (const t of opts.tenants) copyFileSync(opts.templates[t.kind], t.file);
  await opts.adminPool.query(
    `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
     VALUES (sync_metadata.host_identity($1, $2, 'node-a'), $2, $1, 'node-a') ON CONFLICT (host_id) DO NOTHING`,
    [opts.cluster, opts.host],
  );
  const ddl = new Map<TenantKind, { schema: string; text: string }>();
  const rest: Tenant[] = [];
  for (const t of opts.tenants) {
    if (ddl.has(t.kind)) {
      rest.push(t);
      continue;
    }
    await provisionTenant({
      adminPool: opts.adminPool,
      clientName: t.name,
      sqlitePath: t.file,
      serviceRole: opts.serviceRole,
    });
    const schema = tenantSchemaName(t.name);
    ddl.set(t.kind, { schema, text: schemaDdl(opts.adminUrl, schema) });
  }
  const batches: Tenant[][] = [];
  for (let i = 0; i < rest.length; i += opts.batch) batches.push(rest.slice(i, i + opts.batch));
  let next = 0;
  let done = opts.tenants.length - rest.length;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        const sql = batch
          .map((t) => {
            const { schema, text } = ddl.get(t.kind)!;
            return text.replace(new RegExp(`\\b${schema}\\b`, 'g'), tenantSchemaName(t.name));
          })
          .join('\n');
        const client = await opts.adminPool.connect();
        try {
          await client.query(`BEGIN;\n${sql}\nCOMMIT;`);
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        } finally {
          client.release();
        }
        done += batch.length;
        opts.progress?.(done);
      }
    }),
  );
  await opts.adminPool.query(
    `INSERT INTO sync_metadata.client_deployments
       (client_name, host_id, sqlite_path, schema_name, sync_enabled, status, sync_interval)
     SELECT t.name, sync_metadata.host_identity($4, $5, 'node-a'), t.file, t.schema, true, 'active', $6
       FROM unnest($1::text[], $2::text[], $3::text[]) AS t(name, file, schema)`,
    [
      opts.tenants.map((t) => t.name),
      opts.tenants.map((t) => t.file),
      opts.tenants.map((t) => tenantSchemaName(t.name)),
      opts.cluster,
      opts.host,
      opts.interval,
    ],
  );
  return { seconds: (performance.now() - started) / 1000, batches: batches.length };
}

/** Private (unshared) memory of a process in bytes: what one PostgreSQL backend adds on its own. */
function privateBytes(pid: number): number {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(rollup)?.[1] ?? 0) * 1024;
    return kb('Private_Clean') + kb('Private_Dirty');
  } catch {
    return NaN;
  }
}

export type RelcacheProbe = { readonly tenants: number; readonly startBytes: number; readonly endBytes: number };

/**
 * How a backend's memory grows with the tenants it touches: one new service-role connection plans a query on
 * every table of `tenants` tenants (planning opens each table and its indexes, as a sync does) and its backend's
 * private memory is read before and after. The slope is the relation cache per touched tenant.
 */
export async function relcacheProbe(serviceUrl: string, schemas: readonly string[]): Promise<RelcacheProbe> {
  const client = new pg.Client({ connectionString: serviceUrl });
  await client.connect();
  try {
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const tables = await client.query<{ schemaname: string; tablename: string }>(
      'SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY($1::text[])',
      [schemas],
    );
    const startBytes = privateBytes(pid);
    const bySchema = new Map<string, string[]>();
    for (const t of tables.rows) {
      const list = bySchema.get(t.schemaname) ?? [];
      list.push(`SELECT * FROM ${quoteIdent(t.schemaname)}.${quoteIdent(t.tablename)} LIMIT 0`);
      bySchema.set(t.schemaname, list);
    }
    for (const statements of bySchema.values()) await client.query(statements.join('; '));
    return { tenants: bySchema.size, startBytes, endBytes: privateBytes(pid) };
  } finally {
    await client.end();
  }
}
