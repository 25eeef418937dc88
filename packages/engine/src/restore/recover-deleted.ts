import type pg from 'pg';
import { qualified, quoteIdent } from '@owui-sync/schema';
import { applyScope, type DbScope } from '../db.ts';
import { InvalidInputError, NotFoundError } from '../errors.ts';
import { keyExpression } from '../sync/table-plan.ts';
import { tenantSchemaName } from '../sync/tenant-ddl.ts';
import { findUser, type RecoveredUser } from './recover.ts';
import { openRecoverSource, type RecoverSource } from './recover-rows.ts';

export type DeletedRow = {
  table: string;
  /** The row's key as the backup records it (composite keys joined with U+001F). */
  key: string;
  deletedAt: string;
  /** The owner (`user_id`, or the id of a deleted `user` row) and their e-mail address, where the table has one. */
  userId: string | null;
  email: string | null;
  /** A chat's title (table `chat`). */
  title: string | null;
};

export type DeletedListing = {
  clientName: string;
  user: RecoveredUser | null;
  table: string;
  /** Deleted (tombstoned) rows per table — of the user's tables only when a user is given. */
  counts: { table: string; deleted: number }[];
  /** The table's deleted rows, most recently deleted first, at most `limit`. */
  rows: DeletedRow[];
  /** More rows exist than `limit`. */
  truncated: boolean;
};

/**
 * What can be recovered: rows deleted in the source but kept in the backup as tombstones, with when they were
 * deleted — by default the deleted chats (with title and owner), optionally of one user and of another table.
 * Read in one read-only snapshot.
 */
export async function listDeleted(opts: {
  pool: pg.Pool;
  clientName: string;
  user?: string | null;
  table?: string | null;
  limit?: number;
  scope?: DbScope;
}): Promise<DeletedListing> {
  tenantSchemaName(opts.clientName);
  if (opts.user?.includes('\u0000')) throw new InvalidInputError('a user id or e-mail must not contain U+0000');
  const table = opts.table ?? 'chat';
  const limit = opts.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new InvalidInputError(`limit must be a whole number from 1 to 10000, got ${String(opts.limit)}`);
  }
  const client = await opts.pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await applyScope(client, opts.scope ?? {});
    const source = await openRecoverSource(client, opts.clientName);
    if (!source.tables.has(table)) {
      throw new NotFoundError(
        `tenant "${opts.clientName}" has no table "${table}" in its backup; tables: ${[...source.tables.keys()].sort().join(', ')}`,
      );
    }
    const user = opts.user?.trim() ? await findUser(client, source, opts.clientName, opts.user.trim(), null) : null;
    const counts = await deletedCounts(client, source, user?.id ?? null);
    const rows = await deletedRows(client, source, table, user?.id ?? null, limit + 1);
    await client.query('COMMIT');
    return {
      clientName: opts.clientName,
      user,
      table,
      counts,
      rows: rows.slice(0, limit),
      truncated: rows.length > limit,
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** The column naming a row's owner: `user_id`, or `id` in `user` and `auth`; null when the table has none. */
function ownerColumn(source: RecoverSource, table: string): string | null {
  if (table === 'user' || table === 'auth') return 'id';
  return source.tables.get(table)?.columns.some((c) => c.name === 'user_id') ? 'user_id' : null;
}

async function deletedCounts(
  client: pg.ClientBase,
  source: RecoverSource,
  userId: string | null,
): Promise<{ table: string; deleted: number }[]> {
  const res = await client.query<{ table_name: string; n: string }>(
    `SELECT table_name, count(*) AS n FROM sync_state.row_state
      WHERE deployment_id = $1::uuid AND deleted_at IS NOT NULL GROUP BY table_name ORDER BY table_name`,
    [source.dep.deploymentId],
  );
  if (userId === null) return res.rows.map((r) => ({ table: r.table_name, deleted: Number(r.n) }));
  const out: { table: string; deleted: number }[] = [];
  for (const r of res.rows) {
    const t = source.tables.get(r.table_name);
    const owner = ownerColumn(source, r.table_name);
    if (!t || !owner || t.key.length === 0) continue;
    const n = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM sync_state.row_state r JOIN ${qualified(source.dep.schemaName, r.table_name)} t
           ON r.row_key = ${keyExpression('t', t.key)}
        WHERE r.deployment_id = $1::uuid AND r.table_name = $2::text AND r.deleted_at IS NOT NULL
          AND t.${quoteIdent(owner)}::text = $3::text`,
      [source.dep.deploymentId, r.table_name, userId],
    );
    const deleted = Number(n.rows[0]?.n ?? 0);
    if (deleted > 0) out.push({ table: r.table_name, deleted });
  }
  return out;
}

async function deletedRows(
  client: pg.ClientBase,
  source: RecoverSource,
  table: string,
  userId: string | null,
  limit: number,
): Promise<DeletedRow[]> {
  const t = source.tables.get(table);
  if (!t || t.key.length === 0) return [];
  const owner = ownerColumn(source, table);
  if (userId !== null && !owner) {
    throw new InvalidInputError(`table "${table}" has no user_id column, so its rows cannot be listed per user`);
  }
  const hasTitle = table === 'chat' && t.columns.some((c) => c.name === 'title');
  const users = source.tables.get('user');
  const joinUser = owner !== null && users?.columns.some((c) => c.name === 'email');
  const res = await client.query<{
    row_key: string;
    deleted_at: Date;
    user_id: string | null;
    email: string | null;
    title: string | null;
  }>(
    `SELECT r.row_key, r.deleted_at,
            ${owner ? `t.${quoteIdent(owner)}::text` : 'NULL::text'} AS user_id,
            ${joinUser ? 'u.email::text' : 'NULL::text'} AS email,
            ${hasTitle ? 't.title::text' : 'NULL::text'} AS title
       FROM sync_state.row_state r
       JOIN ${qualified(source.dep.schemaName, table)} t ON r.row_key = ${keyExpression('t', t.key)}
       ${joinUser ? `LEFT JOIN ${qualified(source.dep.schemaName, 'user')} u ON u.id::text = t.${quoteIdent(owner as string)}::text` : ''}
      WHERE r.deployment_id = $1::uuid AND r.table_name = $2::text AND r.deleted_at IS NOT NULL
        ${userId !== null ? `AND t.${quoteIdent(owner as string)}::text = $4::text` : 'AND $4::text IS NULL'}
      ORDER BY r.deleted_at DESC, r.row_key LIMIT $3::int`,
    [source.dep.deploymentId, table, limit, userId],
  );
  return res.rows.map((r) => ({
    table,
    key: r.row_key,
    deletedAt: r.deleted_at.toISOString(),
    userId: r.user_id,
    email: r.email,
    title: r.title,
  }));
}
