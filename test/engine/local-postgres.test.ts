import { existsSync, lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, utimesSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalPostgresError, ROOT_RUNTIME_DIR, SERVER_USER, startLocalPostgres } from '@owui-sync/engine';
import { freePort } from '../support/processes.ts';

/**
 * The embedded PostgreSQL itself: where its files go when root starts it from a directory the server's user cannot
 * enter, that the data follows the link, and that a port in use is a clear error rather than a stray server.
 */

const isRoot = process.getuid?.() === 0;

async function query(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

describe('embedded PostgreSQL', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it.runIf(isRoot)(
    'started by root in a private directory: runs as its own user, data linked from there and kept by the link',
    async () => {
      const parent = mkdtempSync(path.join(os.tmpdir(), 'owui-local-pg-')); // mode 0700
      const dataDir = path.join(parent, 'pg');
      const port = await freePort();
      let server = await startLocalPostgres({ dataDir, port });
      const target = readlinkSync(dataDir);
      const home = path.dirname(target);
      dirs.push(parent, home);
      try {
        expect(server.user).toBe(SERVER_USER);
        expect(server.dataDir).toBe(target);
        expect(target.startsWith(`${ROOT_RUNTIME_DIR}/data/`)).toBe(true);
        expect(statSync(target).mode & 0o777).toBe(0o700);
        expect(statSync(parent).mode & 0o777).toBe(0o700);
        const owner = await query(server.adminUrl, `SELECT current_setting('data_directory') AS dir`);
        expect(owner.rows[0].dir).toBe(target);
        await query(server.adminUrl, 'CREATE TABLE kept (id int)');
      } finally {
        await server.stop();
      }
      // The per-run copy of the binaries is gone with the server.
      const runs = readdirSync(path.join(ROOT_RUNTIME_DIR, 'run')).filter((e) => e.startsWith(`${process.pid}-`));
      expect(runs).toEqual([]);

      // Started again through the link: the same data.
      server = await startLocalPostgres({ dataDir, port });
      try {
        expect(server.dataDir).toBe(target);
        await query(server.adminUrl, 'SELECT * FROM kept');
      } finally {
        await server.stop();
      }

      // The link removed: the data it kept is gone, and the next start begins a new cluster.
      rmSync(dataDir);
      server = await startLocalPostgres({ dataDir, port });
      try {
        expect(lstatSync(dataDir).isSymbolicLink()).toBe(true);
        await expect(query(server.adminUrl, 'SELECT * FROM kept')).rejects.toThrow(/does not exist/);
      } finally {
        await server.stop();
      }

      // A link that is gone for good (a deleted checkout): its data is removed by any later start.
      rmSync(dataDir);
      const old = new Date(Date.now() - 5 * 60_000);
      utimesSync(home, old, old);
      const other = path.join(parent, 'other');
      server = await startLocalPostgres({ dataDir: other, port });
      dirs.push(path.dirname(readlinkSync(other)));
      await server.stop();
      expect(existsSync(home)).toBe(false);
    },
    120_000,
  );

  it('a port in use: a clear error and no server', async () => {
    const parent = mkdtempSync(path.join(os.tmpdir(), 'owui-local-pg-'));
    dirs.push(parent);
    const taken = net.createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
    try {
      const start = startLocalPostgres({ dataDir: path.join(parent, 'pg'), port });
      await expect(start).rejects.toThrow(LocalPostgresError);
      await expect(start).rejects.toThrow(
        `port ${port} on 127.0.0.1 is in use: stop what runs there or choose another`,
      );
      expect(existsSync(path.join(parent, 'pg'))).toBe(false);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});
