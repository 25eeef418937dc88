import { createRoute, z } from '@hono/zod-openapi';
import { exportFileName, listDeleted, parseRestoreTime, recoverUserChats } from '@owui-sync/engine/restore';
import { reply, type ApiApp, type RouteContext } from '../context.ts';
import { clientName, errorSchema } from '../schemas.ts';
import { commonErrors, json } from './openapi.ts';

/**
 * GET /api/v1/tenants/{name}/deleted (scope read): rows deleted in the source and kept in the backup, by default
 * the deleted chats with title, owner and time. POST /api/v1/tenants/{name}/recover (scope recover): one user's
 * chats as Open WebUI's chat export file, to load through Open WebUI's own import. Both read the backup only.
 * The listing shows chat titles and e-mail addresses, so it needs a token even where other reads are public.
 */

const tenantParams = z.object({ name: clientName });

const noNul = (s: string) => !s.includes('\u0000');

const userRef = z
  .string()
  .trim()
  .min(1)
  .max(320)
  .refine(noNul, 'must not contain U+0000')
  .openapi({ example: 'ada@example.com', description: "the user's e-mail address (any case) or id" });

export const deletedQuerySchema = z.object({
  user: userRef.optional(),
  table: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'a table name')
    .optional()
    .openapi({ example: 'chat', description: 'table whose deleted rows to list (default chat)' }),
  limit: z.coerce.number().int().min(1).max(10_000).default(100).openapi({ example: 100, description: '1–10000' }),
});

const userSchema = z.object({
  id: z.string(),
  email: z.string().nullable(),
  name: z.string().nullable(),
  deleted_at: z.string().nullable().openapi({ description: 'when the account was deleted in the source' }),
});

export const deletedResponseSchema = z
  .object({
    client_name: z.string(),
    user: userSchema.nullable(),
    table: z.string(),
    counts: z.array(z.object({ table: z.string(), deleted: z.number() })),
    rows: z.array(
      z.object({
        table: z.string(),
        key: z.string(),
        deleted_at: z.string(),
        user_id: z.string().nullable(),
        email: z.string().nullable(),
        title: z.string().nullable(),
      }),
    ),
    truncated: z.boolean(),
  })
  .openapi('DeletedRows');

export const recoverBodySchema = z
  .object({
    user: userRef,
    at: z.string().max(64).optional().openapi({
      example: '-2h',
      description: 'as the last run at or before this time saw them (ISO or -30m/-2h/-7d), from the row history',
    }),
    deleted_only: z.boolean().default(false).openapi({ description: 'only chats deleted in the source' }),
    chat_ids: z
      .array(z.string().min(1).max(255).refine(noNul, 'must not contain U+0000'))
      .max(10_000)
      .optional()
      .openapi({ description: 'only these chats' }),
  })
  .strict()
  .openapi('RecoverRequest');

const exportSchema = z.array(z.record(z.string(), z.unknown())).openapi('OpenWebUIChatExport', {
  description:
    "Open WebUI's chat export (one ChatResponse per chat: id, user_id, title, chat, created_at, updated_at, " +
    'share_id, archived, pinned, meta, variables, folder_id, tasks, summary, current_message_id)',
});

const errors = {
  ...commonErrors,
  404: { description: 'tenant, user, table or chat not found', content: json(errorSchema) },
  409: { description: 'several accounts have that e-mail address (name one by id)', content: json(errorSchema) },
  422: { description: 'a time that cannot be served, or not readable', content: json(errorSchema) },
} as const;

export function registerRecoverRoutes(app: ApiApp, ctx: RouteContext): void {
  const { deps, auth } = ctx;
  const scope = { hostId: deps.hostId, cluster: deps.cluster };

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/tenants/{name}/deleted',
      tags: ['recovery'],
      summary: 'Rows deleted in the source and kept in the backup (default: chats, with title, owner and when)',
      security: [{ bearer: [] }],
      middleware: [auth.require('read')] as const,
      request: { params: tenantParams, query: deletedQuerySchema },
      responses: { 200: { description: 'deleted rows', content: json(deletedResponseSchema) }, ...errors },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      const q = c.req.valid('query');
      const r = await listDeleted({
        pool: deps.pool,
        clientName: name,
        user: q.user ?? null,
        table: q.table ?? null,
        limit: q.limit,
        scope,
      });
      return reply(c, {
        client_name: r.clientName,
        user: r.user && { id: r.user.id, email: r.user.email, name: r.user.name, deleted_at: r.user.deletedAt },
        table: r.table,
        counts: r.counts,
        rows: r.rows.map((x) => ({
          table: x.table,
          key: x.key,
          deleted_at: x.deletedAt,
          user_id: x.userId,
          email: x.email,
          title: x.title,
        })),
        truncated: r.truncated,
      });
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/tenants/{name}/recover',
      tags: ['recovery'],
      summary: "One user's chats as Open WebUI's chat export file (import it in Open WebUI: Settings → Data Controls)",
      description:
        'Answers the file itself (Content-Disposition: attachment), with X-Recovered-Chats (how many) and ' +
        'X-OpenWebUI-Revision (the backup’s alembic revision). Nothing is written anywhere.',
      security: [{ bearer: [] }],
      middleware: [auth.require('recover')] as const,
      request: {
        params: tenantParams,
        body: { content: { 'application/json': { schema: recoverBodySchema } }, required: true },
      },
      responses: { 200: { description: 'the export file', content: json(exportSchema) }, ...errors },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      const body = c.req.valid('json');
      const at = body.at !== undefined ? parseRestoreTime(body.at) : null;
      const r = await recoverUserChats({
        pool: deps.pool,
        clientName: name,
        user: body.user,
        at,
        deletedOnly: body.deleted_only,
        chatIds: body.chat_ids ?? [],
        scope,
        logger: deps.logger,
      });
      deps.logger.info(
        { client: name, user: r.user.id, chats: r.chats.length, by: c.get('principal')?.subject ?? null },
        'chat export served',
      );
      const file = exportFileName(name, r.user.email ?? r.user.id);
      return c.body(r.exportJson, 200, {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Disposition': `attachment; filename="${file}"`,
        'X-Recovered-Chats': String(r.chats.length),
        ...(r.openwebuiRevision ? { 'X-OpenWebUI-Revision': r.openwebuiRevision } : {}),
        'Cache-Control': 'no-store',
      }) as never;
    },
  );
}
