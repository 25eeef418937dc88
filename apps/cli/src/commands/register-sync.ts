import os from 'node:os';
import { InvalidInputError } from '@owui-sync/engine';
import { resolveConflict } from '@owui-sync/engine/sync';
import type { Command } from '../command.ts';
import type { CliContext } from '../context.ts';
import { duration } from '../format.ts';
import { conflictOwner } from '../ops/history.ts';
import { defaultSqlitePath, registerTenant, type RegisterResult } from '../ops/register.ts';
import { enqueueManualSync, progressPrinter, runManualSync } from '../ops/sync.ts';
import { parseInterval } from '../ops/tenants.ts';

const NAME = { name: 'NAME', required: true, description: 'tenant (client) name, e.g. acme-corp' } as const;

export async function registerFromCli(
  ctx: CliContext,
  args: {
    name: string;
    container?: string | undefined;
    sqlite?: string | undefined;
    interval?: string | undefined;
    enable: boolean;
  },
): Promise<RegisterResult> {
  ctx.assertServiceNotAdmin();
  return registerTenant({
    adminPool: ctx.pool('admin'),
    cluster: ctx.cluster,
    name: args.name,
    containerName: args.container,
    sqlitePath: args.sqlite ?? defaultSqlitePath(args.name, ctx.env),
    intervalSeconds: args.interval === undefined ? undefined : parseInterval(args.interval),
    enable: args.enable,
    serviceRole: ctx.serviceRole,
    env: ctx.env,
    logger: ctx.logger,
    say: (line) => {
      if (!ctx.json) ctx.err(line);
    },
  });
}

export const clientRegisterCommand: Command = {
  path: ['client', 'register'],
  summary: 'create the tenant schema and tables and register it (sync disabled unless --enable)',
  description:
    'Refuses a tenant that is already registered. Checks the SQLite file is an Open WebUI database, creates schema\n' +
    'client_<name> with the Open WebUI tables (an existing schema with tables is left untouched, protecting its data),\n' +
    'grants the service role, and records the deployment on the cluster’s most recent host.\n' +
    'With --enable it first checks the cluster has a live leader and the container runs (when a Docker socket is\n' +
    'available), then enables sync: the scheduler performs the first sync.',
  positionals: [NAME],
  options: {
    container: { type: 'string', placeholder: 'C', description: 'container name (default: openwebui-NAME)' },
    sqlite: {
      type: 'string',
      placeholder: 'PATH',
      description: 'the tenant’s webui.db (default: $TENANTS_DIR/openwebui-NAME-data/_data/webui.db)',
    },
    interval: { type: 'string', placeholder: 'SECONDS', description: 'sync interval (default 300)' },
    enable: { type: 'boolean', description: 'also check the cluster and enable sync' },
  },
  examples: [
    'syncctl client register chat-test --sqlite /srv/openwebui/chat-test/webui.db',
    'syncctl client register acme-corp --container openwebui-acme-corp --enable',
  ],
  async run(ctx, { positionals, values }) {
    const name = positionals[0] as string;
    const r = await registerFromCli(ctx, {
      name,
      container: values.container as string | undefined,
      sqlite: values.sqlite as string | undefined,
      interval: values.interval as string | undefined,
      enable: Boolean(values.enable),
    });
    ctx.result(r, () =>
      [
        `✅ Registered "${name}" on ${r.host.node_name}${r.host.created ? ' (new admin host row for this machine)' : ''}: ` +
          `schema ${r.schema_name}, every ${r.sync_interval}s`,
        r.sync_enabled
          ? '✅ Sync enabled: the scheduler runs the first sync on its next tick. Watch: syncctl client status ' + name
          : `Next: syncctl client start ${name} (automatic syncs) or syncctl client sync ${name} --full (one now)`,
      ].join('\n'),
    );
  },
};

export const clientSyncCommand: Command = {
  path: ['client', 'sync'],
  summary: 'run one sync of a tenant now (progress per table, summary, exit 2 if manual conflicts remain)',
  description:
    'Runs in this process with the service role (DATABASE_URL) and records a sync_jobs row like any scheduled run.\n' +
    'With --via-queue the sync is queued for the cluster’s workers instead (coalescing with a queued one).',
  positionals: [
    NAME,
    { name: 'TRIGGERED_BY', description: 'who asked, as in sync-client-to-supabase.sh (same as --triggered-by)' },
  ],
  options: {
    full: { type: 'boolean', description: 'full sync (default: incremental)' },
    'triggered-by': { type: 'string', placeholder: 'WHO', description: 'recorded in sync_jobs (default: manual)' },
    'via-queue': { type: 'boolean', description: 'enqueue for the workers instead of running here' },
    force: { type: 'boolean', description: 'sync even though the tenant is paused' },
  },
  examples: [
    'syncctl client sync chat-test',
    'syncctl client sync chat-test --full --triggered-by alice',
    'syncctl client sync chat-test scheduler --full',
    'syncctl client sync chat-test --via-queue',
  ],
  async run(ctx, { positionals, values }) {
    return manualSync(ctx, {
      name: positionals[0] as string,
      full: Boolean(values.full),
      triggeredBy: (values['triggered-by'] as string | undefined) ?? positionals[1] ?? 'manual',
      viaQueue: Boolean(values['via-queue']),
      force: Boolean(values.force),
    });
  },
};

