import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS } from '@owui-sync/schema';
import { ConfigError } from '../errors.ts';
import { loadConfig } from '../config.ts';
import { clusterConfigSchema, processIdentity, usesTransactionPooler } from './config.ts';
import { maintenanceSettings } from './maintenance.ts';
import { clusterPriority } from './queue.ts';

const URL_OK = 'postgres://sync_service:pw@db:5432/postgres';

describe('cluster configuration', () => {
  it('applies the documented defaults', () => {
    const cfg = loadConfig(clusterConfigSchema, { env: { DATABASE_URL: URL_OK }, cwd: '/nonexistent' });
    expect(cfg).toMatchObject({
      LEASE_DURATION: 60,
      HEARTBEAT_INTERVAL: 30,
      SCHEDULER_INTERVAL: 5,
      WORKER_CONCURRENCY: 2,
      QUEUE_POLL_INTERVAL: 0.5,
      SYNC_CLAIM_TTL: 30,
      BATCH_SIZE: 5000,
      SHUTDOWN_TIMEOUT: 30,
      API_PORT: 9443,
      DATABASE_POOLER: 'auto',
    });
  });

  it('lists every problem at once: lease not above heartbeat, missing URL', () => {
    let error: unknown;
    try {
      loadConfig(clusterConfigSchema, { env: { LEASE_DURATION: '5', HEARTBEAT_INTERVAL: '5' }, cwd: '/nonexistent' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/LEASE_DURATION: must be greater than HEARTBEAT_INTERVAL/);
    expect(problems).toMatch(/DATABASE_URL: is required/);
  });

  it('history retention: documented defaults, and clear errors for values out of range', () => {
    const cfg = loadConfig(clusterConfigSchema, { env: { DATABASE_URL: URL_OK }, cwd: '/nonexistent' });
    expect(cfg).toMatchObject({
      MAINTENANCE_ENABLED: true,
      MAINTENANCE_INTERVAL: 300,
      MAINTENANCE_BATCH_SIZE: 1000,
      MAINTENANCE_PAUSE_MS: 100,
      HISTORY_RETENTION_DAYS: 30,
      SKIPPED_RUN_RETENTION_HOURS: 24,
      CONFLICT_RETENTION_DAYS: 30,
      FAILED_ROW_RETENTION_DAYS: 30,
      CACHE_EVENTS_RETENTION_HOURS: 24,
      PROGRESS_RETENTION_DAYS: 7,
      DRILL_RETENTION_DAYS: 30,
      DRILL_INTERVAL_HOURS: 24,
      DRILL_CONCURRENCY: 1,
    });
    expect(maintenanceSettings(cfg).retentionSeconds).toEqual({
      skipped_runs: 24 * 3600,
      sync_jobs: 30 * 86_400,
      conflict_log: 30 * 86_400,
      failed_rows: 30 * 86_400,
      cache_events: 24 * 3600,
      sync_progress: 7 * 86_400,
      restore_drills: 30 * 86_400,
    });
    const problemsOf = (env: Record<string, string>) => {
      try {
        loadConfig(clusterConfigSchema, { env: { DATABASE_URL: URL_OK, ...env }, cwd: '/nonexistent' });
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).problems.join('\n');
      }
      throw new Error('expected a configuration error');
    };
    expect(problemsOf({ HISTORY_RETENTION_DAYS: '2', SKIPPED_RUN_RETENTION_HOURS: '72' })).toMatch(
      /SKIPPED_RUN_RETENTION_HOURS: must not exceed HISTORY_RETENTION_DAYS \(2 days = 48 hours\)/,
    );
    const ranges = problemsOf({
      CACHE_EVENTS_RETENTION_HOURS: '0',
      MAINTENANCE_BATCH_SIZE: '50000',
      CONFLICT_RETENTION_DAYS: 'soon',
    });
    expect(ranges).toMatch(/CACHE_EVENTS_RETENTION_HOURS: Too small/);
    expect(ranges).toMatch(/MAINTENANCE_BATCH_SIZE: Too big/);
    expect(ranges).toMatch(/CONFLICT_RETENTION_DAYS: Invalid input/);
    const drills = problemsOf({ DRILL_INTERVAL_HOURS: '-1', DRILL_CONCURRENCY: '17', DRILL_RETENTION_DAYS: '0' });
    expect(drills).toMatch(/DRILL_INTERVAL_HOURS: Too small/);
    expect(drills).toMatch(/DRILL_CONCURRENCY: Too big/);
    expect(drills).toMatch(/DRILL_RETENTION_DAYS: Too small/);
    expect(
      loadConfig(clusterConfigSchema, { env: { DATABASE_URL: URL_OK, DRILL_INTERVAL_HOURS: '0' }, cwd: '/x' }),
    ).toMatchObject({ DRILL_INTERVAL_HOURS: 0 });
  });

  it('takes every default from the one table (CONFIG_DEFAULTS)', () => {
    const cfg = loadConfig(clusterConfigSchema, { env: { DATABASE_URL: URL_OK }, cwd: '/nonexistent' });
    const defaults: Record<string, unknown> = CONFIG_DEFAULTS;
    for (const [key, value] of Object.entries(cfg)) {
      if (key !== 'DATABASE_URL') expect(value, key).toEqual(defaults[key]);
    }
  });

  it('recognises a transaction pooler', () => {
    const supabase = 'postgres://sync_service.ref:pw@aws-1-us-east-2.pooler.supabase.com:6543/postgres';
    expect(usesTransactionPooler({ DATABASE_POOLER: 'auto', DATABASE_URL: supabase })).toBe(true);
    expect(usesTransactionPooler({ DATABASE_POOLER: 'auto', DATABASE_URL: supabase.replace('6543', '5432') })).toBe(
      false,
    );
    expect(usesTransactionPooler({ DATABASE_POOLER: 'transaction', DATABASE_URL: URL_OK })).toBe(true);
    expect(usesTransactionPooler({ DATABASE_POOLER: 'none', DATABASE_URL: supabase })).toBe(false);
  });

  it('names processes: ROLE when given, else node-a or worker-<hostname>', () => {
    expect(processIdentity({ CLUSTER_NAME: 'c', ROLE: 'node-b', HOST_NAME: 'h' }, 'node')).toEqual({
      cluster: 'c',
      hostname: 'h',
      nodeName: 'node-b',
    });
    expect(processIdentity({ CLUSTER_NAME: 'c', ROLE: undefined, HOST_NAME: undefined }, 'worker')).toEqual({
      cluster: 'c',
      hostname: os.hostname(),
      nodeName: `worker-${os.hostname()}`.toLowerCase(),
    });
  });

  it('gives each cluster a stable, distinct queue priority', () => {
    expect(clusterPriority('prod-host-1')).toBe(clusterPriority('prod-host-1'));
    expect(clusterPriority('prod-host-1')).not.toBe(clusterPriority('prod-host-2'));
    for (const name of ['a', 'owui-sync', 'x'.repeat(63)]) {
      expect(Number.isInteger(clusterPriority(name))).toBe(true);
      expect(clusterPriority(name)).toBeGreaterThan(0);
      expect(clusterPriority(name)).toBeLessThanOrEqual(2 ** 30);
    }
  });
});
