import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { withConnection } from '../support/db.ts';

/** A scratch directory removed by `cleanup()`. */
export function scratchDir(prefix = 'owui-engine-'): {
  dir: string;
  file: (name: string) => string;
  cleanup: () => void;
} {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, file: (name) => path.join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export { NS_BASE, makeMiniOpenWebUI } from './mini-openwebui.ts';

/** Registers a host and a tenant (admin connection); returns the scope a service session uses. */
export async function registerTenant(
  adminUrl: string,
  clientName: string,
  sqlitePath: string,
  extra: { conflictStrategy?: string; conflictConfig?: unknown } = {},
): Promise<{ hostId: string; deploymentId: string; schemaName: string }> {
  return withConnection(adminUrl, async (c: pg.Client) => {
    const host = await c.query<{ host_id: string }>(
      `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
       VALUES (sync_metadata.host_identity('test', 'host-1', 'node-a'), 'host-1', 'test', 'node-a')
       ON CONFLICT (host_id) DO UPDATE SET last_heartbeat = now() RETURNING host_id`,
    );
    const hostId = host.rows[0]?.host_id as string;
    const schemaName = `client_${clientName.replaceAll('-', '_')}`;
    const dep = await c.query<{ deployment_id: string }>(
      `INSERT INTO sync_metadata.client_deployments
         (client_name, host_id, sqlite_path, schema_name, sync_enabled, status, conflict_strategy, conflict_config)
       VALUES ($1, $2, $3, $4, true, 'active', $5, $6) RETURNING deployment_id`,
      [
        clientName,
        hostId,
        sqlitePath,
        schemaName,
        extra.conflictStrategy ?? 'newest_wins',
        extra.conflictConfig ?? null,
      ],
    );
    return { hostId, deploymentId: dep.rows[0]?.deployment_id as string, schemaName };
  });
}
