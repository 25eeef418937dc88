import type pg from 'pg';
import type { Logger } from 'pino';
import { withTransaction, type Queryable } from '../db.ts';
import { errorMessage, InvalidInputError, NotFoundError } from '../errors.ts';
import type { SyncMetrics } from '../metrics.ts';
import { readTenantRow, tenantRowVersions, updateTenantSettings, type TenantRow } from '../tenants/settings.ts';
import { applySyncSwitch } from '../tenants/sync-switch.ts';
import { systemClock, type Clock } from '../types.ts';
import {
  deploymentStatePatchSchema,
  parseStateKey,
  type DeploymentState,
  type DeploymentStatePatch,
  type StateKey,
} from './keys.ts';
import { TtlCache } from './ttl-cache.ts';

/**
 * Cluster state with PostgreSQL as the authority and a per-process cache in front (cache-aside): reads are served
 * from the cache until the TTL runs out, misses read PostgreSQL; writes go to PostgreSQL first, then drop the local
 * entry and record a cache_events row in the same transaction. Every process polls cache_events and drops the keys
 * other hosts changed, so a write on one node is visible on the others within one poll interval (not a TTL).
 * Cached tenants (deployment.<client>) are also compared with their row's updated_at on every poll, so changes made
 * outside the API (syncctl, sync runs) show up just as quickly.
 */

export type StateValue = { readonly key: string; readonly value: unknown; readonly updatedAt: string | null };

export type StateRead = StateValue & {
  /** True when served from this process's cache. */
  readonly cached: boolean;
  /** Seconds the cached copy has been held (0 for a fresh read). */
  readonly ageSeconds: number;
};

export type StateWrite = StateValue & { readonly version: number | null };

export type StateManagerOptions = {
  /** Service-role pool. */
  readonly pool: pg.Pool;
  readonly cluster: string;
  /** This process's host id (cache_events rows carry it; its own events are skipped when polling). */
  readonly hostId: string;
  /** Cache lifetime in seconds (CACHE_TTL, default 300); 0 disables caching. */
  readonly ttlSeconds?: number;
  /** How often cache_events is polled, ms (default 500). */
  readonly pollIntervalMs?: number;
  readonly maxEntries?: number;
  readonly metrics?: SyncMetrics;
  readonly logger?: Logger;
  readonly clock?: Clock;
};

export type StateManager = {
  get(key: string): Promise<StateRead>;
  /** Writes `value` (deployment keys: a partial object of writable fields) and invalidates the key everywhere. */
  put(key: string, value: unknown, updatedBy: string): Promise<StateWrite>;
  /** Drops a key from this process's cache and tells the other processes to do the same. */
  invalidate(key: string): Promise<void>;
  /** Applies other hosts' invalidation events now (the poll loop calls this). Returns how many were applied. */
  poll(): Promise<number>;
  /** Starts the poll loop (idempotent). */
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly cacheSize: number;
};

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

function deploymentState(row: TenantRow): DeploymentState {
  return {
    client_name: row.client_name,
    status: row.status,
    sync_enabled: row.sync_enabled,
    sync_interval: row.sync_interval,
    last_sync: iso(row.last_sync_at),
    last_sync_status: row.last_sync_status,
    last_full_sync: iso(row.last_full_sync_at),
    next_sync: iso(row.next_sync_at),
    conflict_strategy: row.conflict_strategy,
    conflict_config: row.conflict_config,
    container_name: row.container_name,
    sqlite_path: row.sqlite_path,
    schema_name: row.schema_name,
    openwebui_version: row.openwebui_version,
    updated_at: row.updated_at.toISOString(),
  };
}

function notRegistered(client: string, cluster: string): NotFoundError {
  return new NotFoundError(
    `client "${client}" is not registered in cluster "${cluster}"; register it: syncctl client register ${client} --sqlite PATH`,
    { client_name: client },
  );
}

async function readKey(db: Queryable, parsed: StateKey, cluster: string): Promise<StateValue | null> {
  if (parsed.kind === 'deployment') {
    const row = await readTenantRow(db, parsed.client, cluster);
    return row ? { key: parsed.key, value: deploymentState(row), updatedAt: row.updated_at.toISOString() } : null;
  }
  const res = await db.query<{ value: unknown; updated_at: Date }>(
    'SELECT value, updated_at FROM sync_metadata.api_state_get($1::text)',
    [parsed.key],
  );
  const row = res.rows[0];
  return row ? { key: parsed.key, value: row.value, updatedAt: row.updated_at.toISOString() } : null;
}

