import { withTransaction } from '@owui-sync/engine';
import type { Command } from '../command.ts';
import { confirmTyped } from '../confirm.ts';
import { age, banner, boxTable, table, timestamp } from '../format.ts';
import { clusterStatus, deregisterCluster, planClusterDeregistration, type DeregisterPlan } from '../ops/cluster.ts';

export const clusterStatusCommand: Command = {
  path: ['cluster', 'status'],
  summary: 'nodes, leader and heartbeats of the cluster (v_cluster_health)',
  examples: ['syncctl cluster status', 'syncctl cluster status --cluster prod-host-1 --json'],
  async run(ctx) {
    const s = await clusterStatus(ctx.readPool().pool, ctx.cluster);
    ctx.result(s, () => {
      if (s.nodes.length === 0) {
        return `No hosts registered in cluster "${s.cluster_name}". Start a node: syncctl node (or docker compose up -d)`;
      }
      const leader = s.leader?.lease_valid
        ? `Leader: ${s.leader.leader_id} (epoch ${s.leader.epoch}, lease until ${timestamp(s.leader.expires_at)})`
        : `⚠️  No live leader${s.leader ? ` (last: ${s.leader.leader_id}, lease expired ${timestamp(s.leader.expires_at)})` : ''}` +
          ': start a node (syncctl node) and check the nodes can reach the database.';
      return [
        `Cluster: ${s.cluster_name}`,
        leader,
        '',
        table(s.nodes, [
          { header: 'NODE', value: (n) => n.node_name },
          { header: 'HOSTNAME', value: (n) => n.hostname },
          { header: 'ROLE', value: (n) => n.role },
          { header: 'STATUS', value: (n) => n.status },
          { header: 'LEADER', value: (n) => (n.is_leader ? 'leader' : n.role === 'node' ? 'follower' : '-') },
          { header: 'HEARTBEAT', value: (n) => age(n.seconds_since_heartbeat) },
        ]),
      ].join('\n');
    });
  },
};

function blockedReport(plan: DeregisterPlan): string {
  const n = plan.sync_enabled.length;
  return [
    banner(['⚠️  CRITICAL WARNING: ACTIVE SYNC CLIENTS DETECTED']),
    '',
    `❌ Cannot deregister cluster: ${n} client(s) have sync ENABLED`,
    '',
    'Clients with sync enabled:',
    boxTable(
      ['client_name', 'container_name', 'last_sync_at', 'status'],
      plan.sync_enabled.map((c) => [
        c.client_name,
        c.container_name ?? '-',
        timestamp(c.last_sync_at),
        c.last_sync_status ?? '-',
      ]),
    ),
    '',
    '═'.repeat(67),
    'REQUIRED ACTIONS before deregistration:',
    '═'.repeat(67),
    '',
    'For each client listed above, choose ONE of the following:',
    '',
    'Option 1: Disable sync for this client',
    '   - syncctl client pause CLIENT_NAME',
    '   - OR manually: UPDATE sync_metadata.client_deployments',
    "     SET sync_enabled = false WHERE client_name = 'CLIENT_NAME';",
    '',
    'Option 2: Migrate client to another host/cluster',
    '   - Deploy sync cluster on new host',
    '   - Migrate Open WebUI container to new host',
    '   - Update client_deployments.host_id to new host',
    '',
    'Option 3: Decommission the client deployment',
    '   - Stop the Open WebUI container',
    '   - Backup data if needed',
    '   - syncctl client deregister CLIENT_NAME (deletes it from sync_metadata.client_deployments)',
    '',
    'Once all sync-enabled clients are handled, re-run: syncctl cluster deregister',
    '',
    '❌ ERROR: Deregistration blocked due to active sync clients',
  ].join('\n');
}

