import { NotFoundError, InvalidInputError } from '@owui-sync/engine';
import { captureSourceSchema } from '@owui-sync/engine/restore';
import { checkRegisteredSource, purgeTombstones, upgradeTenantSchema } from '@owui-sync/engine/sync';
import { tenantSource } from '@owui-sync/engine/tenants';
import type { Command } from '../command.ts';
import { confirmTyped } from '../confirm.ts';
import type { CliContext } from '../context.ts';

const NAME = { name: 'NAME', required: true, description: 'tenant (client) name, e.g. acme-corp' } as const;

async function registeredSqlitePath(ctx: CliContext, name: string, override: string | undefined): Promise<string> {
  if (override) return override;
  const row = await tenantSource(ctx.pool('admin'), name);
  if (!row) throw new NotFoundError(`tenant "${name}" is not registered; run: syncctl clients`);
  if (!row.sqlite_path) {
    throw new InvalidInputError(`tenant "${name}" has no SQLite path recorded; pass --sqlite PATH`);
  }
  // The same check as a sync: the path must still resolve to the tenant's own registered file.
  await checkRegisteredSource(ctx.pool('admin'), {
    deploymentId: row.deployment_id,
    clientName: name,
    sqlitePath: row.sqlite_path,
  });
  return row.sqlite_path;
}

export const clientUpgradeSchemaCommand: Command = {
  path: ['client', 'upgrade-schema'],
  summary: 'apply schema drift (new tables/columns after an Open WebUI upgrade) to the tenant schema',
  description:
    'Compares the tenant’s SQLite schema with its PostgreSQL schema and adds what is missing (tables, columns,\n' +
    'keys), granting the service role as provisioning does. Needs the admin connection. A sync that fails with\n' +
    '"schema drift" tells you to run this; the next sync then copies the new data.',
  positionals: [NAME],
  options: {
    sqlite: { type: 'string', placeholder: 'PATH', description: 'SQLite file (default: the registered sqlite_path)' },
  },
  examples: ['syncctl client upgrade-schema acme-corp'],
  async run(ctx, { positionals, values }) {
    const name = positionals[0] as string;
    const sqlitePath = await registeredSqlitePath(ctx, name, values.sqlite as string | undefined);
    const { changes } = await upgradeTenantSchema({
      adminPool: ctx.pool('admin'),
      clientName: name,
      sqlitePath,
      serviceRole: ctx.serviceRole,
      logger: ctx.logger,
    });
    if (changes.length > 0) await captureSourceSchema({ pool: ctx.pool('admin'), clientName: name, sqlitePath });
    ctx.result({ client_name: name, changes }, () =>
      changes.length === 0
        ? `ℹ️  Schema of "${name}" already matches its SQLite database; nothing changed.`
        : `✅ Schema of "${name}" upgraded:\n${changes.map((c) => `  - ${c}`).join('\n')}\n` +
          `Next: syncctl client sync ${name}`,
    );
  },
};

export const clientPurgeDeletedCommand: Command = {
  path: ['client', 'purge-deleted'],
  summary: 'physically remove rows deleted in SQLite (tombstones) from the tenant schema (admin only)',
  description:
    'Syncs never delete: rows deleted in SQLite are kept in PostgreSQL and marked as tombstones, which restore and\n' +
    'verify leave out. This removes them for good (and their bookkeeping). It cannot be undone; it asks for the\n' +
    'tenant name unless --yes is given.',
  positionals: [NAME],
  options: {
    'older-than': {
      type: 'string',
      placeholder: 'SECONDS',
      description: 'only tombstones older than this many seconds (default: all)',
    },
    yes: { type: 'boolean', description: 'do not ask for confirmation' },
  },
  examples: ['syncctl client purge-deleted acme-corp --older-than 2592000 --yes'],
  async run(ctx, { positionals, values }) {
    const name = positionals[0] as string;
    const olderRaw = values['older-than'] as string | undefined;
    let olderThanSeconds: number | undefined;
    if (olderRaw !== undefined) {
      olderThanSeconds = Number(olderRaw);
      if (!Number.isInteger(olderThanSeconds) || olderThanSeconds < 0) {
        throw new InvalidInputError(`--older-than must be a whole number of seconds, got "${olderRaw}"`);
      }
    }
    const ok = await confirmTyped(ctx, {
      question: `⚠️  This permanently deletes the rows of "${name}" that were deleted in its SQLite database. Type the tenant name to confirm:`,
      expected: name,
      yes: Boolean(values.yes),
      flagHint: `syncctl client purge-deleted ${name}`,
    });
    if (!ok) {
      ctx.result({ client_name: name, cancelled: true }, () => 'Cancelled: nothing was changed.');
      return 1;
    }
    const { removed } = await purgeTombstones({
      adminPool: ctx.pool('admin'),
      clientName: name,
      ...(olderThanSeconds !== undefined ? { olderThanSeconds } : {}),
    });
    const total = Object.values(removed).reduce((a, b) => a + b, 0);
    ctx.result({ client_name: name, removed, total }, () =>
      total === 0
        ? `ℹ️  No tombstoned rows to remove for "${name}".`
        : `🗑️  Removed ${total} tombstoned row(s) of "${name}": ` +
          Object.entries(removed)
            .filter(([, n]) => n > 0)
            .map(([t, n]) => `${t} ${n}`)
            .join(', '),
    );
  },
};