/** Applies a validated patch to a tenant's row; sync_enabled and status follow each other like start/pause. */
async function writeDeployment(
  db: Queryable,
  client: string,
  cluster: string,
  patch: DeploymentStatePatch,
): Promise<TenantRow> {
  const current = await readTenantRow(db, client, cluster, { forUpdate: true });
  if (!current) throw notRegistered(client, cluster);
  // Start / pause: the one writer of sync_enabled and status (they follow each other, see ../tenants/sync-switch.ts).
  await applySyncSwitch(db, current, patch);
  const intervalChanged = patch.sync_interval !== undefined && patch.sync_interval !== current.sync_interval;
  const written = await updateTenantSettings(db, current.deployment_id, {
    sync_interval: patch.sync_interval,
    conflict_strategy: patch.conflict_strategy,
    conflict_config: patch.conflict_config,
    container_name: patch.container_name,
    // next_sync_at was computed from the old interval: the leader re-spreads the tenant on its next tick.
    clearNextSync: intervalChanged,
  });
  // The row is locked since it was read, so it is still there.
  if (!written) throw notRegistered(client, cluster);
  return written;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Why PostgreSQL's jsonb would refuse a value (NUL characters, unpaired surrogates, numbers JSON cannot carry), or
 * null when it is fine.
 */
export function unstorableJson(value: unknown, path = 'value', depth = 0): string | null {
  if (depth > 64) return `${path} is nested more than 64 levels deep`;
  if (typeof value === 'string') {
    if (value.includes('\u0000')) return `${path} contains a NUL character (\\u0000)`;
    if (LONE_SURROGATE.test(value)) return `${path} contains an unpaired UTF-16 surrogate`;
    return null;
  }
  if (typeof value === 'number') return Number.isFinite(value) ? null : `${path} is not a finite number`;
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const p = unstorableJson(v, `${path}[${i}]`, depth + 1);
      if (p) return p;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const keyProblem = unstorableJson(k, `${path} key`, depth + 1);
      if (keyProblem) return keyProblem;
      const p = unstorableJson(v, `${path}.${k}`, depth + 1);
      if (p) return p;
    }
  }
  return null;
}

/** Records that `key` changed so other processes drop their cached copy. */
export async function publishInvalidation(db: Queryable, hostId: string, key: string): Promise<void> {
  await db.query(
    `INSERT INTO sync_metadata.cache_events (host_id, cache_key, action) VALUES ($1::uuid, $2::text, 'invalidate')`,
    [hostId, key],
  );
}

