import type { Command } from '../command.ts';
import { confirmTyped } from '../confirm.ts';
import { age, duration, interval, table, timestamp } from '../format.ts';
import {
  describeRemoval,
  deregisterTenant,
  listTenants,
  parseInterval,
  readConflictConfig,
  setConflictConfig,
  setSyncInterval,
  setSyncEnabled,
  tenantStatus,
  type TenantStatus,
} from '../ops/tenants.ts';

const NAME = { name: 'NAME', required: true, description: 'tenant (client) name, e.g. acme-corp' } as const;

export const clientStartCommand: Command = {
  path: ['client', 'start'],
  summary: 'enable (resume) automatic syncing of a registered tenant',
  description:
    'Sets sync_enabled = true and status = active. The leader schedules the tenant on its next tick; no sync is\n' +
    'started now (use syncctl client sync NAME for that).',
  positionals: [NAME],
  examples: ['syncctl client start acme-corp'],
  async run(ctx, { positionals }) {
    const name = positionals[0] as string;
    const r = await setSyncEnabled(ctx.readPool().pool, ctx.cluster, name, true);
    ctx.result(r, () =>
      r.changed
        ? `✅ Sync enabled for "${name}" (status active); the scheduler picks it up on its next tick.`
        : `ℹ️  Sync was already enabled for "${name}" (status active); nothing changed.`,
    );
  },
};

export const clientPauseCommand: Command = {
  path: ['client', 'pause'],
  summary: 'pause automatic syncing (keeps registration, schema and data)',
  description:
    'Sets sync_enabled = false and status = paused. Nothing is deleted: not the Supabase data, not the registration,\n' +
    'not the container or its SQLite file. Resume with: syncctl client start NAME',
  positionals: [NAME],
  examples: ['syncctl client pause acme-corp'],
  async run(ctx, { positionals }) {
    const name = positionals[0] as string;
    const r = await setSyncEnabled(ctx.readPool().pool, ctx.cluster, name, false);
    ctx.result(r, () =>
      r.changed
        ? `⏸️  Sync paused for "${name}"; data and registration are kept. Resume with: syncctl client start ${name}`
        : `ℹ️  Sync was already paused for "${name}"; nothing changed.`,
    );
  },
};

export function statusLines(s: TenantStatus): string[] {
  return [
    `Client: ${s.client_name}`,
    `  Sync Enabled: ${s.sync_enabled ? 'yes' : 'no'}`,
    `  Status: ${s.status}`,
    `  Interval: ${interval(s.sync_interval)}`,
    `  Last Sync: ${timestamp(s.last_sync_at)}${s.last_sync_at ? ` (${age(s.lag_seconds)})` : ''}`,
    `  Last Status: ${s.last_sync_status ?? '-'}`,
    `  Next Sync: ${
      !s.sync_enabled
        ? 'not scheduled (sync disabled)'
        : s.next_sync_at
          ? timestamp(s.next_sync_at)
          : 'on the next scheduler tick'
    }`,
    `  Last Job: ${
      s.last_job_id
        ? `${s.last_job_status} ${s.last_job_type} by ${s.last_job_triggered_by} at ${timestamp(s.last_job_started_at)}, ` +
          `${s.last_job_rows_synced ?? 0} rows, ${duration(s.last_job_duration_seconds)}`
        : 'none yet'
    }`,
    `  Unresolved Conflicts: ${s.unresolved_conflicts}`,
    `  Conflict Strategy: ${s.conflict_strategy ?? '-'}`,
    `  Schema: ${s.schema_name}`,
    `  SQLite: ${s.sqlite_path ?? '-'}`,
    `  Container: ${s.container_name ?? '-'}`,
  ];
}

export const clientStatusCommand: Command = {
  path: ['client', 'status'],
  summary: 'show one tenant: enabled, status, interval, last sync, last status, lag',
  positionals: [NAME],
  examples: ['syncctl client status acme-corp', 'syncctl client status acme-corp --json'],
  async run(ctx, { positionals }) {
    const s = await tenantStatus(ctx.readPool().pool, ctx.cluster, positionals[0] as string);
    ctx.result(s, () => statusLines(s).join('\n'));
  },
};

export const clientsCommand: Command = {
  path: ['clients'],
  summary: 'list every tenant of the cluster with its sync state and lag',
  examples: ['syncctl clients', 'syncctl clients --json'],
  async run(ctx) {
    const rows = await listTenants(ctx.readPool().pool, ctx.cluster);
    ctx.result({ cluster_name: ctx.cluster, clients: rows }, () =>
      rows.length === 0
        ? `No tenants registered in cluster "${ctx.cluster}". Register one: syncctl client register NAME --sqlite PATH`
        : table(rows, [
            { header: 'CLIENT', value: (r) => r.client_name },
            { header: 'ENABLED', value: (r) => (r.sync_enabled ? 'yes' : 'no') },
            { header: 'STATUS', value: (r) => r.status },
            { header: 'INTERVAL', value: (r) => `${r.sync_interval}s`, align: 'right' },
            { header: 'LAST SYNC', value: (r) => timestamp(r.last_sync_at) },
            { header: 'LAST STATUS', value: (r) => r.last_sync_status ?? '-' },
            { header: 'LAG', value: (r) => (r.lag_seconds === null ? '-' : duration(r.lag_seconds)), align: 'right' },
            { header: 'CONFLICTS', value: (r) => String(r.unresolved_conflicts), align: 'right' },
          ]),
    );
  },
};

