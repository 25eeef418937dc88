import type pg from 'pg';
import { errorMessage } from '../errors.ts';
import type { RunContext } from './run-context.ts';
import { encodeKeyValues } from './table-plan.ts';

/**
 * Rows PostgreSQL refuses (bad values, a foreign key to a missing parent): kept in sync_state.failed_rows with the
 * reason, and retried by key on every run until they are written.
 */

/** A row that could not be written in this run. */
export type Failure = { key: string; keyValues: unknown[]; error: string };

/** SQLSTATE classes that mean "this data", not "this run": data exceptions and integrity violations. */
export function isRowError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

export function describeRowError(error: unknown): string {
  const e = error as { message?: string; detail?: string; column?: string; where?: string };
  const parts = [errorMessage(error)];
  if (e.detail) parts.push(e.detail);
  if (e.where && /COPY/.test(e.where)) parts.push(e.where);
  return parts.join(' — ').slice(0, 1000);
}

export async function recordFailures(
  client: pg.ClientBase,
  ctx: RunContext,
  table: string,
  failures: Failure[],
): Promise<void> {
  if (failures.length === 0) return;
  await client.query(
    `INSERT INTO sync_state.failed_rows AS f (deployment_id, table_name, row_key, key_values, error, job_id)
     SELECT $1::uuid, $2::text, k, v, e, $3::uuid FROM unnest($4::text[], $5::text[], $6::text[]) AS x(k, v, e)
     ON CONFLICT (deployment_id, table_name, row_key) DO UPDATE
       SET error = EXCLUDED.error, job_id = EXCLUDED.job_id, attempts = f.attempts + 1, last_failed_at = now(),
           resolved_at = NULL, key_values = EXCLUDED.key_values`,
    [
      ctx.deploymentId,
      table,
      ctx.jobId,
      failures.map((f) => f.key),
      failures.map((f) => encodeKeyValues(f.keyValues)),
      failures.map((f) => f.error.replaceAll('\u0000', '')),
    ],
  );
}