/** Creates a state manager; call start() to follow other nodes' writes and stop() at shutdown. */
export function createStateManager(opts: StateManagerOptions): StateManager {
  const clock = opts.clock ?? systemClock;
  const scope = { hostId: opts.hostId, cluster: opts.cluster };
  const metrics = opts.metrics;
  const cache = new TtlCache<StateValue>({
    ttlSeconds: opts.ttlSeconds ?? 300,
    ...(opts.maxEntries !== undefined ? { maxEntries: opts.maxEntries } : {}),
    clock,
    onEvict: (_key, reason) => metrics?.cacheEvictions.inc({ reason }),
  });
  const pollIntervalMs = Math.max(50, opts.pollIntervalMs ?? 500);
  // Identity values can commit out of order: besides everything after the highest id seen, the last few seconds
  // are re-read so an event that committed late is still applied (once: recently applied ids are remembered).
  const lateWindowSeconds = 10;
  let lastEventId: bigint | null = null;
  const applied = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let polling: Promise<number> | undefined;

  async function initCursor(): Promise<void> {
    const res = await opts.pool.query<{ max: string | null }>(
      'SELECT max(event_id)::text AS max FROM sync_metadata.cache_events',
    );
    lastEventId = BigInt(res.rows[0]?.max ?? '0');
  }

  async function pollOnce(): Promise<number> {
    if (lastEventId === null) {
      await initCursor();
      return 0;
    }
    const res = await opts.pool.query<{ event_id: string; cache_key: string }>(
      `SELECT event_id::text AS event_id, cache_key
         FROM sync_metadata.cache_events
        WHERE (event_id > $1::bigint OR created_at > now() - make_interval(secs => $3::int))
          AND host_id <> $2::uuid
        ORDER BY event_id
        LIMIT 5000`,
      [lastEventId.toString(), opts.hostId, lateWindowSeconds],
    );
    const now = clock.now().getTime();
    let count = 0;
    for (const row of res.rows) {
      const id = BigInt(row.event_id);
      if (id > lastEventId) lastEventId = id;
      if (applied.has(row.event_id)) continue;
      applied.set(row.event_id, now);
      cache.delete(row.cache_key, 'invalidated');
      count += 1;
    }
    for (const [id, at] of applied) if (now - at > lateWindowSeconds * 2000) applied.delete(id);
    return count + (await dropChangedDeployments());
  }

  // Tenants also change outside the API (syncctl start/pause/interval, every sync's last_sync_*), and all of those
  // writers bump updated_at: a cached tenant whose row moved on (or vanished) is dropped as well.
  async function dropChangedDeployments(): Promise<number> {
    const cached = cache.keys().filter((k) => k.startsWith('deployment.'));
    if (cached.length === 0) return 0;
    const clients = cached.map((k) => k.slice('deployment.'.length));
    const rows = await withTransaction(opts.pool, (c) => tenantRowVersions(c, opts.cluster, clients), scope);
    const current = new Map(rows.map((r) => [`deployment.${r.client_name}`, r.updated_at.toISOString()]));
    let dropped = 0;
    for (const key of cached) {
      const entry = cache.peek(key);
      if (entry && entry.value.updatedAt !== (current.get(key) ?? null)) {
        cache.delete(key, 'invalidated');
        dropped += 1;
      }
    }
    return dropped;
  }

  function poll(): Promise<number> {
    polling ??= pollOnce().finally(() => {
      polling = undefined;
    });
    return polling;
  }

  function schedule(): void {
    if (!running) return;
    timer = setTimeout(() => {
      poll()
        .catch((error: unknown) => {
          metrics?.loopErrors.inc({ loop: 'state-cache' });
          opts.logger?.warn({ err: error }, `state cache: reading invalidation events failed: ${errorMessage(error)}`);
        })
        .finally(schedule);
    }, pollIntervalMs);
    timer.unref?.();
  }

  return {
    get cacheSize() {
      return cache.size;
    },

    async get(key) {
      const parsed = parseStateKey(key);
      const hit = cache.get(parsed.key);
      if (hit) {
        metrics?.cacheHits.inc();
        const age = (clock.now().getTime() - hit.storedAt.getTime()) / 1000;
        return { ...hit.value, cached: true, ageSeconds: Math.max(0, Math.round(age * 10) / 10) };
      }
      metrics?.cacheMisses.inc();
      const value = await withTransaction(opts.pool, (c) => readKey(c, parsed, opts.cluster), scope);
      if (!value) {
        if (parsed.kind === 'deployment') throw notRegistered(parsed.client, opts.cluster);
        throw new NotFoundError(`state key "${parsed.key}" is not set; set it with PUT /api/v1/state/${parsed.key}`, {
          key: parsed.key,
        });
      }
      cache.set(parsed.key, value);
      return { ...value, cached: false, ageSeconds: 0 };
    },

    async put(key, value, updatedBy) {
      const parsed = parseStateKey(key);
      const result = await withTransaction(
        opts.pool,
        async (c): Promise<StateWrite> => {
          let written: StateWrite;
          if (parsed.kind === 'deployment') {
            const patch = deploymentStatePatchSchema.safeParse(value);
            if (!patch.success) {
              throw new InvalidInputError(
                `value for ${parsed.key} is invalid: ${patch.error.issues
                  .map((i) => `${i.path.join('.') || 'value'}: ${i.message}`)
                  .join('; ')} (writable: status, sync_enabled, sync_interval, conflict_strategy, ` +
                  'conflict_config, container_name)',
                { issues: patch.error.issues },
              );
            }
            const row = await writeDeployment(c, parsed.client, opts.cluster, patch.data);
            written = {
              key: parsed.key,
              value: deploymentState(row),
              updatedAt: row.updated_at.toISOString(),
              version: null,
            };
          } else {
            if (value === undefined) throw new InvalidInputError('value is required (any JSON value)');
            const problem = unstorableJson(value);
            if (problem) throw new InvalidInputError(`value for ${parsed.key} cannot be stored: ${problem}`);
            const res = await c.query<{ value: unknown; version: string; updated_at: Date }>(
              'SELECT value, version::text AS version, updated_at FROM sync_metadata.api_state_put($1::text, $2::jsonb, $3::text)',
              [parsed.key, JSON.stringify(value), updatedBy],
            );
            const row = res.rows[0];
            if (!row) throw new Error(`state key "${parsed.key}" was not written`);
            written = {
              key: parsed.key,
              value: row.value,
              updatedAt: row.updated_at.toISOString(),
              version: Number(row.version),
            };
          }
          await publishInvalidation(c, opts.hostId, parsed.key);
          return written;
        },
        scope,
      );
      // After the commit: the authority holds the new value, so a read from here on refetches it.
      cache.delete(parsed.key, 'invalidated');
      return result;
    },

    async invalidate(key) {
      const parsed = parseStateKey(key);
      await withTransaction(opts.pool, (c) => publishInvalidation(c, opts.hostId, parsed.key), scope);
      cache.delete(parsed.key, 'invalidated');
    },

    poll,

    async start() {
      if (running) return;
      running = true;
      await initCursor().catch((error: unknown) => {
        opts.logger?.warn({ err: error }, `state cache: cannot read invalidation events yet: ${errorMessage(error)}`);
      });
      schedule();
    },

    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      await polling?.catch(() => undefined);
    },
  };
}
