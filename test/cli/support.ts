import Database from 'better-sqlite3';
import { PassThrough } from 'node:stream';
import { run } from '@owui-sync/cli';
import type { CliIo } from '@owui-sync/cli';
import { inject } from 'vitest';
import { withConnection } from '../support/db.ts';

export type CliRun = { code: number; stdout: string; stderr: string; json: () => unknown };

/** Runs syncctl in-process with captured output; `input` is what the operator types. */
export async function syncctl(
  argv: readonly string[],
  options: { env: Record<string, string | undefined>; cwd?: string; input?: string; interactive?: boolean },
): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stdin = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  if (options.input !== undefined) stdin.end(options.input);
  else stdin.end();
  const io: CliIo = {
    stdout,
    stderr,
    stdin,
    // The run's own group role, so an install never creates or changes a role of the server outside this run.
    env: {
      LOG_LEVEL: 'silent',
      CLUSTER_GROUP_ROLE: inject('pg').groupRole,
      ...(options.interactive ? { SYNCCTL_INTERACTIVE: '1' } : {}),
      ...options.env,
    },
    cwd: options.cwd ?? process.cwd(),
  };
  const code = await run(argv, io);
  return { code, stdout: out, stderr: err, json: () => JSON.parse(out) };
}

/** Inserts a host and a tenant registration directly (for commands that need one without a SQLite file). */
export async function seedTenant(
  adminUrl: string,
  opts: { cluster: string; client: string; node?: string; enabled?: boolean; status?: string; container?: string },
): Promise<{ hostId: string; deploymentId: string }> {
  return withConnection(adminUrl, async (c) => {
    const node = opts.node ?? 'node-a';
    const host = await c.query<{ host_id: string }>(
      `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
       VALUES (sync_metadata.host_identity($1, 'h1', $2), 'h1', $1, $2)
       ON CONFLICT (host_id) DO UPDATE SET updated_at = now() RETURNING host_id`,
      [opts.cluster, node],
    );
    const hostId = host.rows[0]!.host_id;
    const dep = await c.query<{ deployment_id: string }>(
      `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, container_name, sync_enabled, status)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING deployment_id`,
      [
        opts.client,
        hostId,
        `client_${opts.client.replaceAll('-', '_')}`,
        opts.container ?? `openwebui-${opts.client}`,
        opts.enabled ?? false,
        opts.status ?? (opts.enabled ? 'active' : 'registered'),
      ],
    );
    return { hostId, deploymentId: dep.rows[0]!.deployment_id };
  });
}

/**
 * A small Open WebUI database (0.6-era layout: legacy `user`/`auth`/`chat` without primary keys, DATETIME-declared
 * epoch integers, JSON columns) for the CLI's tests; the engine's own tests cover every era.
 */
export function makeTenantDb(file: string, chats = 5): void {
  const db = new Database(file);
  try {
    db.exec(`
      CREATE TABLE "user" (id VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL,
        role VARCHAR(255) NOT NULL, profile_image_url TEXT NOT NULL, created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL, last_active_at INTEGER NOT NULL, info JSON, settings JSON);
      CREATE UNIQUE INDEX user_id ON "user" (id);
      CREATE TABLE auth (id VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL, password TEXT NOT NULL,
        active INTEGER NOT NULL);
      CREATE UNIQUE INDEX auth_id ON auth (id);
      CREATE TABLE chat (id VARCHAR(255) NOT NULL, user_id VARCHAR(255) NOT NULL, title TEXT NOT NULL,
        share_id VARCHAR(255), archived INTEGER NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,
        chat JSON, pinned BOOLEAN, meta JSON DEFAULT '{}' NOT NULL, folder_id TEXT);
      CREATE UNIQUE INDEX chat_id ON chat (id);
      CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, PRIMARY KEY (version_num));
      INSERT INTO alembic_version VALUES ('c440947495f3');
      INSERT INTO "user" VALUES ('u1', 'Ada', 'ada@example.com', 'admin', '', 1700000000, 1700000100, 1700000200,
        'null', '{"ui":{"theme":"dark"}}');
      INSERT INTO auth VALUES ('u1', 'ada@example.com', 'x', 1);
    `);
    const chat = db.prepare('INSERT INTO chat VALUES (?, ?, ?, NULL, 0, ?, ?, ?, 0, ?, NULL)');
    db.transaction(() => {
      for (let i = 1; i <= chats; i++) {
        const id = `chat-${String(i).padStart(4, '0')}`;
        chat.run(id, 'u1', `Chat ${i}`, 1_700_000_000 + i, 1_700_000_000 + i, JSON.stringify({ messages: [i] }), '{}');
      }
    })();
  } finally {
    db.close();
  }
}
