import { describe, expect, it } from 'vitest';
import { useTestDatabase, withConnection } from '../support/db.ts';

/** Deleting a host removes exactly what CLUSTER_LIFECYCLE_FAQ lists, and nothing of other hosts. */
describe('host deletion cascades', () => {
  const db = useTestDatabase();

  it('removes deployments, their jobs, progress and conflicts, leader rows and cache events', async () => {
    await withConnection(db.current.adminUrl, async (c) => {
      const seed = async (cluster: string, node: string, client: string) => {
        const host = (
          await c.query(
            `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
             VALUES (sync_metadata.host_identity($1, 'h', $2), 'h', $1, $2) RETURNING host_id`,
            [cluster, node],
          )
        ).rows[0].host_id as string;
        const dep = (
          await c.query(
            `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name)
             VALUES ($1, $2, $3) RETURNING deployment_id`,
            [client, host, `client_${client}`],
          )
        ).rows[0].deployment_id as string;
        await c.query(
          `INSERT INTO sync_metadata.sync_jobs (deployment_id, client_name, sync_type, triggered_by)
           VALUES ($1, $2, 'full', 'scheduler')`,
          [dep, client],
        );
        await c.query(
          `INSERT INTO sync_metadata.sync_progress (deployment_id, table_name, cursor_value) VALUES ($1, 'chat', '1')`,
          [dep],
        );
        await c.query(
          `INSERT INTO sync_metadata.conflict_log (client_id, deployment_id, table_name, row_key, resolution_strategy)
           VALUES ($1, $2, 'chat', '{"id":"x"}', 'manual')`,
          [client, dep],
        );
        await c.query(
          `INSERT INTO sync_state.row_state (deployment_id, table_name, row_key, source_hash, target_hash)
           SELECT $1, 'chat', 'k' || i, i, i FROM generate_series(1, 3) i`,
          [dep],
        );
        await c.query(
          `INSERT INTO sync_metadata.cache_events (host_id, cache_key, action) VALUES ($1, 'deployment.x', 'invalidate')`,
          [host],
        );
        await c.query(
          `INSERT INTO sync_metadata.leader_election (cluster_name, leader_id, leader_host_id, expires_at)
           VALUES ($1, $2, $3, now() + interval '60 seconds')`,
          [cluster, node, host],
        );
        return host;
      };
      const doomed = await seed('doomed', 'node-a', 'gone');
      await seed('kept', 'node-a', 'stays');

      await c.query('DELETE FROM sync_metadata.hosts WHERE host_id = $1', [doomed]);

      const count = async (sql: string) => (await c.query(sql)).rows[0].n as number;
      expect(await count("SELECT count(*)::int n FROM sync_metadata.client_deployments WHERE client_name='gone'")).toBe(
        0,
      );
      expect(await count("SELECT count(*)::int n FROM sync_metadata.sync_jobs WHERE client_name='gone'")).toBe(0);
      expect(await count("SELECT count(*)::int n FROM sync_metadata.conflict_log WHERE client_id='gone'")).toBe(0);
      expect(await count('SELECT count(*)::int n FROM sync_metadata.sync_progress')).toBe(1);
      expect(await count('SELECT count(*)::int n FROM sync_state.row_state')).toBe(3);
      expect(await count("SELECT count(*)::int n FROM sync_metadata.leader_election WHERE cluster_name='doomed'")).toBe(
        0,
      );
      expect(await count(`SELECT count(*)::int n FROM sync_metadata.cache_events WHERE host_id='${doomed}'`)).toBe(0);
      // The other cluster is untouched.
      expect(
        await count("SELECT count(*)::int n FROM sync_metadata.client_deployments WHERE client_name='stays'"),
      ).toBe(1);
      expect(await count("SELECT count(*)::int n FROM sync_metadata.sync_jobs WHERE client_name='stays'")).toBe(1);
      expect(await count("SELECT count(*)::int n FROM sync_metadata.conflict_log WHERE client_id='stays'")).toBe(1);
      expect(await count("SELECT count(*)::int n FROM sync_metadata.leader_election WHERE cluster_name='kept'")).toBe(
        1,
      );
      expect(await count('SELECT count(*)::int n FROM sync_metadata.cache_events')).toBe(1);
    });
  });

  it('keeps row bookkeeping tied to an existing deployment, checked per statement', async () => {
    const url = db.current.adminUrl;
    const dep = await withConnection(url, async (c) => {
      const host = (
        await c.query(
          `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
           VALUES (sync_metadata.host_identity('rs', 'h', 'node-a'), 'h', 'rs', 'node-a') RETURNING host_id`,
        )
      ).rows[0].host_id as string;
      return (
        await c.query(
          `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name)
           VALUES ('rs-tenant', $1, 'client_rs_tenant') RETURNING deployment_id`,
          [host],
        )
      ).rows[0].deployment_id as string;
    });
    await withConnection(url, async (c) => {
      // A row for a deployment that does not exist is refused, also among rows that are fine.
      await expect(
        c.query(
          `INSERT INTO sync_state.row_state (deployment_id, table_name, row_key)
           VALUES ($1, 'chat', 'a'), (gen_random_uuid(), 'chat', 'b')`,
          [dep],
        ),
      ).rejects.toMatchObject({ code: '23503' });
      await c.query(`INSERT INTO sync_state.row_state (deployment_id, table_name, row_key) VALUES ($1, 'chat', 'a')`, [
        dep,
      ]);
      // Its deployment never changes.
      await expect(
        c.query(`UPDATE sync_state.row_state SET deployment_id = gen_random_uuid() WHERE deployment_id = $1`, [dep]),
      ).rejects.toMatchObject({ code: '23503' });
    });
    // A deregistration waits for a run writing bookkeeping, then removes that bookkeeping too.
    await withConnection(url, async (writer) => {
      await writer.query('BEGIN');
      await writer.query(
        `INSERT INTO sync_state.row_state (deployment_id, table_name, row_key)
         SELECT $1, 'message', 'm' || i FROM generate_series(1, 50) i`,
        [dep],
      );
      await withConnection(url, async (admin) => {
        let deleted = false;
        const deletion = admin
          .query('DELETE FROM sync_metadata.client_deployments WHERE deployment_id = $1', [dep])
          .then(() => (deleted = true));
        await new Promise((r) => setTimeout(r, 300));
        expect(deleted).toBe(false);
        await writer.query('COMMIT');
        await deletion;
        const left = await admin.query('SELECT count(*)::int n FROM sync_state.row_state WHERE deployment_id = $1', [
          dep,
        ]);
        expect(left.rows[0].n).toBe(0);
      });
    });
  });

  it('derives a stable host id from cluster, hostname and node name', async () => {
    await withConnection(db.current.adminUrl, async (c) => {
      const a = await c.query("SELECT sync_metadata.host_identity('c', 'h', 'node-a') AS id");
      const b = await c.query("SELECT sync_metadata.host_identity('c', 'h', 'node-a') AS id");
      const other = await c.query("SELECT sync_metadata.host_identity('c', 'h', 'node-b') AS id");
      expect(a.rows[0].id).toBe(b.rows[0].id);
      expect(other.rows[0].id).not.toBe(a.rows[0].id);
    });
  });
});