export const clusterDeregisterCommand: Command = {
  path: ['cluster', 'deregister'],
  summary: 'remove this cluster’s hosts and everything that cascades (before destroying a host)',
  description:
    'Blocks while any tenant of the cluster has sync enabled, listing them with three ways out. Otherwise lists what\n' +
    'will be deleted (hosts, leader rows, deployments of paused tenants, their job history and conflicts, cache\n' +
    'events), asks you to type "yes" (or pass --yes), deletes the hosts through the admin connection and checks that\n' +
    'nothing is left. Tenant schemas and their data stay; stop the nodes first or they re-register.',
  options: { yes: { type: 'boolean', short: 'y', description: 'do not ask for confirmation' } },
  examples: ['syncctl cluster deregister', 'syncctl cluster deregister --cluster prod-host-1 --yes'],
  async run(ctx, { values }) {
    const pool = ctx.pool('admin');
    const plan = await planClusterDeregistration(pool, ctx.cluster);
    if (plan.sync_enabled.length > 0) {
      if (ctx.json) {
        ctx.result(
          {
            cluster_name: plan.cluster_name,
            blocked: true,
            sync_enabled: plan.sync_enabled,
            error: `${plan.sync_enabled.length} client(s) have sync enabled; pause, migrate or deregister them first`,
          },
          () => '',
        );
      } else {
        ctx.err(blockedReport(plan));
      }
      return 1;
    }
    if (plan.hosts.length === 0 && plan.leader_rows === 0) {
      ctx.result(
        { cluster_name: plan.cluster_name, deregistered: false, nothing_to_do: true },
        () => `ℹ️  Cluster "${plan.cluster_name}" has no hosts registered; nothing to deregister.`,
      );
      return 0;
    }
    const live = plan.hosts.filter((h) => h.role !== 'admin' && h.seconds_since_heartbeat < 120);
    if (!ctx.json) {
      const lines = ['✅ Safety check passed: No active sync clients found', ''];
      if (plan.paused.length > 0) {
        lines.push(
          `⚠️  WARNING: Found ${plan.paused.length} client deployment(s) registered (sync disabled): ${plan.paused
            .map((p) => p.client_name)
            .join(', ')}`,
          '  These will be deleted when the cluster is deregistered.',
          '  If you want to preserve these client records for future use,',
          '  manually migrate them to another cluster before proceeding.',
          '',
        );
      }
      if (live.length > 0) {
        lines.push(
          `⚠️  WARNING: ${live.length} node(s) heartbeated in the last 2 minutes (${live.map((h) => h.node_name).join(', ')}).`,
          '  Stop them first (docker compose down) or they register again on their next heartbeat.',
          '',
        );
      }
      lines.push(
        '⚠️  WARNING: This will permanently delete:',
        `   - All host records for cluster '${plan.cluster_name}' (${plan.hosts.length})`,
        `   - Leader election records (via CASCADE) (${plan.leader_rows})`,
        `   - Client deployment records (via CASCADE) - ${plan.paused.length} client(s)`,
        `   - Cache invalidation events (via CASCADE) (${plan.cache_events})`,
        `   - Sync job history (via CASCADE) (${plan.jobs} jobs, ${plan.conflicts} conflict records)`,
        '   Tenant schemas and their backed-up data are NOT deleted.',
        '',
      );
      ctx.err(lines.join('\n'));
    }
    const ok = await confirmTyped(ctx, {
      question: 'Are you sure you want to deregister this cluster? (yes/no): ',
      expected: 'yes',
      yes: Boolean(values.yes),
      flagHint: 'syncctl cluster deregister',
    });
    if (!ok) {
      ctx.result({ cluster_name: plan.cluster_name, cancelled: true }, () => 'Cancelled: nothing was changed.');
      return 1;
    }
    const outcome = await deregisterCluster(pool, ctx.cluster);
    // Verify after commit, from a fresh transaction: nothing of the cluster is left.
    const after = await withTransaction(pool, async (c) => {
      const r = await c.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM sync_metadata.hosts WHERE cluster_name = $1::text',
        [ctx.cluster],
      );
      return r.rows[0]?.n ?? 0;
    });
    ctx.result({ ...outcome, deregistered: true, hosts_after: after }, () =>
      [
        `✅ Cluster "${outcome.cluster_name}" deregistered: ${outcome.hosts_deleted} host(s) and ${outcome.deployments_deleted} client deployment(s) deleted.`,
        after === 0
          ? '✅ Verified: no hosts, deployments or leader rows of this cluster remain. Safe to destroy the host.'
          : `⚠️  ${after} host(s) registered again right away: a node is still running. Stop it and re-run.`,
      ].join('\n'),
    );
    return after === 0 ? 0 : 1;
  },
};
