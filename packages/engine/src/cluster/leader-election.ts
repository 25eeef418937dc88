import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { Logger } from 'pino';
import { withTransaction, type DbScope, type Queryable } from '../db.ts';
import { LeadershipLostError, errorMessage } from '../errors.ts';
import type { SyncMetrics } from '../metrics.ts';

/**
 * Leader election on the cluster's lease row (sync_metadata.leader_election), on database time only.
 *
 * - Acquire/renew is one INSERT … ON CONFLICT DO UPDATE … WHERE (lease expired) OR (it is already ours, same
 *   epoch). The epoch grows by one whenever the lease changes hands, never on a renewal.
 * - Followers re-check a cheap SELECT every `pollSeconds` and try to take the lease as soon as it is free, so a
 *   released lease (graceful shutdown) is taken over within about a second, an expired one within
 *   `pollSeconds` of its expiry.
 * - Fencing: `fenced()` runs a transaction that first checks, with FOR SHARE on the lease row, that the lease still
 *   names this leader and epoch and is unexpired. The share lock keeps any other node from taking the lease until
 *   that transaction ends, so everything done inside it happened while this node led. A paused leader that wakes
 *   after losing the lease fails the check, acts on nothing, and steps down.
 * - Any database error while leading makes the node step down at once: it cannot know it still leads.
 */

export type Lease = {
  readonly cluster: string;
  readonly leaderId: string;
  readonly epoch: number;
  /** Database time at which the lease runs out unless renewed. */
  readonly expiresAt: Date;
};

export type LeaderChange = { readonly isLeader: boolean; readonly epoch: number | null; readonly reason: string };

export type LeaderElectorOptions = {
  readonly pool: pg.Pool;
  readonly cluster: string;
  /** This process's id in the lease row (e.g. node-a@prod-host-1). */
  readonly leaderId: string;
  /** This process's host row (leader_host_id). */
  readonly hostId: string;
  /** LEASE_DURATION, seconds (default 60). */
  readonly leaseSeconds: number;
  /** HEARTBEAT_INTERVAL: how often the leader renews, seconds (default 30). Must be below leaseSeconds. */
  readonly renewSeconds: number;
  /** How often a follower checks whether the lease is free (default min(1, renewSeconds)). */
  readonly pollSeconds?: number;
  readonly logger: Logger;
  readonly metrics?: SyncMetrics;
};

const ACQUIRE_SQL = `
  INSERT INTO sync_metadata.leader_election AS le
         (cluster_name, leader_id, leader_host_id, epoch, acquired_at, renewed_at, expires_at, updated_at)
  VALUES ($1::text, $2::text, $3::uuid, 1, now(), now(), now() + make_interval(secs => $4::double precision), now())
  ON CONFLICT (cluster_name) DO UPDATE
     SET epoch = CASE WHEN le.leader_id = EXCLUDED.leader_id AND le.epoch = $5::bigint AND le.expires_at > now()
                      THEN le.epoch ELSE le.epoch + 1 END,
         acquired_at = CASE WHEN le.leader_id = EXCLUDED.leader_id AND le.epoch = $5::bigint AND le.expires_at > now()
                            THEN le.acquired_at ELSE now() END,
         leader_id = EXCLUDED.leader_id,
         leader_host_id = EXCLUDED.leader_host_id,
         renewed_at = now(),
         expires_at = EXCLUDED.expires_at,
         updated_at = now()
   WHERE le.expires_at <= now() OR (le.leader_id = EXCLUDED.leader_id AND le.epoch = $5::bigint)
  RETURNING le.epoch::bigint AS epoch, le.expires_at`;

const PROBE_SQL = `
  SELECT leader_id, epoch::bigint AS epoch, expires_at, expires_at <= now() AS free
    FROM sync_metadata.leader_election WHERE cluster_name = $1::text`;

const RELEASE_SQL = `
  UPDATE sync_metadata.leader_election SET expires_at = now(), updated_at = now()
   WHERE cluster_name = $1::text AND leader_id = $2::text AND epoch = $3::bigint AND expires_at > now()`;

const FENCE_SQL = `
  SELECT 1 FROM sync_metadata.leader_election
   WHERE cluster_name = $1::text AND leader_id = $2::text AND epoch = $3::bigint AND expires_at > clock_timestamp()
   FOR SHARE`;

