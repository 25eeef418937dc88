import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { withTransaction } from '@owui-sync/engine';
import type { SyncMetrics } from '@owui-sync/engine';
import type { StateManager } from '@owui-sync/engine/state';
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
  /**
   * The lease epoch this process holds, or null while it does not lead (a node's LeaderElector.epoch). /health
   * reports leadership only when the lease row carries this epoch: a restarted node with the same name must not
   * claim the lease its previous process still holds. Without it (no election in this process) the lease row's
   * host alone decides.
   */
  readonly heldEpoch?: () => number | null;
  /** An API-only process (apps/api main): /health answers role `api` and never claims the lease. */
  readonly apiOnly?: boolean;
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
  /**
   * Shares one in-flight read among identical concurrent requests (same key): a dashboard or monitor polling many
   * times a second costs one query per round. A caller that joins a read already under way gets data at most one
   * query older than its request; nothing is kept once the read has finished.
   */
  shared<T>(key: string, fn: () => Promise<T>): Promise<T>;
};

export function routeContext(deps: ApiDeps, auth: Authorizer, state: StateManager): RouteContext {
  const inFlight = new Map<string, Promise<unknown>>();
  return {
    deps,
    auth,
    state,
    inCluster: (fn) => withTransaction(deps.pool, fn, { hostId: deps.hostId, cluster: deps.cluster }),
    shared<T>(key: string, fn: () => Promise<T>): Promise<T> {
      const running = inFlight.get(key);
      if (running) return running as Promise<T>;
      const p = fn().finally(() => inFlight.delete(key));
      inFlight.set(key, p);
      return p;
    },
  };
}

/** c.json for handlers whose declared response schema TypeScript cannot match structurally. */
export function reply(c: Context, body: unknown, status: 200 | 201 = 200): never {
  return c.json(body as never, status) as never;
}

export const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

/** A JSON answer already serialised (shared among concurrent identical requests). */
export function replyJsonText(c: Context, text: string): never {
  return c.body(text, 200, { 'Content-Type': 'application/json' }) as never;
}
