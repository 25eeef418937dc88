import path from 'node:path';
import { InvalidInputError } from '@owui-sync/engine';
import {
  captureSourceSchema,
  parseRestoreTime,
  restoreTenant,
  verifyTenant,
  type VerifyResult,
} from '@owui-sync/engine/restore';
import type { Command } from '../command.ts';
import { duration, table } from '../format.ts';
import { progressPrinter } from '../ops/sync.ts';

const NAME = { name: 'NAME', required: true, description: 'tenant (client) name, e.g. acme-corp' } as const;

export const restoreCommand: Command = {
  path: ['restore'],
  summary: "write a tenant's backup to a new Open WebUI SQLite file (webui.db)",
  description:
    'Recreates the SQLite schema the source had (recorded by syncctl verify / at registration; otherwise rebuilt\n' +
    'from PostgreSQL) and streams every row back in its SQLite storage form. Rows deleted in the source are left\n' +
    'out unless --include-deleted. The file is written under a temporary name and renamed into place once\n' +
    'PRAGMA integrity_check passes; it is readable by its owner only (mode 0600: it holds password hashes).\n' +
    'An existing PATH (also a symbolic link, even one pointing nowhere) is replaced only with --force; the\n' +
    "tenant's own registered file only while the tenant is paused, with --force.\n" +
    'With --at TIME the tenant is restored as the last sync run completed at or before TIME saw it, with the\n' +
    'schema (DDL) of that time, from the history every run keeps (syncctl client retention NAME DAYS, default 7).\n' +
    'The result names the Open WebUI schema revision the file is at, and warns when the file it replaces or the\n' +
    "tenant's current Open WebUI is at another one; --expect-revision refuses before writing anything.\n" +
    'See docs/restore.md for cutting a tenant over to the restored file.',
  positionals: [NAME],
  options: {
    to: { type: 'string', placeholder: 'PATH', description: 'SQLite file to create (required)' },
    force: { type: 'boolean', description: 'replace PATH if it exists (stop Open WebUI first)' },
    'include-deleted': { type: 'boolean', description: 'also restore rows deleted in the source (tombstoned)' },
    at: {
      type: 'string',
      placeholder: 'TIME',
      description: 'restore as of TIME: ISO (2026-05-01T13:55:00Z) or relative (-2h, -30m, -7d); default now',
    },
    'expect-revision': {
      type: 'string',
      placeholder: 'REV',
      description: 'refuse unless the restored file is at this Open WebUI revision (e.g. alembic:3781e22d8b01)',
    },
  },
  examples: [
    'syncctl restore acme-corp --to /srv/restore/webui.db',
    'syncctl restore acme-corp --to ./webui.db --force --include-deleted',
    'syncctl restore acme-corp --to ./webui-1355.db --at 2026-05-01T13:55:00Z',
    'syncctl restore acme-corp --to ./webui-2h.db --at -2h --json',
  ],
  async run(ctx, { positionals, values }) {
    const name = positionals[0] as string;
    const to = values.to;
    if (typeof to !== 'string' || to.length === 0) {
      throw new InvalidInputError(`say where to write the file: syncctl restore ${name} --to PATH`);
    }
    const at = values.at === undefined ? undefined : parseRestoreTime(String(values.at));
    const expectRevision = values['expect-revision'];
    if (expectRevision !== undefined && (typeof expectRevision !== 'string' || expectRevision.trim() === '')) {
      throw new InvalidInputError('--expect-revision needs a revision, e.g. alembic:3781e22d8b01');
    }
    const { pool } = ctx.readPool();
    const tty = Boolean(ctx.io.stderr.isTTY) && !ctx.json;
    const progress = tty ? progressPrinter(ctx.io.stderr) : undefined;
    if (!ctx.json) ctx.err(`Restoring "${name}"${at ? ` as of ${at.toISOString()}` : ''} to ${to} …`);
    let r;
    try {
      r = await restoreTenant({
        pool,
        clientName: name,
        to: path.resolve(ctx.io.cwd, to),
        scope: { cluster: ctx.cluster },
        force: Boolean(values.force),
        includeDeleted: Boolean(values['include-deleted']),
        ...(at ? { at } : {}),
        ...(typeof expectRevision === 'string' ? { expectRevision: expectRevision.trim() } : {}),
        logger: ctx.logger,
        ...(progress ? { onProgress: progress.update } : {}),
      });
    } finally {
      progress?.end();
    }
    ctx.result(r, () => {
      const lines = [
        `✅ Restored "${name}" to ${r.path}: ${r.rowsRestored} rows in ${Object.keys(r.tables).length} tables, ` +
          `integrity_check ${r.integrityCheck}, ${duration(r.durationSeconds)}`,
      ];
      if (r.pointInTime) {
        lines.push(
          `   As of ${r.pointInTime.runFinishedAt}: the last sync run at or before ${r.pointInTime.requested} ` +
            `(job ${r.pointInTime.jobId})`,
        );
      }
      lines.push(`   Open WebUI schema revision: ${r.openwebuiRevision ?? 'unknown'}`);
      if (r.rowsLeftOutDeleted > 0) {
        lines.push(
          `   ${r.rowsLeftOutDeleted} rows deleted in the source were left out (--include-deleted keeps them)`,
        );
      }
      for (const w of r.warnings) lines.push(`   ⚠️  ${w}`);
      if (r.ddl !== 'captured') {
        lines.push(
          `   Schema rebuilt from PostgreSQL (the source's own DDL was not recorded${r.ddl === 'mixed' ? ' for every table' : ''}); ` +
            `record it while the source is healthy with: syncctl verify ${name}`,
        );
      }
      lines.push(`   Check it against the source with: syncctl verify ${name} --sqlite ${r.path}`);
      return lines.join('\n');
    });
    return 0;
  },
};

