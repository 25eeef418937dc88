import type pg from 'pg';
import type { Logger } from 'pino';
import { applyScope, type DbScope } from '../db.ts';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors.ts';
import { silentLogger } from '../logger.ts';
import { tenantSchemaName } from '../sync/tenant-ddl.ts';
import { chatExportFile, chatExportItem, isSkipped, type ChatExportItem, type SkippedChat } from './chat-export.ts';
import { checkOutputPath, writeFileAtomically } from './recover-files.ts';
import { openRecoverSource, rowValue, selectTenantRows, type RecoverSource, type TenantRows } from './recover-rows.ts';
import { writeUserSqlite, type UserSqliteResult } from './recover-sqlite.ts';

export type RecoverOptions = {
  /** Service (or admin) pool; the backup is read in one read-only, repeatable-read snapshot. */
  pool: pg.Pool;
  clientName: string;
  /** The user's e-mail address (any case) or id. */
  user: string;
  /** Recover the tenant as of this time (only the current backup is available). */
  at?: Date | null;
  /** Only chats deleted in the source (tombstoned in the backup). */
  deletedOnly?: boolean;
  /** Only these chats (ids) of the user. */
  chatIds?: readonly string[];
  /** Write the export (Open WebUI's chat export JSON) to this file. */
  out?: string;
  /** Also write a SQLite file with only the user's rows. */
  sqlite?: string;
  /** Include the user's `auth` row (the password hash) in the SQLite file. */
  includeAuth?: boolean;
  /** Replace existing output files. */
  force?: boolean;
  scope?: DbScope;
  logger?: Logger;
};

export type RecoveredUser = {
  id: string;
  email: string | null;
  name: string | null;
  /** When the user's account was deleted in the source (null: it still exists). */
  deletedAt: string | null;
};

export type RecoverResult = {
  clientName: string;
  user: RecoveredUser;
  /** The chats in the export, newest change first. */
  chats: { id: string; title: string; updatedAt: number | null; deletedAt: string | null }[];
  /** Chats of the user that matched but cannot be imported (with why). */
  skipped: SkippedChat[];
  /** The export file's text (a JSON array Open WebUI imports). */
  exportJson: string;
  /** Where the export was written, when `out` was given. */
  path: string | null;
  sqlite: UserSqliteResult | null;
  /** The Open WebUI schema revision (alembic_version) of the backup; the importing instance should run it or newer. */
  openwebuiRevision: string | null;
  warnings: string[];
  durationSeconds: number;
};

/**
 * Selective recovery of one user's chats from a tenant's backup, as a file Open WebUI imports itself: every chat of
 * the user the backup holds — live and deleted in the source (tombstoned) — or only the deleted ones, or named
 * ones; optionally also a SQLite file with just that user's rows. The user is found by id or e-mail even when the
 * account itself was deleted. Nothing is written to the tenant's database: only to the files named.
 */
