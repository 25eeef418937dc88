import pg from 'pg';
import type { Logger } from 'pino';
import { quoteLiteral } from '@owui-sync/schema';
import { errorMessage } from './errors.ts';

/**
 * Connection helpers. Everything here works behind a transaction-mode pooler: statements are unnamed, scope is set
 * per transaction with set_config(…, true), and nothing relies on session state.
 */

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** Row-level-security scope for one transaction: own host, and optionally the whole cluster. */
export type DbScope = { readonly hostId?: string | undefined; readonly cluster?: string | undefined };

export type PoolOptions = {
  readonly max?: number;
  readonly applicationName?: string;
  readonly logger?: Logger;
  readonly connectionTimeoutMillis?: number;
  /** Seconds a connection lives before it is replaced (0 or unset: forever); bounds each backend's caches. */
  readonly maxLifetimeSeconds?: number;
};

/** A pg pool whose idle-client errors are logged instead of crashing the process. */
export function createPool(connectionString: string, options: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'owui-sync',
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 10_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    ...(options.maxLifetimeSeconds ? { maxLifetimeSeconds: options.maxLifetimeSeconds } : {}),
  });
  pool.on('error', (error) => {
    options.logger?.warn({ err: error }, `idle database connection failed: ${errorMessage(error)}`);
  });
  // A checked-out client can also be told its connection ended between two statements (server restart, idle
  // transaction timeout); without a listener that 'error' event would crash the process. The next query on it
  // fails and withClient discards it.
  pool.on('connect', (client) => {
    client.on('error', (error) => {
      options.logger?.warn({ err: error }, `database connection failed: ${errorMessage(error)}`);
    });
  });
  return pool;
}

/** Runs `fn` with a pooled client and always releases it (destroying it if it errored). */
export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    return await fn(client);
  } catch (error) {
    if (isConnectionError(error)) broken = error as Error;
    throw error;
  } finally {
    client.release(broken);
  }
}

/** Runs `fn` inside BEGIN/COMMIT with the RLS scope set for this transaction only; rolls back on error. */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  scope: DbScope = {},
): Promise<T> {
  return withClient(pool, async (client) => {
    await client.query(beginScoped(scope));
    try {
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  });
}

/**
 * BEGIN and the transaction's RLS scope in one simple-protocol round trip (the two values are inlined as quoted
 * literals, so no parameters are needed); a transaction-local setting never leaks through a pooler.
 */
export function beginScoped(scope: DbScope): string {
  if (!scope.hostId && !scope.cluster) return 'BEGIN';
  return (
    `BEGIN; SELECT set_config('app.current_host_id', ${quoteLiteral(scope.hostId ?? '')}, true), ` +
    `set_config('app.current_cluster', ${quoteLiteral(scope.cluster ?? '')}, true)`
  );
}

/** Sets app.current_host_id / app.current_cluster for the current transaction (must be inside one). */
export async function applyScope(client: Queryable, scope: DbScope): Promise<void> {
  if (!scope.hostId && !scope.cluster) return;
  await client.query(
    "SELECT set_config('app.current_host_id', $1::text, true), set_config('app.current_cluster', $2::text, true)",
    [scope.hostId ?? '', scope.cluster ?? ''],
  );
}

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000',
  '08003',
  '08006',
  '08001',
  '08004',
]);

/** True when the error means the connection (or server) went away, as opposed to a bad statement. */
export function isConnectionError(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|connection timeout|Client has encountered a connection error|terminating connection/i.test(
    message,
  );
}