export function verifyReport(v: VerifyResult): string {
  const bad = v.tables.filter((t) => t.status !== 'ok' || t.tombstoned > 0);
  const head = v.match
    ? `✅ Backup of "${v.clientName}" matches ${v.sqlitePath}: ${v.totals.sourceRows} rows in ${v.tables.length} tables`
    : `❌ Backup of "${v.clientName}" differs from ${v.sqlitePath}: ${v.totals.missing} missing, ${v.totals.extra} extra, ` +
      `${v.totals.differing} differing rows`;
  const lines = [head];
  if (bad.length > 0) {
    lines.push(
      '',
      table(bad, [
        { header: 'Table', value: (t) => t.table },
        { header: 'Status', value: (t) => t.status },
        { header: 'Source', value: (t) => String(t.sourceRows), align: 'right' },
        { header: 'Backup', value: (t) => String(t.backupRows), align: 'right' },
        { header: 'Missing', value: (t) => String(t.missing), align: 'right' },
        { header: 'Extra', value: (t) => String(t.extra), align: 'right' },
        { header: 'Differing', value: (t) => String(t.differing), align: 'right' },
        { header: 'Tombstoned', value: (t) => String(t.tombstoned), align: 'right' },
      ]),
    );
    for (const t of bad) {
      for (const kind of ['missing', 'extra', 'differing'] as const) {
        const keys = t.examples[kind];
        if (keys.length)
          lines.push(`   ${t.table} ${kind}: ${keys.map((k) => k.replaceAll('\u001f', '/')).join(', ')}`);
      }
    }
  }
  if (!v.match) {
    // Every successful sync leaves the backup equal to the snapshot it read, so a difference has one of these causes.
    lines.push(
      '',
      'A difference after a successful sync has one of three causes:',
      `- Open WebUI wrote after that sync: the next sync brings it (syncctl client sync ${v.clientName});`,
      '- a row is held back because its value cannot be stored exactly or PostgreSQL refused it: the last sync',
      `  failed naming it (syncctl jobs); fix the value in Open WebUI and the next sync writes it;`,
      '- the backup was edited in PostgreSQL directly: syncs leave such edits alone (docs/engine.md, conflicts).',
    );
  }
  return lines.join('\n');
}

export const verifyCommand: Command = {
  path: ['verify'],
  summary: 'compare a tenant’s source SQLite with its backup (exit 0 match, 1 differences)',
  description:
    'Table by table: row counts, key sets and a content hash per row after type normalisation. Reports rows\n' +
    'missing from the backup, extra in it, differing, and tombstoned (deleted in the source, kept in the backup).\n' +
    'Also records the source’s schema (DDL) so a later restore recreates exactly that shape.\n' +
    'Rows written to the source after the last sync show as differences until the next sync.',
  positionals: [NAME],
  options: {
    sqlite: {
      type: 'string',
      placeholder: 'PATH',
      description: 'compare with this file instead of the tenant’s sqlite_path (e.g. a restored file)',
    },
  },
  examples: [
    'syncctl verify acme-corp',
    'syncctl verify acme-corp --json',
    'syncctl verify acme-corp --sqlite ./webui.db',
  ],
  async run(ctx, { positionals, values }) {
    const name = positionals[0] as string;
    const { pool } = ctx.readPool();
    const sqlitePath = typeof values.sqlite === 'string' ? path.resolve(ctx.io.cwd, values.sqlite) : undefined;
    const v = await verifyTenant({
      pool,
      clientName: name,
      scope: { cluster: ctx.cluster },
      logger: ctx.logger,
      record: true,
      ...(sqlitePath ? { sqlitePath } : {}),
    });
    if (!sqlitePath) {
      await captureSourceSchema({ pool, clientName: name, scope: { cluster: ctx.cluster } }).catch((error: unknown) =>
        ctx.logger.warn({ err: error }, 'could not record the source schema'),
      );
    }
    ctx.result(v, () => verifyReport(v));
    return v.match ? 0 : 1;
  },
};