export async function recoverUserChats(opts: RecoverOptions): Promise<RecoverResult> {
  const started = performance.now();
  const logger = opts.logger ?? silentLogger();
  tenantSchemaName(opts.clientName);
  const wanted = opts.user.trim();
  if (!wanted) throw new InvalidInputError('say whose chats to recover: --user EMAIL or --user ID');
  for (const v of [wanted, ...(opts.chatIds ?? [])]) {
    if (v.includes('\u0000')) throw new InvalidInputError('a user or chat id must not contain U+0000');
  }
  const at = opts.at ?? null;
  const client = await opts.pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await applyScope(client, opts.scope ?? {});
    const source = await openRecoverSource(client, opts.clientName);
    const live = source.dep.sqlitePath ? [source.dep.sqlitePath] : [];
    const out = opts.out
      ? checkOutputPath(opts.out, { force: Boolean(opts.force), livePaths: live, what: 'the export' })
      : null;
    const sqlitePath = opts.sqlite
      ? checkOutputPath(opts.sqlite, { force: Boolean(opts.force), livePaths: live, what: 'the SQLite file' })
      : null;
    if (out && sqlitePath && out === sqlitePath) {
      throw new InvalidInputError('the export and the SQLite file must be different files');
    }
    if (!source.tables.has('chat')) {
      throw new ConflictError(
        `tenant "${opts.clientName}" has no chat table in its backup; run a sync first: syncctl client sync ${opts.clientName}`,
      );
    }
    const user = await findUser(client, source, opts.clientName, wanted, at);
    const chats = await selectTenantRows(
      client,
      source,
      'chat',
      { anyOf: [{ column: 'user_id', values: [user.id] }] },
      { at },
    );
    const picked = pickChats(chats, opts, user);
    const items: ChatExportItem[] = [];
    const skipped: SkippedChat[] = [];
    for (const row of picked) {
      const item = chatExportItem(chats, row);
      if (isSkipped(item)) skipped.push(item);
      else items.push(item);
    }
    items.sort((a, b) => (b.updatedAt ?? 0) - (a.updatedAt ?? 0) || a.id.localeCompare(b.id));
    const warnings = skipped.map((s) => `chat ${s.id} left out: ${s.reason}`);
    if (picked.length === 0) {
      warnings.push(
        `no chats of ${user.email ?? user.id} matched${opts.deletedOnly ? ' (none of their chats was deleted)' : ''}; ` +
          'the export is an empty list',
      );
    }
    const revision = await alembicRevision(client, source, at);
    const exportJson = chatExportFile(items);
    let sqlite: UserSqliteResult | null = null;
    if (sqlitePath) {
      const chatIds = picked.map((r) => String(rowValue(chats, r, 'id')));
      sqlite = await writeUserSqlite(client, source, {
        to: sqlitePath,
        userId: user.id,
        chats,
        chatIds,
        includeAuth: Boolean(opts.includeAuth),
        at,
      });
      warnings.push(...sqlite.warnings);
    }
    await client.query('COMMIT');
    if (out) writeFileAtomically(out, exportJson);
    for (const w of warnings) logger.warn({ client: opts.clientName }, w);
    logger.info({ client: opts.clientName, user: user.id, chats: items.length }, 'recovered chats');
    return {
      clientName: opts.clientName,
      user,
      chats: items.map((i) => ({
        id: i.id,
        title: i.title,
        updatedAt: i.updatedAt,
        deletedAt: i.deletedAt?.toISOString() ?? null,
      })),
      skipped,
      exportJson,
      path: out,
      sqlite,
      openwebuiRevision: revision,
      warnings,
      durationSeconds: (performance.now() - started) / 1000,
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

function pickChats(chats: TenantRows, opts: RecoverOptions, user: RecoveredUser): TenantRows['rows'] {
  let rows = chats.rows;
  if (opts.chatIds && opts.chatIds.length > 0) {
    const ids = new Set(opts.chatIds);
    rows = rows.filter((r) => ids.has(String(rowValue(chats, r, 'id'))));
    const found = new Set(rows.map((r) => String(rowValue(chats, r, 'id'))));
    const unknown = [...ids].filter((id) => !found.has(id));
    if (unknown.length > 0) {
      throw new NotFoundError(
        `no chat ${unknown.map((id) => `"${id}"`).join(', ')} of user ${user.email ?? user.id} in the backup; ` +
          `list the user's deleted chats with: syncctl deleted NAME --user ${user.email ?? user.id}`,
      );
    }
  }
  if (opts.deletedOnly) rows = rows.filter((r) => r.deletedAt !== null);
  return rows;
}

/**
 * The user by id, else by e-mail address (case-insensitive), among live and deleted accounts. Several accounts
 * with the address (one deleted, one created again) must be told apart by id.
 */
export async function findUser(
  client: pg.ClientBase,
  source: RecoverSource,
  clientName: string,
  wanted: string,
  at: Date | null,
): Promise<RecoveredUser> {
  const rows = await selectTenantRows(
    client,
    source,
    'user',
    {
      anyOf: [
        { column: 'id', values: [wanted] },
        { column: 'email', values: [wanted], caseless: true },
      ],
    },
    { at, columns: ['id', 'email', 'name'] },
  );
  const users = rows.rows.map((r) => ({
    id: String(rowValue(rows, r, 'id')),
    email: (rowValue(rows, r, 'email') as string | null | undefined) ?? null,
    name: (rowValue(rows, r, 'name') as string | null | undefined) ?? null,
    deletedAt: r.deletedAt?.toISOString() ?? null,
  }));
  const byId = users.find((u) => u.id === wanted);
  if (byId) return byId;
  if (users.length === 0) {
    throw new NotFoundError(
      `no user with id or e-mail "${wanted}" in the backup of tenant "${clientName}" (deleted accounts included)`,
    );
  }
  if (users.length > 1) {
    const list = users.map((u) => `${u.id}${u.deletedAt ? ` (deleted ${u.deletedAt})` : ''}`).join(', ');
    throw new ConflictError(`${users.length} accounts have the e-mail "${wanted}": ${list}; name one by its id`, {
      users,
    });
  }
  return users[0] as RecoveredUser;
}

async function alembicRevision(client: pg.ClientBase, source: RecoverSource, at: Date | null): Promise<string | null> {
  const rows = await selectTenantRows(client, source, 'alembic_version', 'all', { at, columns: ['version_num'] });
  const live = rows.rows.find((r) => r.deletedAt === null) ?? rows.rows[0];
  return live ? String(live.values[0]) : null;
}

export { type ChatExportItem, type SkippedChat } from './chat-export.ts';
