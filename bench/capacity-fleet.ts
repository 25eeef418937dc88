// Stays whole (over 400 lines): provisioning, warm-up by copy, reuse and sweeping all act on one fleet layout (database, role, files) whose names they share.
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
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { withTransaction } from '@owui-sync/engine';
import { provisionTenant, runTenantSync, sourceFingerprint, tenantSchemaName } from '@owui-sync/engine/sync';
import { quoteIdent } from '@owui-sync/schema';

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

type KeptState = {
  password: string;
  tenants: number;
  big: number;
  failing: number;
  provisioned?: boolean;
  ready: boolean;
};

export function fleetPlace(opts: { tenants: number; big: number; failing: number; reuse: boolean }): FleetPlace & {
  /** True when a kept fleet of this shape exists and finished its warm-up. */
  readonly kept: boolean;
  /** True when a kept fleet of this shape exists and was provisioned (its warm-up may not have finished). */
  readonly provisioned: boolean;
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
      provisioned: false,
    };
  }
  const tag = `reuse_${opts.tenants}_${opts.big}_${opts.failing}`;
  const dir = path.join(os.tmpdir(), `${DIR_PREFIX}${tag}`);
  const stateFile = path.join(dir, 'state.json');
  let state: KeptState | undefined;
  if (existsSync(stateFile)) state = JSON.parse(readFileSync(stateFile, 'utf8')) as KeptState;
  // A fleet whose provisioning did not finish is provisioned again from scratch.
  if (!state?.ready && !state?.provisioned) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    state = { password: randomBytes(12).toString('hex'), ...opts, provisioned: false, ready: false };
    writeFileSync(stateFile, JSON.stringify(state));
  }
  return {
    dbName: `${DB_PREFIX}${tag}`,
    role: { name: `${ROLE_PREFIX}${tag}`, password: state.password },
    dir,
    reuse: true,
    kept: state.ready,
    provisioned: state.ready || state.provisioned === true,
  };
}