/**
 * Checks, inside the caller's transaction, that `lease` is still current, and holds a share lock on the lease row
 * until the transaction ends. Throws LeadershipLostError otherwise.
 */
export async function assertLease(client: Queryable, lease: Lease): Promise<void> {
  const res = await client.query(FENCE_SQL, [lease.cluster, lease.leaderId, lease.epoch]);
  if (!res.rowCount) {
    throw new LeadershipLostError(
      `leadership lost: the lease of cluster "${lease.cluster}" no longer belongs to ${lease.leaderId} at epoch ${lease.epoch}`,
    );
  }
}

/** Reads the cluster's lease row as the database sees it now. */
export async function readLease(
  db: Queryable,
  cluster: string,
): Promise<{ leaderId: string; epoch: number; expiresAt: Date; valid: boolean } | null> {
  const res = await db.query(PROBE_SQL, [cluster]);
  const row = res.rows[0] as { leader_id: string; epoch: string; expires_at: Date; free: boolean } | undefined;
  if (!row) return null;
  return { leaderId: row.leader_id, epoch: Number(row.epoch), expiresAt: row.expires_at, valid: !row.free };
}

export class LeaderElector extends EventEmitter<{ change: [LeaderChange] }> {
  readonly #opts: LeaderElectorOptions;
  #lease: Lease | null = null;
  /** Monotonic deadline (performance.now ms) after which this process must assume the lease has lapsed. */
  #localDeadline = 0;
  /** Epoch this process last held; lets it reclaim its own unexpired lease after a database blip. */
  #lastEpoch = 0;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #nextAttemptAt = 0;
  #busy: Promise<unknown> = Promise.resolve();

  constructor(opts: LeaderElectorOptions) {
    super();
    if (opts.renewSeconds >= opts.leaseSeconds) {
      throw new RangeError(
        `HEARTBEAT_INTERVAL (${opts.renewSeconds}s) must be below LEASE_DURATION (${opts.leaseSeconds}s)`,
      );
    }
    this.#opts = opts;
  }