export async function manualSync(
  ctx: CliContext,
  o: { name: string; full: boolean; triggeredBy: string; viaQueue: boolean; force: boolean },
): Promise<number> {
  if (o.triggeredBy.length < 1 || o.triggeredBy.length > 200) {
    throw new InvalidInputError('--triggered-by must be 1 to 200 characters');
  }
  // Syncs run as the restricted service role, like the nodes' workers (the seeds' "DATABASE_URL not set" rule).
  const pool = ctx.pool('service');
  if (o.viaQueue) {
    const r = await enqueueManualSync({
      serviceUrl: ctx.serviceUrl(),
      pool,
      cluster: ctx.cluster,
      name: o.name,
      fullSync: o.full,
      triggeredBy: o.triggeredBy,
      force: o.force,
      logger: ctx.logger,
    });
    ctx.result(
      {
        status: 'queued',
        client: r.client_name,
        full_sync: o.full,
        queued_at: r.queuedAt,
        job_id: r.jobId,
        coalesced: r.coalesced,
      },
      () =>
        r.coalesced
          ? `ℹ️  A sync of "${o.name}" was already queued (job ${r.jobId}); this request merged into it.`
          : `✅ Sync of "${o.name}" queued (job ${r.jobId}); follow it with: syncctl jobs --client ${o.name}`,
    );
    return 0;
  }
  const tty = Boolean(ctx.io.stderr.isTTY) && !ctx.json;
  const progress = tty ? progressPrinter(ctx.io.stderr) : undefined;
  if (!ctx.json) ctx.err(`Syncing "${o.name}" (${o.full ? 'full' : 'incremental'}, triggered by ${o.triggeredBy}) …`);
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  let r;
  try {
    r = await runManualSync({
      pool,
      cluster: ctx.cluster,
      name: o.name,
      fullSync: o.full,
      triggeredBy: o.triggeredBy,
      force: o.force,
      batchSize: ctx.config.BATCH_SIZE,
      claimTtlSeconds: ctx.config.SYNC_CLAIM_TTL,
      logger: ctx.logger,
      signal: abort.signal,
      ...(progress ? { onProgress: progress.update } : {}),
    });
  } finally {
    process.off('SIGINT', onSignal);
    progress?.end();
  }
  ctx.result({ client: o.name, ...r }, () => {
    const icon = r.status === 'success' ? '✅' : r.status === 'conflict' ? '⚠️ ' : '❌';
    const lines = [
      `${icon} ${r.syncType} sync of "${o.name}" ${r.status}: ${r.rowsSynced} rows synced, ${r.rowsFailed} failed, ` +
        `${r.rowsDeleted} deleted, ${r.conflictsDetected} conflicts (${r.conflictsUnresolved} unresolved), ${duration(r.durationSeconds)}`,
    ];
    if (r.error) lines.push(`   ${r.error}`);
    if (r.conflictsUnresolved > 0) {
      lines.push(
        `   Review: syncctl conflicts --client ${o.name}; resolve: syncctl conflicts resolve ID --keep source|target`,
      );
    }
    return lines.join('\n');
  });
  return r.exitCode;
}

export const conflictsResolveCommand: Command = {
  path: ['conflicts', 'resolve'],
  summary: 'settle one conflict: keep the source (SQLite) or the target (PostgreSQL) version',
  positionals: [{ name: 'ID', required: true, description: 'conflict log id (see syncctl conflicts)' }],
  options: {
    keep: { type: 'string', placeholder: 'source|target', description: 'which version wins' },
    by: { type: 'string', placeholder: 'WHO', description: 'recorded as resolved_by (default: your user name)' },
  },
  examples: ['syncctl conflicts resolve 42 --keep source'],
  async run(ctx, { positionals, values }) {
    const id = Number(positionals[0]);
    if (!Number.isSafeInteger(id) || id < 1)
      throw new InvalidInputError(`conflict id "${positionals[0]}" is not a number; list them with: syncctl conflicts`);
    const keep = values.keep;
    if (keep !== 'source' && keep !== 'target') {
      throw new InvalidInputError('say which version to keep: --keep source (SQLite) or --keep target (PostgreSQL)');
    }
    const { pool } = ctx.readPool();
    const owner = await conflictOwner(pool, ctx.cluster, id);
    if (!owner) {
      throw new InvalidInputError(
        `conflict ${id} not found in cluster "${ctx.cluster}"; list them with: syncctl conflicts`,
      );
    }
    if (owner.resolved_at) {
      throw new InvalidInputError(
        `conflict ${id} was already resolved; see: syncctl conflicts --all --client ${owner.client_id}`,
      );
    }
    const resolvedBy = (values.by as string | undefined) ?? safeUser();
    const r = await resolveConflict({ pool, scope: { cluster: ctx.cluster }, logId: id, keep, resolvedBy });
    ctx.result(
      { ...r, client: owner.client_id, resolved_by: resolvedBy },
      () => `✅ Conflict ${id} of "${owner.client_id}" resolved: kept ${keep} (${r.resolution}), by ${resolvedBy}.`,
    );
  },
};

function safeUser(): string {
  try {
    return os.userInfo().username || 'syncctl';
  } catch {
    return 'syncctl';
  }
}
