import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveFileSecrets } from '../context.ts';
import { serviceUrlFrom, urlencode } from './credentials.ts';

describe('service URLs', () => {
  it('URL-encodes everything but unreserved characters', () => {
    expect(urlencode("p@ss:w/rd#1 %x'é")).toBe('p%40ss%3aw%2frd%231%20%25x%27%c3%a9');
    expect(urlencode('AZaz09-_.~')).toBe('AZaz09-_.~');
  });

  it('derives the service login from the admin URL, keeping host, port and database', () => {
    expect(serviceUrlFrom('postgresql://postgres:secret@db.abc.supabase.co:5432/postgres', 'sync_service', 'a/b')).toBe(
      'postgresql://sync_service:a%2fb@db.abc.supabase.co:5432/postgres',
    );
  });

  it('through the Supabase pooler the service user carries the project ref', () => {
    expect(
      serviceUrlFrom(
        'postgresql://postgres.abc123:pw@aws-0-us-east-1.pooler.supabase.com:6543/postgres',
        'sync_service',
        'x',
      ),
    ).toBe('postgresql://sync_service.abc123:x@aws-0-us-east-1.pooler.supabase.com:6543/postgres');
  });
});

describe('Docker secret files', () => {
  it('fills URLs and passwords from *_FILE variables without putting passwords in the environment', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'secrets-'));
    try {
      writeFileSync(path.join(dir, 'pw'), 'p@ss word\n');
      writeFileSync(path.join(dir, 'svc'), 's3cret\n');
      const env: Record<string, string | undefined> = {
        DATABASE_URL: 'postgresql://sync_service@db:5432/postgres',
        DATABASE_PASSWORD_FILE: path.join(dir, 'svc'),
        ADMIN_URL: 'postgresql://postgres@db:5432/postgres',
        ADMIN_PASSWORD_FILE: path.join(dir, 'pw'),
        SYNC_SERVICE_PASSWORD_FILE: path.join(dir, 'svc'),
      };
      resolveFileSecrets(env);
      expect(env.DATABASE_URL).toBe('postgresql://sync_service:s3cret@db:5432/postgres');
      expect(env.ADMIN_URL).toBe('postgresql://postgres:p%40ss%20word@db:5432/postgres');
      expect(env.SYNC_SERVICE_PASSWORD).toBe('s3cret');
      expect(() => resolveFileSecrets({ DATABASE_URL_FILE: path.join(dir, 'missing') })).toThrow(
        /cannot read secret file/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
