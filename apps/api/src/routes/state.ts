import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { InvalidInputError } from '@owui-sync/engine';
import { actor, type AuthVariables } from '../auth.ts';
import { reply, type ApiApp, type RouteContext } from '../context.ts';
import {
  errorSchema,
  stateBodyWithKeySchema,
  stateKeyParams,
  statePutBodySchema,
  statePutResponseSchema,
  stateQuerySchema,
  stateResponseSchema,
} from '../schemas.ts';
import { commonErrors, json } from './openapi.ts';

/**
 * GET/PUT /api/v1/state/{key} and the design documents' forms GET /api/v1/state?key=… and PUT /api/v1/state with
 * {key, value}. deployment.<client> maps onto the tenant's client_deployments row; other keys are free-form JSON.
 */

const errors = {
  ...commonErrors,
  404: { description: 'key not set / tenant not registered', content: json(errorSchema) },
} as const;

export function registerStateRoutes(app: ApiApp, ctx: RouteContext): void {
  const { deps, auth, state } = ctx;
  const readAuth = auth.require('read', { public: deps.config.auth?.publicReads ?? false });
  const writeAuth = auth.require('state:write');

  async function read(c: Context<{ Variables: AuthVariables }>, key: string) {
    const r = await state.get(key);
    return reply(c, {
      key: r.key,
      value: r.value,
      cached: r.cached,
      age_seconds: r.ageSeconds,
      updated_at: r.updatedAt,
    });
  }

  async function write(c: Context<{ Variables: AuthVariables }>, key: string, value: unknown) {
    const w = await state.put(key, value, actor(c));
    return reply(c, { success: true, key: w.key, value: w.value, updated_at: w.updatedAt, version: w.version });
  }

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/state/{key}',
      tags: ['state'],
      summary: 'Read a state value (cache-aside; `cached` says whether it came from this node’s cache)',
      security: [{ bearer: [] }],
      middleware: [readAuth] as const,
      request: { params: stateKeyParams },
      responses: { 200: { description: 'value', content: json(stateResponseSchema) }, ...errors },
    }),
    (c) => read(c, c.req.valid('param').key),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/state',
      tags: ['state'],
      summary: 'Read a state value (?key=…)',
      security: [{ bearer: [] }],
      middleware: [readAuth] as const,
      request: { query: stateQuerySchema },
      responses: { 200: { description: 'value', content: json(stateResponseSchema) }, ...errors },
    }),
    (c) => read(c, c.req.valid('query').key),
  );

  app.openapi(
    createRoute({
      method: 'put',
      path: '/api/v1/state/{key}',
      tags: ['state'],
      summary: 'Write a state value: PostgreSQL first, then every node’s cache is invalidated',
      description:
        'deployment.<client> takes a partial object of status, sync_enabled, sync_interval, conflict_strategy, ' +
        'conflict_config, container_name; other keys take any JSON value.',
      security: [{ bearer: [] }],
      middleware: [writeAuth] as const,
      request: {
        params: stateKeyParams,
        body: { content: { 'application/json': { schema: statePutBodySchema } }, required: true },
      },
      responses: {
        200: { description: 'written', content: json(statePutResponseSchema) },
        ...errors,
        422: { description: 'value not acceptable for the key', content: json(errorSchema) },
      },
    }),
    (c) => {
      const { key } = c.req.valid('param');
      const body = c.req.valid('json');
      if (body.key !== undefined && body.key !== key) {
        throw new InvalidInputError(`body key "${body.key}" does not match the path key "${key}"`);
      }
      return write(c, key, body.value);
    },
  );

  app.openapi(
    createRoute({
      method: 'put',
      path: '/api/v1/state',
      tags: ['state'],
      summary: 'Write a state value given as {key, value}',
      security: [{ bearer: [] }],
      middleware: [writeAuth] as const,
      request: { body: { content: { 'application/json': { schema: stateBodyWithKeySchema } }, required: true } },
      responses: {
        200: { description: 'written', content: json(statePutResponseSchema) },
        ...errors,
        422: { description: 'value not acceptable for the key', content: json(errorSchema) },
      },
    }),
    (c) => {
      const body = c.req.valid('json');
      return write(c, body.key, body.value);
    },
  );
}
