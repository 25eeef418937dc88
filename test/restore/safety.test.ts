import fs from 'node:fs';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.ts';
import { makeTenantDb, syncctl } from '../cli/support.ts';
import { scratchDir } from './helpers.ts';

describe('syncctl restore never replaces what it should not', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('syncctl-restore-safety-');
  afterAll(() => scratch.cleanup());
  const env = () => ({
    ADMIN_URL: db.current.adminUrl,
    DATABASE_URL: db.current.serviceUrl,
    CLUSTER_NAME: 'restore-safety',
    DOCKER_HOST: 'unix:///nonexistent/docker.sock',
  });
  const chats = (file: string) => {
    const d = new Database(file, { readonly: true });
    try {
      return d.prepare('SELECT count(*) FROM chat').pluck().get();
    } finally {
      d.close();
    }
  };

  it('a dangling symlink needs --force; the restored file is mode 0600 whatever the umask', async () => {
    const file = scratch.file('acme.db');
    makeTenantDb(file, 4);
    expect((await syncctl(['client', 'register', 'acme', '--sqlite', file], { env: env() })).code).toBe(0);
    expect((await syncctl(['client', 'sync', 'acme', '--full'], { env: env() })).code).toBe(0);

    const dangling = scratch.file('dangling.db');
    fs.symlinkSync(scratch.file('nowhere/missing.db'), dangling);
    const refused = await syncctl(['restore', 'acme', '--to', dangling], { env: env() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/dangling\.db already exists \(a symbolic link that points nowhere\).*--force/);
    expect(fs.lstatSync(dangling).isSymbolicLink()).toBe(true);
    const forced = await syncctl(['restore', 'acme', '--to', dangling, '--force'], { env: env() });
    expect(forced.code, forced.stderr).toBe(0);
    expect(fs.lstatSync(dangling).isFile()).toBe(true);
    expect(fs.existsSync(scratch.file('nowhere'))).toBe(false);

    const previous = process.umask(0o000);
    try {
      const to = scratch.file('open-umask.db');
      const r = await syncctl(['restore', 'acme', '--to', to], { env: env() });
      expect(r.code, r.stderr).toBe(0);
      expect(fs.statSync(to).mode & 0o777).toBe(0o600);
      expect(chats(to)).toBe(4);
    } finally {
      process.umask(previous);
    }
    expect(fs.statSync(dangling).mode & 0o777).toBe(0o600);
  });

  it('restoring onto the tenant’s own live file needs the tenant paused and --force', async () => {
    const file = scratch.file('live.db');
    makeTenantDb(file, 3);
    expect((await syncctl(['client', 'register', 'live', '--sqlite', file], { env: env() })).code).toBe(0);
    expect((await syncctl(['client', 'start', 'live'], { env: env() })).code).toBe(0);
    expect((await syncctl(['client', 'sync', 'live', '--full'], { env: env() })).code).toBe(0);
    const before = fs.readFileSync(file);
    const link = scratch.file('live-link.db');
    fs.symlinkSync(file, link);

    for (const to of [file, link]) {
      const active = await syncctl(['restore', 'live', '--to', to, '--force'], { env: env() });
      expect(active.code).toBe(1);
      expect(active.stderr).toMatch(/is the registered live SQLite file of tenant "live".*syncctl client pause live/s);
    }
    expect((await syncctl(['client', 'pause', 'live'], { env: env() })).code).toBe(0);
    const noForce = await syncctl(['restore', 'live', '--to', file], { env: env() });
    expect(noForce.code).toBe(1);
    expect(noForce.stderr).toMatch(/already exists/);
    expect(fs.readFileSync(file).equals(before)).toBe(true);

    const paused = await syncctl(['restore', 'live', '--to', file, '--force'], { env: env() });
    expect(paused.code, paused.stderr).toBe(0);
    expect(chats(file)).toBe(3);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });
});
