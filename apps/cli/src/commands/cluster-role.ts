import { redactUrl } from '@owui-sync/engine';
import { addClusterRole, DEFAULT_CLUSTER_GROUP_ROLE } from '@owui-sync/schema';
import type { Command } from '../command.ts';
import { serviceUrlFrom, withPassword } from '../ops/credentials.ts';

export const clusterAddRoleCommand: Command = {
  path: ['cluster', 'add-role'],
  summary: "create the cluster's own login role (one per host), its queue schema and tenant grants",
  description:
    'Uses the admin connection. Creates the login role of one cluster (default name sync_<cluster>) as a member of\n' +
    'the NOLOGIN group role sync_cluster, maps it to the cluster so row-level security confines it to that\n' +
    "cluster's hosts, tenants, jobs and state, installs its own pg-boss schema and queues, and grants it the\n" +
    "cluster's tenant schemas. Prints the connection string for that cluster's nodes and workers (DATABASE_URL).\n" +
    'Safe to re-run: an existing role of the same cluster keeps its password unless --password is given.',
  options: {
    role: { type: 'string', placeholder: 'ROLE', description: 'login role name (default: sync_<cluster>)' },
    password: { type: 'string', placeholder: 'PASSWORD', description: 'set this password (default: generated)' },
    'sync-url': {
      type: 'string',
      placeholder: 'URL',
      description: 'connection string to print with the role (e.g. through a pooler); derived from ADMIN_URL otherwise',
    },
  },
  examples: [
    'syncctl cluster add-role --cluster prod-host-2',
    'syncctl cluster add-role --cluster prod-host-2 --sync-url "postgresql://sync_prod_host_2.REF@aws-0-us-east-1.pooler.supabase.com:6543/postgres"',
  ],
  async run(ctx, { values }) {
    const adminUrl = ctx.adminUrl('syncctl cluster add-role');
    const result = await addClusterRole({
      adminUrl,
      cluster: ctx.cluster,
      ...(values.role ? { role: values.role as string } : {}),
      ...(values.password ? { password: values.password as string } : {}),
      groupRole: ctx.io.env.CLUSTER_GROUP_ROLE ?? DEFAULT_CLUSTER_GROUP_ROLE,
    });
    const syncUrl =
      result.password === null
        ? null
        : values['sync-url']
          ? withPassword(values['sync-url'] as string, result.password)
          : serviceUrlFrom(adminUrl, result.role, result.password);
    ctx.result({ ...result, sync_url: syncUrl, sync_url_shown: syncUrl ? redactUrl(syncUrl) : null }, () =>
      [
        `✅ role "${result.role}" ${result.created ? 'created' : 'exists'} for cluster "${result.cluster}"` +
          (result.password === null ? '; password unchanged' : ''),
        `✅ queue schema ${result.queueSchema} ready`,
        `✅ tenant schemas granted: ${result.tenantSchemas.length ? result.tenantSchemas.join(', ') : 'none yet'}`,
        '',
        syncUrl
          ? `DATABASE_URL for the nodes and workers of cluster "${result.cluster}" (shown once; keep it secret):\n  ${syncUrl}`
          : 'Pass --password to set a new password and print the connection string again.',
        `Run them with CLUSTER_NAME=${result.cluster}; this role reaches nothing of any other cluster.`,
      ].join('\n'),
    );
  },
};
