import { createRoute, z } from '@hono/zod-openapi';
import { listDrills } from '@owui-sync/engine/drill';
import { NotFoundError } from '@owui-sync/engine';
import { tenantExists } from '@owui-sync/engine/tenants';
import { reply, type ApiApp, type RouteContext } from '../context.ts';
import { clientName, errorSchema } from '../schemas.ts';
import { commonErrors, json } from './openapi.ts';

/** GET /api/v1/tenants/{name}/drills: a tenant's restore drills, newest first (docs/restore.md, "Restore drills"). */

const paramsSchema = z.object({
  name: clientName.openapi({ param: { name: 'name', in: 'path' }, example: 'chat-test' }),
});

const querySchema = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(20).openapi({ example: 20, description: '1–500' }),
});

const count = z.number().int();
const drillSchema = z
  .object({
    drill_id: z.string(),
    passed: z.boolean(),
    failure: z.string().nullable().openapi({ description: 'what failed, in one line; null when the drill passed' }),
    triggered_by: z.string().openapi({ example: 'scheduler' }),
    queue_job_id: z.string().nullable(),
    run_by: z.string().nullable().openapi({ example: 'worker-1@host' }),
    started_at: z.string(),
    finished_at: z.string(),
    duration_seconds: z.number(),
    restore_seconds: z.number().nullable(),
    rows_restored: count.nullable(),
    revision: z.string().nullable().openapi({ example: 'alembic:f0bd01a18a3d' }),
    checks: z
      .object({
        restore: z.object({ ok: z.boolean() }).passthrough(),
        integrity: z.object({ ok: z.boolean(), result: z.string() }).optional(),
        compare: z.object({ ok: z.boolean(), missing: count, extra: count, differing: count }).passthrough().optional(),
        bookkeeping: z
          .object({ ok: z.boolean(), unbooked: count, lost: count, damaged: count, summary: z.string() })
          .passthrough()
          .optional(),
        openwebui: z
          .object({ ok: z.boolean(), revision: z.string().nullable(), problems: z.array(z.string()) })
          .passthrough()
          .optional(),
      })
      .openapi({ description: 'every check with its figures' }),
  })
  .openapi('Drill');

const drillsResponseSchema = z
  .object({
    client_name: z.string(),
    last_passed_at: z.string().nullable().openapi({ description: 'start of the latest passed drill in this list' }),
    drills: z.array(drillSchema),
    count: count,
  })
  .openapi('Drills');

export function registerDrillRoutes(app: ApiApp, ctx: RouteContext): void {
  const { deps, auth } = ctx;
  const publicReads = deps.config.auth?.publicReads ?? false;
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/tenants/{name}/drills',
      tags: ['sync'],
      summary: "A tenant's restore drills (sync_state.restore_drills), newest first",
      description:
        'Each drill restored the backup into a temporary file and checked it: integrity_check, the file against the ' +
        "backup, the backup against its sync bookkeeping, and Open WebUI's schema revision, a user and a chat.",
      security: [{ bearer: [] }],
      middleware: [auth.require('read', { public: publicReads })] as const,
      request: { params: paramsSchema, query: querySchema },
      responses: {
        200: { description: 'drills', content: json(drillsResponseSchema) },
        ...commonErrors,
        404: { description: 'unknown tenant', content: json(errorSchema) },
      },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      const { limit } = c.req.valid('query');
      const drills = await ctx.inCluster(async (client) => {
        if (!(await tenantExists(client, name, deps.cluster))) {
          throw new NotFoundError(`tenant "${name}" is not registered in cluster "${deps.cluster}"`);
        }
        return listDrills(client, name, limit);
      });
      const rows = drills.map((d) => ({
        drill_id: d.drillId,
        passed: d.passed,
        failure: d.failure,
        triggered_by: d.triggeredBy,
        queue_job_id: d.queueJobId,
        run_by: d.runBy,
        started_at: d.startedAt.toISOString(),
        finished_at: d.finishedAt.toISOString(),
        duration_seconds: d.durationSeconds,
        restore_seconds: d.restoreSeconds,
        rows_restored: d.rowsRestored,
        revision: d.revision,
        checks: d.checks,
      }));
      const lastPassed = rows.find((r) => r.passed)?.started_at ?? null;
      return reply(c, { client_name: name, last_passed_at: lastPassed, drills: rows, count: rows.length });
    },
  );
}
