import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { withTransaction } from '../../../packages/engine/src/db.ts';
import type { SyncMetrics } from '../../../packages/engine/src/metrics.ts';
import type { StateManager } from '../../../packages/engine/src/state/index.ts';
import type { AuthVariables, Authorizer } from './auth.ts';
import type { ApiConfig } from './config.ts';

/** What every route module receives. */

export type ApiDeps = {
  /** Service-role pool. */
  readonly pool: pg.Pool;
  /** Started pg-boss instance (sync triggers and queue counts); without it triggers answer 503. */
  readonly boss?: PgBoss;
  readonly cluster: string;
  readonly nodeName: string;
  readonly hostId: string;
  readonly logger: Logger;
  readonly metrics: SyncMetrics;
  readonly startedAt: Date;
  readonly config: ApiConfig;
  /** State manager to use (default: one created for this app; startApiServer starts and stops it). */
  readonly state?: StateManager;
};

export type ApiEnv = { Variables: AuthVariables };
export type ApiApp = OpenAPIHono<ApiEnv>;

export type RouteContext = {
  readonly deps: ApiDeps;
  readonly auth: Authorizer;
  readonly state: StateManager;
  /** Runs `fn` in a transaction that sees the whole cluster (RLS scope). */
  inCluster<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
};

export function routeContext(deps: ApiDeps, auth: Authorizer, state: StateManager): RouteContext {
  return {
    deps,
    auth,
    state,
    inCluster: (fn) => withTransaction(deps.pool, fn, { hostId: deps.hostId, cluster: deps.cluster }),
  };
}

/** c.json for handlers whose declared response schema TypeScript cannot match structurally. */
export function reply(c: Context, body: unknown, status: 200 | 201 = 200): never {
  return c.json(body as never, status) as never;
}

export const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);
