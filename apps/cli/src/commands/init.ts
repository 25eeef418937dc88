import path from 'node:path';
import type { Command } from '../command.ts';
import { redactUrl } from '@owui-sync/engine';
import { DEFAULT_SERVICE_ROLE } from '@owui-sync/schema';
import { readExistingCredentials } from '../ops/credentials.ts';
import { initialize } from '../ops/init.ts';

export const initCommand: Command = {
  path: ['init'],
  summary: 'install or upgrade sync_metadata, the queue and the service role; write .credentials',
  description:
    'Uses the admin connection (ADMIN_URL or --admin-url). Creates the service role with a generated strong password\n' +
    'when it is new, grants it SELECT/INSERT/UPDATE (never DELETE or DDL), installs pg-boss and its queues, and writes\n' +
    'ADMIN_URL, SYNC_URL and SYNC_SERVICE_PASSWORD to the credentials file with mode 600. Safe to re-run: an\n' +
    'existing role keeps the password already in the file.',
  options: {
    'service-role': { type: 'string', placeholder: 'ROLE', description: 'service role name (default: sync_service)' },
    'service-password': {
      type: 'string',
      placeholder: 'PASSWORD',
      description: 'set this password (default: SYNC_SERVICE_PASSWORD[_FILE], else generated for a new role)',
    },
    'rotate-password': { type: 'boolean', description: 'generate and set a new service password' },
    'sync-url': {
      type: 'string',
      placeholder: 'URL',
      description: 'service connection to record as SYNC_URL (e.g. through a pooler); derived from ADMIN_URL otherwise',
    },
    'no-write': { type: 'boolean', description: 'install only; do not write the credentials file' },
  },
  examples: [
    'ADMIN_URL=postgresql://postgres:secret@db.example.com:5432/postgres syncctl init',
    'syncctl init --admin-url "$ADMIN_URL" --sync-url "postgresql://sync_service.REF@aws-0-us-east-1.pooler.supabase.com:6543/postgres"',
  ],
  async run(ctx, { values }) {
    ctx.optionalCredentials = true;
    const credentialsFile = path.resolve(
      ctx.io.cwd,
      (values.credentials as string | undefined) ?? ctx.io.env.CREDENTIALS_FILE ?? '.credentials',
    );
    const adminUrl = ctx.adminUrl('syncctl init');
    if (!ctx.json) ctx.err(`Installing into ${redactUrl(adminUrl)} …`);
    const result = await initialize({
      adminUrl,
      serviceRole:
        (values['service-role'] as string | undefined) ??
        ctx.io.env.SERVICE_ROLE ??
        roleOf(credentialsFile) ??
        DEFAULT_SERVICE_ROLE,
      servicePassword: (values['service-password'] as string | undefined) ?? ctx.env.SYNC_SERVICE_PASSWORD,
      rotatePassword: Boolean(values['rotate-password']),
      syncUrl: values['sync-url'] as string | undefined,
      credentialsFile,
      writeCredentials: !values['no-write'],
      groupRole: ctx.io.env.CLUSTER_GROUP_ROLE,
    });
    const { syncUrlPlain: _plain, ...shown } = result;
    ctx.result(shown, () =>
      [
        `✅ sync_metadata ${result.migrationsApplied.length ? `migrated (${result.migrationsApplied.join(', ')})` : 'up to date'}`,
        `✅ queue schema ${result.queueSchemaInstalled ? 'installed' : 'up to date'}${
          result.queuesCreated.length ? `, queues created: ${result.queuesCreated.join(', ')}` : ''
        }`,
        `✅ service role "${result.serviceRole}" ${result.roleCreated ? 'created' : 'exists'}; password ${
          { given: 'set as given', generated: 'generated and set', kept: 'unchanged' }[result.password]
        }`,
        result.credentialsFile
          ? `✅ wrote ${result.credentialsFile} (mode 600): ADMIN_URL, SYNC_URL, SYNC_SERVICE_PASSWORD`
          : 'ℹ️  credentials file not written (--no-write)',
        '',
        `Service URL: ${result.syncUrl}`,
        'Next: export DATABASE_URL="$SYNC_URL" for nodes and workers (source .credentials), then',
        '      syncctl client register NAME --sqlite /path/to/webui.db',
        'One role per host (several clusters in this database): syncctl cluster add-role --cluster NAME',
      ].join('\n'),
    );
  },
};

/** The service role a previous `syncctl init` recorded in the credentials file (user of SYNC_URL). */
function roleOf(file: string): string | undefined {
  const url = readExistingCredentials(file).SYNC_URL;
  if (!url) return undefined;
  try {
    return decodeURIComponent(new URL(url).username).split('.')[0] || undefined;
  } catch {
    return undefined;
  }
}
