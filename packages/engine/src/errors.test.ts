import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AppError, ERROR_CODES, redactSecrets, redactUrl } from './errors.ts';
import { createLogger } from './logger.ts';

describe('secret redaction', () => {
  it('removes passwords from connection strings and password pairs', () => {
    const text =
      'connect failed: postgresql://sync_service:s3cr%40t@db.x.supabase.co:5432/postgres and password=hunter2 ok';
    const out = redactSecrets(text);
    expect(out).not.toContain('s3cr%40t');
    expect(out).not.toContain('hunter2');
    expect(out).toContain('postgresql://sync_service:***@db.x.supabase.co:5432/postgres');
  });

  it('redacts URLs it prints', () => {
    expect(redactUrl('postgres://u:pw@h:5432/d')).toBe('postgres://u:***@h:5432/d');
    expect(redactUrl('postgres://h/d')).toBe('postgres://h/d');
  });

  it('AppError messages are redacted at construction', () => {
    const error = new AppError(ERROR_CODES.database, 'cannot reach postgres://admin:topsecret@h/db');
    expect(error.message).not.toContain('topsecret');
    expect(error.code).toBe('DATABASE_ERROR');
  });

  it('log lines never carry passwords, in messages, known keys or errors', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const logger = createLogger({ destination, level: 'info' });
    logger.info({ databaseUrl: 'postgres://a:pw1@h/d', nested: { password: 'pw2' } }, 'using postgres://a:pw3@h/d');
    logger.error({ err: new Error('boom postgres://a:pw4@h/d') }, 'failed');
    const all = lines.join('\n');
    for (const secret of ['pw1', 'pw2', 'pw3', 'pw4']) expect(all).not.toContain(secret);
    expect(all).toContain('postgres://a:***@h/d');
  });
});
