import { InvalidInputError } from '@owui-sync/engine';
import type { Command } from '../command.ts';
import { duration, table, timestamp } from '../format.ts';
import { listConflicts, recentJobs, type JobRow } from '../ops/history.ts';

const JOB_STATUSES = ['pending', 'running', 'success', 'failed', 'conflict'];

export function parseLimit(value: string | boolean | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) {
    throw new InvalidInputError(`--limit "${String(value)}" must be a whole number from 1 to 10000`);
  }
  return n;
}

export function jobsTable(rows: readonly JobRow[]): string {
  return table(rows, [
    { header: 'Client', value: (r) => r.client_name },
    { header: 'Started', value: (r) => timestamp(r.started_at) },
    { header: 'Status', value: (r) => r.status },
    { header: 'Type', value: (r) => r.sync_type },
    { header: 'By', value: (r) => r.triggered_by },
    { header: 'Rows', value: (r) => String(r.rows_synced ?? 0), align: 'right' },
    { header: 'Duration', value: (r) => duration(r.duration_seconds), align: 'right' },
  ]);
}

export const jobsCommand: Command = {
  path: ['jobs'],
  summary: 'recent sync jobs: client, started, status, type, by, rows, duration',
  options: {
    client: { type: 'string', placeholder: 'NAME', description: 'only this tenant' },
    status: {
      type: 'string',
      placeholder: 'STATUS',
      description: 'only jobs in this state: pending, running, success, failed, conflict',
    },
    limit: { type: 'string', placeholder: 'N', description: 'how many (default 10)' },
  },
  examples: ['syncctl jobs', 'syncctl jobs --client acme-corp --limit 50 --json', 'syncctl jobs --status failed'],
  async run(ctx, { values }) {
    const status = values.status as string | undefined;
    if (status !== undefined && !JOB_STATUSES.includes(status)) {
      throw new InvalidInputError(`--status "${status}" is not one of ${JOB_STATUSES.join(', ')}`);
    }
    const rows = await recentJobs(ctx.readPool().pool, ctx.cluster, {
      client: values.client as string | undefined,
      status,
      limit: parseLimit(values.limit, 10),
    });
    ctx.result({ cluster_name: ctx.cluster, jobs: rows }, () => {
      if (rows.length === 0) return 'No sync jobs yet.';
      const failed = rows.filter((r) => r.status === 'failed' && r.error);
      return [
        jobsTable(rows),
        ...(failed.length
          ? ['', 'Errors:', ...failed.map((r) => `  ${r.client_name} ${timestamp(r.started_at)}: ${r.error}`)]
          : []),
      ].join('\n');
    });
  },
};

export const conflictsCommand: Command = {
  path: ['conflicts'],
  summary: 'unresolved conflicts (rows changed on both sides); resolve with: syncctl conflicts resolve ID',
  options: {
    client: { type: 'string', placeholder: 'NAME', description: 'only this tenant' },
    limit: { type: 'string', placeholder: 'N', description: 'how many (default 50)' },
    all: { type: 'boolean', description: 'include resolved conflicts' },
    data: { type: 'boolean', description: 'include both row versions (JSON output)' },
  },
  examples: ['syncctl conflicts', 'syncctl conflicts --client acme-corp --json --data'],
  async run(ctx, { values }) {
    const rows = await listConflicts(ctx.readPool().pool, ctx.cluster, {
      client: values.client as string | undefined,
      limit: parseLimit(values.limit, 50),
      includeResolved: Boolean(values.all),
      withData: Boolean(values.data),
    });
    ctx.result({ cluster_name: ctx.cluster, conflicts: rows }, () =>
      rows.length === 0
        ? `No ${values.all ? '' : 'unresolved '}conflicts.`
        : [
            table(rows, [
              { header: 'ID', value: (r) => String(r.log_id), align: 'right' },
              { header: 'Client', value: (r) => r.client_id },
              { header: 'Table', value: (r) => r.table_name },
              { header: 'Row', value: (r) => JSON.stringify(r.row_key) },
              { header: 'Type', value: (r) => r.conflict_type },
              { header: 'Strategy', value: (r) => r.resolution_strategy },
              { header: 'Detected', value: (r) => timestamp(r.detected_at) },
              { header: 'Resolved', value: (r) => (r.resolved_at ? `${r.resolution} by ${r.resolved_by}` : '-') },
            ]),
            '',
            'Resolve one: syncctl conflicts resolve ID --keep source|target',
          ].join('\n'),
    );
  },
};