  /** Starts campaigning: one attempt at once, then renewals (leader) or lease checks (follower). */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    await this.#attempt('start');
    this.#loop = this.#run();
  }

  /** Stops campaigning and, if leading, releases the lease at once so another node takes over immediately. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#wake?.();
    await this.#loop;
    await this.#busy.catch(() => undefined);
    const lease = this.#lease;
    if (lease) {
      this.#stepDown('stopped');
      try {
        await this.#opts.pool.query(RELEASE_SQL, [lease.cluster, lease.leaderId, lease.epoch]);
        this.#opts.logger.info({ epoch: lease.epoch }, 'released the leader lease');
      } catch (error) {
        this.#opts.logger.warn(
          { err: error },
          `could not release the leader lease (${errorMessage(error)}); it expires by itself`,
        );
      }
    }
  }

  /** True while this process holds an unexpired lease (as far as it can tell locally; fenced() makes sure). */
  isLeader(): boolean {
    if (!this.#lease) return false;
    if (performance.now() >= this.#localDeadline) {
      this.#stepDown('lease ran out before it could be renewed');
      return false;
    }
    return true;
  }

  /** Fencing token of the held lease, or null when not leading. */
  epoch(): number | null {
    return this.isLeader() ? (this.#lease?.epoch ?? null) : null;
  }

  /** The held lease, or null. */
  lease(): Lease | null {
    return this.isLeader() ? this.#lease : null;
  }

  get leaderId(): string {
    return this.#opts.leaderId;
  }

  /**
   * Runs `fn` in a transaction that first re-checks the lease (see assertLease). If the lease is gone the
   * transaction does nothing, this node steps down and LeadershipLostError is thrown.
   */
  async fenced<T>(fn: (client: pg.PoolClient, lease: Lease) => Promise<T>, scope: DbScope = {}): Promise<T> {
    const lease = this.lease();
    if (!lease) throw new LeadershipLostError(`${this.#opts.leaderId} is not the leader`);
    try {
      return await withTransaction(
        this.#opts.pool,
        async (client) => {
          // A leader frozen inside this transaction holds the lease row's share lock; bound how long that can
          // delay a takeover to one lease duration.
          const limitMs = String(this.#opts.leaseSeconds * 1000);
          await client.query(
            `SELECT set_config('idle_in_transaction_session_timeout', $1::text, true),
                    set_config('statement_timeout', $1::text, true)`,
            [limitMs],
          );
          await assertLease(client, lease);
          return fn(client, lease);
        },
        scope,
      );
    } catch (error) {
      if (error instanceof LeadershipLostError) this.#stepDown('fencing check failed');
      throw error;
    }
  }

  async #run(): Promise<void> {
    const renewMs = this.#opts.renewSeconds * 1000;
    const pollMs = (this.#opts.pollSeconds ?? Math.min(1, this.#opts.renewSeconds)) * 1000;
    this.#nextAttemptAt = performance.now() + renewMs;
    while (this.#running) {
      const leading = this.#lease !== null;
      const now = performance.now();
      const wait = leading ? Math.max(0, this.#nextAttemptAt - now) : Math.min(pollMs, this.#nextAttemptAt - now);
      await this.#sleep(Math.max(0, wait));
      if (!this.#running) break;
      if (performance.now() >= this.#nextAttemptAt) {
        this.#nextAttemptAt = performance.now() + renewMs;
        await this.#attempt(this.#lease ? 'renew' : 'heartbeat');
      } else if (!this.#lease) {
        await this.#probe();
      }
    }
  }

  async #probe(): Promise<void> {
    try {
      const lease = await readLease(this.#opts.pool, this.#opts.cluster);
      if (!lease || !lease.valid || (lease.leaderId === this.#opts.leaderId && lease.epoch === this.#lastEpoch)) {
        await this.#attempt('lease free');
      }
    } catch (error) {
      this.#opts.logger.debug({ err: error }, `lease check failed: ${errorMessage(error)}`);
    }
  }

  async #attempt(reason: string): Promise<void> {
    const run = this.#attemptOnce(reason);
    this.#busy = run;
    await run;
  }

  async #attemptOnce(reason: string): Promise<void> {
    const { pool, cluster, leaderId, hostId, leaseSeconds, metrics, logger } = this.#opts;
    metrics?.leaderElectionAttempts.inc();
    const sentAt = performance.now();
    try {
      const res = await pool.query(ACQUIRE_SQL, [cluster, leaderId, hostId, leaseSeconds, this.#lastEpoch]);
      const row = res.rows[0] as { epoch: string; expires_at: Date } | undefined;
      if (!row) {
        metrics?.leaderElectionFailures.inc({ reason: 'held' });
        if (this.#lease) this.#stepDown('the lease was taken by another node');
        return;
      }
      metrics?.leaderElectionSuccesses.inc();
      const epoch = Number(row.epoch);
      const wasLeader = this.#lease !== null;
      const previous = this.#lease?.epoch;
      this.#lease = { cluster, leaderId, epoch, expiresAt: row.expires_at };
      this.#lastEpoch = epoch;
      // Count the lease from when the request left, not when the answer came back: conservative.
      this.#localDeadline = sentAt + leaseSeconds * 1000;
      metrics?.isLeader.set(1);
      metrics?.leaderEpoch.set(epoch);
      if (!wasLeader || previous !== epoch) {
        logger.info({ epoch, reason }, `became leader of cluster "${cluster}" (epoch ${epoch})`);
        this.emit('change', { isLeader: true, epoch, reason });
      }
    } catch (error) {
      metrics?.leaderElectionFailures.inc({ reason: 'error' });
      logger.warn({ err: error }, `leader election attempt failed: ${errorMessage(error)}`);
      if (this.#lease) this.#stepDown(`database error: ${errorMessage(error)}`);
    }
  }

  #stepDown(reason: string): void {
    const lease = this.#lease;
    if (!lease) return;
    this.#lease = null;
    this.#localDeadline = 0;
    this.#opts.metrics?.isLeader.set(0);
    this.#opts.logger.warn({ epoch: lease.epoch, reason }, `stepped down as leader: ${reason}`);
    this.emit('change', { isLeader: false, epoch: lease.epoch, reason });
    // Try again soon (the lease may still be ours after a database blip).
    this.#nextAttemptAt = Math.min(this.#nextAttemptAt, performance.now() + 1000);
    this.#wake?.();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}
