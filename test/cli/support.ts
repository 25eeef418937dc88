import { PassThrough } from 'node:stream';
import { run } from '../../apps/cli/src/main.ts';
import type { CliIo } from '../../apps/cli/src/io.ts';
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
    env: { LOG_LEVEL: 'silent', ...(options.interactive ? { SYNCCTL_INTERACTIVE: '1' } : {}), ...options.env },
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
