import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CONFIG_DEFAULTS, baseConfigSchema, baseConfigShape, composeConfig } from '@owui-sync/schema';
import { loadConfig } from './config.ts';
import { ConfigError } from './errors.ts';

const noCredentials = () => mkdtempSync(path.join(tmpdir(), 'owui-cfg-'));

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).problems];
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const cfg = loadConfig(baseConfigSchema, { env: {}, cwd: noCredentials() });
    expect(cfg).toMatchObject({
      HEARTBEAT_INTERVAL: 30,
      LEASE_DURATION: 60,
      CACHE_TTL: 300,
      BATCH_SIZE: 5000,
      SYNC_CLAIM_TTL: 30,
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      ENABLE_METRICS: true,
    });
    expect(Object.isFrozen(cfg)).toBe(true);
  });

  it('accepts the seeds spelling of values (LOG_LEVEL=INFO, ENABLE_METRICS=false)', () => {
    const cfg = loadConfig(baseConfigSchema, {
      env: { LOG_LEVEL: 'INFO', ENABLE_METRICS: 'false', HEARTBEAT_INTERVAL: '1', LEASE_DURATION: '3' },
      cwd: noCredentials(),
    });
    expect(cfg.LOG_LEVEL).toBe('info');
    expect(cfg.ENABLE_METRICS).toBe(false);
    expect(cfg.LEASE_DURATION).toBe(3);
  });

  it('lists every problem at once', () => {
    const problems = problemsOf(() =>
      loadConfig(baseConfigSchema, {
        env: {
          DATABASE_URL: 'mysql://nope',
          HEARTBEAT_INTERVAL: 'soon',
          BATCH_SIZE: '0',
          LOG_FORMAT: 'xml',
          ENABLE_METRICS: 'maybe',
          CLUSTER_NAME: 'bad name!',
        },
        cwd: noCredentials(),
      }),
    );
    const keys = problems.map((p) => p.split(':')[0]);
    expect(keys).toEqual(
      expect.arrayContaining([
        'DATABASE_URL',
        'HEARTBEAT_INTERVAL',
        'BATCH_SIZE',
        'LOG_FORMAT',
        'ENABLE_METRICS',
        'CLUSTER_NAME',
      ]),
    );
    expect(problems.length).toBeGreaterThanOrEqual(6);
  });

  it('rejects a lease that is not longer than the heartbeat', () => {
    const problems = problemsOf(() =>
      loadConfig(baseConfigSchema, { env: { HEARTBEAT_INTERVAL: '30', LEASE_DURATION: '30' }, cwd: noCredentials() }),
    );
    expect(problems.join('\n')).toMatch(/LEASE_DURATION: must be greater than HEARTBEAT_INTERVAL/);
  });

  it('refuses a service URL that is the admin login', () => {
    const url = 'postgres://postgres:secret@db.example:5432/postgres';
    const problems = problemsOf(() =>
      loadConfig(baseConfigSchema, { env: { DATABASE_URL: url, ADMIN_URL: url }, cwd: noCredentials() }),
    );
    expect(problems.join('\n')).toMatch(/DATABASE_URL: is the admin login/);
    expect(problems.join('\n')).not.toContain('secret');
  });

  it('never echoes secret values in problems', () => {
    const problems = problemsOf(() =>
      loadConfig(z.object({ ...baseConfigShape }), {
        env: { DATABASE_URL: 'postgres://u:hunter2@host:notaport/db' },
        cwd: noCredentials(),
      }),
    );
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it('reads ADMIN_URL and SYNC_URL from a private .credentials file; the environment wins', () => {
    const dir = noCredentials();
    const file = path.join(dir, '.credentials');
    writeFileSync(
      file,
      [
        '# written by syncctl init',
        'ADMIN_URL=postgresql://postgres:a%40b@db:5432/postgres',
        'export SYNC_URL="postgresql://sync_service:p%23w@db:5432/postgres"',
        'SYNC_SERVICE_PASSWORD=p#w',
      ].join('\n'),
      { mode: 0o600 },
    );
    const cfg = loadConfig(baseConfigSchema, { env: {}, cwd: dir });
    expect(cfg.ADMIN_URL).toBe('postgresql://postgres:a%40b@db:5432/postgres');
    expect(cfg.DATABASE_URL).toBe('postgresql://sync_service:p%23w@db:5432/postgres');
    const overridden = loadConfig(baseConfigSchema, {
      env: { DATABASE_URL: 'postgresql://other:x@db:5432/postgres' },
      cwd: dir,
    });
    expect(overridden.DATABASE_URL).toBe('postgresql://other:x@db:5432/postgres');
  });

  it('refuses a .credentials file readable by group or others', () => {
    const dir = noCredentials();
    const file = path.join(dir, '.credentials');
    writeFileSync(file, 'ADMIN_URL=postgresql://postgres:x@db/postgres\n');
    chmodSync(file, 0o644);
    const problems = problemsOf(() => loadConfig(baseConfigSchema, { env: {}, cwd: dir }));
    expect(problems[0]).toMatch(/readable by group or others.*chmod 600/);
  });

  it('reports a CREDENTIALS_FILE that does not exist', () => {
    const problems = problemsOf(() =>
      loadConfig(baseConfigSchema, { env: { CREDENTIALS_FILE: '/nonexistent/.credentials' }, cwd: noCredentials() }),
    );
    expect(problems[0]).toMatch(/does not exist/);
  });

  it('resolves *_FILE secrets for every schema, not only the CLI: a file wins only when the variable is unset', () => {
    const dir = noCredentials();
    const urlFile = path.join(dir, 'database_url');
    const passwordFile = path.join(dir, 'admin_password');
    writeFileSync(urlFile, 'postgresql://sync_service:s3cret@db:5432/postgres\n');
    writeFileSync(passwordFile, 'p@ss word\n');
    const env = {
      DATABASE_URL_FILE: urlFile,
      ADMIN_URL: 'postgresql://postgres@db:5432/postgres',
      ADMIN_PASSWORD_FILE: passwordFile,
    };
    const cfg = loadConfig(baseConfigSchema, { env, cwd: dir });
    expect(cfg.DATABASE_URL).toBe('postgresql://sync_service:s3cret@db:5432/postgres');
    expect(cfg.ADMIN_URL).toBe('postgresql://postgres:p%40ss%20word@db:5432/postgres');
    expect(env.ADMIN_URL).toBe('postgresql://postgres@db:5432/postgres');
    const direct = loadConfig(baseConfigSchema, {
      env: { ...env, DATABASE_URL: 'postgresql://other:x@db:5432/postgres' },
      cwd: dir,
    });
    expect(direct.DATABASE_URL).toBe('postgresql://other:x@db:5432/postgres');
    const missing = problemsOf(() =>
      loadConfig(baseConfigSchema, { env: { DATABASE_URL_FILE: path.join(dir, 'nope') }, cwd: dir }),
    );
    expect(missing[0]).toMatch(/cannot read secret file/);
  });

  it('refuses the admin login through a pooler too: the roles the URLs log in as are compared', () => {
    const service = composeConfig('worker', baseConfigShape);
    const problems = problemsOf(() =>
      loadConfig(service, {
        env: {
          DATABASE_URL: 'postgresql://postgres.abcdefgh:pw@aws-0-eu.pooler.supabase.com:6543/postgres',
          ADMIN_URL: 'postgresql://postgres:pw@db.abcdefgh.supabase.co:5432/postgres',
        },
        cwd: noCredentials(),
      }),
    );
    expect(problems.join('\n')).toMatch(/DATABASE_URL: is the admin login \(it logs in as "postgres"/);
    const ok = loadConfig(service, {
      env: {
        DATABASE_URL: 'postgresql://sync_service.abcdefgh:pw@aws-0-eu.pooler.supabase.com:6543/postgres',
        ADMIN_URL: 'postgresql://postgres:pw@db.abcdefgh.supabase.co:5432/postgres',
      },
      cwd: noCredentials(),
    });
    expect(ok.DATABASE_URL).toContain('sync_service');
  });

  it('every long-running process needs DATABASE_URL; the CLI does not', () => {
    for (const kind of ['node', 'worker', 'scheduler', 'api'] as const) {
      expect(
        problemsOf(() => loadConfig(composeConfig(kind, baseConfigShape), { env: {}, cwd: noCredentials() })),
      ).toEqual([expect.stringMatching(/^DATABASE_URL: is required/)]);
    }
    expect(loadConfig(composeConfig('cli', baseConfigShape), { env: {}, cwd: noCredentials() }).DATABASE_URL).toBe(
      undefined,
    );
  });

  it('names the kind of process that must not run as the admin', () => {
    const env = {
      DATABASE_URL: 'postgresql://postgres:pw@db:5432/postgres',
      ADMIN_URL: 'postgresql://postgres:pw@db:5432/postgres',
    };
    expect(
      problemsOf(() => loadConfig(composeConfig('api', baseConfigShape), { env, cwd: noCredentials() })).join('\n'),
    ).toMatch(/an API process must run as the restricted service role/);
    expect(
      problemsOf(() => loadConfig(composeConfig('scheduler', baseConfigShape), { env, cwd: noCredentials() })).join(
        '\n',
      ),
    ).toMatch(/a scheduler must run as the restricted service role/);
  });

  it('takes every default from the one table', () => {
    const cfg = loadConfig(baseConfigSchema, { env: {}, cwd: noCredentials() });
    for (const [key, value] of Object.entries(cfg)) {
      expect(value, key).toEqual(CONFIG_DEFAULTS[key as keyof typeof CONFIG_DEFAULTS]);
    }
  });
});