export const clientIntervalCommand: Command = {
  path: ['client', 'interval'],
  summary: 'change how often the scheduler syncs a tenant',
  positionals: [NAME, { name: 'SECONDS', required: true, description: 'e.g. 60, 300, 3600, 86400' }],
  examples: ['syncctl client interval acme-corp 3600'],
  async run(ctx, { positionals }) {
    const seconds = parseInterval(positionals[1] as string);
    const r = await setSyncInterval(ctx.readPool().pool, ctx.cluster, positionals[0] as string, seconds);
    ctx.result(r, () => `✅ "${r.client_name}" now syncs every ${interval(seconds)} (was ${interval(r.previous)}).`);
  },
};

export const clientConflictsConfigCommand: Command = {
  path: ['client', 'conflicts-config'],
  summary: 'set a tenant’s conflict-resolution strategy from a JSON file',
  description:
    'FILE follows conflict-resolution.json: {"default_strategy": …, "table_strategies": {TABLE: {"strategy": …}}},\n' +
    'optionally wrapped in {"conflict_resolution": …}. Strategies: newest_wins, source_wins, target_wins, merge\n' +
    '(with merge_rules append|newest_wins|union), manual. Applies from the next sync.',
  positionals: [NAME, { name: 'FILE', required: true, description: 'conflict-resolution JSON file' }],
  examples: ['syncctl client conflicts-config acme-corp config/conflict-resolution.json'],
  async run(ctx, { positionals }) {
    const config = readConflictConfig(positionals[1] as string);
    const r = await setConflictConfig(ctx.readPool().pool, ctx.cluster, positionals[0] as string, config);
    ctx.result(r, () => {
      const tables = Object.entries(config.table_strategies);
      return [
        `✅ Conflict strategy for "${r.client_name}": default ${config.default_strategy}`,
        ...tables.map(([t, s]) => `   ${t}: ${s.strategy}${s.merge_rules ? ` ${JSON.stringify(s.merge_rules)}` : ''}`),
        'Applies from the next sync.',
      ].join('\n');
    });
  },
};

export const clientDeregisterCommand: Command = {
  path: ['client', 'deregister'],
  summary: 'remove a tenant’s registration; --drop-schema also deletes its Supabase data',
  description:
    'Removes the tenant from sync_metadata.client_deployments (with its job, progress and conflict history). The\n' +
    'container and its SQLite file are not touched. With --drop-schema the tenant schema and ALL its backed-up data\n' +
    'are deleted as well, after you type the tenant name (or pass --yes). This cannot be undone.',
  positionals: [NAME],
  options: {
    'drop-schema': { type: 'boolean', description: 'also DROP the tenant schema and every row in it' },
    yes: { type: 'boolean', short: 'y', description: 'do not ask for confirmation' },
  },
  examples: ['syncctl client deregister chat-test', 'syncctl client deregister chat-test --drop-schema'],
  async run(ctx, { positionals, values }) {
    const name = positionals[0] as string;
    const dropSchema = Boolean(values['drop-schema']);
    const pool = ctx.pool('admin');
    const facts = await describeRemoval(pool, ctx.cluster, name);
    if (dropSchema) {
      if (!ctx.json) {
        ctx.err(
          [
            `⚠️  WARNING: --drop-schema DELETES ALL DATA of "${name}" in PostgreSQL: schema ${facts.schema_name}` +
              (facts.schema_exists ? ` (${facts.tables} tables)` : ' (does not exist)'),
            '   This cannot be undone. The container and its SQLite file are not touched.',
          ].join('\n'),
        );
      }
      if (facts.running > 0 && !ctx.json) ctx.err(`⚠️  A sync of "${name}" is running right now; it will fail.`);
      const ok = await confirmTyped(ctx, {
        question: `Type the client name (${name}) to delete its data: `,
        expected: name,
        yes: Boolean(values.yes),
        flagHint: `syncctl client deregister ${name} --drop-schema`,
      });
      if (!ok) {
        ctx.result({ client_name: name, cancelled: true }, () => 'Cancelled: nothing was changed.');
        return 1;
      }
    }
    const r = await deregisterTenant(pool, ctx.cluster, name, { dropSchema });
    ctx.result(r, () =>
      [
        r.deregistered
          ? `✅ "${name}" deregistered (${r.jobs_removed} job records removed` +
            `${r.queued_jobs_removed ? `, ${r.queued_jobs_removed} queued sync cancelled` : ''}).`
          : `ℹ️  "${name}" was not registered.`,
        r.schema_dropped
          ? `✅ Schema ${r.schema_name} and all its data deleted.`
          : r.schema_exists
            ? `ℹ️  Supabase data kept in schema ${r.schema_name}. Delete it later with: syncctl client deregister ${name} --drop-schema`
            : '',
        'The container and its SQLite file were not touched.',
      ]
        .filter(Boolean)
        .join('\n'),
    );
  },
};
