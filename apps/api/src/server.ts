import { serve } from '@hono/node-server';
import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { InvalidInputError } from '@owui-sync/engine';
import { createStateManager } from '@owui-sync/engine/state';
import { createAuthorizer, openApiWarning } from './auth.ts';
import { routeContext, type ApiApp, type ApiDeps, type ApiEnv } from './context.ts';
import { dashboardHtml, docsHtml } from './dashboard.ts';
import { errorHandler, validationFailed } from './errors.ts';
import { firstUnsafeInteger } from './exact-json.ts';
import { registerConflictRoutes } from './routes/conflicts.ts';
import { registerDrillRoutes } from './routes/drills.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerMetricsRoutes } from './routes/metrics.ts';
import { registerRecoverRoutes } from './routes/recover.ts';
import { registerStateRoutes } from './routes/state.ts';
import { registerSyncRoutes } from './routes/sync.ts';

export type { ApiDeps } from './context.ts';
export type { ApiConfig, ApiAuthConfig } from './config.ts';

/** Largest request body accepted (bytes): conflict resolutions with merged rows are the biggest. */
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The REST API every node (and every API-only process) serves, as a Hono app (use app.request() in tests): health and leadership, cluster
 * status, metrics, state, sync triggers, jobs, queue, conflicts, the OpenAPI document, docs and the dashboard.
 */
export function createApp(deps: ApiDeps): ApiApp {
  const auth = createAuthorizer(deps.config.auth);
  const state =
    deps.state ??
    createStateManager({
      pool: deps.pool,
      cluster: deps.cluster,
      hostId: deps.hostId,
      ttlSeconds: deps.config.cacheTtlSeconds ?? 300,
      pollIntervalMs: deps.config.statePollIntervalMs ?? 500,
      metrics: deps.metrics,
      logger: deps.logger,
    });
  const app: ApiApp = new OpenAPIHono<ApiEnv>({
    defaultHook: (result, c) => {
      if (!result.success) return validationFailed(c, result.error, result.target);
      return undefined;
    },
  });
  stateOf.set(app, state);

  app.onError(errorHandler(deps.logger));
  app.notFound((c) =>
    c.json({ error: 'not_found', message: `no such endpoint: ${c.req.method} ${c.req.path} (see /docs)` }, 404),
  );
  app.use(
    '/api/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new HTTPException(413, { message: `request body larger than ${MAX_BODY_BYTES} bytes` });
      },
    }),
  );

  // Integers beyond 2^53 − 1 would be rounded by JSON.parse: refused before any handler sees the body.
  app.use('/api/*', async (c, next) => {
    if (['POST', 'PUT', 'PATCH'].includes(c.req.method) && /json/i.test(c.req.header('content-type') ?? '')) {
      const literal = firstUnsafeInteger(await c.req.text());
      if (literal !== null) {
        const shown = literal.length > 40 ? `${literal.slice(0, 40)}…` : literal;
        throw new InvalidInputError(
          `the number ${shown} in the request body is larger than ${Number.MAX_SAFE_INTEGER} and cannot be kept ` +
            `exactly; send it as a string ("${shown}") — nothing was written`,
        );
      }
    }
    return next();
  });

  const ctx = routeContext(deps, auth, state);
  registerHealthRoutes(app, ctx);
  registerMetricsRoutes(app, ctx);
  registerSyncRoutes(app, ctx);
  registerConflictRoutes(app, ctx);
  registerDrillRoutes(app, ctx);
  registerStateRoutes(app, ctx);
  registerRecoverRoutes(app, ctx);

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description:
      'API_TOKEN, or an HS256 JWT signed with JWT_SECRET whose `scope` claim lists scopes ' +
      '(read, sync:trigger, conflicts:resolve, state:write, recover)',
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'owui-sync API',
      version: '1',
      description: `Served by every node of cluster "${deps.cluster}" (node-a :9443, node-b :9444) and by its API-only processes.`,
    },
  });
  app.get('/docs', (c) => c.html(docsHtml()));
  app.get('/', (c) => c.html(dashboardHtml({ cluster: deps.cluster, node: deps.nodeName })));
  return app;
}

const stateOf = new WeakMap<object, ReturnType<typeof createStateManager>>();

/** Serves createApp(deps) on deps.config.port and follows other nodes' state changes; resolves once listening. */
export async function startApiServer(deps: ApiDeps): Promise<{ port: number; close(): Promise<void> }> {
  const app = createApp(deps);
  const warning = openApiWarning(deps.config.auth);
  if (warning) deps.logger.warn({ security: 'open-api' }, `SECURITY WARNING: ${warning}`);
  const state = stateOf.get(app);
  await state?.start();
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch: app.fetch, port: deps.config.port, hostname: deps.config.host ?? '0.0.0.0' },
      (info) => {
        deps.logger.info({ port: info.port }, `API listening on port ${info.port}`);
        resolve({
          port: info.port,
          close: async () => {
            await state?.stop();
            await new Promise<void>((done) => {
              server.close(() => done());
              (server as { closeAllConnections?: () => void }).closeAllConnections?.();
            });
          },
        });
      },
    );
    server.once('error', (error) => {
      void state?.stop();
      reject(error);
    });
  });
}