/** Marks a kept fleet as provisioned or warmed up, so the next `--reuse` run starts from there. */
export function markKept(place: FleetPlace, stage: 'provisioned' | 'ready'): void {
  const stateFile = path.join(place.dir, 'state.json');
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as KeptState;
  writeFileSync(stateFile, JSON.stringify({ ...state, provisioned: true, ready: state.ready || stage === 'ready' }));
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

/**
 * Runs `work` over `items` in batches of `batch`, `concurrency` batches at once, and reports how many items are
 * done after each batch. Returns the number of batches.
 */
async function inBatches<T>(
  items: readonly T[],
  opts: { batch: number; concurrency: number; done?: number; progress?: (done: number) => void },
  work: (batch: T[]) => Promise<void>,
): Promise<number> {
  const batches: T[][] = [];
  for (let i = 0; i < items.length; i += opts.batch) batches.push(items.slice(i, i + opts.batch));
  let next = 0;
  let done = opts.done ?? 0;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        await work(batch);
        done += batch.length;
        opts.progress?.(done);
      }
    }),
  );
  return batches.length;
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
  const batches = await inBatches(
    rest,
    {
      batch: opts.batch,
      concurrency: opts.concurrency,
      done: opts.tenants.length - rest.length,
      progress: opts.progress,
    },
    async (batch) => {
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
    },
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
  return { seconds: (performance.now() - started) / 1000, batches };
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

/** The columns of a table, in order, with whether PostgreSQL generates them (identity columns). */
async function columnsOf(pool: pg.Pool, table: string): Promise<{ name: string; type: string; generated: boolean }[]> {
  const [schema, name] = table.split('.');
  const r = await pool.query<{ name: string; type: string; generated: boolean }>(
    `SELECT column_name AS name, data_type AS type, (is_identity = 'YES' OR column_default LIKE 'nextval(%') AS generated
       FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
    [schema, name],
  );
  if (r.rows.length === 0) throw new Error(`warm-up by copy: no table ${table}`);
  return r.rows;
}

/** The per-tenant state a sync leaves, copied for a warmed tenant (sync_jobs first: the others name its jobs). */
const COPIED_STATE = [
  'sync_metadata.sync_jobs',
  'sync_metadata.sync_progress',
  'sync_state.row_state',
  'sync_state.row_history',
  'sync_state.history_runs',
  'sync_state.source_pages',
  'sync_state.source_page_chunks',
  'sync_state.source_cell_chunks',
  'sync_state.source_schema',
  'sync_state.source_schema_versions',
] as const;
const JOB_COLUMNS = new Set(['job_id', 'last_job_id', 'deleted_job_id']);

export type CopyWarmFigures = {
  readonly seconds: number;
  readonly templateSeconds: number;
  readonly tenants: number;
  readonly template: string;
};

/**
 * Warm-up by copy (`--warm copy`), for fleets whose first full syncs would take hours (10 000 tenants at about two
 * a second): one small tenant is synced for real, twice (its full sync, then the run that records what the engine's
 * own first open changed), and every other small tenant that has not synced yet becomes a copy of it: its files
 * (database, WAL, WAL index) byte for byte, its tenant tables' rows, and its sync state (sync_jobs, progress, row
 * state, page state, source schema and history), with its own file identity, fingerprint and real path and its
 * times moved so that its last sync falls at a random point of the last interval, as in a fleet that has run for a
 * while. A copied tenant's next run finds its file unchanged and skips, as it would after a real sync; a change the
 * writer makes is captured from its pages like any other tenant's. `batch` tenants per transaction, `concurrency`
 * transactions at once.
 */
export async function warmByCopy(opts: {
  adminPool: pg.Pool;
  servicePool: pg.Pool;
  hostId: string;
  template: Tenant;
  tenants: readonly Tenant[];
  interval: number;
  batch: number;
  concurrency: number;
  progress?: (done: number) => void;
}): Promise<CopyWarmFigures> {
  const started = performance.now();
  const { adminPool, template } = opts;
  for (const fullSync of [true, false]) {
    const r = await runTenantSync({
      pool: opts.servicePool,
      clientName: template.name,
      scope: { hostId: opts.hostId },
      fullSync,
      triggeredBy: 'benchmark warm-up',
    });
    if (r.status !== 'success')
      throw new Error(`warm-up by copy: ${template.name}'s sync ended ${r.status}: ${r.error}`);
  }
  const templateSeconds = (performance.now() - started) / 1000;
  const tdep = (
    await adminPool.query<{ deployment_id: string; schema_name: string; last_sync_at: Date }>(
      `SELECT deployment_id, schema_name, last_sync_at FROM sync_metadata.client_deployments WHERE client_name = $1`,
      [template.name],
    )
  ).rows[0]!;
  // Only tenants that never synced: a warm-up cut short continues where it stopped.
  const synced = new Set(
    (
      await adminPool.query<{ client_name: string }>(
        `SELECT DISTINCT client_name FROM sync_metadata.sync_jobs WHERE status IN ('success', 'conflict')`,
      )
    ).rows.map((r) => r.client_name),
  );
  const todo = opts.tenants.filter((t) => t.name !== template.name && !synced.has(t.name));
  const tables = (
    await adminPool.query<{ tablename: string }>('SELECT tablename FROM pg_tables WHERE schemaname = $1', [
      tdep.schema_name,
    ])
  ).rows.map((r) => r.tablename);
  // One INSERT … SELECT per state table for a whole batch: the template's rows once per tenant of the batch.
  const stateCopies: string[] = [];
  for (const table of COPIED_STATE) {
    const cols = (await columnsOf(adminPool, table)).filter((c) => !c.generated);
    const values = cols.map((c) => {
      if (c.name === 'deployment_id') return 'w.deployment_id';
      if (table === 'sync_metadata.sync_jobs' && c.name === 'job_id') return 'm.job_id';
      if (table === 'sync_metadata.sync_jobs' && c.name === 'client_name') return 'w.client_name';
      if (table === 'sync_metadata.sync_jobs' && c.name === 'queue_job_id') return 'NULL';
      if (table === 'sync_state.source_pages' && c.name === 'file_id') return 'w.file_id';
      if (JOB_COLUMNS.has(c.name)) {
        return `(SELECT m2.job_id FROM warm_job m2 WHERE m2.deployment_id = w.deployment_id AND m2.template_job = x.${c.name})`;
      }
      if (c.type === 'timestamp with time zone') return `x.${quoteIdent(c.name)} + w.shift`;
      return `x.${quoteIdent(c.name)}`;
    });
    const join =
      table === 'sync_metadata.sync_jobs'
        ? 'JOIN warm_job m ON m.deployment_id = w.deployment_id AND m.template_job = x.job_id'
        : '';
    stateCopies.push(
      `INSERT INTO ${table} (${cols.map((c) => quoteIdent(c.name)).join(', ')})
       SELECT ${values.join(', ')} FROM warm_clone w CROSS JOIN ${table} x ${join}
        WHERE x.deployment_id = '${tdep.deployment_id}'::uuid`,
    );
  }
  await inBatches(
    todo,
    { batch: opts.batch, concurrency: opts.concurrency, progress: opts.progress },
    async (batch) => {
      const clones = batch.map((t) => {
        for (const suffix of ['', '-wal', '-shm']) {
          if (existsSync(template.file + suffix)) copyFileSync(template.file + suffix, t.file + suffix);
          else rmSync(t.file + suffix, { force: true });
        }
        const st = statSync(t.file, { bigint: true });
        return {
          name: t.name,
          fileId: `${st.dev}:${st.ino}`,
          fingerprint: sourceFingerprint(t.file),
          realpath: realpathSync(t.file),
          age: Math.random() * opts.interval,
        };
      });
      await withTransaction(adminPool, async (client) => {
        await client.query(
          `CREATE TEMP TABLE warm_clone ON COMMIT DROP AS
         SELECT d.deployment_id, d.client_name, d.schema_name, c.file_id, c.fingerprint, c.realpath,
                (now() - c.age * interval '1 second') - $6::timestamptz AS shift
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[])
                  AS c(name, file_id, fingerprint, realpath, age)
           JOIN sync_metadata.client_deployments d ON d.client_name = c.name`,
          [
            clones.map((c) => c.name),
            clones.map((c) => c.fileId),
            clones.map((c) => c.fingerprint),
            clones.map((c) => c.realpath),
            clones.map((c) => c.age),
            tdep.last_sync_at,
          ],
        );
        await client.query(
          `CREATE TEMP TABLE warm_job ON COMMIT DROP AS
         SELECT w.deployment_id, j.job_id AS template_job, gen_random_uuid() AS job_id
           FROM warm_clone w CROSS JOIN sync_metadata.sync_jobs j WHERE j.deployment_id = $1::uuid`,
          [tdep.deployment_id],
        );
        const data = batch.flatMap((t) =>
          tables.map(
            (name) =>
              `INSERT INTO ${quoteIdent(tenantSchemaName(t.name))}.${quoteIdent(name)} ` +
              `SELECT * FROM ${quoteIdent(tdep.schema_name)}.${quoteIdent(name)}`,
          ),
        );
        // A copy of a consistent set of rows: foreign keys are not checked table by table while it lands.
        await client.query(
          `SET LOCAL session_replication_role = replica;\n${data.join(';\n')};\nSET LOCAL session_replication_role = origin`,
        );
        for (const sql of stateCopies) await client.query(sql);
        await client.query(
          `UPDATE sync_metadata.client_deployments d
            SET last_sync_at = t.last_sync_at + w.shift, last_sync_status = t.last_sync_status,
                last_full_sync_at = t.last_full_sync_at + w.shift, openwebui_version = t.openwebui_version,
                source_fingerprint = w.fingerprint, sqlite_realpath = w.realpath, next_sync_at = NULL
           FROM warm_clone w, sync_metadata.client_deployments t
          WHERE d.deployment_id = w.deployment_id AND t.deployment_id = $1::uuid`,
          [tdep.deployment_id],
        );
      });
    },
  );
  await adminPool.query('ANALYZE sync_metadata.sync_jobs, sync_metadata.sync_progress, sync_state.row_state');
  return {
    seconds: (performance.now() - started) / 1000,
    templateSeconds,
    tenants: todo.length,
    template: template.name,
  };
}
